package bodybudget

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// readAll is a handler like most confighttp receivers': it reads the whole
// body and answers 200, or a failed read 400 (with silent, nothing).
func readAll(silent bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if _, err := io.ReadAll(req.Body); err != nil && !silent {
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
	})
}

// TestWrap: with 60 of a 100-byte budget held by another request, a body
// is accepted when it fits and refused when it does not, from its
// Content-Length before a byte is read (503 + Retry-After), or as it is read
// when its length is unknown (503 whatever the handler answered; 413 when it
// is over the whole budget). The budget is whole again afterwards, and
// every refusal is counted once.
func TestWrap(t *testing.T) {
	for _, tt := range []struct {
		name        string
		size        int
		chunked     bool
		silent      bool
		status      int
		retryAfter  string
		nextEntered bool
	}{
		{"fits, Content-Length", 40, false, false, 200, "", true},
		{"fits, unknown length", 40, true, false, 200, "", true},
		{"busy, Content-Length: refused before the handler", 41, false, false, 503, "2", false},
		{"busy, unknown length: the handler's 400 becomes 503", 41, true, false, 503, "2", true},
		{"busy, unknown length, handler writes nothing", 41, true, true, 503, "2", true},
		{"over the whole budget, unknown length: 413", 101, true, false, 413, "", true},
		{"over the whole budget, Content-Length: read, then 413", 101, false, false, 413, "", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := New(100, 2*time.Second)
			var refusals atomic.Int64
			b.OnRefusal = func(context.Context, *Refusal) { refusals.Add(1) }
			if !b.take(60) {
				t.Fatal("taking 60 of 100")
			}
			var entered bool
			next := readAll(tt.silent)
			h := b.Wrap(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				entered = true
				next.ServeHTTP(w, req)
			}), func(w http.ResponseWriter, _ *http.Request, rf *Refusal) {
				http.Error(w, rf.Error(), rf.StatusCode())
			})
			var body io.Reader = bytes.NewReader(bytes.Repeat([]byte("x"), tt.size))
			if tt.chunked {
				body = io.MultiReader(body)
			}
			req := httptest.NewRequest(http.MethodPost, "/", body)
			if tt.chunked {
				req.ContentLength = -1
			}
			if tt.size > 100 {
				b.give(60) // nothing else held: the body alone is over
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != tt.status || w.Header().Get("Retry-After") != tt.retryAfter || entered != tt.nextEntered {
				t.Errorf("status %d, Retry-After %q, handler entered %v: %s", w.Code, w.Header().Get("Retry-After"), entered, w.Body)
			}
			if tt.status != 200 && !strings.Contains(w.Body.String(), "max_bytes_in_flight (100 bytes)") {
				t.Errorf("body %q", w.Body)
			}
			wantHeld, wantRefusals := int64(60), int64(1)
			if tt.size > 100 {
				wantHeld = 0
			}
			if tt.status == 200 {
				wantRefusals = 0
			}
			if b.Held() != wantHeld || refusals.Load() != wantRefusals {
				t.Errorf("held %d after the request, want %d; %d refusals counted, want %d", b.Held(), wantHeld, refusals.Load(), wantRefusals)
			}
		})
	}
}

// TestNoLimit: a budget of 0 (or less) passes every body through.
func TestNoLimit(t *testing.T) {
	for _, limit := range []int64{0, -1} {
		b := New(limit, time.Second)
		w := httptest.NewRecorder()
		b.Wrap(readAll(false), nil).ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(strings.Repeat("x", 1000))))
		if w.Code != 200 || b.Limit() != 0 || b.Held() != 0 {
			t.Errorf("limit %d: status %d, Limit %d, held %d", limit, w.Code, b.Limit(), b.Held())
		}
	}
}

// TestReserve: a reservation holds its bytes until its context is done; one
// that does not fit now is a busy refusal, one over the whole budget too
// large; each refusal is counted.
func TestReserve(t *testing.T) {
	b := New(100, time.Second)
	var refusals atomic.Int64
	b.OnRefusal = func(context.Context, *Refusal) { refusals.Add(1) }
	ctx, end := context.WithCancel(context.Background())
	if rf := b.Reserve(ctx, 60); rf != nil {
		t.Fatalf("60 of 100: %v", rf)
	}
	if rf := b.Reserve(context.Background(), 41); rf == nil || rf.TooLarge {
		t.Fatalf("41 more: %v, want busy", rf)
	}
	if rf := b.Reserve(context.Background(), 101); rf == nil || !rf.TooLarge {
		t.Fatalf("101: %v, want too large", rf)
	}
	end()
	if !testutil.Poll(10*time.Second, func() bool { return b.Held() == 0 }) || refusals.Load() != 2 {
		t.Errorf("held %d after the context ended, %d refusals counted", b.Held(), refusals.Load())
	}
}

// TestFlusher: a handler that streams its answer still finds an
// http.Flusher behind the budget.
func TestFlusher(t *testing.T) {
	h := New(100, time.Second).Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		f, ok := w.(http.Flusher)
		if !ok {
			t.Error("no http.Flusher")
			return
		}
		_, _ = io.WriteString(w, "part")
		f.Flush()
	}), nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	if !w.Flushed || w.Body.String() != "part" {
		t.Errorf("flushed %v, body %q", w.Flushed, w.Body)
	}
}
