package modeldatareceiver

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
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
		{"negative stall timeout", func(c *Config) { c.BodyStallTimeout = -time.Second }, "body_stall_timeout must not be negative (default 10s; 0: never), got -1s"},
		{"no stall timeout", func(c *Config) { c.BodyStallTimeout = 0 }, ""},
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

// slowSender opens a connection to a receiver's route and sends the headers
// of a request announcing announced bytes, then one byte, and no more.
func slowSender(t *testing.T, routeURL string, announced int64) net.Conn {
	t.Helper()
	u, err := url.Parse(routeURL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nce-type: azureml.inference.model_inputs\r\nContent-Length: %d\r\n\r\n[", u.Path, announced); err != nil {
		t.Fatal(err)
	}
	return conn
}

// TestSlowSenders is the slowloris attack on the default max_bytes_in_flight
// (64 MiB): four connections announce 16 MiB each, the whole budget, and
// send one byte. They hold the four bytes sent, not what they announce: a
// normal request on each route is answered 200 meanwhile. With a
// body_stall_timeout, each is cut once it has sent nothing for that long,
// answered 408 with the reason (in each route's error format), counted in
// otelcol_modeldata_requests_refused{limit="body_stall_timeout"}, and its
// byte goes back to the budget.
func TestSlowSenders(t *testing.T) {
	for _, tt := range []struct {
		name  string
		stall time.Duration
	}{
		{"no stall timeout: they stay, holding what they sent", 0},
		{"body_stall_timeout: they are cut", 300 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tel, set := telemetrySettings(t)
			r := startReceiverWith(t, receiverOptions{set: set, edit: func(c *Config) {
				c.BodyStallTimeout = tt.stall
				c.AzureMLV2.GetOrInsertDefault().ModelName = "m"
			}})
			if r.rcv.budget.Limit() != 64<<20 {
				t.Fatalf("budget %d, want the default 64 MiB", r.rcv.budget.Limit())
			}
			routes := []string{r.url, r.url, r.v2url, r.v2url}
			var conns []net.Conn
			for _, route := range routes {
				conns = append(conns, slowSender(t, route, 16<<20))
			}
			if tt.stall == 0 {
				if !testutil.Poll(10*time.Second, func() bool { return r.rcv.budget.Held() == 4 }) {
					t.Fatalf("held %d, want the 4 bytes sent", r.rcv.budget.Held())
				}
				if resp := post(t, r.url, "application/json", `{"model_name":"m","data":[[1]]}`, nil); resp.status != http.StatusOK {
					t.Errorf("collect: %d %s", resp.status, resp.body)
				}
				if resp := post(t, r.v2url, "application/json", `[{"a":1}]`, map[string]string{"ce-type": "azureml.inference.model_inputs"}); resp.status != http.StatusOK {
					t.Errorf("azureml_v2: %d %s", resp.status, resp.body)
				}
				if r.rcv.budget.Held() != 4 || r.sink.LogRecordCount() != 2 {
					t.Errorf("held %d, %d records; want 4 and 2", r.rcv.budget.Held(), r.sink.LogRecordCount())
				}
				return
			}
			for i, conn := range conns {
				_ = conn.SetDeadline(time.Now().Add(time.Minute))
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					t.Fatalf("slow sender %d: %v", i, err)
				}
				msg, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(msg), "no byte of the body arrived for 300ms (body_stall_timeout)") {
					t.Errorf("slow sender %d (%s): status %d: %s", i, routes[i], resp.StatusCode, msg)
				}
			}
			if !testutil.Poll(10*time.Second, func() bool { return r.rcv.budget.Held() == 0 }) {
				t.Errorf("%d bytes still held after the slow senders were cut", r.rcv.budget.Held())
			}
			assertRefused(t, tel, map[string]int64{limitBodyStall: 4})
		})
	}
}

// TestReadBody: a body is read whole whatever its size and whether its
// length is known, a truncated one is an error, and the memory allocated
// follows the bytes that have arrived, not the size announced: a client
// that announces 16 MiB and sends less costs at most twice what it sent
// (plus one first chunk), and a whole max-size body at most 1.5x its size.
func TestReadBody(t *testing.T) {
	const announced = 16 << 20
	for _, tt := range []struct {
		name      string
		sent      int
		bound     int64 // the Content-Length, or the most the server reads
		truncated bool  // the connection ends before the announced length
		maxAlloc  int64
	}{
		{"empty", 0, 0, false, 64},
		{"small, announced", 300, 300, false, 512},
		{"first chunk exactly, announced", firstChunk, firstChunk, false, 2 * firstChunk},
		{"one past the first chunk, announced", firstChunk + 1, firstChunk + 1, false, 3 * firstChunk},
		{"100 KiB of unknown length", 100 << 10, 20 << 20, false, 400 << 10},
		{"max size, announced", announced, announced, false, announced*3/2 + maxChunk},
		{"announced 16 MiB, 1 byte sent", 1, announced, true, firstChunk + 64},
		{"announced 16 MiB, 4 MiB sent", 4 << 20, announced, true, 2*(4<<20) + maxChunk},
		{"announced 16 MiB, 12 MiB sent", 12 << 20, announced, true, 2*(12<<20) + maxChunk},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body := bytes.Repeat([]byte("0123456789abcdef"), tt.sent/16+1)[:tt.sent]
			var r io.Reader = bytes.NewReader(body)
			if tt.truncated {
				r = io.MultiReader(r, iotest.ErrReader(io.ErrUnexpectedEOF))
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			got, err := readBody(r, tt.bound)
			runtime.ReadMemStats(&after)
			if tt.truncated != (err != nil) || !tt.truncated && !bytes.Equal(got, body) {
				t.Errorf("%d bytes read of %d, error %v", len(got), len(body), err)
			}
			if alloc := int64(after.TotalAlloc - before.TotalAlloc); alloc > tt.maxAlloc {
				t.Errorf("%d bytes allocated for %d received, want at most %d", alloc, tt.sent, tt.maxAlloc)
			}
		})
	}
}
