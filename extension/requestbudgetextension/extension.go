package requestbudgetextension

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensionmiddleware"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	"github.com/otelcol-modeldata/otelcol-modeldata/extension/requestbudgetextension/internal/metadata"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/bodybudget"
)

// requestBudget is one budget shared by every HTTP server whose
// `middlewares` name this extension.
type requestBudget struct {
	budget *bodybudget.Budget
	// grpcShare is the part of budget gRPC calls may hold: a call takes
	// from both.
	grpcShare   *bodybudget.Budget
	grpcPerCall int64
	grpcTimeout time.Duration // 0: none
	telemetry   *metadata.TelemetryBuilder
}

var (
	_ extension.Extension            = (*requestBudget)(nil)
	_ extensionmiddleware.HTTPServer = (*requestBudget)(nil)
	_ extensionmiddleware.GRPCServer = (*requestBudget)(nil)
)

// reasons are the reason attribute of each refusal, made once: a refusal
// under overload costs no allocation.
var reasons = map[bodybudget.Reason]metric.AddOption{
	bodybudget.Busy:           metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "busy"))),
	bodybudget.TooLarge:       metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "too_large"))),
	bodybudget.Stalled:        metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "stalled"))),
	bodybudget.ReadTimeout:    metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "read_timeout"))),
	bodybudget.TooManyRecords: metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "too_many_records"))),
}

var grpcBusy = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "grpc_busy")))

func newRequestBudget(cfg *Config, set extension.Settings) (*requestBudget, error) {
	e := &requestBudget{budget: bodybudget.New(cfg.MaxBytesInFlight, cfg.RetryAfter, cfg.BodyStallTimeout), grpcShare: bodybudget.New(cfg.grpcShare(), cfg.RetryAfter, 0),
		grpcPerCall: cfg.GRPCBytesPerCall, grpcTimeout: cfg.GRPCMessageTimeout}
	e.grpcShare.Key = "grpc_max_bytes_in_flight"
	e.budget.Decoded = otlpLogsDecoded
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	if err := tb.RegisterRequestBudgetBytesHeldCallback(func(_ context.Context, o metric.Int64Observer) error {
		o.Observe(e.budget.Held())
		return nil
	}); err != nil {
		return nil, err
	}
	e.telemetry = tb
	e.budget.OnRefusal = func(ctx context.Context, rf *bodybudget.Refusal) {
		tb.RequestBudgetRequestsRefused.Add(ctx, 1, reasons[rf.Reason])
	}
	e.grpcShare.OnRefusal = func(ctx context.Context, _ *bodybudget.Refusal) {
		tb.RequestBudgetRequestsRefused.Add(ctx, 1, grpcBusy)
	}
	return e, nil
}

func (*requestBudget) Start(context.Context, component.Host) error { return nil }

func (e *requestBudget) Shutdown(context.Context) error {
	e.telemetry.Shutdown()
	return nil
}

// GetHTTPHandler wraps a server's handler (confighttp calls it inside its
// decompression, so bodies are charged decompressed).
func (e *requestBudget) GetHTTPHandler(context.Context) (extensionmiddleware.WrapHTTPHandlerFunc, error) {
	return func(_ context.Context, next http.Handler) (http.Handler, error) {
		budgeted := e.budget.Wrap(next, writeRefusal)
		limit := e.budget.Limit()
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			// A body that can never fit is refused from its header, before a
			// byte is read (the budget would read it up to the limit).
			if req.ContentLength > limit {
				rf := e.budget.Refusal(bodybudget.TooLarge)
				e.budget.OnRefusal(req.Context(), rf)
				writeRefusal(w, req, rf)
				return
			}
			budgeted.ServeHTTP(w, req)
		}), nil
	}, nil
}

// GetGRPCServerOptions installs a tap handle, which grpc-go runs when a
// call's headers arrive, before any byte of its message is read: the call
// takes grpc_bytes_per_call from grpc_max_bytes_in_flight and from the
// budget until it ends, or is refused with Unavailable and the retry delay
// (RetryInfo) when either is full. A call whose request has not arrived
// within grpc_message_timeout is cut (see call). A gRPC server takes one tap
// handle: no other middleware of the same server may install one.
func (e *requestBudget) GetGRPCServerOptions(context.Context) ([]grpc.ServerOption, error) {
	tapHandle := func(ctx context.Context, _ *tap.Info) (context.Context, error) {
		// The share first, so the gRPC calls never hold more of the budget
		// than their share; the reservations go back at once on a refusal
		// (grpc-go leaves a refused call's context alive) and in the reverse
		// order when the call ends.
		releaseShare, rf := e.grpcShare.Reserve(ctx, e.grpcPerCall)
		if rf != nil {
			return ctx, rf
		}
		release, rf := e.budget.Reserve(ctx, e.grpcPerCall)
		if rf != nil {
			releaseShare()
			return ctx, rf
		}
		c := &call{budget: e}
		c.Context, c.cancel = context.WithCancel(ctx)
		if e.grpcTimeout > 0 {
			c.timer = time.AfterFunc(e.grpcTimeout, c.cut)
		}
		context.AfterFunc(c.Context, func() {
			if c.timer != nil {
				c.timer.Stop()
			}
			release()
			releaseShare()
		})
		return c, nil
	}
	if e.grpcTimeout <= 0 {
		return []grpc.ServerOption{grpc.InTapHandle(tapHandle)}, nil
	}
	unary := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if c, ok := ctx.Value(callKey{}).(*call); ok {
			if err := c.arrived(); err != nil {
				return nil, err
			}
		}
		return handler(ctx, req)
	}
	stream := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if c, ok := ss.Context().Value(callKey{}).(*call); ok {
			if !info.IsClientStream {
				if err := c.arrived(); err != nil {
					return err
				}
			} else {
				ss = &firstMessage{ServerStream: ss, call: c}
			}
		}
		return handler(srv, ss)
	}
	return []grpc.ServerOption{grpc.InTapHandle(tapHandle), grpc.ChainUnaryInterceptor(unary), grpc.ChainStreamInterceptor(stream)}, nil
}

// call is the context of a gRPC call: grpc-go makes the tap handle's
// context the stream's, and a done stream context fails the pending read of
// the message. The timer cuts the call unless its request arrives first: a
// unary call's when the handler is called (grpc-go has read its message and
// its end: a client that sends the message and never ends its side is still
// waiting), a client stream's with its first message.
type call struct {
	context.Context // the stream's, cancellable
	cancel          context.CancelFunc
	budget          *requestBudget
	timer           *time.Timer  // nil: no grpc_message_timeout
	state           atomic.Int32 // waiting, in or cutOff
}

const (
	waiting int32 = iota
	in
	cutOff
)

type callKey struct{}

func (c *call) Value(key any) any {
	if key == (callKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// Err of a cut call is DeadlineExceeded (not the Canceled of a cancelled
// context, which tells a client it gave up itself): grpc-go answers the
// failed read with this code.
func (c *call) Err() error {
	err := c.Context.Err()
	if err != nil && c.state.Load() == cutOff {
		return context.DeadlineExceeded
	}
	return err
}

// cut ends a call whose request did not arrive in time; its reservations
// go back with its context.
func (c *call) cut() {
	if c.Context.Err() != nil || !c.state.CompareAndSwap(waiting, cutOff) {
		return
	}
	c.budget.budget.OnRefusal(c, c.budget.budget.Refusal(bodybudget.Stalled))
	c.cancel()
}

// arrived stops the call's timer, and returns the error of a call that
// was cut meanwhile.
func (c *call) arrived() error {
	c.timer.Stop()
	if !c.state.CompareAndSwap(waiting, in) && c.state.Load() == cutOff {
		return status.Error(codes.DeadlineExceeded, fmt.Sprintf("the request did not arrive within %s (grpc_message_timeout) of the call's headers: the call is cut, send it again without pausing", c.budget.grpcTimeout))
	}
	return nil
}

// firstMessage stops the call's timer once its first message is read.
type firstMessage struct {
	grpc.ServerStream
	call *call
	done bool
}

func (s *firstMessage) RecvMsg(m any) error {
	err := s.ServerStream.RecvMsg(m)
	if !s.done && err == nil {
		s.done = true
		return s.call.arrived()
	}
	return err
}

// writeRefusal answers a refused request in plain text; the budget has set
// Retry-After on a busy refusal. The connection is closed after the answer:
// net/http would otherwise read an unread body of up to 256 KiB before
// answering, to reuse the connection.
func writeRefusal(w http.ResponseWriter, _ *http.Request, rf *bodybudget.Refusal) {
	w.Header().Set("Connection", "close")
	http.Error(w, rf.Error(), rf.StatusCode())
}
