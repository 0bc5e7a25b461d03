package bodybudget

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
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

func refuseText(w http.ResponseWriter, _ *http.Request, rf *Refusal) {
	http.Error(w, rf.Error(), rf.StatusCode())
}

// TestWrap: with 60 of a 100-byte budget held by another request, a body
// is accepted when it fits and refused when it does not, from its
// Content-Length before a byte is read (503 + Retry-After), or as it is read
// when its length is unknown (503 whatever the handler answered; 413 when it
// is over the whole budget). The budget is whole again afterwards, and
// every refusal is counted once. No stall timeout: the recorder has no
// connection to cut.
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
			b := New(100, 2*time.Second, 0)
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
			}), refuseText)
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
		b := New(limit, time.Second, 0)
		w := httptest.NewRecorder()
		b.Wrap(readAll(false), nil).ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(strings.Repeat("x", 1000))))
		if w.Code != 200 || b.Limit() != 0 || b.Held() != 0 {
			t.Errorf("limit %d: status %d, Limit %d, held %d", limit, w.Code, b.Limit(), b.Held())
		}
	}
}

// TestReserve: a reservation holds its bytes until it is released (once,
// however often release is called); one that does not fit now is a busy
// refusal, one over the whole budget too large; each refusal is counted.
func TestReserve(t *testing.T) {
	b := New(100, time.Second, 0)
	var refusals atomic.Int64
	b.OnRefusal = func(context.Context, *Refusal) { refusals.Add(1) }
	release, rf := b.Reserve(context.Background(), 60)
	if rf != nil {
		t.Fatalf("60 of 100: %v", rf)
	}
	if _, rf := b.Reserve(context.Background(), 41); rf == nil || rf.Reason != Busy {
		t.Fatalf("41 more: %v, want busy", rf)
	}
	if _, rf := b.Reserve(context.Background(), 101); rf == nil || rf.Reason != TooLarge {
		t.Fatalf("101: %v, want too large", rf)
	}
	release()
	release()
	if b.Held() != 0 || refusals.Load() != 2 {
		t.Errorf("held %d after release, %d refusals counted", b.Held(), refusals.Load())
	}
}

// TestFlusher: a handler that streams its answer still finds an
// http.Flusher behind the budget.
func TestFlusher(t *testing.T) {
	h := New(100, time.Second, time.Minute).Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
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

// slowSender opens a connection to addr and sends the headers of a request
// announcing a body of announced bytes, then sent bytes of it, and no more.
func slowSender(t *testing.T, addr string, announced, sent int) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: budget\r\nContent-Length: %d\r\n\r\n%s", announced, strings.Repeat("x", sent)); err != nil {
		t.Fatal(err)
	}
	return c
}

// post sends a body of size bytes (chunked: of unknown length) and returns
// the status and Retry-After of the answer.
func post(t *testing.T, url string, size int, chunked bool) (int, string) {
	t.Helper()
	var body io.Reader = strings.NewReader(strings.Repeat("y", size))
	if chunked {
		body = io.MultiReader(body)
	}
	resp, err := http.Post(url, "text/plain", body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// TestChargedAsRead: a body holds the bytes that have arrived of it, never
// what its Content-Length announces. Four clients announce bodies that
// together fill the whole 100-byte budget and send a few bytes each: they
// hold those bytes only, and a normal request fits in what is left; one
// whose Content-Length does not fit in what is free now is refused before
// its body is read (503 + Retry-After), one of unknown length as soon as it
// goes over.
func TestChargedAsRead(t *testing.T) {
	for _, tt := range []struct {
		name       string
		sent       int // by each of the four slow senders, of 25 announced
		size       int
		chunked    bool
		status     int
		retryAfter string
	}{
		{"one byte sent each: a normal request fits", 1, 90, false, 200, ""},
		{"one byte sent each: a chunked one too", 1, 90, true, 200, ""},
		{"20 sent each (80 held): a Content-Length of 20 fits", 20, 20, false, 200, ""},
		{"20 sent each (80 held): 21 does not, refused before reading", 20, 21, false, 503, "1"},
		{"20 sent each (80 held): 21 chunked, refused while reading", 20, 21, true, 503, "1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := New(100, time.Second, 0)
			var refusals atomic.Int64
			b.OnRefusal = func(context.Context, *Refusal) { refusals.Add(1) }
			srv := httptest.NewServer(b.Wrap(readAll(false), refuseText))
			t.Cleanup(srv.Close)
			for range 4 {
				slowSender(t, srv.Listener.Addr().String(), 25, tt.sent)
			}
			if !testutil.Poll(10*time.Second, func() bool { return b.Held() == int64(4*tt.sent) }) {
				t.Fatalf("held %d, want the %d bytes sent", b.Held(), 4*tt.sent)
			}
			if status, retryAfter := post(t, srv.URL, tt.size, tt.chunked); status != tt.status || retryAfter != tt.retryAfter {
				t.Errorf("status %d, Retry-After %q; want %d %q", status, retryAfter, tt.status, tt.retryAfter)
			}
			wantRefusals := int64(0)
			if tt.status != 200 {
				wantRefusals = 1
			}
			if b.Held() != int64(4*tt.sent) || refusals.Load() != wantRefusals {
				t.Errorf("held %d after the request, want %d; %d refusals, want %d", b.Held(), 4*tt.sent, refusals.Load(), wantRefusals)
			}
		})
	}
}

// TestStall: a body that sends nothing for the stall timeout is cut and
// answered 408 with the reason, whatever the handler answered for the
// failed read; so is one still arriving at the server's read_timeout. What
// it sent goes back to the budget and the refusal is counted. A body that
// ends, and a request without a body, are not cut.
func TestStall(t *testing.T) {
	const stalled = "no byte of the body arrived for 300ms (body_stall_timeout)"
	for _, tt := range []struct {
		name         string
		announced    int
		sent         int
		readTimeout  time.Duration
		silentHandle bool
		status       int
		reason       Reason
		msg          string
	}{
		{"nothing sent", 50, 0, 0, false, 408, Stalled, stalled},
		{"part sent", 50, 10, 0, false, 408, Stalled, stalled},
		{"part sent, the handler writes nothing", 50, 10, 0, true, 408, Stalled, stalled},
		{"part sent, the server's read_timeout first", 50, 10, 100 * time.Millisecond, false, 408, ReadTimeout, "did not arrive within the server's read_timeout"},
		{"the whole body sent", 50, 50, 0, false, 200, 0, ""},
		{"no body", 0, 0, 0, false, 200, 0, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := New(100, time.Second, 300*time.Millisecond)
			var refused atomic.Pointer[Refusal]
			b.OnRefusal = func(_ context.Context, rf *Refusal) { refused.Store(rf) }
			srv := httptest.NewUnstartedServer(b.Wrap(readAll(tt.silentHandle), refuseText))
			srv.Config.ReadTimeout = tt.readTimeout
			srv.Start()
			t.Cleanup(srv.Close)
			c := slowSender(t, srv.Listener.Addr().String(), tt.announced, tt.sent)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			msg, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status || !strings.Contains(string(msg), tt.msg) {
				t.Errorf("status %d: %s", resp.StatusCode, msg)
			}
			if !testutil.Poll(10*time.Second, func() bool { return b.Held() == 0 }) {
				t.Errorf("held %d after the answer", b.Held())
			}
			if rf := refused.Load(); (rf != nil) != (tt.status != 200) || rf != nil && rf.Reason != tt.reason {
				t.Errorf("refusal counted: %+v, want reason %d", rf, tt.reason)
			}
		})
	}
}

// TestNestedStall: a budget wrapped inside another's (the modeldata
// receiver's inside a request_budget middleware) leaves a stalled body to
// the outer one's timer: the cut is counted once, as stalled.
func TestNestedStall(t *testing.T) {
	outer, inner := New(100, time.Second, 300*time.Millisecond), New(0, time.Second, 300*time.Millisecond)
	var outerRefusals, innerRefusals []Reason
	var mu sync.Mutex
	outer.OnRefusal = func(_ context.Context, rf *Refusal) {
		mu.Lock()
		outerRefusals = append(outerRefusals, rf.Reason)
		mu.Unlock()
	}
	inner.OnRefusal = func(_ context.Context, rf *Refusal) {
		mu.Lock()
		innerRefusals = append(innerRefusals, rf.Reason)
		mu.Unlock()
	}
	srv := httptest.NewServer(outer.Wrap(inner.Wrap(readAll(false), refuseText), refuseText))
	t.Cleanup(srv.Close)
	c := slowSender(t, srv.Listener.Addr().String(), 50, 10)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	mu.Lock()
	defer mu.Unlock()
	if resp.StatusCode != http.StatusRequestTimeout || len(outerRefusals) != 1 || outerRefusals[0] != Stalled || len(innerRefusals) != 0 {
		t.Errorf("status %d (%s); refusals counted outside %v, inside %v", resp.StatusCode, msg, outerRefusals, innerRefusals)
	}
}

// TestRefusedBodyGivesBackAtOnce: two bodies that fill the budget between
// them; the one refused gives back what it holds as it is refused, before
// its handler returns, so the other one finishes. Otherwise a burst of large
// bodies could end with every one of them refused.
func TestRefusedBodyGivesBackAtOnce(t *testing.T) {
	b := New(10, time.Second, 0)
	body := func() *budgetedBody {
		return &budgetedBody{ReadCloser: io.NopCloser(strings.NewReader("12345678")), budget: b, refused: new(atomic.Pointer[Refusal])}
	}
	first, second := body(), body()
	buf := make([]byte, 4)
	for _, step := range []struct {
		name     string
		body     *budgetedBody
		wantErr  bool
		wantHeld int64
	}{
		{"first reads 4", first, false, 4},
		{"second reads 4", second, false, 8},
		{"first's next 4 do not fit: refused, its 4 given back", first, true, 4},
		{"second's next 4 fit", second, false, 8},
	} {
		_, err := step.body.Read(buf)
		if (err != nil) != step.wantErr || b.Held() != step.wantHeld {
			t.Fatalf("%s: err %v, held %d; want err %v, held %d", step.name, err, b.Held(), step.wantErr, step.wantHeld)
		}
	}
}

// TestDecoded: a body is charged its bytes and what Decoded counts for
// each chunk (here 2 bytes per "r"), only on the requests Decoded applies
// to; a body whose bytes fit the whole budget but not with that charge is
// refused 413 TooManyRecords, one that fits only what is free 503, and
// every charge goes back when the handler returns.
func TestDecoded(t *testing.T) {
	b := New(100, time.Second, 0)
	b.Decoded = func(req *http.Request) func([]byte) int64 {
		if req.URL.Path != "/counted" {
			return nil
		}
		return func(chunk []byte) int64 { return 2 * int64(bytes.Count(chunk, []byte("r"))) }
	}
	var held atomic.Int64
	h := b.Wrap(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if _, err := io.ReadAll(req.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		held.Store(b.Held())
	}), refuseText)
	for _, tt := range []struct {
		path, body string
		other      int64 // held by another request
		status     int
		held       int64
	}{
		{"/counted", strings.Repeat("r", 30), 0, 200, 90},
		{"/other", strings.Repeat("r", 60), 0, 200, 60},
		{"/counted", strings.Repeat("r", 40), 0, 413, 0},
		{"/counted", strings.Repeat("r", 30), 20, 503, 0},
		{"/counted", strings.Repeat("x", 101), 0, 413, 0},
	} {
		release, rf := b.Reserve(context.Background(), tt.other)
		if rf != nil {
			t.Fatal(rf)
		}
		held.Store(0)
		w := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, tt.path, io.MultiReader(strings.NewReader(tt.body))) // unknown length
		h.ServeHTTP(w, req)
		release()
		if w.Code != tt.status || (tt.status == 200 && held.Load()-tt.other != tt.held) {
			t.Errorf("%s, %d bytes, %d held by another: status %d, held %d; want %d, %d: %s", tt.path, len(tt.body), tt.other, w.Code, held.Load()-tt.other, tt.status, tt.held, w.Body)
		}
		if tt.status == 413 && strings.Contains(tt.body, "r") != strings.Contains(w.Body.String(), "too many records") {
			t.Errorf("413 message: %s", w.Body)
		}
		if b.Held() != 0 {
			t.Fatalf("%d bytes held after the request", b.Held())
		}
	}
}
