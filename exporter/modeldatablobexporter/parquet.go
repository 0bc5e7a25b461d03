package modeldatablobexporter

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/schema"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// blockStore writes files that become visible only complete: Azure block
// blobs (staged blocks, then one commit), or a local temporary file renamed
// into place. Parquet cannot be appended to.
type blockStore interface {
	// stage puts data, row group index of file name, at off in the file;
	// nothing is visible before commit. Staging the same group again
	// replaces it.
	stage(ctx context.Context, name string, index int, off int64, data []byte) error
	// commit makes name visible: the magic, the staged groups, then tail,
	// unless name exists already (a commit that landed without an answer).
	// It returns errStagedMissing when a staged group is gone.
	commit(ctx context.Context, name string, groups []stagedRange, tail []byte) error
	// props tells whether a file exists.
	props(ctx context.Context, name string) (fileProps, error)
	// discard drops what was staged for name, a file that will not be
	// committed (none of its groups was journaled).
	discard(ctx context.Context, name string) error
}

// stagingSweeper is a blockStore whose staging outlives a kill unless
// removed: the local one (Azure discards uncommitted blocks after 7 days).
type stagingSweeper interface {
	// sweepStaging removes the staging of the files that stale accepts
	// (by name) and that belong to a run that is over; it returns how many
	// it removed.
	sweepStaging(ctx context.Context, stale func(name string) bool) (int, error)
}

// pqFile is the rows of one push that go to one Parquet file.
type pqFile struct {
	dir        string
	names      []string // feature columns, then the correlation columns
	features   int      // how many of names are feature columns
	cols       []pqColumn
	rows       []pqRow
	hashes     []lineHash // each row's, when journaled
	shared     []pqShared
	bytes      int64 // the values' size before compression, for max_bytes
	quarantine bool
}

// pqRow is one row: its record and its correlation column values.
type pqRow struct {
	ref                      recordRef
	ts                       int64 // the scoring time, microseconds since the epoch
	correlationID, requestID string
	shared                   int32 // its pqFile.shared
}

// pqShared is the correlation columns that rows of a file usually share.
type pqShared struct {
	workspace, webservice, model, version string
	reason                                string // why a quarantined row could not be placed
}

// correlation is row r's value of correlation column col.
func (f *pqFile) correlation(r *pqRow, col int, boundary string) string {
	sh := &f.shared[r.shared]
	return [...]string{r.correlationID, "", boundary, sh.workspace, sh.webservice, sh.model, sh.version, r.requestID}[col]
}

// pqWriter turns pushes into row groups of Parquet files, open across
// pushes (one per folder, column set and types; parquet_stage.go): each
// group is staged in storage and journaled before its push returns.
type pqWriter struct {
	cfg      *Config
	store    blockStore
	instance string
	codec    compress.Compression
	boundary string
	logger   *zap.Logger

	// j journals each file before its commit (with a persistent queue).
	// pending is the files of the previous run not yet checked; credits
	// the rows of those that exist, which the queue's replay skips.
	j       *journal
	mu      sync.Mutex
	pending []*fileIntent
	credits []*credit
	// resumed is the staged groups of files the previous run left open
	// (guarded by mu).
	resumed []*pqStaged

	fmu     sync.Mutex // guards files, closing and each file's lastUsed
	files   map[string]*pqOpen
	closing []*pqOpen // detached files whose commit failed
	now     func() time.Time

	stop, stopped chan struct{} // the max_age timer
	stopSweep     func()        // cancels the sweep of earlier runs' staging
	swept         chan struct{} // closed when that sweep is over
}

func newPQWriter(cfg *Config, store blockStore) *pqWriter {
	codec := compress.Codecs.Snappy
	if cfg.Parquet.Compression == CompressionZstd {
		codec = compress.Codecs.Zstd
	}
	boundary := contract.BoundaryDay
	if cfg.Hourly {
		boundary = contract.BoundaryHour
	}
	if cfg.Parquet.Layout == LayoutV2 {
		boundary = map[string]string{RollingDay: contract.BoundaryDay, RollingHour: contract.BoundaryHour, RollingMinute: "1"}[cfg.MDC.RollingRate]
	}
	return &pqWriter{cfg: cfg, store: store, instance: cfg.MDC.instanceID(), codec: codec, boundary: boundary, logger: zap.NewNop(),
		files: map[string]*pqOpen{}, now: time.Now}
}

// pqPlace is what decides a row's folder.
type pqPlace struct {
	parts                contract.PathParts
	endpoint, deployment string
	period               time.Time // the scoring time truncated to the finest folder
}

// pqGrouper places the rows of one push in files (pqWriter.group).
type pqGrouper struct {
	w       *pqWriter
	enc     *encoder
	period  time.Duration // the finest folder's
	credits []*credit     // nil: none to spend
	hashed  bool          // rows are hashed for the journal

	files        []*pqFile
	byKey        map[string]*pqFile
	notModelData int
	spent        []creditUse
	left         int // records not yet placed
	hashBuf      []byte

	// The current resource, and the last row's place and file.
	parts                contract.PathParts
	workspace            string
	endpoint, deployment string
	names                []string
	last                 *pqFile
	lastPlace            pqPlace
	dir, reason          string
}

// group places every model data row of ld in a file, split at max_rows
// and max_bytes. With a journal each row's hash is kept; a row that a
// credit of the previous run covers is skipped (spent).
func (w *pqWriter) group(ld plog.Logs) (files []*pqFile, notModelData int, spent []creditUse) {
	g := &pqGrouper{w: w, enc: &encoder{cfg: w.cfg}, period: time.Hour, byKey: map[string]*pqFile{},
		hashed: w.j.enabled(), left: ld.LogRecordCount()}
	if w.cfg.Parquet.Layout == LayoutV2 && w.cfg.MDC.RollingRate == RollingMinute {
		g.period = time.Minute
	}
	if g.hashed {
		// Credits come only from resolve, which every push has run before
		// it groups: without credits now there are none to spend, and the
		// push needs no lock.
		w.mu.Lock()
		if g.credits = w.credits; len(g.credits) > 0 {
			defer w.mu.Unlock()
		} else {
			w.mu.Unlock()
		}
	}
	for i, rl := range ld.ResourceLogs().All() {
		g.resource(rl.Resource().Attributes())
		for j, sl := range rl.ScopeLogs().All() {
			for k, lr := range sl.LogRecords().All() {
				g.left--
				g.add(lr, recordRef{i, j, k})
			}
		}
	}
	return g.files, g.notModelData, g.spent
}

// resource takes the folder parts of a resource's rows.
func (g *pqGrouper) resource(attrs pcommon.Map) {
	parts := g.enc.resourceParts(attrs)
	if parts != g.parts || g.workspace == "" {
		g.parts, g.workspace = parts, parts.WorkspaceColumn()
	}
	g.endpoint = resourceAttr(attrs, contract.AttrEndpoint, g.w.cfg.MDC.Endpoint)
	g.deployment = resourceAttr(attrs, contract.AttrDeployment, g.w.cfg.MDC.Deployment)
}

// add places one record's row, unless it is not model data or a credit
// covers it.
func (g *pqGrouper) add(lr plog.LogRecord, ref recordRef) {
	row, ok := contract.ReadRowReuse(lr, g.names)
	if !ok {
		g.notModelData++
		return
	}
	g.names = row.FeatureNames
	p := g.parts
	p.ModelName, p.ModelVersion, p.Designation = row.ModelName, row.ModelVersion, row.Designation
	place := pqPlace{p, g.endpoint, g.deployment, row.Timestamp.UTC().Truncate(g.period)}
	if place != g.lastPlace || g.last == nil {
		g.dir, g.reason = g.w.dir(place, row)
		g.lastPlace, g.last = place, nil
	}
	body := lr.Body()
	inOrder := contract.BodyInOrder(row.FeatureNames, body)
	features := row.FeatureNames
	switch {
	case !inOrder:
		features = contract.ColumnOrder(row.FeatureNames, body)
	case len(features) == 0: // the body's keys are the columns
		g.names = contract.AppendKeys(g.names[:0], body)
		features = g.names
	}
	r := pqRow{ref: ref, ts: row.Timestamp.UnixMicro(), correlationID: row.CorrelationID, requestID: contract.RequestIDOrNil(row.RequestID)}
	sh := pqShared{g.workspace, p.Webservice, row.ModelName, row.ModelVersion, g.reason}
	size := int64(8 + len(r.correlationID) + len(r.requestID) + len(g.w.boundary) +
		len(sh.workspace) + len(sh.webservice) + len(sh.model) + len(sh.version) + len(sh.reason))
	f := g.fileFor(features, size)
	if n := len(f.shared); n == 0 || f.shared[n-1] != sh {
		f.shared = append(f.shared, sh)
	}
	r.shared = int32(len(f.shared) - 1)
	size += f.addValues(body, inOrder, features)
	f.rows = append(f.rows, r)
	f.bytes += size
	g.last = f
	if g.hashed {
		g.hashOrSpend(f, size)
	}
}

// fileFor is the file of the current folder and features that takes a row
// of size bytes: a new one at max_rows or max_bytes.
func (g *pqGrouper) fileFor(features []string, size int64) *pqFile {
	cfg := &g.w.cfg.Parquet
	f := g.last
	key := ""
	if f == nil || !slices.Equal(f.names[:f.features], features) {
		key = g.dir + "\x00" + strings.Join(features, "\x00")
		if f = g.byKey[key]; f == nil {
			f = g.newFile(key, features)
		}
	}
	if len(f.rows) >= cfg.MaxRows || (len(f.rows) > 0 && f.bytes+size > cfg.MaxBytes) {
		if key == "" {
			key = g.dir + "\x00" + strings.Join(features, "\x00")
		}
		f = g.newFile(key, features)
	}
	if len(f.rows) == 0 && len(g.files) == 1 {
		// The first file of a push usually takes all its rows.
		f.grow(min(g.left+1, cfg.MaxRows))
	}
	return f
}

func (g *pqGrouper) newFile(key string, features []string) *pqFile {
	f := g.w.newFile(g.dir, features, g.reason != "")
	g.byKey[key] = f
	g.files = append(g.files, f)
	return f
}

// addValues appends a row's feature values and returns their size.
func (f *pqFile) addValues(body pcommon.Value, inOrder bool, features []string) int64 {
	size := int64(0)
	switch {
	case inOrder:
		c := 0
		for _, v := range body.Map().All() {
			size += f.cols[c].add(v)
			c++
		}
	case body.Type() == pcommon.ValueTypeMap:
		for c, name := range features {
			v, ok := body.Map().Get(name)
			if !ok {
				v = emptyValue
			}
			size += f.cols[c].add(v)
		}
	default:
		for c := range features {
			f.cols[c].add(emptyValue)
		}
	}
	return size
}

// hashOrSpend keeps the hash of f's last row (of size bytes), or drops the
// row when a credit of the previous run covers it.
func (g *pqGrouper) hashOrSpend(f *pqFile, size int64) {
	var h lineHash
	g.hashBuf, h = f.lastRowHash(g.hashBuf[:0])
	if c := spendCredit(g.credits, h); c != nil {
		g.spent = append(g.spent, creditUse{c, h})
		f.dropLast(size)
		return
	}
	f.hashes = append(f.hashes, h)
}

// spendCredit takes h from the first credit that has it; nil when none does.
func spendCredit(credits []*credit, h lineHash) *credit {
	for _, c := range credits {
		if c.avail[h] > 0 {
			if c.avail[h]--; c.avail[h] == 0 {
				delete(c.avail, h)
			}
			return c
		}
	}
	return nil
}

// lastRowHash identifies the last row by its content: the file's folder
// and feature columns, the row's correlation values and feature values.
// buf is scratch space, returned for reuse.
func (f *pqFile) lastRowHash(buf []byte) ([]byte, lineHash) {
	n := len(f.rows) - 1
	r := &f.rows[n]
	sh := &f.shared[r.shared]
	buf = append(buf, f.dir...)
	for _, s := range f.names[:f.features] {
		buf = append(append(buf, 0), s...)
	}
	for _, s := range [...]string{r.correlationID, r.requestID, sh.workspace, sh.webservice, sh.model, sh.version, sh.reason} {
		buf = append(append(buf, 0), s...)
	}
	buf = binary.LittleEndian.AppendUint64(buf, uint64(r.ts))
	for c := range f.cols {
		col := &f.cols[c]
		buf = binary.LittleEndian.AppendUint64(append(buf, col.kind[n]), col.num[n])
		if col.kind[n] == valText {
			buf = append(append(buf, col.text[n]...), 0)
		}
	}
	sum := sha256.Sum256(buf)
	return buf, lineHash(sum[:16])
}

// dropLast removes the last row (of the given size). The column types
// still count its values' kinds.
func (f *pqFile) dropLast(size int64) {
	n := len(f.rows) - 1
	f.rows = f.rows[:n]
	for c := range f.cols {
		col := &f.cols[c]
		col.kind, col.num = col.kind[:n], col.num[:n]
		col.text = col.text[:min(n, len(col.text))]
	}
	f.bytes -= size
}

// adopt takes what the previous run journaled: files left open to commit,
// files to check, credits to spend.
func (w *pqWriter) adopt(j *journal, groups []*pqStaged, files []*fileIntent, credits []*credit) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.j, w.resumed, w.pending, w.credits = j, groups, files, credits
}

// resolve commits the files the previous run left open, then checks the
// groups it journaled whose batch was not acknowledged: the rows of one
// whose file exists become a credit, skipped when the queue replays them,
// and its keyed rows count as written.
func (w *pqWriter) resolve(ctx context.Context) error {
	if !w.j.enabled() {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.resumed) > 0 {
		if err := w.commitResumed(ctx); err != nil {
			return err
		}
	}
	for len(w.pending) > 0 {
		in := w.pending[0]
		p, err := w.store.props(ctx, in.blob)
		if err != nil {
			return err
		}
		var c *credit
		if p.exists {
			c = w.j.fileCredit(in)
		}
		if err := w.j.settle(ctx, &intent{key: in.key, keyRows: in.keys}, c, p.exists); err != nil {
			return err
		}
		if p.exists && w.j.win != nil {
			w.j.win.add(in.keys, time.Now())
		}
		if c != nil {
			w.credits = append(w.credits, c)
			w.logger.Warn("A file committed before the restart holds rows whose batch was not acknowledged: the queue replays them, and they are not written again",
				zap.String("blob", in.blob), zap.Int("rows", len(in.rows)))
		}
		w.pending = w.pending[1:]
	}
	if len(w.credits) > 0 {
		// A spent credit is the journal's to forget once its pushes are done.
		w.credits = slices.DeleteFunc(w.j.expire(ctx, w.credits), func(c *credit) bool { return len(c.avail) == 0 })
	}
	return nil
}

func (w *pqWriter) newFile(dir string, features []string, quarantine bool) *pqFile {
	names := append(slices.Clone(features), contract.CorrelationColumns...)
	if quarantine {
		names = append(names, contract.ColQuarantineReason)
	}
	return &pqFile{dir: dir, names: names, features: len(features), cols: make([]pqColumn, len(features)), quarantine: quarantine}
}

// grow makes room for n more rows.
func (f *pqFile) grow(n int) {
	f.rows = slices.Grow(f.rows, n)
	for c := range f.cols {
		f.cols[c].kind = slices.Grow(f.cols[c].kind, n)
		f.cols[c].num = slices.Grow(f.cols[c].num, n)
	}
}

// dir is a row's folder in the configured layout, or the quarantine
// folder and why.
func (w *pqWriter) dir(pl pqPlace, row contract.Row) (dir, reason string) {
	if w.cfg.Parquet.Layout == LayoutV2 {
		collection := w.cfg.MDC.collection(row.Designation)
		if reason = mdcPlacementProblem(pl.parts, pl.endpoint, pl.deployment, collection); reason == "" {
			return string(w.cfg.MDC.appendDir(nil, pl.endpoint, pl.deployment, collection, row.Timestamp)), ""
		}
		return w.cfg.QuarantineDir + "/" + string(w.cfg.MDC.timePath(nil, row.Timestamp)), reason
	}
	if reason = contract.QuarantineReason(pl.parts); reason == "" {
		return pl.parts.Dir(row.Timestamp, w.cfg.Hourly), ""
	}
	return contract.QuarantineDir(w.cfg.QuarantineDir, row.Timestamp, w.cfg.Hourly), reason
}

// emptyValue stands for a missing value (read only).
var emptyValue = pcommon.NewValueEmpty()

// Kinds of feature value (pqColumn.kind).
const (
	valNull   = 0 // empty or missing
	valInt    = 1
	valDouble = 2
	valBool   = 4
	valText   = 8 // a string, or a map, slice or bytes value as text
)

// pqColumn is one feature column's values, typed as they came: the
// column's type is known only once every value is in.
type pqColumn struct {
	// as is the type the column is written as when set (typed): the open
	// file's, which its values fit.
	as    parquet.Type
	typed bool
	kinds uint8    // every kind seen
	kind  []uint8  // each row's kind
	num   []uint64 // each row's integer, double bits or boolean (0 for text and null)
	text  []string // each row's text, up to the last text row
}

// add appends a value and returns its size before compression: a text's
// length, 8 bytes otherwise.
func (c *pqColumn) add(v pcommon.Value) int64 {
	var k uint8
	var n uint64
	switch v.Type() {
	case pcommon.ValueTypeEmpty:
		k = valNull
	case pcommon.ValueTypeInt:
		k, n = valInt, uint64(v.Int())
	case pcommon.ValueTypeDouble:
		k, n = valDouble, math.Float64bits(v.Double())
	case pcommon.ValueTypeBool:
		k = valBool
		if v.Bool() {
			n = 1
		}
	default:
		var s string
		if v.Type() == pcommon.ValueTypeStr {
			s = v.Str()
		} else {
			s = contract.FormatValue(v)
		}
		if c.text == nil {
			c.text = make([]string, 0, cap(c.kind)) // a column of text is usually all text
		}
		for len(c.text) < len(c.kind) {
			c.text = append(c.text, "")
		}
		c.text = append(c.text, s)
		c.kinds |= valText
		c.kind = append(c.kind, valText)
		c.num = append(c.num, 0)
		return int64(len(s))
	}
	c.kinds |= k
	c.kind = append(c.kind, k)
	c.num = append(c.num, n)
	return 8
}

// physical is the column's Parquet type, inferred from its values: int64
// when every value is an integer, double when every value is a number,
// boolean when every value is a boolean, else string. Empty and missing
// values are nulls and do not count.
func (c *pqColumn) physical() parquet.Type {
	if c.typed {
		return c.as
	}
	switch {
	case c.kinds&valText != 0 || c.kinds&valBool != 0 && c.kinds&(valInt|valDouble) != 0:
		return parquet.Types.ByteArray
	case c.kinds&valBool != 0:
		return parquet.Types.Boolean
	case c.kinds&valDouble != 0:
		return parquet.Types.Double
	case c.kinds&valInt != 0:
		return parquet.Types.Int64
	}
	return parquet.Types.ByteArray // no values at all: nulls
}

// appendText appends row r's value as a string cell, as the CSV writes it.
func (c *pqColumn) appendText(dst []byte, r int) []byte {
	switch c.kind[r] {
	case valInt:
		return strconv.AppendInt(dst, int64(c.num[r]), 10)
	case valDouble:
		return contract.AppendFloat(dst, math.Float64frombits(c.num[r]))
	case valBool:
		if c.num[r] != 0 {
			return append(dst, "True"...)
		}
		return append(dst, "False"...)
	}
	return appendValidUTF8(dst, c.text[r])
}

// schema is the file's Parquet schema: inferred feature types (optional),
// the scoring timestamp as a UTC microsecond timestamp, the other
// correlation columns strings.
func (f *pqFile) schema() (*schema.GroupNode, error) {
	fields := make(schema.FieldList, len(f.names))
	for i, name := range f.names {
		rep, typ := parquet.Repetitions.Required, parquet.Types.ByteArray
		if i < f.features {
			rep, typ = parquet.Repetitions.Optional, f.cols[i].physical()
		}
		var err error
		switch {
		case name == contract.ColScoringTimestamp && i >= f.features:
			fields[i], err = schema.NewPrimitiveNodeLogical(name, rep, schema.NewTimestampLogicalType(true, schema.TimeUnitMicros), parquet.Types.Int64, -1, -1)
		case typ == parquet.Types.ByteArray:
			fields[i], err = schema.NewPrimitiveNodeLogical(name, rep, schema.StringLogicalType{}, typ, -1, -1)
		case typ == parquet.Types.Int64:
			fields[i], err = schema.NewPrimitiveNodeLogical(name, rep, schema.NewIntLogicalType(64, true), typ, -1, -1)
		default:
			fields[i], err = schema.NewPrimitiveNode(name, rep, typ, -1, -1)
		}
		if err != nil {
			return nil, err
		}
	}
	return schema.NewGroupNode("schema", parquet.Repetitions.Required, fields, -1)
}

// pqScratch is the column buffers of one file being written, reused.
type pqScratch struct {
	def    []int16
	ints   []int64
	floats []float64
	bools  []bool
	bytes  []parquet.ByteArray
	text   []byte
	ends   []int
	out    bytes.Buffer

	dict        map[string]int32 // a column's distinct values
	dictText    []byte
	dictOffsets []int32
	indices     []int32
	spaced      []int32
	valid       []byte
}

var pqScratches = sync.Pool{New: func() any { return new(pqScratch) }}

// fileBytes encodes the file's rows as one Parquet file (one row group),
// column by column from the typed values.
func (w *pqWriter) fileBytes(f *pqFile) ([]byte, error) {
	sc, err := f.schema()
	if err != nil {
		return nil, err
	}
	s := pqScratches.Get().(*pqScratch)
	defer pqScratches.Put(s)
	s.out.Reset()
	pw, err := file.NewParquetWriterWithError(&s.out, sc, file.WithWriterProps(w.props(f)))
	if err != nil {
		return nil, err
	}
	rg, err := pw.AppendRowGroupChecked()
	if err != nil {
		return nil, err
	}
	for i, name := range f.names {
		cw, err := rg.NextColumn()
		if err != nil {
			return nil, err
		}
		switch {
		case i < f.features:
			err = s.writeFeatures(cw, &f.cols[i])
		case name == contract.ColScoringTimestamp:
			s.ints = s.ints[:0]
			for _, r := range f.rows {
				s.ints = append(s.ints, r.ts)
			}
			_, err = cw.(*file.Int64ColumnChunkWriter).WriteBatch(s.ints, nil, nil)
		case name == contract.ColQuarantineReason:
			s.text, s.ends = s.text[:0], s.ends[:0]
			for i := range f.rows {
				s.text = appendValidUTF8(s.text, f.shared[f.rows[i].shared].reason)
				s.ends = append(s.ends, len(s.text))
			}
			err = s.writeText(cw, nil)
		default:
			col := slices.Index(contract.CorrelationColumns, name)
			s.text, s.ends = s.text[:0], s.ends[:0]
			for i := range f.rows {
				s.text = appendValidUTF8(s.text, f.correlation(&f.rows[i], col, w.boundary))
				s.ends = append(s.ends, len(s.text))
			}
			err = s.writeText(cw, nil)
		}
		if err != nil {
			return nil, err
		}
	}
	if err := rg.Close(); err != nil {
		return nil, err
	}
	if err := pw.Close(); err != nil {
		return nil, err
	}
	return bytes.Clone(s.out.Bytes()), nil
}

// props are the writer properties of a file of n rows: one row group,
// dictionaries for strings but the ids, unique per row, where a
// dictionary would only cost.
func (w *pqWriter) props(f *pqFile) *parquet.WriterProperties {
	opts := []parquet.WriterProperty{parquet.WithCompression(w.codec), parquet.WithMaxRowGroupLength(int64(len(f.rows)) + 1),
		parquet.WithCreatedBy("otelcol-modeldata"),
		parquet.WithDictionaryFor(contract.ColCorrelationID, false), parquet.WithDictionaryFor(contract.ColRequestID, false)}
	// Doubles are mostly distinct measurements: a dictionary of them costs
	// a hash table per column and ends as plain pages anyway.
	for i := range f.features {
		if f.cols[i].physical() == parquet.Types.Double {
			opts = append(opts, parquet.WithDictionaryFor(f.names[i], false))
		}
	}
	return parquet.NewWriterProperties(opts...)
}

// writeFeatures writes a feature column: definition levels for its nulls,
// its values in the column's type.
func (s *pqScratch) writeFeatures(cw file.ColumnChunkWriter, c *pqColumn) error {
	s.def = s.def[:0]
	for _, k := range c.kind {
		s.def = append(s.def, int16(min(k, 1)))
	}
	var err error
	switch w := cw.(type) {
	case *file.Int64ColumnChunkWriter:
		s.ints = s.ints[:0]
		for r, k := range c.kind {
			if k != valNull {
				s.ints = append(s.ints, int64(c.num[r]))
			}
		}
		_, err = w.WriteBatch(s.ints, s.def, nil)
	case *file.Float64ColumnChunkWriter:
		s.floats = s.floats[:0]
		for r, k := range c.kind {
			switch k {
			case valInt:
				s.floats = append(s.floats, float64(int64(c.num[r])))
			case valDouble:
				s.floats = append(s.floats, math.Float64frombits(c.num[r]))
			}
		}
		_, err = w.WriteBatch(s.floats, s.def, nil)
	case *file.BooleanColumnChunkWriter:
		s.bools = s.bools[:0]
		for r, k := range c.kind {
			if k != valNull {
				s.bools = append(s.bools, c.num[r] != 0)
			}
		}
		_, err = w.WriteBatch(s.bools, s.def, nil)
	default:
		s.text, s.ends = s.text[:0], s.ends[:0]
		for r, k := range c.kind {
			if k != valNull {
				s.text = c.appendText(s.text, r)
				s.ends = append(s.ends, len(s.text))
			}
		}
		err = s.writeText(cw, s.def)
	}
	return err
}

// writeText writes the strings of s.text, ending at s.ends, to a string
// column: through a dictionary of the distinct values when the column
// writer encodes with one and they repeat, else plainly.
func (s *pqScratch) writeText(cw file.ColumnChunkWriter, def []int16) error {
	bw := cw.(*file.ByteArrayColumnChunkWriter)
	if dict, ok := bw.CurrentEncoder().(dictEncoder); ok {
		if done, err := s.writeDictionary(bw, dict, def); done || err != nil {
			return err
		}
		bw.FallbackToPlain()
	}
	s.bytes = s.bytes[:0]
	from := 0
	for _, end := range s.ends {
		s.bytes = append(s.bytes, s.text[from:end:end])
		from = end
	}
	_, err := bw.WriteBatch(s.bytes, def, nil)
	return err
}

// dictEncoder is arrow-go's dictionary encoder, as far as it is seeded
// with a whole dictionary.
type dictEncoder interface {
	PutDictionary(arrow.Array) error
	NumEntries() int
}

// writeDictionary writes the column as indices into a dictionary of its
// distinct values, built here without an allocation per value (arrow-go's
// own memo table allocates per lookup). done is false when the values
// hardly repeat (at least one distinct value in two), which a dictionary
// would only grow: the caller writes them plainly.
func (s *pqScratch) writeDictionary(bw *file.ByteArrayColumnChunkWriter, dict dictEncoder, def []int16) (done bool, err error) {
	if s.dict == nil {
		s.dict = map[string]int32{}
	}
	clear(s.dict)
	s.dictText, s.dictOffsets = s.dictText[:0], append(s.dictOffsets[:0], 0)
	s.indices = s.indices[:0]
	from := 0
	for _, end := range s.ends {
		v := s.text[from:end]
		from = end
		i, ok := s.dict[string(v)]
		if !ok {
			if len(s.dict) >= len(s.ends)/2+1 {
				return false, nil
			}
			i = int32(len(s.dict))
			s.dict[string(v)] = i
			s.dictText = append(s.dictText, v...)
			s.dictOffsets = append(s.dictOffsets, int32(len(s.dictText)))
		}
		s.indices = append(s.indices, i)
	}
	values := array.NewStringData(array.NewData(arrow.BinaryTypes.String, len(s.dict),
		[]*memory.Buffer{nil, memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(s.dictOffsets)), memory.NewBufferBytes(s.dictText)}, nil, 0, 0))
	defer values.Release()
	if err := dict.PutDictionary(values); err != nil || dict.NumEntries() != len(s.dict) {
		return false, err
	}
	if st := bw.PageStatistics(); st != nil {
		st.IncNulls(int64(len(def) - len(s.ends)))
		st.IncNumValues(int64(len(s.ends)))
		if err := st.UpdateFromArrow(values, false); err != nil {
			return false, err
		}
	}
	// The indices are spaced: one per row, nulls marked invalid.
	var valid []byte
	nulls := 0
	if def != nil {
		s.spaced, s.valid = s.spaced[:0], slices.Grow(s.valid[:0], (len(def)+7)/8)[:(len(def)+7)/8]
		clear(s.valid)
		next := 0
		for r, d := range def {
			if d == 0 {
				s.spaced = append(s.spaced, 0)
				nulls++
				continue
			}
			s.valid[r/8] |= 1 << (r % 8)
			s.spaced = append(s.spaced, s.indices[next])
			next++
		}
		s.indices, s.spaced = s.spaced, s.indices
		valid = s.valid
	}
	var validBuf *memory.Buffer
	if nulls > 0 {
		validBuf = memory.NewBufferBytes(valid)
	}
	indices := array.NewInt32Data(array.NewData(arrow.PrimitiveTypes.Int32, len(s.indices),
		[]*memory.Buffer{validBuf, memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(s.indices))}, nil, nulls, 0))
	defer indices.Release()
	return true, bw.WriteDictIndices(indices, def, nil)
}

// slot is the file's folder and columns: one file of them is open at a time.
func (f *pqFile) slot() string {
	return f.dir + "\x00" + strings.Join(f.names, "\x00")
}

// fits reports whether the column's values can be written as typ: any as
// a string, integers as doubles, and nulls as anything.
func (c *pqColumn) fits(typ parquet.Type) bool {
	switch typ {
	case parquet.Types.ByteArray:
		return true
	case parquet.Types.Double:
		return c.kinds&^(valInt|valDouble) == 0
	case parquet.Types.Int64:
		return c.kinds&^valInt == 0
	case parquet.Types.Boolean:
		return c.kinds&^valBool == 0
	}
	return false
}

// fitTo writes the feature columns as the open file's types when every
// column's values fit them, so that a push of only integers in a column of
// doubles, or of no values in a column, does not start another file. A
// column of the file that had no values yet (typed string) takes none.
func (f *pqFile) fitTo(types []parquet.Type, valued []bool) {
	if len(types) != len(f.cols) {
		return
	}
	for c := range f.cols {
		if !f.cols[c].fits(types[c]) || !valued[c] && f.cols[c].kinds != 0 {
			return
		}
	}
	for c := range f.cols {
		f.cols[c].as, f.cols[c].typed = types[c], true
	}
}

// types is the feature columns' types, and whether each had a value.
func (f *pqFile) types() ([]parquet.Type, []bool) {
	types, valued := make([]parquet.Type, len(f.cols)), make([]bool, len(f.cols))
	for c := range f.cols {
		types[c], valued[c] = f.cols[c].physical(), f.cols[c].kinds != 0 || f.cols[c].typed
	}
	return types, valued
}

// signature is the slot and the feature columns' types: rows of other types
// start another file.
func (f *pqFile) signature() string {
	b := []byte(f.slot())
	for c := range f.cols {
		b = append(b, byte(f.cols[c].physical()))
	}
	return string(b)
}

// encode groups a push into one batch per Parquet file, for blobExporter.push.
func (w *pqWriter) encode(ld plog.Logs) encoded {
	files, notModelData, spent := w.group(ld)
	out := encoded{notModelData: notModelData, spent: spent}
	for _, f := range files {
		if len(f.rows) == 0 { // every row skipped as written before a restart
			continue
		}
		refs := make([]recordRef, len(f.rows))
		for j, r := range f.rows {
			refs[j] = r.ref
		}
		out.batches = append(out.batches, &fileBatch{dir: f.dir, stem: w.instance + "-*", ext: ".parquet", refs: refs, quarantine: f.quarantine, pq: f})
	}
	return out
}

// write writes a batch: a Parquet row group, staged in its open file, or
// CSV/JSON lines appended by w. It returns how many lines (Parquet: rows)
// landed.
func (e *blobExporter) write(ctx context.Context, b *fileBatch, pl *pushLog) (int, error) {
	if b.pq == nil {
		return e.w.write(ctx, b, pl)
	}
	n, err := e.pq.write(ctx, b.pq, b.keys, pl)
	if err != nil {
		return 0, err
	}
	e.w.landedRows(b.keys, pl)
	e.tel.appended(ctx, len(b.refs), n)
	return len(b.refs), nil
}

// write encodes f as one row group and stages it in its open file; it
// returns the group's size. With a journal, the group, its rows' hashes and
// keys are recorded before the push returns.
func (w *pqWriter) write(ctx context.Context, f *pqFile, keys []rowKey, pl *pushLog) (int, error) {
	f.fitTo(w.openTypes(f.slot()))
	data, err := w.fileBytes(f)
	if err != nil {
		return 0, consumererror.NewPermanent(err)
	}
	g, err := splitGroup(data)
	if err != nil {
		return 0, consumererror.NewPermanent(err)
	}
	return w.stageGroup(ctx, f, g, keys, pl)
}

// appendValidUTF8 appends s with each run of invalid UTF-8 replaced by
// U+FFFD: Parquet strings are UTF-8, and readers such as DuckDB refuse
// files that are not.
func appendValidUTF8(dst []byte, s string) []byte {
	if utf8.ValidString(s) {
		return append(dst, s...)
	}
	return append(dst, strings.ToValidUTF8(s, "\uFFFD")...)
}
