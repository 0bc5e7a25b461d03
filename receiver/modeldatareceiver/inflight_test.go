package modeldatareceiver

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
)

// TestBytesInFlight: while bodies up to max_bytes_in_flight are held (here,
// one request the pipeline has not answered yet), a request that would go
// over it is answered 503 + Retry-After on every route, whether its size
// is announced (Content-Length) or found while reading (chunked); once the
// held request is answered, the same request is accepted. Each refusal is
// counted in otelcol_modeldata_requests_refused.
func TestBytesInFlight(t *testing.T) {
	entered, release := make(chan struct{}, 1), make(chan struct{})
	var held atomic.Bool
	next, err := consumer.NewLogs(func(context.Context, plog.Logs) error {
		if held.CompareAndSwap(false, true) {
			entered <- struct{}{}
			<-release
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tel, set := telemetrySettings(t)
	r := startReceiverWith(t, receiverOptions{set: set, next: next, edit: func(c *Config) {
		c.MaxRequestBodySize = 1000
		c.MaxBytesInFlight = 1500
		v2 := c.AzureMLV2.GetOrInsertDefault()
		v2.ModelName = "m"
		v2.MaxRequestBodySize = 1000
	}})
	// About 800 bytes: two do not fit in 1,500.
	body := `{"model_name":"m","data":[["` + strings.Repeat("x", 760) + `"]]}`
	send := func(url string, chunked bool, key string) (response, error) {
		var b io.Reader = strings.NewReader(body)
		if chunked {
			b = io.MultiReader(b) // no length known: sent chunked
		}
		req, err := http.NewRequest(http.MethodPost, url, b)
		if err != nil {
			return response{}, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("ce-type", "azureml.inference.model_inputs")
		if key != "" {
			req.Header.Set(idempotencyKeyHeader, key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return response{}, err
		}
		defer resp.Body.Close()
		msg, err := io.ReadAll(resp.Body)
		return response{status: resp.StatusCode, header: resp.Header, body: string(msg)}, err
	}
	// A request accepted before (not held), whose resend is read to be
	// recognized.
	held.Store(true)
	if resp, err := send(r.url, false, "accepted-key"); err != nil || resp.status != http.StatusOK {
		t.Fatalf("keyed request: %d %s %v", resp.status, resp.body, err)
	}
	held.Store(false)
	first := make(chan response, 1)
	go func() {
		resp, err := send(r.url, false, "")
		if err != nil {
			resp.body = err.Error()
		}
		first <- resp
	}()
	<-entered

	tests := []struct {
		name, url, key string
		chunked        bool
	}{
		{"collect, Content-Length", r.url, "", false},
		{"collect, chunked", r.url, "", true},
		{"azureml_v2, Content-Length", r.v2url, "", false},
		{"azureml_v2, chunked", r.v2url, "", true},
		{"collect resent with an accepted Idempotency-Key, chunked", r.url, "accepted-key", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := send(tt.url, tt.chunked, tt.key)
			if err != nil {
				t.Fatal(err)
			}
			if resp.status != http.StatusServiceUnavailable || resp.header.Get("Retry-After") != "1" || !strings.Contains(resp.body, "max_bytes_in_flight") {
				t.Errorf("status %d, Retry-After %q: %s", resp.status, resp.header.Get("Retry-After"), resp.body)
			}
		})
	}
	close(release)
	if resp := <-first; resp.status != http.StatusOK {
		t.Fatalf("held request: %d %s", resp.status, resp.body)
	}
	for _, chunked := range []bool{false, true} {
		if resp, err := send(r.url, chunked, ""); err != nil || resp.status != http.StatusOK {
			t.Errorf("after the held request (chunked %v): %d %s %v", chunked, resp.status, resp.body, err)
		}
	}
	if held := r.rcv.budget.Held(); held != 0 {
		t.Errorf("%d bytes still held after every request was answered", held)
	}
	assertRefused(t, tel, map[string]int64{limitBytesInFlight: int64(len(tests))})
}

func TestBytesInFlightConfig(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"negative", func(c *Config) { c.MaxBytesInFlight = -1 }, "max_bytes_in_flight must not be negative"},
		{"under the body size", func(c *Config) { c.MaxBytesInFlight = 1 << 20 }, "max_bytes_in_flight (1048576) is smaller than max_request_body_size (20971520)"},
		{"under the v2 body size", func(c *Config) {
			c.MaxRequestBodySize = 1 << 20
			c.MaxBytesInFlight = 2 << 20
			v2 := c.AzureMLV2.GetOrInsertDefault()
			v2.ModelName = "m"
			v2.MaxRequestBodySize = 4 << 20
		}, "is smaller than azureml_v2::max_request_body_size (4194304)"},
		{"no limit", func(c *Config) { c.MaxBytesInFlight = 0 }, ""},
		{"default", func(*Config) {}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := createDefaultConfig()
			cfg.AzureMLV2.GetOrInsertDefault().ModelName = "m"
			tt.edit(cfg)
			err := cfg.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}
