package modeldatablobexporter

import (
	"encoding/json"
	"slices"
	"testing"
)

// TestIntegerPastInt64InEveryFormat: the receiver keeps a JSON integer past
// int64 as its digits, a string value; in a column of integers it is
// written digit for digit in every format: a CSV cell, a JSON string in the
// MDC record, and a Parquet string column (the file's type inference makes
// the whole column strings, the other integers in decimal).
func TestIntegerPastInt64InEveryFormat(t *testing.T) {
	const big = "123456789012345678901234567890"
	row := func(id any) testRow {
		return testRow{model: "m", version: "1", designation: "inputs", correlationID: "c", requestID: "r", ts: day,
			features: [][2]any{{"id", id}}}
	}
	rows := []testRow{row(int64(1)), row(big), row(int64(-2)), row("-9223372036854775809")}
	for _, format := range []string{FormatCSV, FormatMDCJSONL, FormatParquet} {
		t.Run(format, func(t *testing.T) {
			cfg := localConfig(t)
			cfg.Format = format
			cfg.MDC.InstanceID = "i"
			e := newTestExporter(t, cfg)
			push(t, e, rows...)
			if format == FormatParquet {
				commitParquet(t, e)
			}
			files := localFiles(t, cfg)
			if len(files) != 1 {
				t.Fatalf("files %v", files)
			}
			data := readLocal(t, cfg, files[0])
			want := []string{"1", big, "-2", "-9223372036854775809"}
			var got []string
			switch format {
			case FormatCSV:
				for _, rec := range parseCSV(t, data)[1:] {
					got = append(got, rec[0])
				}
			case FormatMDCJSONL:
				var rec struct{ Data []map[string]json.RawMessage }
				if err := json.Unmarshal([]byte(data), &rec); err != nil {
					t.Fatalf("%v: %s", err, data)
				}
				for _, r := range rec.Data {
					got = append(got, string(r["id"]))
				}
				want = []string{"1", `"` + big + `"`, "-2", `"-9223372036854775809"`}
			case FormatParquet:
				tab, _ := readBoth(t, []byte(data))
				if tab.types[0] != pqString {
					t.Errorf("column type %s, want %s", tab.types[0], pqString)
				}
				for _, r := range tab.rows {
					got = append(got, r[0].val)
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("values %q, want %q", got, want)
			}
		})
	}
}
