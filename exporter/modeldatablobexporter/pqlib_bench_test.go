package modeldatablobexporter

import (
	"bytes"
	"math"
	"testing"
	"unsafe"

	"github.com/apache/arrow-go/v18/parquet"
	pqgo "github.com/parquet-go/parquet-go"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// BenchmarkParquetLibraries writes the same grouped push (5,000 rows of 10
// features and the eight $aml_ columns, snappy, dictionaries for strings
// but the ids) with apache/arrow-go (pqarrow, the exporter's writer) and
// with parquet-go: the benchmark behind the choice in docs/benchmarks.md.
func BenchmarkParquetLibraries(b *testing.B) {
	cfg := createDefaultConfig()
	cfg.Format = FormatParquet
	w := newPQWriter(cfg, nil)
	files, _, _ := w.group(makeLogs(benchRows(5000, 10)...))
	f := files[0]
	b.Run("lib=arrow-go", func(b *testing.B) {
		b.ReportAllocs()
		var size int
		for i := 0; i < b.N; i++ {
			data, err := w.fileBytes(f)
			if err != nil {
				b.Fatal(err)
			}
			size = len(data)
		}
		b.ReportMetric(float64(b.N*len(f.rows))/b.Elapsed().Seconds(), "rows/s")
		b.ReportMetric(float64(size)/float64(len(f.rows)), "bytes/row")
	})
	b.Run("lib=parquet-go", func(b *testing.B) {
		b.ReportAllocs()
		var size int
		for i := 0; i < b.N; i++ {
			size = writeParquetGo(b, w, f)
		}
		b.ReportMetric(float64(b.N*len(f.rows))/b.Elapsed().Seconds(), "rows/s")
		b.ReportMetric(float64(size)/float64(len(f.rows)), "bytes/row")
	})
}

// writeParquetGo writes f with parquet-go's row API and the same inferred
// types; parquet-go orders a group's columns by name.
func writeParquetGo(b *testing.B, w *pqWriter, f *pqFile) int {
	group := pqgo.Group{}
	kinds := make([]string, len(f.names))
	for i, name := range f.names {
		var node pqgo.Node
		switch {
		case i < f.features:
			switch f.cols[i].physical() {
			case parquet.Types.Int64:
				node, kinds[i] = pqgo.Int(64), "int"
			case parquet.Types.Double:
				node, kinds[i] = pqgo.Leaf(pqgo.DoubleType), "double"
			case parquet.Types.Boolean:
				node, kinds[i] = pqgo.Leaf(pqgo.BooleanType), "bool"
			default:
				node, kinds[i] = pqgo.Encoded(pqgo.String(), &pqgo.RLEDictionary), "string"
			}
			node = pqgo.Optional(node)
		case name == contract.ColScoringTimestamp:
			node, kinds[i] = pqgo.Timestamp(pqgo.Microsecond), "ts"
		case name == contract.ColCorrelationID || name == contract.ColRequestID:
			node, kinds[i] = pqgo.String(), "aml"
		default:
			node, kinds[i] = pqgo.Encoded(pqgo.String(), &pqgo.RLEDictionary), "aml"
		}
		group[name] = node
	}
	schema := pqgo.NewSchema("row", group)
	index := map[string]int{}
	for c, path := range schema.Columns() {
		index[path[0]] = c
	}
	var buf bytes.Buffer
	pw := pqgo.NewWriter(&buf, schema, pqgo.Compression(&pqgo.Snappy))
	rows := make([]pqgo.Row, 0, 256)
	flush := func() {
		if _, err := pw.WriteRows(rows); err != nil {
			b.Fatal(err)
		}
		rows = rows[:0]
	}
	for r := range f.rows {
		row := make(pqgo.Row, len(f.names))
		for i, name := range f.names {
			c := index[name]
			var v pqgo.Value
			switch kinds[i] {
			case "ts":
				v = pqgo.Int64Value(f.rows[r].ts)
			case "aml":
				s := f.correlation(&f.rows[r], indexOf(name), w.boundary)
				v = pqgo.ByteArrayValue(unsafe.Slice(unsafe.StringData(s), len(s)))
			default:
				col := &f.cols[i]
				k, n := col.kind[r], col.num[r]
				switch {
				case k == valNull:
					row[c] = pqgo.NullValue().Level(0, 0, c)
					continue
				case kinds[i] == "int":
					v = pqgo.Int64Value(int64(n))
				case kinds[i] == "double" && k == valInt:
					v = pqgo.DoubleValue(float64(int64(n)))
				case kinds[i] == "double":
					v = pqgo.DoubleValue(math.Float64frombits(n))
				case kinds[i] == "bool":
					v = pqgo.BooleanValue(n != 0)
				default:
					v = pqgo.ByteArrayValue(col.appendText(nil, r))
				}
				row[c] = v.Level(0, 1, c)
				continue
			}
			row[c] = v.Level(0, 0, c)
		}
		rows = append(rows, row)
		if len(rows) == cap(rows) {
			flush()
		}
	}
	flush()
	if err := pw.Close(); err != nil {
		b.Fatal(err)
	}
	return buf.Len()
}

func indexOf(col string) int {
	for i, c := range contract.CorrelationColumns {
		if c == col {
			return i
		}
	}
	return -1
}
