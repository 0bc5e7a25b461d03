// Package pieces hands large requests on to the pipeline in pieces of
// about Bytes, each queued and dropped before the next is built or sent: the
// pipeline (the persistent queue's encoding and storage of the rows, its
// consumers' decoding) then never holds a whole large request beside it.
// The modeldata receiver builds its rows in pieces; Splitter cuts what any
// other receiver (OTLP) hands the featureflattener.
package pieces

import (
	"context"
	"runtime"
	"runtime/metrics"
	"time"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

const (
	// Bytes is about the most one piece holds: its records' estimated size.
	Bytes = 1 << 20
	// RetryFor is how long a piece after the first is offered again when
	// the pipeline refuses it for a reason that passes (the memory_limiter,
	// a full queue): answering the refusal would have the client send again
	// the pieces already queued. Inside the deploy configs' write_timeout
	// (30 s), so the answer still reaches the client.
	RetryFor = 15 * time.Second
	// collectFrom is the full piece of one request from which on its pieces
	// may ask for a garbage collection (pacer).
	collectFrom = 2
	// RecordBytes and ValueBytes estimate a record's size beyond its strings.
	RecordBytes = 256
	ValueBytes  = 24
)

// pacer asks for a garbage collection after a full piece of a large request
// once the garbage left since the last one reaches a share of the live heap.
// A large body keeps the heap's live size up while its pieces go on, and the
// runtime lets the heap grow to twice its live size before collecting
// (GOGC=100): what the pieces leave behind would pile up to about twice the
// body (a 20 MiB collect body: 3.6-4.2x its size at the peak; 1.6-2.7x with
// these collections). A collection costs in proportion to the live heap, so
// it waits for garbage in proportion to it, not for a number of pieces: a
// request of a million tiny records is hundreds of pieces on a heap of
// hundreds of MiB. Requests of fewer than collectFrom full pieces never ask
// (the Python client's batches are at most 256 KiB).
type pacer struct {
	pieces  int // full pieces handed on
	samples []metrics.Sample
}

const (
	// garbageShare is the live heap's share of garbage that asks for a
	// collection; minGarbage the least.
	garbageShare = 8
	minGarbage   = 4 << 20
)

// full counts a full piece handed on.
func (p *pacer) full() {
	if p.pieces++; p.pieces < collectFrom {
		return
	}
	if p.samples == nil {
		p.samples = []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}}
	}
	metrics.Read(p.samples)
	if p.samples[0].Value.Kind() != metrics.KindUint64 || p.samples[1].Value.Kind() != metrics.KindUint64 {
		return
	}
	live, objects := p.samples[0].Value.Uint64(), p.samples[1].Value.Uint64()
	if objects > live && objects-live >= max(live/garbageShare, minGarbage) {
		runtime.GC()
	}
}

// Sequence hands the pieces of one request to next, one after another. The
// first goes on as it is: refused, nothing of the request is queued. Once a
// piece was taken, a later one refused for a reason that passes is offered
// again for up to RetryFor. After a full piece with more to come, pacer
// may ask for a garbage collection.
type Sequence struct {
	RetryFor time.Duration
	taken    bool
	gc       pacer
}

// Offer hands one piece to next; more says other pieces of the request
// follow it.
func (s *Sequence) Offer(ctx context.Context, next consumer.Logs, ld plog.Logs, more bool) error {
	var retryFor time.Duration
	if s.taken {
		retryFor = s.RetryFor
	}
	if err := Offer(ctx, next, ld, retryFor); err != nil {
		return err
	}
	s.taken = true
	if more {
		s.gc.full()
	}
	return nil
}

// Offer hands ld to next. With retryFor > 0, a refusal that is not
// permanent is offered again, waiting 50 ms doubling to 1 s between tries,
// until retryFor has passed or ctx ends; each try gets its own copy, since
// processors may change what they were given before a refusal further on.
func Offer(ctx context.Context, next consumer.Logs, ld plog.Logs, retryFor time.Duration) error {
	deadline := time.Now().Add(retryFor)
	wait := 50 * time.Millisecond
	for {
		offered := ld
		if retryFor > 0 {
			offered = plog.NewLogs()
			ld.CopyTo(offered)
		}
		err := next.ConsumeLogs(ctx, offered)
		if err == nil || consumererror.IsPermanent(err) || !pause(ctx, wait, deadline) {
			return err
		}
		wait = min(2*wait, time.Second)
	}
}

// pause waits d, unless that passes deadline or ctx ends first (false).
func pause(ctx context.Context, d time.Duration, deadline time.Time) bool {
	if time.Now().Add(d).After(deadline) {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// recordSize estimates a record's size: its body's strings and a share per
// value. Its attributes count in RecordBytes: what they hold of a row (the
// contract's names and ids) is small, and a record's features are in its
// body once flattened; walking them too would cost every request.
func recordSize(lr plog.LogRecord) int {
	return RecordBytes + valueSize(lr.Body())
}

// mapSize estimates a map's size: its keys and values.
func mapSize(m pcommon.Map) int {
	size := 0
	for k, v := range m.All() {
		size += len(k) + valueSize(v)
	}
	return size
}

// valueSize estimates a value's size.
func valueSize(v pcommon.Value) int {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return ValueBytes + len(v.Str())
	case pcommon.ValueTypeBytes:
		return ValueBytes + v.Bytes().Len()
	case pcommon.ValueTypeMap:
		return ValueBytes + mapSize(v.Map())
	case pcommon.ValueTypeSlice:
		size := ValueBytes
		for _, e := range v.Slice().All() {
			size += valueSize(e)
		}
		return size
	}
	return ValueBytes
}

// Splitter is a consumer.Logs that hands a large plog.Logs on to next in
// pieces of about Bytes, moving its records out (not copying them), so
// what it was given shrinks as the pieces go; a small one goes on whole.
type Splitter struct{ Next consumer.Logs }

func (s Splitter) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: true}
}

func (s Splitter) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	if !larger(ld, Bytes) {
		return s.Next.ConsumeLogs(ctx, ld)
	}
	seq := Sequence{RetryFor: RetryFor}
	piece, size := plog.NewLogs(), 0
	send := func(more bool) error {
		err := seq.Offer(ctx, s.Next, piece, more)
		piece, size = plog.NewLogs(), 0
		return err
	}
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			var records plog.LogRecordSlice
			started := false
			for _, lr := range sl.LogRecords().All() {
				if !started {
					to := piece.ResourceLogs().AppendEmpty()
					rl.Resource().CopyTo(to.Resource())
					to.SetSchemaUrl(rl.SchemaUrl())
					toScope := to.ScopeLogs().AppendEmpty()
					sl.Scope().CopyTo(toScope.Scope())
					toScope.SetSchemaUrl(sl.SchemaUrl())
					records, started = toScope.LogRecords(), true
				}
				size += recordSize(lr)
				lr.MoveTo(records.AppendEmpty())
				if size >= Bytes {
					if err := send(true); err != nil {
						return err
					}
					started = false
				}
			}
		}
	}
	if piece.LogRecordCount() == 0 {
		return nil
	}
	return send(false)
}

// larger reports whether ld's estimated size is over limit, stopping as
// soon as it is.
func larger(ld plog.Logs, limit int) bool {
	size := 0
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				if size += recordSize(lr); size > limit {
					return true
				}
			}
		}
	}
	return false
}
