// Package bodybudget bounds the bytes of HTTP request bodies a server holds
// at once, and how long a body may send nothing. A request's memory is a
// multiple of its body (the body, decoded records, the queue's encoding of
// them), and the memory_limiter processor only sees it once the rows reach
// the pipeline: many large bodies read at once take a pod down before it
// does. A body is charged what has arrived of it, as it is read, so a client
// holds what it has sent, never what it announces: a request whose
// Content-Length does not fit in what is free is answered 503 with
// Retry-After before its body is read, and any body as soon as reading it
// goes over. A body that sends nothing for the stall timeout is cut (408),
// so a stalled client does not hold even what it sent for ever.
//
// It is shared by the modeldata receiver (max_bytes_in_flight,
// body_stall_timeout) and the request_budget extension (the same rules for
// any confighttp server).
package bodybudget

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Budget is the bytes of request bodies held at once, up to a limit, and
// the longest a body may send nothing.
type Budget struct {
	limit      int64 // 0: no limit
	retryAfter time.Duration
	stall      time.Duration // 0: none
	held       atomic.Int64
	// OnRefusal, when set, is called once for each refused request.
	OnRefusal func(context.Context, *Refusal)
	// Key is the config key of the limit, named in refusals ("":
	// max_bytes_in_flight).
	Key string
	// Decoded, when set, gives a request a counter of what its body will
	// cost decoded beyond its bytes, charged with each chunk as it is read
	// (nil: the request is charged its bytes only).
	Decoded func(*http.Request) func(chunk []byte) int64
}

// New returns a budget of limit bytes (0 or less: no limit) whose busy
// refusals ask clients to retry after retryAfter, in whole seconds (at
// least one), and which cuts a body that sends nothing for stall (0: never).
func New(limit int64, retryAfter, stall time.Duration) *Budget {
	return &Budget{limit: max(limit, 0), retryAfter: max(retryAfter.Round(time.Second), time.Second), stall: max(stall, 0)}
}

// Limit is the budget's limit in bytes (0: no limit).
func (b *Budget) Limit() int64 { return b.limit }

// Held is the bytes of the bodies held now.
func (b *Budget) Held() int64 { return b.held.Load() }

func (b *Budget) take(n int64) bool {
	if b.held.Add(n) > b.limit {
		b.held.Add(-n)
		return false
	}
	return true
}

func (b *Budget) give(n int64) {
	if n > 0 {
		b.held.Add(-n)
	}
}

// Reason is why a request was refused.
type Reason uint8

const (
	// Busy: the budget is held by other bodies (503 + Retry-After).
	Busy Reason = iota
	// TooLarge: the body alone is over the whole budget, so it never fits
	// (413).
	TooLarge
	// Stalled: the body sent nothing for the stall timeout and was cut
	// (408).
	Stalled
	// ReadTimeout: the request did not arrive within the server's
	// read_timeout (408).
	ReadTimeout
	// TooManyRecords: the body's bytes are within the whole budget, but not
	// with what its records cost decoded (413).
	TooManyRecords
)

// Refusal is the error of a request the budget refused.
type Refusal struct {
	Reason Reason
	// Limit is the budget's limit in bytes.
	Limit int64
	// Key is the config key of the limit ("": max_bytes_in_flight).
	Key string
	// RetryAfter is the delay a busy refusal asks for.
	RetryAfter time.Duration
	// Stall is the stall timeout that cut a stalled body.
	Stall time.Duration
}

func (e *Refusal) Error() string {
	key := e.Key
	if key == "" {
		key = "max_bytes_in_flight"
	}
	switch e.Reason {
	case TooLarge:
		return fmt.Sprintf("the body is over %s (%d bytes), the most request bodies this collector holds at once: split it", key, e.Limit)
	case TooManyRecords:
		return fmt.Sprintf("the body holds too many records: decoded, they would take more than %s (%d bytes), the most request bodies this collector holds at once: split it", key, e.Limit)
	case Stalled:
		return fmt.Sprintf("no byte of the body arrived for %s (body_stall_timeout): the request is cut, send it again without pausing", e.Stall)
	case ReadTimeout:
		return "the body did not arrive within the server's read_timeout: the request is cut, send it faster or in smaller requests"
	}
	return fmt.Sprintf("the collector already holds request bodies up to its %s (%d bytes); retry after %s", key, e.Limit, e.RetryAfter)
}

// StatusCode is the HTTP status that answers the refusal.
func (e *Refusal) StatusCode() int {
	switch e.Reason {
	case TooLarge, TooManyRecords:
		return http.StatusRequestEntityTooLarge
	case Stalled, ReadTimeout:
		return http.StatusRequestTimeout
	}
	return http.StatusServiceUnavailable
}

// RetryAfterHeader is the Retry-After value of a busy refusal, in seconds
// ("" for the others).
func (e *Refusal) RetryAfterHeader() string {
	if e.Reason != Busy {
		return ""
	}
	return strconv.FormatInt(int64(e.RetryAfter/time.Second), 10)
}

// GRPCStatus lets handlers that answer read errors with a gRPC status (the
// otlp receiver's HTTP handlers) answer the refusal as what it is:
// Unavailable with the retry delay (503 + Retry-After); too large,
// InvalidArgument (not retryable); cut for time, DeadlineExceeded.
func (e *Refusal) GRPCStatus() *status.Status {
	switch e.Reason {
	case TooLarge, TooManyRecords:
		return status.New(codes.InvalidArgument, e.Error())
	case Stalled, ReadTimeout:
		return status.New(codes.DeadlineExceeded, e.Error())
	}
	st, err := status.New(codes.Unavailable, e.Error()).WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(e.RetryAfter)})
	if err != nil {
		return status.New(codes.Unavailable, e.Error())
	}
	return st
}

// overflow is why a request of n bytes does not fit: too large when n is
// over the whole budget, busy otherwise.
func (b *Budget) overflow(n int64) Reason {
	if n > b.limit {
		return TooLarge
	}
	return Busy
}

// Refusal is the budget's refusal for reason, with its limit, key, retry
// delay and stall timeout.
func (b *Budget) Refusal(reason Reason) *Refusal {
	return &Refusal{Reason: reason, Limit: b.limit, Key: b.Key, RetryAfter: b.retryAfter, Stall: b.stall}
}

// Wrap applies the budget and the stall timeout to each request's body
// until next returns. A body is charged the bytes read of it, as they are
// read, and gives them back when next returns. A Content-Length that does
// not fit in what is free now is refused by refuse, with Retry-After set,
// without calling next (a check: nothing is taken for bytes not sent yet).
// A read that goes over the budget, that waits longer than the stall
// timeout for a byte, or that fails past the server's read_timeout, fails
// with the *Refusal, and the answer next then writes gets the refusal's
// status (and Retry-After), whatever status next chose for a failed read.
// A Content-Length over the whole limit is left to next (its own
// max_request_body_size), and is refused 413 if read past the limit.
func (b *Budget) Wrap(next http.Handler, refuse func(http.ResponseWriter, *http.Request, *Refusal)) http.Handler {
	if b.limit <= 0 && b.stall <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if n := req.ContentLength; b.limit > 0 && n > 0 && n <= b.limit && b.held.Load()+n > b.limit {
			rf := b.Refusal(Busy)
			b.count(req.Context(), rf)
			w.Header().Set("Retry-After", rf.RetryAfterHeader())
			refuse(w, req, rf)
			return
		}
		g := &guarded{}
		g.body = budgetedBody{ReadCloser: req.Body, budget: b, refused: &g.refused}
		if b.Decoded != nil && b.limit > 0 {
			g.body.decoded = b.Decoded(req)
		}
		// Under another budget's Wrap with a stall timeout (the request_budget
		// middleware around the receiver's), the outer one times the body.
		outer, nested := req.Body.(*budgetedBody)
		if b.stall > 0 && req.Body != nil && req.Body != http.NoBody && (!nested || outer.stall == nil) {
			g.stall = stallTimer{timeout: b.stall, w: w}
			g.body.stall = &g.stall
			defer g.stall.disarm()
		}
		defer func() { b.give(g.body.held) }()
		g.w = refusalWriter{ResponseWriter: w, refused: &g.refused}
		req.Body = &g.body
		next.ServeHTTP(&g.w, req)
		if rf := g.refused.Load(); rf != nil {
			b.count(req.Context(), rf)
			if !g.w.wrote {
				if h := rf.RetryAfterHeader(); h != "" {
					w.Header().Set("Retry-After", h)
				}
				refuse(w, req, rf)
			}
		}
	})
}

// Reserve takes n bytes from the budget, for a request whose size is not
// known before it is read and decoded (a gRPC call: the largest message its
// server accepts), until release is called (once). It returns the refusal,
// counted with ctx, when n does not fit. Release is the caller's, not a
// context's: a request that also needs another budget gives back at once
// what it took when that one refuses it.
func (b *Budget) Reserve(ctx context.Context, n int64) (release func(), rf *Refusal) {
	if b.limit <= 0 || n <= 0 {
		return func() {}, nil
	}
	if n > b.limit || !b.take(n) {
		rf := b.Refusal(b.overflow(n))
		b.count(ctx, rf)
		return nil, rf
	}
	var once sync.Once
	return func() { once.Do(func() { b.give(n) }) }, nil
}

func (b *Budget) count(ctx context.Context, rf *Refusal) {
	if b.OnRefusal != nil {
		b.OnRefusal(ctx, rf)
	}
}

// guarded is the state of one request, in one allocation.
type guarded struct {
	body    budgetedBody
	w       refusalWriter
	stall   stallTimer
	refused atomic.Pointer[Refusal]
}

// budgetedBody takes each byte read from the budget; past the budget, or
// once the stall timer has cut the body, the read fails with the refusal.
type budgetedBody struct {
	io.ReadCloser
	budget  *Budget
	refused *atomic.Pointer[Refusal]
	stall   *stallTimer              // nil: no stall timeout
	decoded func(chunk []byte) int64 // nil: charged its bytes only
	// read is the bytes read, extra what their decoding costs beyond them,
	// held what the body holds of the budget.
	held, read, extra int64
}

func (r *budgetedBody) Read(p []byte) (int, error) {
	if rf := r.refused.Load(); rf != nil {
		return 0, rf
	}
	if r.stall != nil {
		r.stall.arm()
	}
	n, err := r.ReadCloser.Read(p)
	if r.stall != nil && r.stall.disarm() {
		return 0, r.refuse(Stalled)
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, r.refuse(ReadTimeout)
	}
	if n > 0 && r.budget.limit > 0 {
		charge := int64(n)
		if r.decoded != nil {
			extra := r.decoded(p[:n])
			r.extra += extra
			charge += extra
		}
		r.read += int64(n)
		if r.read+r.extra > r.budget.limit || !r.budget.take(charge) {
			reason := r.budget.overflow(r.read + r.extra)
			if reason == TooLarge && r.read <= r.budget.limit {
				reason = TooManyRecords
			}
			return 0, r.refuse(reason)
		}
		r.held += charge
	}
	return n, err
}

// refuse ends the body with a refusal and gives what it holds back at once,
// not when its handler returns: when many large bodies arrive together and
// fill the budget, each one refused makes room for the others to finish,
// instead of all of them being refused while the refused still hold it.
func (r *budgetedBody) refuse(reason Reason) *Refusal {
	rf := r.budget.Refusal(reason)
	r.refused.Store(rf)
	r.budget.give(r.held)
	r.held = 0
	return rf
}

// stallTimer cuts a body whose read waits longer than its timeout for a
// byte, by moving the connection's read deadline to the past: the pending
// read fails at once. It runs only while a read waits, so a handler busy
// between reads is never taken for a stalled client, and it only ever cuts,
// so the server's own read_timeout still holds.
type stallTimer struct {
	timeout time.Duration
	w       http.ResponseWriter // the server's: its connection's deadline
	mu      sync.Mutex
	timer   *time.Timer
	due     time.Time // zero: no read is waiting
	fired   bool
}

// arm starts the timer for a read.
func (s *stallTimer) arm() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.due = time.Now().Add(s.timeout)
	if s.timer == nil {
		s.timer = time.AfterFunc(s.timeout, s.fire)
	} else {
		s.timer.Reset(s.timeout)
	}
}

// disarm stops the timer once the read returned (or the handler), and
// reports whether it cut the body.
func (s *stallTimer) disarm() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.due = time.Time{}
	if s.timer != nil {
		s.timer.Stop()
	}
	return s.fired
}

func (s *stallTimer) fire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A run of the timer that lost the race with disarm, or with the next
	// arm, does nothing.
	if s.fired || s.due.IsZero() || time.Now().Before(s.due) {
		return
	}
	// A writer without deadlines (not a server's) cannot be cut.
	s.fired = http.NewResponseController(s.w).SetReadDeadline(time.Unix(1, 0)) == nil
}

// refusalWriter answers with the refusal's status once the body's read was
// refused, so a handler that maps read errors to 400 or 413 still tells the
// client what happened (and a busy one to retry later).
type refusalWriter struct {
	http.ResponseWriter
	refused *atomic.Pointer[Refusal]
	wrote   bool
}

func (w *refusalWriter) WriteHeader(code int) {
	if w.wrote || code < http.StatusOK { // informational answers (100 Continue) come before the final one
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.wrote = true
	if rf := w.refused.Load(); rf != nil {
		code = rf.StatusCode()
		if h := rf.RetryAfterHeader(); h != "" {
			w.Header().Set("Retry-After", h)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *refusalWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the server's writer (Flush,
// deadlines).
func (w *refusalWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush keeps the server's http.Flusher for handlers that assert it.
func (w *refusalWriter) Flush() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}
