package modeldatareceiver

import (
	"fmt"
	"slices"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/pieces"
	"github.com/otelcol-modeldata/otelcol-modeldata/receiver/modeldatareceiver/internal/metadata"
)

// resolved is a request's row attributes after defaults.
type resolved struct {
	modelName, modelVersion, designation string
	correlationID, requestID             string
	timestamp                            time.Time
	resource                             []resourceAttr
}

type resourceAttr struct{ key, value string }

// rowIDs is one row's own ids where they differ from the request's.
type rowIDs struct {
	correlationID, requestID string
	timestamp                time.Time
}

// perRowIDs resolves the ids of every row that carries its own (correlation
// columns in the data, or correlation_ids / scoring_timestamps beside it).
// nil means every row has the request's ids. Everything is checked before
// any row is emitted, so a request is accepted whole or not at all.
func (d *decoder) perRowIDs(res *resolved) ([]rowIDs, error) {
	t := &d.table
	m := &d.meta
	if t.corrCol < 0 && t.tsCol < 0 && t.reqCol < 0 && m.correlationIDs == nil && m.scoringTimestamps == nil {
		return nil, nil
	}
	if m.correlationIDs != nil && len(m.correlationIDs) != t.rows {
		return nil, badRequest("correlation_ids has %d ids for %d rows", len(m.correlationIDs), t.rows)
	}
	if m.scoringTimestamps != nil && len(m.scoringTimestamps) != t.rows {
		return nil, badRequest("scoring_timestamps has %d timestamps for %d rows", len(m.scoringTimestamps), t.rows)
	}
	ids := make([]rowIDs, t.rows)
	for r := range ids {
		id := rowIDs{correlationID: res.correlationID, requestID: res.requestID, timestamp: res.timestamp}
		if v := pick(t.rowString(r, t.corrCol), m.correlationIDs, r); v != "" {
			id.correlationID = v
		}
		if v := t.rowString(r, t.reqCol); v != "" {
			id.requestID = v
		}
		if v := pick(t.rowString(r, t.tsCol), m.scoringTimestamps, r); v != "" {
			ts, err := contract.ParseTimestamp(v)
			if err != nil {
				field := contract.ColScoringTimestamp
				if t.rowString(r, t.tsCol) == "" {
					field = fmt.Sprintf("scoring_timestamps[%d]", r)
				}
				return nil, badRequest("row %d: %s: %v", r, field, err)
			}
			id.timestamp = ts
		}
		if len(id.correlationID) > maxIDLen || len(id.requestID) > maxIDLen {
			return nil, badRequest("row %d: an id is longer than %d bytes", r, maxIDLen)
		}
		ids[r] = id
	}
	return ids, nil
}

// pick is the row's own value, else its entry in the per-row list.
func pick(own string, list []string, r int) string {
	if own != "" || list == nil {
		return own
	}
	return list[r]
}

// keep decides sampling by request id, so every designation of one scoring
// request (inputs, predictions, labels) is kept or dropped together.
func keep(requestID string, rate float64) bool {
	switch {
	case rate >= 1:
		return true
	case rate <= 0:
		return false
	}
	// FNV-1a: stable across processes and releases, so every collector
	// replica makes the same decision for a request id.
	h := uint64(14695981039346656037)
	for i := 0; i < len(requestID); i++ {
		h ^= uint64(requestID[i])
		h *= 1099511628211
	}
	return float64(h>>11)/(1<<53) < rate
}

// logsBuilder appends the rows of requests to one plog.Logs: requests with
// the same resource attributes share one resource and scope. With emit set,
// it hands the rows on each time they reach pieces.Bytes, and the rest at
// finish (a large request goes on in pieces: internal/pieces); after emit
// fails, it takes no more rows. Each piece is queued with its rows'
// Idempotency-Key ordinals, so a resend after a refusal part way is written
// once for keyed clients.
type logsBuilder struct {
	ld       plog.Logs
	resource []resourceAttr
	records  plog.LogRecordSlice
	started  bool

	emit  func(ld plog.Logs, rows int, more bool) error
	rows  int // in ld
	bytes int // estimated, in ld
	err   error
}

// recordsFor is the record slice of the scope for a resource.
func (b *logsBuilder) recordsFor(resource []resourceAttr) plog.LogRecordSlice {
	if b.started && slices.Equal(b.resource, resource) {
		return b.records
	}
	rl := b.ld.ResourceLogs().AppendEmpty()
	for _, a := range resource {
		rl.Resource().Attributes().PutStr(a.key, a.value)
	}
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(metadata.ScopeName)
	b.resource, b.records, b.started = resource, sl.LogRecords(), true
	return b.records
}

// added counts a row of about size bytes just appended; true when that
// filled a piece and it was handed on (b.err says whether it was taken).
func (b *logsBuilder) added(size int) bool {
	b.rows++
	b.bytes += size
	if b.emit == nil || b.bytes < pieces.Bytes {
		return false
	}
	b.flush(true)
	return true
}

// flush hands on the rows in ld; more says other rows may follow.
func (b *logsBuilder) flush(more bool) {
	ld, rows := b.ld, b.rows
	b.ld, b.rows, b.bytes, b.started = plog.NewLogs(), 0, 0, false
	b.err = b.emit(ld, rows, more)
}

// finish hands on the rows not yet handed on; the error is the pipeline's
// refusal of any piece.
func (b *logsBuilder) finish() error {
	if b.err == nil && b.rows > 0 {
		b.flush(false)
	}
	return b.err
}

// appendLogs adds one log record per kept row under the data contract and
// returns how many rows were kept.
func (d *decoder) appendLogs(logs *logsBuilder, res *resolved, ids []rowIDs, rate float64, observed time.Time) int {
	t := &d.table
	n := keptRows(t.rows, ids, res.requestID, rate)
	if n == 0 {
		return 0
	}
	names := make([]string, len(t.features))
	for k, c := range t.features {
		names[k] = t.columns[c]
	}
	if logs.err != nil {
		return 0
	}
	records := logs.recordsFor(res.resource)
	if records.Len() == 0 {
		records.EnsureCapacity(n)
	}
	obs := pcommon.NewTimestampFromTime(observed)
	// The body holds the features in the request's column order, which is
	// the record's column order under the contract: no feature names list
	// per row.
	row := contract.Row{
		ModelName: res.modelName, ModelVersion: res.modelVersion, Designation: res.designation,
		CorrelationID: res.correlationID, RequestID: res.requestID, Timestamp: res.timestamp,
	}
	// Every row starts as a copy of one record with the request's ids and
	// a body of the feature names with empty values: a copy allocates its
	// attributes and body at their final size, without lookups by key. A
	// request of one row (a batch line per collect() call) is built in
	// place instead.
	single := n == 1 && ids == nil
	var shared plog.LogRecord
	if single {
		shared = records.AppendEmpty()
	} else {
		shared = plog.NewLogRecord()
	}
	shared.SetObservedTimestamp(obs)
	contract.WriteRow(shared, row)
	body := contract.Features(shared)
	body.EnsureCapacity(len(names))
	for _, name := range names {
		body.PutEmpty(name)
	}
	kept := 0
	for r := 0; r < t.rows; r++ {
		if ids != nil && !keep(ids[r].requestID, rate) {
			continue
		}
		lr := shared
		switch {
		case single:
		case ids == nil:
			lr = records.AppendEmpty()
			shared.CopyTo(lr)
		default:
			lr = records.AppendEmpty()
			id := ids[r]
			row.CorrelationID, row.RequestID, row.Timestamp = id.correlationID, id.requestID, id.timestamp
			lr.SetObservedTimestamp(obs)
			contract.WriteRow(lr, row)
			shared.Body().CopyTo(lr.Body())
		}
		// The body's values are in feature order: fill them in place.
		cells := t.cells[r*t.width : (r+1)*t.width]
		k, size := 0, pieces.RecordBytes
		for _, v := range lr.Body().Map().All() {
			if i := cells[t.features[k]]; i >= 0 {
				size += setValue(v, t.nodes, i)
			}
			k++
		}
		kept++
		if logs.added(size) {
			if logs.err != nil {
				return kept
			}
			records = logs.recordsFor(res.resource)
		}
	}
	return kept
}

func keptRows(rows int, ids []rowIDs, requestID string, rate float64) int {
	if ids == nil {
		if keep(requestID, rate) {
			return rows
		}
		return 0
	}
	n := 0
	for _, id := range ids {
		if keep(id.requestID, rate) {
			n++
		}
	}
	return n
}

// setValue turns a JSON node into a pdata value: null stays empty, nested
// lists and objects become slices and maps for the flattener. It returns
// the value's estimated size.
func setValue(v pcommon.Value, nodes []node, i int32) int {
	n := &nodes[i]
	size := pieces.ValueBytes + len(n.s) + len(n.key)
	switch n.kind {
	case kindBool:
		v.SetBool(n.boolean())
	case kindInt:
		v.SetInt(n.integer())
	case kindFloat:
		v.SetDouble(n.double())
	case kindString, kindBigInt:
		v.SetStr(n.s)
	case kindArray:
		s := v.SetEmptySlice()
		for j := i + 1; j < n.end; j = nodes[j].end {
			size += setValue(s.AppendEmpty(), nodes, j)
		}
	case kindObject:
		m := v.SetEmptyMap()
		for j := i + 1; j < n.end; j = nodes[j].end {
			size += setValue(m.PutEmpty(nodes[j].key), nodes, j)
		}
	}
	return size
}
