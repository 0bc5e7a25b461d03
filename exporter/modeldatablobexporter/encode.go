package modeldatablobexporter

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// recordRef locates one log record in a plog.Logs.
type recordRef struct{ rl, sl, lr int }

// fileBatch is the rows of one push that go to one file: complete CSV lines
// (CRLF-terminated) under one header.
type fileBatch struct {
	dir        string // folder under the container
	stem       string // file name without ".csv"
	header     []byte // the encoded header line
	body       bytes.Buffer
	lineEnds   []int // offset in body after each line
	refs       []recordRef
	quarantine bool
	workspace  string // the $aml_workspace value
	ext        string // the file extension; "" is ".csv"
	// lineRows, when set, is the count of refs in the lines up to each
	// line (a line may hold several rows); nil means one row per line.
	lineRows []int
	// keys, when set, is the rowKey of each row (parallel to refs).
	keys []rowKey
	// pq, when set, is the Parquet file of these rows (format parquet).
	pq *pqFile
	// lines, when set, is the kept storage of body, lineEnds and refs.
	lines *lineStorage
}

// lineStorage is the storage of a CSV batch's lines. A push's CSV is
// megabytes, most of the exporter's garbage if allocated for every push:
// a push that wrote everything hands its storage to the next one.
type lineStorage struct {
	body     []byte
	lineEnds []int
	refs     []recordRef
}

func (ls *lineStorage) size() int {
	return cap(ls.body) + cap(ls.lineEnds)*int(unsafe.Sizeof(0)) + cap(ls.refs)*int(unsafe.Sizeof(recordRef{}))
}

// maxKeptLineStorage bounds the line storage kept between pushes, in bytes:
// the few pushes in flight at the default batch size fit, a rare huge one
// is left to the garbage collector. (A sync.Pool would not do: it is
// emptied every other collection, which under load is more often than
// pushes come.)
const maxKeptLineStorage = 8 << 20

var keptLines struct {
	mu    sync.Mutex
	free  []*lineStorage
	bytes int
}

// newLineBatch returns an empty batch on kept line storage, if there is some.
func newLineBatch() *fileBatch {
	ls := &lineStorage{}
	keptLines.mu.Lock()
	if n := len(keptLines.free); n > 0 {
		ls = keptLines.free[n-1]
		keptLines.free = keptLines.free[:n-1]
		keptLines.bytes -= ls.size()
	}
	keptLines.mu.Unlock()
	b := &fileBatch{lines: ls, lineEnds: ls.lineEnds[:0], refs: ls.refs[:0]}
	b.body = *bytes.NewBuffer(ls.body[:0])
	return b
}

// recycle keeps the batches' line storage for later pushes; the batches
// must not be used after. Only a push whose writes all returned should
// recycle: a request that failed may still be reading its body.
func (enc encoded) recycle() {
	for _, b := range enc.batches {
		ls := b.lines
		if ls == nil {
			continue
		}
		b.lines = nil
		ls.body, ls.lineEnds, ls.refs = b.body.Bytes()[:0], b.lineEnds[:0], b.refs[:0]
		keptLines.mu.Lock()
		if keptLines.bytes+ls.size() <= maxKeptLineStorage {
			keptLines.free = append(keptLines.free, ls)
			keptLines.bytes += ls.size()
		}
		keptLines.mu.Unlock()
	}
}

// rowsIn is how many rows the first n lines hold.
func (b *fileBatch) rowsIn(n int) int {
	if b.lineRows == nil || n == 0 {
		return n
	}
	return b.lineRows[n-1]
}

// key identifies the file a batch belongs to (before rolling and schema suffixes).
func (b *fileBatch) key() string { return b.dir + "/" + b.stem + "\x00" + string(b.header) }

// encoder turns log records into per-file batches of CSV lines.
type encoder struct {
	cfg      *Config
	boundary string
	fileName string   // cfg.FileName, "{writer}" replaced
	line     []byte   // the line being written, reused
	names    []string // the feature names being read, reused
	ts       time.Time
	tsCell   []byte // ts formatted: rows of one request share it
	corrID   string
	corrCell []byte // corrID's cell and separator
	// tail is the cells after the timestamp and the line end, for the
	// row's path parts (its workspace and quarantine reason follow from
	// them) and request id.
	tail          []byte
	tailParts     contract.PathParts
	tailRequestID string
}

func newEncoder(cfg *Config) *encoder {
	e := &encoder{cfg: cfg, boundary: contract.BoundaryDay, fileName: cfg.fileName("")}
	if cfg.Hourly {
		e.boundary = contract.BoundaryHour
	}
	return e
}

// appendLine appends one CSV record ending in CRLF, as Python's csv writer
// (which the reference collector used) did: fields as appendField writes
// them. (encoding/csv's UseCRLF would also turn newlines inside quoted cells
// into CRLF; Python keeps them, and so does this.)
func appendLine(line []byte, cells []string) []byte {
	for i, c := range cells {
		if i > 0 {
			line = append(line, ',')
		}
		line = appendField(line, c)
	}
	return append(line, '\r', '\n')
}

// appendField appends one CSV field exactly as encoding/csv's Writer (comma
// separator) writes it: quoted when it is `\.`, holds a comma, quote, CR or
// LF, or starts with a Unicode space, with inner quotes doubled.
func appendField(line []byte, field string) []byte {
	if !fieldNeedsQuotes(field) {
		return append(line, field...)
	}
	line = append(line, '"')
	for {
		i := strings.IndexByte(field, '"')
		if i < 0 {
			break
		}
		line = append(line, field[:i+1]...)
		line = append(line, '"')
		field = field[i+1:]
	}
	line = append(line, field...)
	return append(line, '"')
}

func fieldNeedsQuotes(field string) bool {
	if field == "" {
		return false
	}
	if field == `\.` {
		return true
	}
	for i := 0; i < len(field); i++ {
		if c := field[i]; c == ',' || c == '"' || c == '\r' || c == '\n' {
			return true
		}
	}
	r, _ := utf8.DecodeRuneInString(field)
	return unicode.IsSpace(r)
}

// appendCell appends a string cell and its separator: neutralized when
// configured, quoted when needed.
func (e *encoder) appendCell(line []byte, cell string) []byte {
	if e.cfg.NeutralizeFormulas {
		cell = neutralize(cell)
	}
	return append(appendField(line, cell), ',')
}

// appendValue appends a feature value's cell and its separator.
func (e *encoder) appendValue(line []byte, v pcommon.Value) []byte {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return e.appendCell(line, v.Str())
	case pcommon.ValueTypeInt, pcommon.ValueTypeDouble, pcommon.ValueTypeBool, pcommon.ValueTypeEmpty:
		// Digits, signs, '.', 'e', nan, inf, True, False or nothing: never
		// quoted, and left alone by neutralize (a signed number parses).
		return append(contract.AppendValue(line, v), ',')
	default:
		return e.appendCell(line, contract.FormatValue(v))
	}
}

// encoded is the outcome of one encode call.
type encoded struct {
	batches []*fileBatch
	// notModelData counts records without a model name (ignored).
	notModelData int
	// spent is the credits of rows skipped as already written (Parquet
	// rows replayed after a restart).
	spent []creditUse
}

// encodeRun is the state of one encode call.
type encodeRun struct {
	out   encoded
	byKey map[string]*fileBatch
	left  int // records after the one being encoded
	// The previous row's batch, and what decided it: the next row of the
	// same request usually goes there too.
	last      *fileBatch
	lastParts contract.PathParts
	lastHour  time.Time
	lastNames []string
}

// encode groups the model data records of ld by destination file, in
// arrival order. Rows that cannot be placed go to quarantine batches.
func (e *encoder) encode(ld plog.Logs) encoded {
	r := encodeRun{byKey: map[string]*fileBatch{}, left: ld.LogRecordCount()}
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		parts := e.resourceParts(rl.Resource().Attributes())
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				r.left--
				e.encodeRecord(&r, parts, lrs.At(k), recordRef{i, j, k})
			}
		}
	}
	return r.out
}

// encodeRecord appends one record's line to the batch of its file.
func (e *encoder) encodeRecord(r *encodeRun, parts contract.PathParts, lr plog.LogRecord, ref recordRef) {
	row, ok := contract.ReadRowReuse(lr, e.names)
	if !ok {
		r.out.notModelData++
		return
	}
	e.names = row.FeatureNames
	p := parts
	p.ModelName, p.ModelVersion, p.Designation = row.ModelName, row.ModelVersion, row.Designation
	body := lr.Body()
	names, inOrder := e.columns(r, row.FeatureNames, body)
	b := e.batchOf(r, p, row, names)
	line := e.appendFeatures(e.line[:0], body, names, inOrder)
	line = e.appendRowCells(line, b, p, row)
	e.line = line
	r.add(b, line, ref)
}

// columns returns a row's columns, and whether the body holds exactly
// those in that order (then its values are written without lookups).
func (e *encoder) columns(r *encodeRun, declared []string, body pcommon.Value) (names []string, inOrder bool) {
	if !contract.BodyInOrder(declared, body) {
		return contract.ColumnOrder(declared, body), false
	}
	if len(declared) > 0 {
		return declared, true
	}
	// No declared order: the body's keys are the columns, usually the
	// previous row's, and then the same strings.
	if contract.KeysAre(body, r.lastNames) {
		return r.lastNames, true
	}
	e.names = contract.AppendKeys(e.names[:0], body)
	return e.names, true
}

// batchOf returns the batch of a row's file. Consecutive rows of one
// request usually share it: it is reused without encoding the header again.
func (e *encoder) batchOf(r *encodeRun, p contract.PathParts, row contract.Row, names []string) *fileBatch {
	hour := row.Timestamp.Truncate(time.Hour)
	if r.last != nil && p == r.lastParts && hour.Equal(r.lastHour) && slices.Equal(names, r.lastNames) {
		return r.last
	}
	names = slices.Clone(names) // names may share e.names, overwritten by the next row
	b := e.batchFor(r.byKey, &r.out, p, row, names)
	r.last, r.lastParts, r.lastHour, r.lastNames = b, p, hour, names
	return b
}

// appendFeatures appends the cells of a row's columns.
func (e *encoder) appendFeatures(line []byte, body pcommon.Value, names []string, inOrder bool) []byte {
	switch {
	case inOrder:
		for _, v := range body.Map().All() {
			line = e.appendValue(line, v)
		}
	case body.Type() == pcommon.ValueTypeMap:
		for _, name := range names {
			if v, ok := body.Map().Get(name); ok {
				line = e.appendValue(line, v)
			} else {
				line = append(line, ',')
			}
		}
	default:
		for range names {
			line = append(line, ',')
		}
	}
	return line
}

// appendRowCells appends the cells after the features and the line end.
// Rows of one request share their correlation id, timestamp and trailing
// cells: each is encoded once for the run of rows.
func (e *encoder) appendRowCells(line []byte, b *fileBatch, p contract.PathParts, row contract.Row) []byte {
	if e.corrCell == nil || row.CorrelationID != e.corrID {
		e.corrID, e.corrCell = row.CorrelationID, e.appendCell(e.corrCell[:0], row.CorrelationID)
	}
	line = append(line, e.corrCell...)
	if e.tsCell == nil || !row.Timestamp.Equal(e.ts) {
		e.ts, e.tsCell = row.Timestamp, contract.AppendTimestamp(e.tsCell[:0], row.Timestamp)
	}
	// The timestamp is digits and -T:. only: never quoted or neutralized.
	line = append(append(line, e.tsCell...), ',')
	if e.tail == nil || p != e.tailParts || row.RequestID != e.tailRequestID {
		reason := ""
		if b.quarantine {
			reason = contract.QuarantineReason(p)
		}
		e.tailParts, e.tailRequestID = p, row.RequestID
		e.tail = e.appendTail(e.tail[:0], b, p, row.RequestID, reason)
	}
	return append(line, e.tail...)
}

// add appends a row's line to its batch.
func (r *encodeRun) add(b *fileBatch, line []byte, ref recordRef) {
	if b.body.Len() == 0 && len(r.out.batches) == 1 {
		// The first file of a push usually takes all its rows: size it
		// once from this line, with an eighth to spare for longer lines,
		// instead of doubling as it fills.
		n := len(line) * (r.left + 1)
		b.body.Grow(n + n/8)
		b.lineEnds = slices.Grow(b.lineEnds, r.left+1)
		b.refs = slices.Grow(b.refs, r.left+1)
	}
	b.body.Write(line)
	b.lineEnds = append(b.lineEnds, b.body.Len())
	b.refs = append(b.refs, ref)
}

// appendTail appends the cells after the scoring timestamp, and the line end.
func (e *encoder) appendTail(tail []byte, b *fileBatch, p contract.PathParts, requestID, reason string) []byte {
	for _, c := range []string{e.boundary, b.workspace, p.Webservice, p.ModelName, p.ModelVersion, contract.RequestIDOrNil(requestID)} {
		tail = e.appendCell(tail, c)
	}
	if reason != "" {
		tail = e.appendCell(tail, reason)
	}
	return append(tail[:len(tail)-1], '\r', '\n') // the last separator ends the line
}

// batchFor finds or makes the batch of a row's file.
func (e *encoder) batchFor(byKey map[string]*fileBatch, out *encoded, p contract.PathParts, row contract.Row, names []string) *fileBatch {
	reason := contract.QuarantineReason(p)
	header := append(names[:len(names):len(names)], contract.CorrelationColumns...)
	if reason != "" {
		header = append(header, contract.ColQuarantineReason)
	}
	hdr := appendLine(nil, header)

	var dir, stem string
	if reason == "" {
		dir = p.Dir(row.Timestamp, e.cfg.Hourly)
		stem = strings.TrimSuffix(strings.ReplaceAll(e.fileName, "{designation}", p.Designation), ".csv")
	} else {
		dir = contract.QuarantineDir(e.cfg.QuarantineDir, row.Timestamp, e.cfg.Hourly)
		stem = strings.TrimSuffix(contract.DataFile, ".csv")
	}
	key := dir + "/" + stem + "\x00" + string(hdr)
	b := byKey[key]
	if b == nil {
		b = newLineBatch()
		b.dir, b.stem, b.header, b.quarantine, b.workspace = dir, stem, hdr, reason != "", p.WorkspaceColumn()
		byKey[key] = b
		out.batches = append(out.batches, b)
	}
	return b
}

// resourceParts are the configured path parts, overridden by the resource.
func (e *encoder) resourceParts(attrs pcommon.Map) contract.PathParts {
	return contract.PathParts{SubscriptionID: e.cfg.SubscriptionID, ResourceGroup: e.cfg.ResourceGroup,
		Workspace: e.cfg.Workspace, Webservice: e.cfg.Webservice}.WithResource(attrs)
}

// neutralize defuses spreadsheet formula injection: a cell starting with
// =, +, -, @, tab or CR gets a leading single quote, unless it is a number
// (negative numbers stay numbers).
func neutralize(cell string) string {
	if cell == "" || !strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
		return cell
	}
	if _, err := strconv.ParseFloat(cell, 64); err == nil {
		return cell
	}
	return "'" + cell
}
