package modeldatareceiver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/extension/extensionauth"
	"go.opentelemetry.io/collector/pdata/plog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func ptr[T any](v T) *T { return &v }

// TestCollectSwitchesAndSampling checks the per-model switches and that
// sampling keeps or drops the inputs and predictions of a request together.
func TestCollectSwitchesAndSampling(t *testing.T) {
	r := startReceiver(t, func(cfg *Config) {
		cfg.Models = map[string]ModelConfig{
			"off":     {Enabled: ptr(false)},
			"labeled": {Designations: []string{"inputs", "predictions"}},
			"half":    {SamplingRate: ptr(0.5)},
		}
	}, nil, nil)
	collect := func(model, designation, requestID string) (accepted, skipped float64) {
		resp := post(t, r.url, "application/json", fmt.Sprintf(`{"model_name":%q,"designation":%q,"request_id":%q,"data":[[1],[2]]}`, model, designation, requestID), nil)
		if resp.status != http.StatusOK {
			t.Fatalf("status %d: %s", resp.status, resp.body)
		}
		got := resp.json(t)
		s, _ := got["skipped"].(float64)
		return got["accepted"].(float64), s
	}
	for _, tt := range []struct {
		model, designation string
		accepted           float64
	}{
		{"off", "inputs", 0},
		{"labeled", "inputs", 2},
		{"labeled", "labels", 0},
		{"unlisted", "labels", 2},
	} {
		r.sink.Reset()
		if a, s := collect(tt.model, tt.designation, "r"); a != tt.accepted || a+s != 2 || float64(r.sink.LogRecordCount()) != tt.accepted {
			t.Errorf("%s/%s: accepted %v skipped %v (sink %d), want accepted %v", tt.model, tt.designation, a, s, r.sink.LogRecordCount(), tt.accepted)
		}
	}

	kept := 0
	const requests = 400
	for i := 0; i < requests; i++ {
		id := fmt.Sprintf("req-%d", i)
		in, _ := collect("half", "inputs", id)
		out, _ := collect("half", "predictions", id)
		if in != out {
			t.Fatalf("request %s: inputs accepted %v, predictions %v: sampling split a request", id, in, out)
		}
		if in > 0 {
			kept++
		}
	}
	if kept < requests*35/100 || kept > requests*65/100 {
		t.Errorf("sampling 0.5 kept %d of %d requests", kept, requests)
	}
}

func TestCollectUnlistedModelsOff(t *testing.T) {
	r := startReceiver(t, func(cfg *Config) {
		cfg.CollectUnlistedModels = false
		cfg.Models = map[string]ModelConfig{"listed": {}}
	}, nil, nil)
	for model, want := range map[string]float64{"listed": 1, "other": 0} {
		if got := post(t, r.url, "application/json", `{"model_name":"`+model+`","data":[[1]]}`, nil).json(t)["accepted"]; got != want {
			t.Errorf("%s: accepted %v, want %v", model, got, want)
		}
	}
}

// refusingConsumer fails every batch with err.
type refusingConsumer struct{ err error }

func (c refusingConsumer) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }
func (c refusingConsumer) ConsumeLogs(context.Context, plog.Logs) error {
	return c.err
}

// TestBackpressure checks that a refusal of the pipeline becomes 429/503
// with Retry-After (retryable) or 400 (permanent), on both routes.
func TestBackpressure(t *testing.T) {
	for _, tt := range []struct {
		name       string
		err        error
		status     int
		retryAfter string
	}{
		{"queue full", errors.New("sending queue is full"), http.StatusServiceUnavailable, "1"},
		{"memory limiter", fmt.Errorf("wrapped: %w", errors.New("data refused due to high memory usage")), http.StatusTooManyRequests, "1"},
		{"resource exhausted status", status.Error(codes.ResourceExhausted, "slow down"), http.StatusTooManyRequests, "1"},
		{"permanent", consumererror.NewPermanent(errors.New("cannot be written")), http.StatusBadRequest, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := startReceiver(t, func(cfg *Config) {
				cfg.AzureMLV2.GetOrInsertDefault().ModelName = "m"
			}, refusingConsumer{tt.err}, nil)
			responses := map[string]response{
				"collect": post(t, r.url, "application/json", `{"model_name":"m","data":[[1]]}`, nil),
				"v2":      post(t, r.v2url, "application/json", `[{"a":1}]`, map[string]string{"ce-type": "azureml.inference.model_inputs"}),
			}
			for route, resp := range responses {
				if resp.status != tt.status || resp.header.Get("Retry-After") != tt.retryAfter {
					t.Errorf("%s: status %d Retry-After %q, want %d %q", route, resp.status, resp.header.Get("Retry-After"), tt.status, tt.retryAfter)
				}
				if !strings.Contains(resp.body, tt.err.Error()) {
					t.Errorf("%s: body %q does not say why", route, resp.body)
				}
			}
		})
	}
}

// authHost offers a bearer-token authenticator extension to confighttp.
type authHost struct {
	exts map[component.ID]component.Component
}

func (h authHost) GetExtensions() map[component.ID]component.Component { return h.exts }

type tokenAuth struct {
	component.StartFunc
	component.ShutdownFunc
	extensionauth.ServerAuthenticateFunc
}

// TestAuth runs the collect API behind confighttp's auth with an
// in-process bearer-token authenticator extension.
func TestAuth(t *testing.T) {
	id := component.MustNewID("tokenauth")
	auth := tokenAuth{ServerAuthenticateFunc: func(ctx context.Context, sources map[string][]string) (context.Context, error) {
		for k, v := range sources {
			if strings.EqualFold(k, "Authorization") && len(v) == 1 && v[0] == "Bearer s3cret" {
				return ctx, nil
			}
		}
		return ctx, errors.New("missing or wrong bearer token")
	}}
	r := startReceiver(t, func(cfg *Config) {
		cfg.Auth = configoptional.Some(confighttp.AuthConfig{Config: configauth.Config{AuthenticatorID: id}})
	}, nil, authHost{map[component.ID]component.Component{id: auth}})
	body := `{"model_name":"m","data":[[1]]}`
	if resp := post(t, r.url, "application/json", body, nil); resp.status != http.StatusUnauthorized || r.sink.LogRecordCount() != 0 {
		t.Errorf("without a token: status %d, %d records", resp.status, r.sink.LogRecordCount())
	}
	if resp := post(t, r.url, "application/json", body, map[string]string{"Authorization": "Bearer wrong"}); resp.status != http.StatusUnauthorized {
		t.Errorf("wrong token: status %d", resp.status)
	}
	if resp := post(t, r.url, "application/json", body, map[string]string{"Authorization": "Bearer s3cret"}); resp.status != http.StatusOK || r.sink.LogRecordCount() != 1 {
		t.Errorf("right token: status %d %s, %d records", resp.status, resp.body, r.sink.LogRecordCount())
	}
}

func TestGzipBody(t *testing.T) {
	r := startReceiver(t, nil, nil, nil)
	var buf strings.Builder
	zw := newGzip(&buf)
	_, _ = zw.Write([]byte(`{"model_name":"m","data":[[1],[2]]}`))
	_ = zw.Close()
	resp := post(t, r.url, "application/json", buf.String(), map[string]string{"Content-Encoding": "gzip"})
	if resp.status != http.StatusOK || r.sink.LogRecordCount() != 2 {
		t.Errorf("status %d %s, %d records", resp.status, resp.body, r.sink.LogRecordCount())
	}
}
