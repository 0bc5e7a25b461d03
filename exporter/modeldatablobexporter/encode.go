package modeldatablobexporter

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

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
	// pq, when set, is the Parquet file of these rows (format parquet).
	pq *pqFile
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

// encode groups the model data records of ld by destination file, in
// arrival order. Rows that cannot be placed go to quarantine batches.
func (e *encoder) encode(ld plog.Logs) encoded {
	var out encoded
	byKey := map[string]*fileBatch{}
	var (
		last      *fileBatch
		lastParts contract.PathParts
		lastHour  time.Time
		lastNames []string
		// lastSorted: lastNames are a body's sorted keys (no declared order).
		lastSorted bool
	)
	left := ld.LogRecordCount() // records not yet encoded
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		parts := e.resourceParts(rl.Resource().Attributes())
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				left--
				row, ok := contract.ReadRowReuse(lr, e.names)
				if !ok {
					out.notModelData++
					continue
				}
				e.names = row.FeatureNames
				p := parts
				p.ModelName, p.ModelVersion, p.Designation = row.ModelName, row.ModelVersion, row.Designation
				body := lr.Body()
				inOrder := contract.BodyInOrder(row.FeatureNames, body)
				names := row.FeatureNames
				sortedKeys := false
				if !inOrder && len(names) == 0 {
					// No declared order: sorted body keys (the flattener's
					// output) are the columns, in the body's order; usually
					// the previous row's, and then the same strings.
					if lastSorted && contract.BodyInOrder(lastNames, body) {
						names, inOrder = lastNames, true
					} else {
						names, inOrder = contract.AppendSortedKeys(e.names[:0], body)
						e.names = names
					}
					sortedKeys = inOrder
				}
				if !inOrder {
					names = contract.ColumnOrder(row.FeatureNames, body)
				}
				hour := row.Timestamp.Truncate(time.Hour)

				// Consecutive rows of one request usually share the file:
				// reuse it instead of encoding the header again.
				var b *fileBatch
				if last != nil && p == lastParts && hour.Equal(lastHour) && slices.Equal(names, lastNames) {
					b = last
				} else {
					// names may share e.names, overwritten by the next row.
					names = slices.Clone(names)
					b = e.batchFor(byKey, &out, p, row, names)
					last, lastParts, lastHour, lastNames, lastSorted = b, p, hour, names, sortedKeys
				}
				reason := ""
				if b.quarantine {
					reason = contract.QuarantineReason(p)
				}

				line := e.line[:0]
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
				// Rows of one request share their correlation, timestamp and
				// trailing cells: each is encoded once for the run of rows.
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
					e.tailParts, e.tailRequestID = p, row.RequestID
					e.tail = e.appendTail(e.tail[:0], b, p, row.RequestID, reason)
				}
				line = append(line, e.tail...)
				if b.body.Len() == 0 && len(out.batches) == 1 {
					// The first file of a push usually takes all its rows:
					// size it once from this line, with an eighth to spare
					// for longer lines, instead of doubling as it fills.
					n := len(line) * (left + 1)
					b.body.Grow(n + n/8)
					b.lineEnds = slices.Grow(b.lineEnds, left+1)
					b.refs = slices.Grow(b.refs, left+1)
				}
				b.body.Write(line)
				e.line = line
				b.lineEnds = append(b.lineEnds, b.body.Len())
				b.refs = append(b.refs, recordRef{i, j, k})
			}
		}
	}
	return out
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
		stem = "data"
	}
	key := dir + "/" + stem + "\x00" + string(hdr)
	b := byKey[key]
	if b == nil {
		b = &fileBatch{dir: dir, stem: stem, header: hdr, quarantine: reason != "", workspace: p.WorkspaceColumn()}
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
