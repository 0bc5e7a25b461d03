package modeldatareceiver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/extension/extensionauth"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/memorylimiterprocessor"
	"go.opentelemetry.io/collector/processor/processortest"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
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

// memoryLimiterRefusal is the memory_limiter processor's own refusal: a
// real processor with a 1 MiB limit, asked until it refuses.
func memoryLimiterRefusal(t *testing.T) error {
	t.Helper()
	f := memorylimiterprocessor.NewFactory()
	cfg := f.CreateDefaultConfig().(*memorylimiterprocessor.Config)
	cfg.CheckInterval = 10 * time.Millisecond
	cfg.MemoryLimitMiB, cfg.MemorySpikeLimitMiB = 1, 0
	p, err := f.CreateLogs(context.Background(), processortest.NewNopSettings(f.Type()), cfg, consumertest.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	for {
		if err := p.ConsumeLogs(context.Background(), plog.NewLogs()); err != nil {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fullQueueRefusal is exporterhelper's refusal when its sending queue is
// full: a real exporter with a one-request queue whose push never returns.
func fullQueueRefusal(t *testing.T) error {
	t.Helper()
	block := make(chan struct{})
	queue := exporterhelper.NewDefaultQueueConfig()
	queue.QueueSize, queue.NumConsumers, queue.Batch = 1, 1, configoptional.None[exporterhelper.BatchConfig]()
	exp, err := exporterhelper.NewLogs(context.Background(), exportertest.NewNopSettings(componentType), &struct{}{},
		func(context.Context, plog.Logs) error { <-block; return nil },
		exporterhelper.WithQueue(configoptional.Some(queue)))
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		close(block) // first: shutting down waits for the push
		_ = exp.Shutdown(context.Background())
	})
	ld := plog.NewLogs()
	ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	for {
		if err := exp.ConsumeLogs(context.Background(), ld); err != nil {
			return err
		}
	}
}

// TestBackpressure checks that a refusal of the pipeline maps by its type,
// as the OTLP receiver maps it, on every route: retryable ones (the
// memory_limiter's, a full sending queue's, Unavailable, ResourceExhausted)
// are 503/429 with Retry-After (the status's RetryInfo when it has one).
func TestBackpressure(t *testing.T) {
	throttled, _ := status.New(codes.Unavailable, "throttled").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(2500 * time.Millisecond)})
	for _, tt := range []struct {
		name       string
		err        error
		status     int
		retryAfter string
	}{
		{"memory_limiter processor", memoryLimiterRefusal(t), http.StatusServiceUnavailable, "1"},
		{"full sending queue", fullQueueRefusal(t), http.StatusServiceUnavailable, "1"},
		{"wrapped full sending queue", fmt.Errorf("fanout: %w", exporterhelper.ErrQueueIsFull), http.StatusServiceUnavailable, "1"},
		{"resource exhausted status", status.Error(codes.ResourceExhausted, "slow down"), http.StatusTooManyRequests, "1"},
		{"unavailable status with RetryInfo", throttled.Err(), http.StatusServiceUnavailable, "3"},
		{"invalid argument status", status.Error(codes.InvalidArgument, "bad rows"), http.StatusBadRequest, ""},
		{"permanent", consumererror.NewPermanent(errors.New("cannot be written")), http.StatusInternalServerError, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := startReceiver(t, func(cfg *Config) {
				cfg.AzureMLV2.GetOrInsertDefault().ModelName = "m"
			}, refusingConsumer{tt.err}, nil)
			responses := map[string]response{
				"collect": post(t, r.url, "application/json", `{"model_name":"m","data":[[1]]}`, nil),
				"batch":   post(t, r.url+"/batch", ndjsonContentType, `{"model_name":"m","data":[[1]]}`, nil),
				"v2":      post(t, r.v2url, "application/json", `[{"a":1}]`, map[string]string{"ce-type": "azureml.inference.model_inputs"}),
			}
			for route, resp := range responses {
				if resp.status != tt.status || resp.header.Get("Retry-After") != tt.retryAfter {
					t.Errorf("%s: status %d Retry-After %q, want %d %q", route, resp.status, resp.header.Get("Retry-After"), tt.status, tt.retryAfter)
				}
				if !strings.Contains(resp.body, status.Convert(tt.err).Message()) {
					t.Errorf("%s: body %q does not say why (%v)", route, resp.body, tt.err)
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
