package modeldatablobexporter

import (
	"crypto/sha1" //nolint:gosec // name-based UUIDs only
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"hash"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"
	"github.com/google/uuid"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// MDC record constants, as the Azure ML v2 data collector writes them.
const (
	mdcSpecVersion     = "1.0"
	mdcContentType     = "application/json"
	mdcCollectDataType = "pandas.core.frame.DataFrame"
	mdcTypePrefix      = "azureml.inference."
	mdcDefaultVersion  = "default"
)

// mdcEncoder turns model data records into batches of MDC JSON Lines: per
// file, one CloudEvents-shaped record per request, its rows in `data`.
type mdcEncoder struct {
	cfg      *Config
	agent    string
	instance string

	names []string // the feature names being read, reused
	// batches are the push's batches in order of their first row.
	batches []*mdcBatch
	dir     []byte // the folder being built, reused
	key     []byte // a batch key being built: folder and source fields
	// checked is the source last checked for placement, reason the outcome.
	checked mdcSource
	reason  string
	idHash  hash.Hash
	idSum   []byte

	// keys holds the JSON keys ("name":) of keyNames, the declared columns
	// last seen; keyEnds[i] is where key i ends.
	keyNames []string
	keys     []byte
	keyEnds  []int
	// timeText is recordTime formatted, for records of one request.
	recordTime time.Time
	timeText   []byte

	// rows holds each row's JSON object, preceded by a comma; rowEnd[i] is
	// where row i ends and rowRef[i] the record it came from.
	rows   []byte
	rowEnd []int
	rowRef []recordRef
}

// mdcBatch is one file's records in order of their first row.
type mdcBatch struct {
	b       *fileBatch
	prefix  []byte // the record fields from source to time's opening quote
	records []mdcRecord
	byCorr  map[string]int // a correlation id's record
}

// mdcRequest is what rows of one record share.
type mdcRequest struct{ correlationID, requestID, version string }

// mdcRecord is one line: its rows are the spans of e.rows, usually one.
type mdcRecord struct {
	req    mdcRequest
	time   time.Time
	reason string // why the row is quarantined, or ""
	first  rowSpan
	more   []rowSpan
}

// rowSpan is the rows [from, to) of mdcEncoder.rows.
type rowSpan struct{ from, to int }

// mdcEncoders reuse their buffers across pushes.
var mdcEncoders = sync.Pool{New: func() any { return &mdcEncoder{} }}

// encodeMDC encodes a push with a pooled encoder.
func encodeMDC(cfg *Config, agent, instance string, ld plog.Logs) encoded {
	e := mdcEncoders.Get().(*mdcEncoder)
	e.cfg, e.agent, e.instance = cfg, agent, instance
	out := e.encode(ld)
	mdcEncoders.Put(e)
	return out
}

// mdcPlace is where a resource's rows of one designation go.
type mdcPlace struct {
	designation string
	collection  string
	reason      string
}

// mdcRun is the state of one encode call.
type mdcRun struct {
	out    encoded
	period time.Duration
	// The previous row's batch and record, and what decided the batch's
	// folder: the next row of the same request usually goes there too.
	last      *mdcBatch
	lastRec   int // -1: no record to extend
	dirSrc    mdcSource
	dirPeriod time.Time
	dirReason string
	// place is the placement of the resource's current designation.
	place mdcPlace
}

// encode groups the model data records of ld by file and request.
func (e *mdcEncoder) encode(ld plog.Logs) encoded {
	e.rows, e.rowEnd, e.rowRef = e.rows[:0], e.rowEnd[:0], e.rowRef[:0]
	r := mdcRun{lastRec: -1, period: e.cfg.MDC.period()}
	// The batches by folder and source, apart from r: a map no pointer
	// leads to stays on the stack while it is small.
	byKey := map[string]*mdcBatch{}
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		src := e.resourceSource(rl.Resource().Attributes())
		r.place.designation = "\x00" // placement is checked again per resource
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				e.encodeRecord(&r, byKey, &src, lrs.At(k), recordRef{i, j, k}, lrs.Len())
			}
		}
	}
	for _, mb := range e.batches {
		e.writeBatch(mb)
	}
	clear(e.batches) // a pooled encoder keeps no batch alive
	e.batches = e.batches[:0]
	return r.out
}

// resourceSource is where a resource's rows come from: the contract's path
// parts, and the endpoint and deployment its attributes name (else the
// configured ones).
func (e *mdcEncoder) resourceSource(attrs pcommon.Map) mdcSource {
	return mdcSource{parts: (&encoder{cfg: e.cfg}).resourceParts(attrs),
		endpoint:   resourceAttr(attrs, contract.AttrEndpoint, e.cfg.MDC.Endpoint),
		deployment: resourceAttr(attrs, contract.AttrDeployment, e.cfg.MDC.Deployment)}
}

// encodeRecord adds one record's row to the record of its request, in the
// batch of its file; scopeRecords sizes a batch's correlation index.
func (e *mdcEncoder) encodeRecord(r *mdcRun, byKey map[string]*mdcBatch, src *mdcSource, lr plog.LogRecord, ref recordRef, scopeRecords int) {
	row, ok := contract.ReadRowReuse(lr, e.names)
	if !ok {
		r.out.notModelData++
		return
	}
	e.names = row.FeatureNames
	// Rows of a resource mostly share one designation, and rows of one
	// source and period the batch of the row before: both are looked up
	// again only when they change.
	if row.Designation != r.place.designation {
		e.placeDesignation(r, src, row.Designation)
	}
	mb, rowPeriod := r.last, row.Timestamp.UTC().Truncate(r.period)
	if mb == nil || *src != r.dirSrc || !rowPeriod.Equal(r.dirPeriod) || r.place.reason != r.dirReason {
		mb = e.batchOf(r, byKey, src, row.Timestamp, rowPeriod)
	}

	e.rowRef = append(e.rowRef, ref)
	e.rows = e.appendJSONRow(append(e.rows, ','), row.FeatureNames, lr)
	e.rowEnd = append(e.rowEnd, len(e.rows))

	req := mdcRequest{row.CorrelationID, row.RequestID, row.ModelVersion}
	if req.version == "" {
		req.version = mdcDefaultVersion
	}
	n := len(e.rowEnd)
	if r.lastRec >= 0 && req.correlationID != "" && mb.records[r.lastRec].req == req {
		// The next row of the row before's request: usually one after it.
		mb.records[r.lastRec].extend(n)
		return
	}
	r.addRow(mb, req, row.Timestamp, n, scopeRecords)
}

// placeDesignation sets src's collection for a row's designation and
// r.place to where its rows go; the placement check is cached for the
// source last checked.
func (e *mdcEncoder) placeDesignation(r *mdcRun, src *mdcSource, designation string) {
	r.place.designation = designation
	r.place.collection = e.cfg.MDC.collection(designation)
	src.collection = r.place.collection
	if *src != e.checked {
		e.checked, e.reason = *src, mdcPlacementProblem(src.parts, src.endpoint, src.deployment, src.collection)
	}
	r.place.reason = e.reason
}

// batchOf returns the batch of the folder of a row of src at time ts (in
// rowPeriod), building the folder's path and finding or making its batch.
func (e *mdcEncoder) batchOf(r *mdcRun, byKey map[string]*mdcBatch, src *mdcSource, ts, rowPeriod time.Time) *mdcBatch {
	r.dirSrc, r.dirPeriod, r.dirReason = *src, rowPeriod, r.place.reason
	if r.place.reason == "" {
		e.dir = e.cfg.MDC.appendDir(e.dir[:0], src.endpoint, src.deployment, r.place.collection, ts)
	} else {
		e.dir = e.cfg.MDC.timePath(append(append(e.dir[:0], e.cfg.QuarantineDir...), '/'), ts)
	}

	// Batches differ by folder and by source (one file may take both).
	e.key = src.appendPrefix(append(e.key[:0], e.dir...))
	r.lastRec = -1
	if mb := byKey[string(e.key)]; mb != nil {
		return mb
	}
	mb := &mdcBatch{b: &fileBatch{dir: string(e.dir), stem: e.instance, ext: ".jsonl", quarantine: r.place.reason != ""},
		prefix: e.key[len(e.dir):len(e.key):len(e.key)]}
	byKey[string(e.key)] = mb
	e.key = nil // the batch's prefix shares its bytes
	e.batches = append(e.batches, mb)
	r.out.batches = append(r.out.batches, mb.b)
	return mb
}

// addRow adds row n (1-based, the last of e.rows) to mb, its request not
// the row before's: to the record of an earlier row with the same
// correlation id and request, else as a new record. Rows without a
// correlation id are a record each.
func (r *mdcRun) addRow(mb *mdcBatch, req mdcRequest, ts time.Time, n, scopeRecords int) {
	r.last = mb
	if req.correlationID != "" {
		idx, seen := mb.byCorr[req.correlationID]
		if seen && mb.records[idx].req == req {
			mb.records[idx].extend(n)
			r.lastRec = idx
			return
		}
		if mb.byCorr == nil {
			mb.byCorr = make(map[string]int, scopeRecords)
		}
		if !seen { // the first record of an id keeps it
			mb.byCorr[req.correlationID] = len(mb.records)
		}
	}
	r.lastRec = len(mb.records)
	mb.records = append(mb.records, mdcRecord{req: req, time: ts, reason: r.place.reason, first: rowSpan{n - 1, n}})
}

// extend adds row n to the record: to its last span when the row follows
// it, else as a span of its own (rows of requests interleaved).
func (rec *mdcRecord) extend(n int) {
	switch {
	case rec.more == nil && rec.first.to == n-1:
		rec.first.to = n
	case rec.more != nil && rec.more[len(rec.more)-1].to == n-1:
		rec.more[len(rec.more)-1].to = n
	default:
		rec.more = append(rec.more, rowSpan{n - 1, n})
	}
}

// mdcSource is what a batch's records say about where they come from.
type mdcSource struct {
	parts                            contract.PathParts
	endpoint, deployment, collection string
}

// appendPrefix appends the record fields that follow the id up to the
// time's opening quote: the same for every record of a batch.
func (src *mdcSource) appendPrefix(t []byte) []byte {
	t = append(t, `,"source":"/subscriptions/`...)
	t = appendJSONChars(t, src.parts.SubscriptionID)
	t = append(t, `/resourceGroups/`...)
	t = appendJSONChars(t, src.parts.ResourceGroup)
	t = append(t, `/providers/Microsoft.MachineLearningServices/workspaces/`...)
	t = appendJSONChars(t, src.parts.Workspace)
	t = append(t, `/onlineEndpoints/`...)
	t = appendJSONChars(t, src.endpoint)
	t = append(t, `/deployments/`...)
	t = appendJSONChars(t, src.deployment)
	t = append(t, `","type":"`+mdcTypePrefix...)
	t = appendJSONChars(t, src.collection)
	return append(t, `","datacontenttype":"`+mdcContentType+`","time":"`...)
}

// writeBatch writes each record of mb as one line of its batch.
func (e *mdcEncoder) writeBatch(mb *mdcBatch) {
	b := mb.b
	// One line's size is about its rows and 500 bytes of fields.
	size, rows := 0, 0
	for _, r := range mb.records {
		size += 500 + len(mb.prefix) + e.spanBytes(r.first)
		rows += r.first.to - r.first.from
		for _, s := range r.more {
			size += e.spanBytes(s)
			rows += s.to - s.from
		}
	}
	b.body.Grow(size)
	b.refs = slices.Grow(b.refs, rows)
	b.lineEnds = slices.Grow(b.lineEnds, len(mb.records))
	b.lineRows = slices.Grow(b.lineRows, len(mb.records))
	if e.idHash == nil {
		e.idHash = sha1.New() //nolint:gosec // a name-based UUID, not a security use
	}
	// Each line is written in place: its id, a name-based UUID (version 5)
	// of the record's own fields after the batch's prefix, is filled in
	// once they are written. A retried push writes the same bytes, which
	// the position check recognizes.
	t := b.body.AvailableBuffer()
	for _, r := range mb.records {
		t = append(t, `{"specversion":"`+mdcSpecVersion+`","id":"`...)
		id := len(t)
		t = append(t, `00000000-0000-0000-0000-000000000000"`...)
		t = append(t, mb.prefix...)
		own := len(t)
		if !r.time.Equal(e.recordTime) || e.timeText == nil {
			e.recordTime, e.timeText = r.time, r.time.UTC().AppendFormat(e.timeText[:0], time.RFC3339Nano)
		}
		t = append(t, e.timeText...)
		t = append(t, `","data":`...)
		dataStart := len(t)
		t = append(t, '[')
		t = e.appendSpan(t, b, r.first, true)
		for _, s := range r.more {
			t = e.appendSpan(t, b, s, false)
		}
		t = append(t, ']')
		dataLen := len(t) - dataStart
		t = append(t, `,"correlationid":`...)
		t = appendJSONString(t, r.req.correlationID)
		t = append(t, `,"xrequestid":`...)
		t = appendJSONString(t, r.req.requestID)
		t = append(t, `,"modelversion":`...)
		t = appendJSONString(t, r.req.version)
		t = append(t, `,"collectdatatype":"`+mdcCollectDataType+`","agent":`...)
		t = appendJSONString(t, e.agent)
		t = append(t, `,"contentrange":"bytes 0-`...)
		t = strconv.AppendInt(t, int64(dataLen-1), 10)
		t = append(t, '/')
		t = strconv.AppendInt(t, int64(dataLen), 10)
		t = append(t, '"')
		if r.reason != "" {
			t = append(t, `,"quarantinereason":`...)
			t = appendJSONString(t, r.reason)
		}
		t = append(t, "}\n"...)

		// The data array, most of the record, enters the name by its
		// 64-bit xxHash (SHA-1 over every row would cost a tenth of the encoding).
		dataEnd := dataStart + dataLen
		e.idHash.Reset()
		e.idHash.Write(uuid.NameSpaceURL[:])
		e.idHash.Write(t[own:dataStart])
		e.idHash.Write(binary.LittleEndian.AppendUint64(e.idSum[:0], xxhash.Sum64(t[dataStart:dataEnd])))
		e.idHash.Write(t[dataEnd:])
		e.idSum = e.idHash.Sum(e.idSum[:0])
		var u uuid.UUID
		copy(u[:], e.idSum)
		u[6] = u[6]&0x0f | 0x50 // version 5
		u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
		appendUUID(t[id:id], u)
		b.lineEnds = append(b.lineEnds, b.body.Len()+len(t))
		b.lineRows = append(b.lineRows, len(b.refs))
	}
	b.body.Write(t)
}

// spanBytes is the size of the rows of s in e.rows.
func (e *mdcEncoder) spanBytes(s rowSpan) int {
	from := 0
	if s.from > 0 {
		from = e.rowEnd[s.from-1]
	}
	return e.rowEnd[s.to-1] - from
}

// appendSpan appends the rows of s to a data array and their refs to b;
// each row carries its leading comma, dropped for the array's first row.
func (e *mdcEncoder) appendSpan(t []byte, b *fileBatch, s rowSpan, first bool) []byte {
	from := 0
	if s.from > 0 {
		from = e.rowEnd[s.from-1]
	}
	if first {
		from++
	}
	b.refs = append(b.refs, e.rowRef[s.from:s.to]...)
	return append(t, e.rows[from:e.rowEnd[s.to-1]]...)
}

// appendJSONRow appends a row's JSON object, its fields in column order (as
// the CSV columns, contract.ColumnOrder).
func (e *mdcEncoder) appendJSONRow(dst []byte, declared []string, lr plog.LogRecord) []byte {
	dst = append(dst, '{')
	body := lr.Body()
	if body.Type() != pcommon.ValueTypeMap {
		for i, name := range declared {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(appendJSONString(dst, name), ":null"...)
		}
		return append(dst, '}')
	}
	m := body.Map()
	if contract.BodyInOrder(declared, body) {
		// The body's keys are the columns: their JSON keys are those of
		// the row before, usually.
		if !contract.KeysAre(body, e.keyNames) {
			e.keyNames, e.keys, e.keyEnds = contract.AppendKeys(e.keyNames[:0], body), e.keys[:0], e.keyEnds[:0]
			for _, name := range e.keyNames {
				e.keys = append(appendJSONString(e.keys, name), ':')
				e.keyEnds = append(e.keyEnds, len(e.keys))
			}
		}
		i, from := 0, 0
		for _, v := range m.All() {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONValue(append(dst, e.keys[from:e.keyEnds[i]]...), v)
			from = e.keyEnds[i]
			i++
		}
		return append(dst, '}')
	}
	for i, name := range contract.ColumnOrder(declared, body) {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(appendJSONString(dst, name), ':')
		if v, ok := m.Get(name); ok {
			dst = appendJSONValue(dst, v)
		} else {
			dst = append(dst, "null"...)
		}
	}
	return append(dst, '}')
}

// appendUUID appends id in its 36-character text form.
func appendUUID(dst []byte, id uuid.UUID) []byte {
	for i, c := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return dst
}

// appendJSONValue appends a feature value as JSON: numbers as numbers (a
// double always with a fraction or exponent, so readers keep it a double;
// NaN and infinities as null, as pandas writes them), booleans, strings,
// empty as null, maps and slices as JSON, bytes as a base64 string.
func appendJSONValue(dst []byte, v pcommon.Value) []byte {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return appendJSONString(dst, v.Str())
	case pcommon.ValueTypeInt:
		return strconv.AppendInt(dst, v.Int(), 10)
	case pcommon.ValueTypeDouble:
		return appendJSONFloat(dst, v.Double())
	case pcommon.ValueTypeBool:
		return strconv.AppendBool(dst, v.Bool())
	case pcommon.ValueTypeEmpty:
		return append(dst, "null"...)
	case pcommon.ValueTypeBytes:
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, v.Bytes().AsRaw())
		return append(dst, '"')
	default: // map, slice
		raw, err := json.Marshal(v.AsRaw())
		if err != nil {
			return appendJSONString(dst, v.AsString())
		}
		return append(dst, raw...)
	}
}

func appendJSONFloat(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	start := len(dst)
	dst = contract.AppendFloat(dst, f)
	for _, c := range dst[start:] {
		if c == '.' || c == 'e' {
			return dst
		}
	}
	return append(dst, ".0"...)
}

// appendJSONString appends s as a JSON string.
func appendJSONString(dst []byte, s string) []byte {
	return append(appendJSONChars(append(dst, '"'), s), '"')
}

const hexDigits = "0123456789abcdef"

// appendJSONChars appends s escaped for a JSON string, without quotes:
// quote, backslash and control characters escaped, invalid UTF-8 replaced by
// U+FFFD, U+2028 and U+2029 escaped (as encoding/json does).
func appendJSONChars(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(append(dst, s[start:i]...), `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(append(dst, s[start:i]...), '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(dst, s[start:]...)
}

// resourceAttr is a non-empty resource attribute, or def.
func resourceAttr(attrs pcommon.Map, key, def string) string {
	if v, ok := attrs.Get(key); ok && v.AsString() != "" {
		return v.AsString()
	}
	return def
}

// mdcPlacementProblem says why a row cannot be placed in the MDC layout, or "".
func mdcPlacementProblem(p contract.PathParts, endpoint, deployment, collection string) string {
	for _, f := range []struct{ what, v string }{
		{"endpoint", endpoint}, {"deployment", deployment}, {"collection", collection},
		{"subscription id", p.SubscriptionID}, {"resource group", p.ResourceGroup}, {"workspace", p.Workspace},
	} {
		if err := contract.ValidateSegment(f.what, f.v); err != nil {
			return err.Error()
		}
	}
	return ""
}
