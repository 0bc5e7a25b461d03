package modeldatareceiver

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/otelcol-modeldata/otelcol-modeldata/receiver/modeldatareceiver/internal/metadata"
)

// TestTelemetry checks the receiver's standard accepted/refused counters.
func TestTelemetry(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	set := receivertest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	send := func(next consumer.Logs, body string) int {
		r, err := newReceiver(createDefaultConfig(), set, next)
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
		m, err := tel.GetMetric(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var got int64
		for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
			got += dp.Value
		}
		if got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
}

func TestConfigStruct(t *testing.T) {
	if err := componenttest.CheckConfigStruct(createDefaultConfig()); err != nil {
		t.Fatal(err)
	}
}
