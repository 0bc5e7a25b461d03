package modeldatablobexporter

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// blockStore writes whole files that become visible only complete: Azure
// block blobs (staged blocks, then one commit), or a local file renamed
// into place. Parquet cannot be appended to.
type blockStore interface {
	// putFile writes name with data unless it already exists. Names are
	// derived from content, so an existing file holds the same bytes.
	putFile(ctx context.Context, name string, data []byte) error
}

// pqFile is the rows of one push that go to one Parquet file.
type pqFile struct {
	dir        string
	names      []string // feature columns, then the correlation columns
	features   int      // how many of names are feature columns
	cols       [][]pcommon.Value
	rows       []pqRow
	bytes      int64 // the values' size before compression, for max_bytes
	quarantine bool
}

// pqRow is one row: its record, and its correlation column values.
type pqRow struct {
	ref    recordRef
	ts     time.Time
	aml    [8]string // correlation columns, the timestamp's slot unused
	reason string    // why a quarantined row could not be placed
}

// pqWriter turns pushes into Parquet files, one or more per folder and
// column set, each committed before the push returns: the queue keeps
// every row until the file holding it is complete.
type pqWriter struct {
	cfg      *Config
	store    blockStore
	instance string
	codec    compress.Compression
	boundary string
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
	return &pqWriter{cfg: cfg, store: store, instance: cfg.MDC.instanceID(), codec: codec, boundary: boundary}
}

// pqPlace is what decides a row's folder.
type pqPlace struct {
	parts                contract.PathParts
	endpoint, deployment string
	period               time.Time // the scoring time truncated to the finest folder
}

// group places every model data row of ld in a file, split at max_rows and max_bytes.
func (w *pqWriter) group(ld plog.Logs) (files []*pqFile, notModelData int) {
	byKey := map[string]*pqFile{}
	enc := &encoder{cfg: w.cfg}
	period := time.Hour
	if w.cfg.Parquet.Layout == LayoutV2 && w.cfg.MDC.RollingRate == RollingMinute {
		period = time.Minute
	}
	var (
		names     []string
		last      *pqFile
		lastPlace pqPlace
		dir       string
		reason    string
		lastParts contract.PathParts
		workspace string
	)
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		attrs := rls.At(i).Resource().Attributes()
		parts := enc.resourceParts(attrs)
		if parts != lastParts || workspace == "" {
			lastParts, workspace = parts, parts.WorkspaceColumn()
		}
		endpoint := resourceAttr(attrs, contract.AttrEndpoint, w.cfg.MDC.Endpoint)
		deployment := resourceAttr(attrs, contract.AttrDeployment, w.cfg.MDC.Deployment)
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				row, ok := contract.ReadRowReuse(lr, names)
				if !ok {
					notModelData++
					continue
				}
				names = row.FeatureNames
				p := parts
				p.ModelName, p.ModelVersion, p.Designation = row.ModelName, row.ModelVersion, row.Designation
				place := pqPlace{p, endpoint, deployment, row.Timestamp.UTC().Truncate(period)}
				if place != lastPlace || last == nil {
					dir, reason = w.dir(place, row)
					lastPlace, last = place, nil
				}
				body := lr.Body()
				inOrder := contract.BodyInOrder(row.FeatureNames, body)
				features := row.FeatureNames
				if !inOrder {
					features = contract.ColumnOrder(row.FeatureNames, body)
				}
				f := last
				if f == nil || !slices.Equal(f.names[:f.features], features) {
					key := dir + "\x00" + strings.Join(features, "\x00")
					if f = byKey[key]; f == nil {
						f = w.newFile(dir, features, reason != "")
						byKey[key] = f
						files = append(files, f)
					}
				}
				requestID := contract.RequestIDOrNil(row.RequestID)
				r := pqRow{ref: recordRef{i, j, k}, ts: row.Timestamp, reason: reason,
					aml: [8]string{row.CorrelationID, "", w.boundary, workspace, p.Webservice, row.ModelName, row.ModelVersion, requestID}}
				size := int64(8 + len(reason))
				for _, a := range r.aml {
					size += int64(len(a))
				}
				if len(f.rows) >= w.cfg.Parquet.MaxRows || (len(f.rows) > 0 && f.bytes+size > w.cfg.Parquet.MaxBytes) {
					f = w.newFile(dir, features, reason != "")
					byKey[dir+"\x00"+strings.Join(features, "\x00")] = f
					files = append(files, f)
				}
				switch {
				case inOrder:
					c := 0
					for _, v := range body.Map().All() {
						f.cols[c] = append(f.cols[c], v)
						size += valueSize(v)
						c++
					}
				case body.Type() == pcommon.ValueTypeMap:
					for c, name := range features {
						v, ok := body.Map().Get(name)
						if !ok {
							v = emptyValue
						}
						f.cols[c] = append(f.cols[c], v)
						size += valueSize(v)
					}
				default:
					for c := range features {
						f.cols[c] = append(f.cols[c], emptyValue)
					}
				}
				f.rows = append(f.rows, r)
				f.bytes += size
				last = f
			}
		}
	}
	return files, notModelData
}

func (w *pqWriter) newFile(dir string, features []string, quarantine bool) *pqFile {
	names := append(slices.Clone(features), contract.CorrelationColumns...)
	if quarantine {
		names = append(names, contract.ColQuarantineReason)
	}
	return &pqFile{dir: dir, names: names, features: len(features), cols: make([][]pcommon.Value, len(features)), quarantine: quarantine}
}

// dir is a row's folder in the configured layout, or the quarantine
// folder and why.
func (w *pqWriter) dir(pl pqPlace, row contract.Row) (dir, reason string) {
	if w.cfg.Parquet.Layout == LayoutV2 {
		collection := w.cfg.MDC.collection(row.Designation)
		if reason = mdcPlacementProblem(pl.parts, pl.endpoint, pl.deployment, collection); reason == "" {
			return string(w.cfg.MDC.timePath([]byte(w.cfg.MDC.RootDir+"/"+pl.endpoint+"/"+pl.deployment+"/"+collection+"/"), row.Timestamp)), ""
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

// valueSize is a value's size before compression: a string's length, 8 bytes otherwise.
func valueSize(v pcommon.Value) int64 {
	if v.Type() == pcommon.ValueTypeStr {
		return int64(len(v.Str()))
	}
	return 8
}

// columnType infers a feature column's Parquet type from its values:
// int64 when every value is an integer, double when every value is a
// number, boolean when every value is a boolean, else string. Empty and
// missing values are nulls and do not count.
func columnType(col []pcommon.Value) arrow.DataType {
	var ints, doubles, bools, others int
	for _, v := range col {
		switch v.Type() {
		case pcommon.ValueTypeInt:
			ints++
		case pcommon.ValueTypeDouble:
			doubles++
		case pcommon.ValueTypeBool:
			bools++
		case pcommon.ValueTypeEmpty:
		default:
			others++
		}
	}
	switch {
	case others > 0 || bools > 0 && ints+doubles > 0:
		return arrow.BinaryTypes.String
	case bools > 0:
		return arrow.FixedWidthTypes.Boolean
	case doubles > 0:
		return arrow.PrimitiveTypes.Float64
	case ints > 0:
		return arrow.PrimitiveTypes.Int64
	}
	return arrow.BinaryTypes.String // no values at all: nulls
}

// schema is the file's Arrow schema: inferred feature types, the scoring
// timestamp as a UTC microsecond timestamp, the other correlation columns strings.
func (f *pqFile) schema() *arrow.Schema {
	fields := make([]arrow.Field, len(f.names))
	for i, name := range f.names {
		t := arrow.DataType(arrow.BinaryTypes.String)
		switch {
		case i < f.features:
			t = columnType(f.cols[i])
		case name == contract.ColScoringTimestamp:
			t = arrow.FixedWidthTypes.Timestamp_us
		}
		fields[i] = arrow.Field{Name: name, Type: t, Nullable: i < f.features}
	}
	return arrow.NewSchema(fields, nil)
}

// fileBytes encodes the file's rows as one Parquet file (one row group).
func (w *pqWriter) fileBytes(f *pqFile) ([]byte, error) {
	schema := f.schema()
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	b.Reserve(len(f.rows))
	for i, field := range schema.Fields() {
		fb := b.Field(i)
		switch {
		case i < f.features:
			appendFeatures(fb, f.cols[i])
		case field.Name == contract.ColScoringTimestamp:
			tb := fb.(*array.TimestampBuilder)
			for _, r := range f.rows {
				tb.Append(arrow.Timestamp(r.ts.UnixMicro()))
			}
		case field.Name == contract.ColQuarantineReason:
			sb := fb.(*array.StringBuilder)
			for _, r := range f.rows {
				sb.Append(validUTF8(r.reason))
			}
		default:
			col := slices.Index(contract.CorrelationColumns, field.Name)
			sb := fb.(*array.StringBuilder)
			for _, r := range f.rows {
				sb.Append(validUTF8(r.aml[col]))
			}
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	var buf bytes.Buffer
	// Ids are unique per row: a dictionary would only cost.
	props := parquet.NewWriterProperties(parquet.WithCompression(w.codec), parquet.WithMaxRowGroupLength(int64(len(f.rows))+1),
		parquet.WithCreatedBy("otelcol-modeldata"),
		parquet.WithDictionaryFor(contract.ColCorrelationID, false), parquet.WithDictionaryFor(contract.ColRequestID, false))
	pw, err := pqarrow.NewFileWriter(schema, &buf, props, pqarrow.DefaultWriterProps())
	if err != nil {
		return nil, err
	}
	if err := pw.Write(rec); err != nil {
		_ = pw.Close()
		return nil, err
	}
	if err := pw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// appendFeatures appends one feature column in its inferred type.
func appendFeatures(fb array.Builder, col []pcommon.Value) {
	for _, v := range col {
		if v.Type() == pcommon.ValueTypeEmpty {
			fb.AppendNull()
			continue
		}
		switch b := fb.(type) {
		case *array.Int64Builder:
			b.Append(v.Int())
		case *array.Float64Builder:
			if v.Type() == pcommon.ValueTypeInt {
				b.Append(float64(v.Int()))
			} else {
				b.Append(v.Double())
			}
		case *array.BooleanBuilder:
			b.Append(v.Bool())
		case *array.StringBuilder:
			if v.Type() == pcommon.ValueTypeStr {
				b.Append(validUTF8(v.Str()))
			} else {
				b.Append(validUTF8(contract.FormatValue(v)))
			}
		}
	}
}

// fileName is <instance>-<first 16 hex digits of the file's SHA-256>.parquet:
// unique per writer, and the same for a retried batch, whose bytes are the same.
func (w *pqWriter) fileName(data []byte) string {
	sum := sha256.Sum256(data)
	return w.instance + "-" + hex.EncodeToString(sum[:8]) + ".parquet"
}

// encode groups a push into one batch per Parquet file, for blobExporter.push.
func (w *pqWriter) encode(ld plog.Logs) encoded {
	files, notModelData := w.group(ld)
	out := encoded{notModelData: notModelData, batches: make([]*fileBatch, len(files))}
	for i, f := range files {
		refs := make([]recordRef, len(f.rows))
		for j, r := range f.rows {
			refs[j] = r.ref
		}
		out.batches[i] = &fileBatch{dir: f.dir, stem: w.instance + "-*", ext: ".parquet", refs: refs, quarantine: f.quarantine, pq: f}
	}
	return out
}

// write writes a batch: a Parquet file, committed whole, or CSV/JSON lines
// appended by w. It returns how many lines (Parquet: rows) landed.
func (e *blobExporter) write(ctx context.Context, b *fileBatch, pl *pushLog) (int, error) {
	if b.pq == nil {
		return e.w.write(ctx, b, pl)
	}
	n, err := e.pq.write(ctx, b.pq)
	if err != nil {
		return 0, err
	}
	e.w.landedRows(b.keys, pl)
	e.tel.appended(ctx, len(b.refs), n)
	return len(b.refs), nil
}

// write encodes f and puts it under its content-derived name; it returns the file's size.
func (w *pqWriter) write(ctx context.Context, f *pqFile) (int, error) {
	data, err := w.fileBytes(f)
	if err != nil {
		return 0, consumererror.NewPermanent(err)
	}
	return len(data), w.store.putFile(ctx, f.dir+"/"+w.fileName(data), data)
}

// validUTF8 replaces each run of invalid UTF-8 with U+FFFD: Parquet strings
// are UTF-8, and readers such as DuckDB refuse files that are not.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
