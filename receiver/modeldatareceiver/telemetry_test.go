package modeldatareceiver

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/otelcol-modeldata/otelcol-modeldata/receiver/modeldatareceiver/internal/metadatatest"
)

// TestTelemetry checks the receiver's standard accepted/refused counters.
func TestTelemetry(t *testing.T) {
	tel, set := telemetrySettings(t)
	send := func(next consumer.Logs, body string) int {
		r, err := newReceiver(createDefaultConfig(), *set, next)
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, collectPath, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		r.handleCollect(w, req)
		return w.Code
	}
	if code := send(consumertest.NewNop(), `{"model_name":"m","data":[[1],[2]]}`); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	if code := send(refusingConsumer{errors.New("queue full")}, `{"model_name":"m","data":[[1],[2],[3]]}`); code != http.StatusServiceUnavailable {
		t.Fatalf("status %d", code)
	}
	for name, want := range map[string]int64{
		"otelcol_receiver_accepted_log_records": 2,
		"otelcol_receiver_refused_log_records":  3,
	} {
		if got := metricSum(t, tel, name); got != want {
			t.Errorf("%s = %d, want %d", name, metricSum(t, tel, name), want)
		}
	}
}

func TestConfigStruct(t *testing.T) {
	if err := componenttest.CheckConfigStruct(createDefaultConfig()); err != nil {
		t.Fatal(err)
	}
}

// assertRefused checks otelcol_modeldata_requests_refused: the requests
// refused by each limit.
func assertRefused(t *testing.T, tel *componenttest.Telemetry, want map[string]int64) {
	t.Helper()
	var dps []metricdata.DataPoint[int64]
	for limit, n := range want {
		dps = append(dps, metricdata.DataPoint[int64]{Value: n, Attributes: attribute.NewSet(attribute.String("limit", limit))})
	}
	metadatatest.AssertEqualModeldataRequestsRefused(t, tel, dps, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}
