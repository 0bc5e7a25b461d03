package modeldatablobexporter

import (
	"bytes"
	"encoding/csv"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// ColQuarantineReason is the extra last column of quarantined rows: why the
// row could not be placed.
const ColQuarantineReason = "$aml_quarantine_reason"

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
	csv        *csv.Writer
}

// key identifies the file a batch belongs to (before rolling and schema suffixes).
func (b *fileBatch) key() string { return b.dir + "/" + b.stem + "\x00" + string(b.header) }

// encoder turns log records into per-file batches of CSV lines.
type encoder struct {
	cfg      *Config
	boundary string
	hdr      bytes.Buffer
	hdrCSV   *csv.Writer
}

func newEncoder(cfg *Config) *encoder {
	e := &encoder{cfg: cfg, boundary: contract.BoundaryDay}
	if cfg.Hourly {
		e.boundary = contract.BoundaryHour
	}
	e.hdrCSV = newCSVWriter(&e.hdr)
	return e
}

func newCSVWriter(b *bytes.Buffer) *csv.Writer { return csv.NewWriter(b) }

// writeLine writes one CSV record to b ending in CRLF, as Python's csv
// writer (which the reference collector used) did. csv.Writer's UseCRLF
// would also turn newlines inside quoted cells into CRLF; Python keeps
// them, so only the record terminator is changed here.
func writeLine(w *csv.Writer, b *bytes.Buffer, cells []string) {
	_ = w.Write(cells) // writes to a bytes.Buffer do not fail
	w.Flush()
	b.Truncate(b.Len() - 1)
	b.WriteString("\r\n")
}

// encoded is the outcome of one encode call.
type encoded struct {
	batches []*fileBatch
	// notModelData counts records without a model name (ignored).
	notModelData int
}

// encode groups the model data records of ld by destination file, in
// arrival order. Rows that cannot be placed go to quarantine batches.
func (e *encoder) encode(ld plog.Logs) encoded {
	var out encoded
	byKey := map[string]*fileBatch{}
	var cells []string
	var (
		last      *fileBatch
		lastParts contract.PathParts
		lastHour  time.Time
		lastNames []string
	)
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		parts := e.resourceParts(rl.Resource().Attributes())
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				row, ok := contract.ReadRow(lr)
				if !ok {
					out.notModelData++
					continue
				}
				p := parts
				p.ModelName, p.ModelVersion, p.Designation = row.ModelName, row.ModelVersion, row.Designation
				body := lr.Body()
				inOrder := bodyInOrder(row.FeatureNames, body)
				names := row.FeatureNames
				if !inOrder {
					names = columnNames(row.FeatureNames, lr)
				}
				hour := row.Timestamp.Truncate(time.Hour)

				// Consecutive rows of one request usually share the file:
				// reuse it instead of encoding the header again.
				var b *fileBatch
				if last != nil && p == lastParts && hour.Equal(lastHour) && slices.Equal(names, lastNames) {
					b = last
				} else {
					b = e.batchFor(byKey, &out, p, row, names)
					last, lastParts, lastHour, lastNames = b, p, hour, names
				}
				reason := ""
				if b.quarantine {
					reason = placementProblem(p)
				}

				cells = cells[:0]
				switch {
				case inOrder:
					for _, v := range body.Map().All() {
						cells = append(cells, contract.FormatValue(v))
					}
				case body.Type() == pcommon.ValueTypeMap:
					for _, name := range names {
						cell := ""
						if v, ok := body.Map().Get(name); ok {
							cell = contract.FormatValue(v)
						}
						cells = append(cells, cell)
					}
				default:
					for range names {
						cells = append(cells, "")
					}
				}
				requestID := row.RequestID
				if requestID == "" {
					requestID = contract.NilRequestID
				}
				cells = append(cells, row.CorrelationID, contract.FormatTimestamp(row.Timestamp), e.boundary,
					b.workspace, p.Webservice, p.ModelName, p.ModelVersion, requestID)
				if reason != "" {
					cells = append(cells, reason)
				}
				if e.cfg.NeutralizeFormulas {
					for c := range cells {
						cells[c] = neutralize(cells[c])
					}
				}
				writeLine(b.csv, &b.body, cells)
				b.lineEnds = append(b.lineEnds, b.body.Len())
				b.refs = append(b.refs, recordRef{i, j, k})
			}
		}
	}
	return out
}

// batchFor finds or makes the batch of a row's file.
func (e *encoder) batchFor(byKey map[string]*fileBatch, out *encoded, p contract.PathParts, row contract.Row, names []string) *fileBatch {
	reason := placementProblem(p)
	header := append(names[:len(names):len(names)], contract.CorrelationColumns...)
	if reason != "" {
		header = append(header, ColQuarantineReason)
	}
	e.hdr.Reset()
	writeLine(e.hdrCSV, &e.hdr, header)

	var dir, stem string
	if reason == "" {
		dir = p.Dir(row.Timestamp, e.cfg.Hourly)
		stem = strings.TrimSuffix(strings.ReplaceAll(e.cfg.FileName, "{designation}", p.Designation), ".csv")
	} else {
		dir = e.cfg.QuarantineDir + "/" + datePath(row.Timestamp, e.cfg.Hourly)
		stem = "data"
	}
	key := dir + "/" + stem + "\x00" + e.hdr.String()
	b := byKey[key]
	if b == nil {
		b = &fileBatch{dir: dir, stem: stem, header: bytes.Clone(e.hdr.Bytes()), quarantine: reason != "", workspace: p.WorkspaceColumn()}
		b.csv = newCSVWriter(&b.body)
		byKey[key] = b
		out.batches = append(out.batches, b)
	}
	return b
}

// resourceParts are the configured path parts, overridden by the resource.
func (e *encoder) resourceParts(attrs pcommon.Map) contract.PathParts {
	p := contract.PathParts{SubscriptionID: e.cfg.SubscriptionID, ResourceGroup: e.cfg.ResourceGroup,
		Workspace: e.cfg.Workspace, Webservice: e.cfg.Webservice}
	for _, o := range []struct {
		attr string
		dst  *string
	}{
		{contract.AttrSubscriptionID, &p.SubscriptionID}, {contract.AttrResourceGroup, &p.ResourceGroup},
		{contract.AttrWorkspace, &p.Workspace}, {contract.AttrWebservice, &p.Webservice},
	} {
		if v, ok := attrs.Get(o.attr); ok && v.AsString() != "" {
			*o.dst = v.AsString()
		}
	}
	return p
}

// datePath is <yyyy>/<mm>/<dd>[/<hh>] of a UTC time, as in PathParts.Dir.
func datePath(t time.Time, hourly bool) string {
	if hourly {
		return t.UTC().Format("2006/01/02/15")
	}
	return t.UTC().Format("2006/01/02")
}

// placementProblem says why a row cannot be placed, or "" when it can.
func placementProblem(p contract.PathParts) string {
	if p.ModelVersion == "" {
		return "model version is missing"
	}
	if err := p.Validate(); err != nil {
		return err.Error()
	}
	return ""
}

// bodyInOrder reports whether the body is a map of exactly the declared
// names in declared order: the shape the receiver and the featureflattener
// write, whose cells need no lookup by name.
func bodyInOrder(declared []string, body pcommon.Value) bool {
	if body.Type() != pcommon.ValueTypeMap || body.Map().Len() != len(declared) {
		return false
	}
	i := 0
	for k := range body.Map().All() {
		if k != declared[i] {
			return false
		}
		i++
	}
	return true
}

// columnNames is the declared feature order, then body keys not declared,
// sorted (as the contract says), without duplicates. Feature sets are
// small, so membership is a linear scan.
func columnNames(declared []string, lr plog.LogRecord) []string {
	names := declared
	for i, n := range declared {
		if slices.Contains(declared[:i], n) { // a duplicate: copy without them
			names = make([]string, 0, len(declared))
			for _, n := range declared {
				if !slices.Contains(names, n) {
					names = append(names, n)
				}
			}
			break
		}
	}
	if lr.Body().Type() != pcommon.ValueTypeMap {
		return names
	}
	var extra []string
	for k := range lr.Body().Map().All() {
		if !slices.Contains(names, k) {
			extra = append(extra, k)
		}
	}
	if len(extra) == 0 {
		return names
	}
	slices.Sort(extra)
	return append(names[:len(names):len(names)], extra...)
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
