package modeldatareceiver

import (
	"context"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// The key of a request is recorded only after the pipeline accepted it, so a
// kill between the persistent queue's commit and the answer leaves the queue
// with the rows and the window without the key; the client's resend is then
// taken again. Each row of a keyed request therefore carries the key and its
// ordinal in the request, and the exporter writes each (key, ordinal) once.

type stampKey struct{}

// stamp numbers the rows of one request across its parts.
type stamp struct {
	key  string
	next int64
}

func withStamp(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, stampKey{}, &stamp{key: key})
}

// stampRows marks ld's records with the request's key, when it has one.
func stampRows(ctx context.Context, ld plog.Logs) {
	if s, ok := ctx.Value(stampKey{}).(*stamp); ok {
		s.next = contract.StampIdempotency(ld, s.key, s.next)
	}
}
