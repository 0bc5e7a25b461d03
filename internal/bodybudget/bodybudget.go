// Package bodybudget bounds the bytes of HTTP request bodies a server holds
// at once. A request's memory is a multiple of its body (the body, decoded
// records, the queue's encoding of them), and the memory_limiter processor
// only sees it once the rows reach the pipeline: many large bodies read at
// once take a pod down before it does. A request that would go over the
// budget is answered 503 with Retry-After before its body is read when its
// Content-Length says so, or as soon as reading it goes over.
//
// It is shared by the modeldata receiver (max_bytes_in_flight) and the
// request_budget extension (the same limit for any confighttp server).
package bodybudget

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Budget is the bytes of request bodies held at once, up to a limit.
type Budget struct {
	limit      int64 // 0: no limit
	retryAfter time.Duration
	held       atomic.Int64
	// OnRefusal, when set, is called once for each refused request.
	OnRefusal func(context.Context, *Refusal)
}

// New returns a budget of limit bytes (0 or less: no limit) whose busy
// refusals ask clients to retry after retryAfter, in whole seconds (at
// least one).
func New(limit int64, retryAfter time.Duration) *Budget {
	return &Budget{limit: max(limit, 0), retryAfter: max(retryAfter.Round(time.Second), time.Second)}
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

// Refusal is the error of a request the budget refused.
type Refusal struct {
	// Limit is the budget's limit in bytes.
	Limit int64
	// TooLarge: the body alone is over the whole budget, so it never fits
	// (413); otherwise the budget is busy with other bodies (503).
	TooLarge bool
	// RetryAfter is the delay a busy refusal asks for.
	RetryAfter time.Duration
}

func (e *Refusal) Error() string {
	if e.TooLarge {
		return fmt.Sprintf("the body is over max_bytes_in_flight (%d bytes), the most request bodies this collector holds at once: split it", e.Limit)
	}
	return fmt.Sprintf("the collector already holds request bodies up to its max_bytes_in_flight (%d bytes); retry after %s", e.Limit, e.RetryAfter)
}

// StatusCode is the HTTP status that answers the refusal.
func (e *Refusal) StatusCode() int {
	if e.TooLarge {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusServiceUnavailable
}

// RetryAfterHeader is the Retry-After value of a busy refusal, in seconds.
func (e *Refusal) RetryAfterHeader() string {
	return strconv.FormatInt(int64(e.RetryAfter/time.Second), 10)
}

// GRPCStatus lets handlers that answer read errors with a gRPC status (the
// otlp receiver's HTTP handlers) answer the refusal as what it is:
// Unavailable with the retry delay (503 + Retry-After), or, too large,
// InvalidArgument (not retryable).
func (e *Refusal) GRPCStatus() *status.Status {
	if e.TooLarge {
		return status.New(codes.InvalidArgument, e.Error())
	}
	st, err := status.New(codes.Unavailable, e.Error()).WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(e.RetryAfter)})
	if err != nil {
		return status.New(codes.Unavailable, e.Error())
	}
	return st
}

func (b *Budget) refusal(tooLarge bool) *Refusal {
	return &Refusal{Limit: b.limit, TooLarge: tooLarge, RetryAfter: b.retryAfter}
}

// Wrap holds each request's body in the budget until next returns: a
// Content-Length up to the limit is taken before a byte is read, and a
// request it does not fit is refused by refuse, with Retry-After set,
// without calling next. A body of unknown length (chunked, or decompressed
// by confighttp, which drops the Content-Length) and a Content-Length over
// the limit are taken as they are read: a read that goes over fails with
// the *Refusal, and the answer next then writes gets the refusal's status
// (and Retry-After), whatever status next chose for a failed read.
func (b *Budget) Wrap(next http.Handler, refuse func(http.ResponseWriter, *http.Request, *Refusal)) http.Handler {
	if b.limit <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		g := &guarded{}
		g.body = budgetedBody{ReadCloser: req.Body, budget: b, refused: &g.refused}
		if n := req.ContentLength; n > 0 && n <= b.limit {
			if !b.take(n) {
				rf := b.refusal(false)
				b.count(req.Context(), rf)
				w.Header().Set("Retry-After", rf.RetryAfterHeader())
				refuse(w, req, rf)
				return
			}
			g.body.held = n
		}
		defer func() { b.give(g.body.held) }()
		g.w = refusalWriter{ResponseWriter: w, refused: &g.refused}
		req.Body = &g.body
		next.ServeHTTP(&g.w, req)
		if rf := g.refused.Load(); rf != nil {
			b.count(req.Context(), rf)
			if !g.w.wrote {
				if !rf.TooLarge {
					w.Header().Set("Retry-After", rf.RetryAfterHeader())
				}
				refuse(w, req, rf)
			}
		}
	})
}

// Reserve takes n bytes from the budget until ctx is done, for a request
// whose size is not known before it is read and decoded (a gRPC call: the
// largest message its server accepts). It returns the refusal, counted, when
// n does not fit.
func (b *Budget) Reserve(ctx context.Context, n int64) *Refusal {
	if b.limit <= 0 || n <= 0 {
		return nil
	}
	if n > b.limit || !b.take(n) {
		rf := b.refusal(n > b.limit)
		b.count(ctx, rf)
		return rf
	}
	context.AfterFunc(ctx, func() { b.give(n) })
	return nil
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
	refused atomic.Pointer[Refusal]
}

// budgetedBody takes what is read past the bytes it holds (the
// Content-Length, when given) from the budget; over it, the read fails
// with the refusal.
type budgetedBody struct {
	io.ReadCloser
	budget     *Budget
	refused    *atomic.Pointer[Refusal]
	held, read int64
}

func (r *budgetedBody) Read(p []byte) (int, error) {
	if rf := r.refused.Load(); rf != nil {
		return 0, rf
	}
	n, err := r.ReadCloser.Read(p)
	r.read += int64(n)
	if extra := r.read - r.held; extra > 0 {
		if r.read > r.budget.limit || !r.budget.take(extra) {
			rf := r.budget.refusal(r.read > r.budget.limit)
			r.refused.Store(rf)
			return 0, rf
		}
		r.held += extra
	}
	return n, err
}

// refusalWriter answers with the refusal's status once the body's read was
// refused, so a handler that maps read errors to 400 or 413 still tells the
// client to retry later.
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
		if !rf.TooLarge {
			w.Header().Set("Retry-After", rf.RetryAfterHeader())
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
