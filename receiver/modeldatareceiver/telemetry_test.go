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
