package modeldatablobexporter

import (
	"encoding/csv"
	"strings"
	"testing"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// FuzzEncode feeds client-controlled strings (path parts, feature names and
// values) to the CSV writer and checks what must hold for any input: every
// batch parses back as CSV with one record per row, each as wide as its
// header; a string cell reads back as it was sent (only CRLF inside a cell
// becomes LF, as every CSV reader does); no folder is outside the layout.
func FuzzEncode(f *testing.F) {
	f.Add("best_model", "10", "inputs", "age", "city", "31", "Redmond, WA", false)
	f.Add("../etc", "1", "in/puts", "=cmd", "a\"b", "-1+2", "line\r\nbreak", true)
	f.Add("m", "", "", "same", "same", "\x00", "\xff\xfe", false)
	f.Fuzz(func(t *testing.T, model, version, designation, name1, name2, value1, value2 string, neutralizeFormulas bool) {
		cfg := createDefaultConfig()
		cfg.NeutralizeFormulas = neutralizeFormulas
		row := testRow{model: model, version: version, designation: designation, ts: day, requestID: "r",
			features: [][2]any{{name1, value1}, {name2, value2}}}
		enc := newEncoder(cfg).encode(makeLogs(row, row))

		rows := 0
		for _, b := range enc.batches {
			for _, segment := range strings.Split(b.dir, "/") {
				if segment == "" || segment == "." || segment == ".." {
					t.Fatalf("folder %q has segment %q", b.dir, segment)
				}
			}
			if !b.quarantine && !strings.HasPrefix(b.dir, strings.ToLower(cfg.SubscriptionID)+"/") {
				t.Fatalf("folder %q is outside the layout", b.dir)
			}
			header, err := csv.NewReader(strings.NewReader(string(b.header))).Read()
			if err != nil {
				t.Fatalf("header %q: %v", b.header, err)
			}
			records, err := csv.NewReader(strings.NewReader(b.body.String())).ReadAll()
			if err != nil {
				t.Fatalf("body %q: %v", b.body.String(), err)
			}
			if len(records) != len(b.refs) {
				t.Fatalf("%d records for %d rows in %q", len(records), len(b.refs), b.body.String())
			}
			for _, r := range records {
				if len(r) != len(header) {
					t.Fatalf("record %q is %d wide, header %q is %d", r, len(r), header, len(header))
				}
			}
			rows += len(records)
			// A reader turns CRLF inside a quoted cell into LF, in the
			// header's names as in the values.
			read1, read2 := strings.ReplaceAll(name1, "\r\n", "\n"), strings.ReplaceAll(name2, "\r\n", "\n")
			if b.quarantine || neutralizeFormulas || read1 == read2 {
				continue
			}
			for c, name := range header[:len(header)-len(contract.CorrelationColumns)] {
				want := map[string]string{read1: value1, read2: value2}[name]
				want = strings.ReplaceAll(want, "\r\n", "\n")
				if got := records[0][c]; got != want {
					t.Fatalf("column %q: read back %q, sent %q", name, got, want)
				}
			}
		}
		if rows+enc.notModelData != 2 {
			t.Fatalf("%d rows written, %d ignored, of 2", rows, enc.notModelData)
		}
	})
}
