package requestbudgetextension

import (
	"context"
	"net/http"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensionmiddleware"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"
	"google.golang.org/grpc/tap"

	"github.com/otelcol-modeldata/otelcol-modeldata/extension/requestbudgetextension/internal/metadata"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/bodybudget"
)

// requestBudget is one budget shared by every HTTP server whose
// `middlewares` name this extension.
type requestBudget struct {
	budget      *bodybudget.Budget
	grpcPerCall int64
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
	bodybudget.Busy:        metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "busy"))),
	bodybudget.TooLarge:    metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "too_large"))),
	bodybudget.Stalled:     metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "stalled"))),
	bodybudget.ReadTimeout: metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "read_timeout"))),
}

func newRequestBudget(cfg *Config, set extension.Settings) (*requestBudget, error) {
	e := &requestBudget{budget: bodybudget.New(cfg.MaxBytesInFlight, cfg.RetryAfter, cfg.BodyStallTimeout), grpcPerCall: cfg.GRPCBytesPerCall}
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
				rf := &bodybudget.Refusal{Reason: bodybudget.TooLarge, Limit: limit}
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
// takes grpc_bytes_per_call from the budget until it ends, or is refused
// with Unavailable and the retry delay (RetryInfo) when that does not fit.
// A gRPC server takes one tap handle: no other middleware of the same server
// may install one.
func (e *requestBudget) GetGRPCServerOptions(context.Context) ([]grpc.ServerOption, error) {
	return []grpc.ServerOption{grpc.InTapHandle(func(ctx context.Context, _ *tap.Info) (context.Context, error) {
		if rf := e.budget.Reserve(ctx, e.grpcPerCall); rf != nil {
			return ctx, rf
		}
		return ctx, nil
	})}, nil
}

// writeRefusal answers a refused request in plain text; the budget has set
// Retry-After on a busy refusal. The connection is closed after the answer:
// net/http would otherwise read an unread body of up to 256 KiB before
// answering, to reuse the connection.
func writeRefusal(w http.ResponseWriter, _ *http.Request, rf *bodybudget.Refusal) {
	w.Header().Set("Connection", "close")
	http.Error(w, rf.Error(), rf.StatusCode())
}
