package modeldatablobexporter

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// duckdbRows are rows of consistent column types (ints, doubles, booleans,
// strings with quotes, newlines and non-ASCII, nulls) over two hours.
func duckdbRows(rng *rand.Rand) []testRow {
	var rows []testRow
	for r := 0; r < 60; r++ {
		ts := day.Add(time.Duration(rng.IntN(7200)) * time.Second).Add(time.Duration(rng.IntN(1e6)) * time.Microsecond)
		id := fmt.Sprintf("r%d", r)
		var note any = []string{"plain", `quo"te, comma`, "line\nbreak", "Zürich ünïcode", ""}[r%5]
		if r%7 == 0 {
			note = nil
		}
		for i := 0; i < 1+r%3; i++ {
			rows = append(rows, testRow{model: "m", version: "2", designation: "inputs", correlationID: "c-" + id, requestID: "q-" + id, ts: ts,
				features: [][2]any{{"age", rng.Int64N(200) - 100}, {"income", rng.NormFloat64() * 1e4}, {"ok", rng.IntN(2) == 0}, {"note", note}}})
		}
		rows = append(rows, testRow{model: "m", version: "2", designation: "predictions", correlationID: "c-" + id, requestID: "q-" + id, ts: ts,
			features: [][2]any{{"score", rng.Float64()}, {"label", []string{"yes", "no"}[r%2]}}})
	}
	return rows
}

// duckdbQuery is the DuckDB query that reads one file of a format.
func duckdbQuery(format, path string) string {
	switch format {
	case FormatCSV:
		return fmt.Sprintf("SELECT * FROM read_csv('%s', header = true, all_varchar = true)", path)
	case FormatMDCJSONL:
		return fmt.Sprintf("SELECT * FROM read_json('%s', format = 'newline_delimited')", path)
	}
	return fmt.Sprintf("SELECT * FROM read_parquet('%s')", path)
}

// TestDuckDBReadsEveryFormat writes the same rows in each format and reads
// every file back with DuckDB (read_csv, read_json, read_parquet), compared
// value by value and type by type with a second reader: encoding/csv,
// encoding/json, parquet-go.
func TestDuckDBReadsEveryFormat(t *testing.T) {
	rows := duckdbRows(rand.New(rand.NewPCG(5, 6)))
	for _, format := range []string{FormatCSV, FormatMDCJSONL, FormatParquet} {
		t.Run(format, func(t *testing.T) {
			cfg := localConfig(t)
			cfg.Format = format
			cfg.MDC.InstanceID = "i"
			e := newTestExporter(t, cfg)
			push(t, e, rows[:len(rows)/2]...)
			push(t, e, rows[len(rows)/2:]...)
			if e.pq != nil {
				commitParquet(t, e) // the two pushes: two row groups of each file
			}
			total := 0
			for _, f := range localFiles(t, cfg) {
				data := readLocal(t, cfg, f)
				res := testutil.DuckDB(t, duckdbQuery(format, filepath.Join(cfg.Local.Directory, cfg.Container, f)))
				switch format {
				case FormatCSV:
					total += compareCSV(t, f, res, parseCSV(t, data))
				case FormatMDCJSONL:
					total += compareMDC(t, f, res, data)
				default:
					total += compareParquet(t, f, res, readParquetGo(t, []byte(data)))
				}
			}
			if total != len(rows) {
				t.Fatalf("DuckDB read %d rows, sent %d", total, len(rows))
			}
		})
	}
}

func compareCSV(t *testing.T, file string, res testutil.DuckDBResult, records [][]string) int {
	t.Helper()
	if fmt.Sprint(res.Names) != fmt.Sprint(records[0]) || len(res.Rows) != len(records)-1 {
		t.Fatalf("%s: DuckDB %v, %d rows; encoding/csv %v, %d rows", file, res.Names, len(res.Rows), records[0], len(records)-1)
	}
	for i, row := range res.Rows {
		for c, v := range row {
			if v == nil {
				v = "" // DuckDB reads an empty cell as NULL
			}
			if v != records[i+1][c] {
				t.Fatalf("%s row %d column %s: DuckDB %q, encoding/csv %q", file, i, res.Names[c], v, records[i+1][c])
			}
		}
	}
	return len(res.Rows)
}

// mdcFieldTypes are the DuckDB types a JSON column of these values gets
// (DuckDB infers HUGEINT or BIGINT for integers).
var mdcFieldTypes = map[string][]string{"int": {"BIGINT", "HUGEINT"}, "double": {"DOUBLE"}, "bool": {"BOOLEAN"}, "string": {"VARCHAR"}}

func compareMDC(t *testing.T, file string, res testutil.DuckDBResult, data string) int {
	t.Helper()
	col := map[string]int{}
	for i, n := range res.Names {
		col[n] = i
	}
	sc := bufio.NewScanner(strings.NewReader(data))
	sc.Buffer(nil, 1<<24)
	rows, line := 0, 0
	kinds := map[string]string{} // field -> the kind of its non-null values
	for ; sc.Scan(); line++ {
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.UseNumber()
		var rec map[string]any
		if err := dec.Decode(&rec); err != nil {
			t.Fatal(err)
		}
		got := res.Rows[line]
		for _, k := range []string{"specversion", "id", "source", "type", "datacontenttype", "correlationid", "xrequestid", "modelversion", "collectdatatype", "agent", "contentrange"} {
			if got[col[k]] != rec[k] {
				t.Fatalf("%s line %d %s: DuckDB %v, encoding/json %v", file, line, k, got[col[k]], rec[k])
			}
		}
		wantTime, _ := time.Parse(time.RFC3339Nano, rec["time"].(string))
		gotTime, err := time.Parse("2006-01-02 15:04:05.999999", got[col["time"]].(string))
		if err != nil || !gotTime.Equal(wantTime) {
			t.Fatalf("%s line %d time: DuckDB %v, encoding/json %v", file, line, got[col["time"]], rec["time"])
		}
		gotData := got[col["data"]].([]any)
		wantData := rec["data"].([]any)
		if len(gotData) != len(wantData) {
			t.Fatalf("%s line %d: %d rows in data, want %d", file, line, len(gotData), len(wantData))
		}
		for i, w := range wantData {
			for k, wv := range w.(map[string]any) {
				gv := gotData[i].(map[string]any)[k]
				kind, equal := "", false
				switch wv := wv.(type) {
				case nil:
					equal = gv == nil
				case json.Number:
					if strings.ContainsAny(string(wv), ".eE") {
						kind = "double"
						f, _ := wv.Float64()
						equal = gv == f
					} else {
						kind = "int"
						equal = gv == string(wv)
					}
				case bool:
					kind, equal = "bool", gv == wv
				case string:
					kind, equal = "string", gv == wv
				}
				if !equal {
					t.Fatalf("%s line %d row %d %s: DuckDB %#v, encoding/json %#v", file, line, i, k, gv, wv)
				}
				if kind != "" {
					kinds[k] = kind
				}
			}
			rows++
		}
	}
	dataType := res.Types[col["data"]]
	for k, kind := range kinds {
		found := false
		for _, typ := range mdcFieldTypes[kind] {
			found = found || strings.Contains(dataType, fmt.Sprintf("%q %s", k, typ))
		}
		if !found {
			t.Fatalf("%s: data type %s lacks %q as %v", file, dataType, k, mdcFieldTypes[kind])
		}
	}
	return rows
}

// duckdbTypes are the DuckDB types of the Parquet types we write.
var duckdbTypes = map[string]string{pqInt64: "BIGINT", pqDouble: "DOUBLE", pqBool: "BOOLEAN", pqString: "VARCHAR", pqTimestamp: "TIMESTAMP WITH TIME ZONE"}

func compareParquet(t *testing.T, file string, res testutil.DuckDBResult, tab pqTable) int {
	t.Helper()
	if fmt.Sprint(res.Names) != fmt.Sprint(tab.names) || len(res.Rows) != len(tab.rows) {
		t.Fatalf("%s: DuckDB %v, %d rows; parquet-go %v, %d rows", file, res.Names, len(res.Rows), tab.names, len(tab.rows))
	}
	for c, typ := range tab.types {
		if res.Types[c] != duckdbTypes[typ] {
			t.Fatalf("%s column %s: DuckDB %s, parquet-go %s", file, tab.names[c], res.Types[c], typ)
		}
	}
	for i, row := range res.Rows {
		for c, v := range row {
			want := tab.rows[i][c]
			var got string
			switch {
			case v == nil:
				got = "null"
			case want.typ == pqTimestamp:
				ts, err := time.Parse("2006-01-02 15:04:05.999999-07", v.(string))
				if err != nil {
					t.Fatal(err)
				}
				got = ts.UTC().Format(time.RFC3339Nano)
			case want.typ == pqDouble:
				got = strconv.FormatFloat(v.(float64), 'g', -1, 64)
				w, _ := strconv.ParseFloat(want.val, 64)
				want.val = strconv.FormatFloat(w, 'g', -1, 64)
			default:
				got = fmt.Sprint(v)
			}
			if got != want.val {
				t.Fatalf("%s row %d column %s: DuckDB %q, parquet-go %q", file, i, tab.names[c], got, want.val)
			}
		}
	}
	return len(res.Rows)
}
