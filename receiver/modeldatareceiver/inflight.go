package modeldatareceiver

import (
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
)

// bodyBudget bounds the bytes of request bodies the receiver holds at once,
// on all its routes together: from the first byte read until the pipeline
// has taken or refused the rows. A request's memory is a multiple of its
// body (parse nodes, records, the persistent queue's encoding of them), and
// the memory_limiter only sees it once the rows reach the pipeline: many
// large bodies read at once would take the pod down before it does. A
// request that would go over the budget is answered 503 with Retry-After.
type bodyBudget struct {
	limit int64 // 0: no limit
	held  atomic.Int64
}

func (b *bodyBudget) take(n int64) bool {
	if b.limit <= 0 || n <= 0 {
		return true
	}
	if b.held.Add(n) > b.limit {
		b.held.Add(-n)
		return false
	}
	return true
}

func (b *bodyBudget) give(n int64) {
	if b.limit > 0 && n > 0 {
		b.held.Add(-n)
	}
}

func (b *bodyBudget) refusal() *requestError {
	return &requestError{status: http.StatusServiceUnavailable, limit: limitBytesInFlight, msg: fmt.Sprintf(
		"the collector already holds request bodies up to its max_bytes_in_flight (%d bytes); retry after %ss", b.limit, defaultRetryAfter)}
}

// wrap holds each request's body in the budget until next returns: a
// Content-Length up front (refused before a byte is read), a body of unknown
// length (chunked, or decompressed by confighttp) as it is read.
func (b *bodyBudget) wrap(next http.Handler, refuse func(http.ResponseWriter, *http.Request, error)) http.Handler {
	if b.limit <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body := &budgetedBody{ReadCloser: req.Body, budget: b, header: w.Header()}
		// A Content-Length over the whole budget is over max_request_body_size
		// too (Validate): the handler refuses it from the header with 413.
		if req.ContentLength > 0 && req.ContentLength <= b.limit {
			if !b.take(req.ContentLength) {
				w.Header().Set("Retry-After", defaultRetryAfter)
				refuse(w, req, b.refusal())
				return
			}
			body.held = req.ContentLength
		}
		defer func() { b.give(body.held) }()
		req.Body = body
		next.ServeHTTP(w, req)
	})
}

// budgetedBody takes what is read past the bytes it holds (the
// Content-Length, when given) from the budget; over it, the read fails with
// the budget's refusal, which the handler answers (the Retry-After header
// is set here, before the handler writes).
type budgetedBody struct {
	io.ReadCloser
	budget     *bodyBudget
	header     http.Header
	held, read int64
}

func (r *budgetedBody) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.read += int64(n)
	if extra := r.read - r.held; extra > 0 {
		if !r.budget.take(extra) {
			r.header.Set("Retry-After", defaultRetryAfter)
			return 0, r.budget.refusal()
		}
		r.held += extra
	}
	return n, err
}
