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

// idSeed is what the ids the receiver generates for a keyed request derive
// from: its Idempotency-Key, and part (a batch line) when the request has
// several. A request refused part way, or cut by a kill, after some of its
// pieces were queued is sent again with the same key: its rows then carry
// the ids of the first send, and so does the answer. "" without a key.
func idSeed(ctx context.Context, part string) string {
	s, ok := ctx.Value(stampKey{}).(*stamp)
	if !ok {
		return ""
	}
	if part == "" {
		return s.key
	}
	return s.key + "#" + part
}
