package modeldatablobexporter

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

const dayDir = "00000000-0000-0000-0000-000000000000/local/local/local/m/1/"

func TestFormulaNeutralization(t *testing.T) {
	cells := [][2]any{{"f", "=HYPERLINK(\"x\")"}, {"p", "+1+2"}, {"at", "@SUM(A1)"}, {"neg", "-12.5"}, {"negint", int64(-3)},
		{"dash", "-x"}, {"plain", "ok"}, {"tab", "\tx"}}
	tests := []struct {
		on   bool
		want string
	}{
		{false, `"=HYPERLINK(""x"")",+1+2,@SUM(A1),-12.5,-3,-x,ok,"	x",=c,`},
		{true, `"'=HYPERLINK(""x"")",'+1+2,'@SUM(A1),-12.5,-3,'-x,ok,'	x,'=c,`},
	}
	for _, tt := range tests {
		cfg := localConfig(t)
		cfg.NeutralizeFormulas = tt.on
		push(t, newTestExporter(t, cfg), testRow{model: "m", version: "1", ts: day, correlationID: "=c", features: cells})
		lines := strings.Split(readLocal(t, cfg, dayDir+"general/2018/12/31/data.csv"), "\r\n")
		if !strings.HasPrefix(lines[1], tt.want) {
			t.Errorf("neutralize_formulas %v: got %q, want prefix %q", tt.on, lines[1], tt.want)
		}
	}
}

// TestSchemaChange: a row with another feature set never lands under a
// header that does not describe it; it goes to data.<schema-hash>.csv.
func TestSchemaChange(t *testing.T) {
	cfg := localConfig(t)
	e := newTestExporter(t, cfg)
	push(t, e, testRow{model: "m", version: "1", ts: day, features: [][2]any{{"a", 1}, {"b", 2}}})
	push(t, e, testRow{model: "m", version: "1", ts: day, features: [][2]any{{"a", 1}, {"b", 2}, {"c", 3}}})
	// A new process (no cache) with the second schema finds the suffixed file.
	push(t, newTestExporter(t, cfg), testRow{model: "m", version: "1", ts: day, features: [][2]any{{"a", 4}, {"b", 5}, {"c", 6}}})
	push(t, newTestExporter(t, cfg), testRow{model: "m", version: "1", ts: day, features: [][2]any{{"a", 7}, {"b", 8}}})

	hdr3 := "a,b,c," + strings.Join(contract.CorrelationColumns, ",") + "\r\n"
	suffixed := "data." + schemaHash([]byte(hdr3)) + ".csv"
	dir := dayDir + "general/2018/12/31/"
	if got, want := localFiles(t, cfg), []string{dir + suffixed, dir + "data.csv"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("files %q, want %q", got, want)
	}
	for name, want := range map[string][]string{"data.csv": {"a,b,", "1,2,", "7,8,"}, suffixed: {"a,b,c,", "1,2,3,", "4,5,6,"}} {
		records := strings.Split(strings.TrimSuffix(readLocal(t, cfg, dir+name), "\r\n"), "\r\n")
		if len(records) != len(want) {
			t.Fatalf("%s: %q", name, records)
		}
		for i, prefix := range want {
			if !strings.HasPrefix(records[i], prefix) || (i == 0) != strings.Contains(records[i], "$aml") {
				t.Fatalf("%s line %d: %q, want prefix %q", name, i, records[i], prefix)
			}
		}
	}
}

func TestLocalQuarantine(t *testing.T) {
	cfg := localConfig(t)
	e, tt := newTestExporterTel(t, cfg)
	push(t, e,
		testRow{model: "m", version: "1", designation: "in\x00puts", ts: day, requestID: "r1", features: [][2]any{{"a", 1}}},
		testRow{model: "m", ts: day, requestID: "r2", features: [][2]any{{"a", 2}}},
		testRow{resource: map[string]string{contract.AttrWorkspace: "a/b"}, model: "m", version: "1", ts: day, requestID: "r3", features: [][2]any{{"a", 3}}},
		testRow{model: "m", version: "1", ts: day, requestID: "ok", features: [][2]any{{"a", 4}}},
	)
	records := parseCSV(t, readLocal(t, cfg, "quarantine/2018/12/31/data.csv"))
	reasons := []string{}
	for _, r := range records[1:] {
		reasons = append(reasons, r[len(r)-2]+": "+r[len(r)-1])
	}
	want := []string{
		`r1: invalid path segment: designation "in\x00puts" contains U+0000`,
		"r2: model version is missing",
		`r3: invalid path segment: workspace "a/b" contains U+002F`,
	}
	if !reflect.DeepEqual(reasons, want) {
		t.Fatalf("quarantine reasons %q, want %q", reasons, want)
	}
	if n := counter(t, tt, "otelcol_modeldatablob_rows_quarantined"); n != 3 {
		t.Fatalf("quarantined counter %d", n)
	}
	if n := counter(t, tt, "otelcol_modeldatablob_rows_written"); n != 4 {
		t.Fatalf("written counter %d", n)
	}
}

func TestHourlyAndFileName(t *testing.T) {
	cfg := localConfig(t)
	cfg.Hourly = true
	cfg.FileName = "{designation}.csv"
	push(t, newTestExporter(t, cfg),
		testRow{model: "m", version: "1", designation: "inputs", ts: day, features: [][2]any{{"a", 1}}},
		testRow{model: "m", version: "1", designation: "labels", ts: day.Add(-3600e9), features: [][2]any{{"a", 1}}})
	want := []string{dayDir + "inputs/2018/12/31/23/inputs.csv", dayDir + "labels/2018/12/31/22/labels.csv"}
	if got := localFiles(t, cfg); !reflect.DeepEqual(got, want) {
		t.Fatalf("files %q, want %q", got, want)
	}
	if r := parseCSV(t, readLocal(t, cfg, want[0])); r[1][3] != contract.BoundaryHour {
		t.Fatalf("boundary %q", r[1][3])
	}
}

// TestPerWriterFileName: "{writer}" in file_name gives each collector its
// own file (writer_id, else the host name); a schema change and a roll keep
// the writer's name, so the glob data*.csv still reads every file.
func TestPerWriterFileName(t *testing.T) {
	host := hostSegment()
	tests := []struct {
		name, fileName, writerID string
		want                     []string
	}{
		{"writer id", "data-{writer}.csv", "aks-node-3", []string{"data-aks-node-3.ae9f6aeb.csv", "data-aks-node-3.csv"}},
		{"host name", "data-{writer}.csv", "", []string{"data-" + host + ".ae9f6aeb.csv", "data-" + host + ".csv"}},
		{"with designation", "{designation}-{writer}.csv", "n1", []string{"inputs-n1.ae9f6aeb.csv", "inputs-n1.csv"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := localConfig(t)
			cfg.FileName, cfg.WriterID = tc.fileName, tc.writerID
			e := newTestExporter(t, cfg)
			push(t, e, testRow{model: "m", version: "1", designation: "inputs", ts: day, features: [][2]any{{"a", 1}}})
			push(t, e, testRow{model: "m", version: "1", designation: "inputs", ts: day, features: [][2]any{{"b", 2}}})
			var got []string
			for _, f := range localFiles(t, cfg) {
				got = append(got, f[strings.LastIndex(f, "/")+1:])
			}
			slices.Sort(got)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("files %q, want %q", got, tc.want)
			}
		})
	}
}

// TestSplitAndRollLocal: appends are split at line boundaries below
// max_append_size, and files roll by size (local files roll like blobs).
func TestSplitAndRollLocal(t *testing.T) {
	cfg := localConfig(t)
	cfg.MaxAppendSize = 300
	cfg.MaxFileSize = 1000
	e, tt := newTestExporterTel(t, cfg)
	var rows []testRow
	for i := 0; i < 40; i++ {
		rows = append(rows, testRow{model: "m", version: "1", ts: day, requestID: strings.Repeat("r", 5) + string(rune('A'+i)),
			features: [][2]any{{"a", i}}})
	}
	push(t, e, rows...)
	files := localFiles(t, cfg)
	if len(files) < 3 {
		t.Fatalf("want rolled files, got %q", files)
	}
	total := 0
	for _, f := range files {
		data := readLocal(t, cfg, f)
		if len(data) > 1000 {
			t.Fatalf("%s is %d bytes, over max_file_size", f, len(data))
		}
		records := parseCSV(t, data)
		if records[0][0] != "a" {
			t.Fatalf("%s has no header", f)
		}
		total += len(records) - 1
	}
	if total != 40 {
		t.Fatalf("rows %d, want 40", total)
	}
	if n := counter(t, tt, "otelcol_modeldatablob_appends"); n < 8 {
		t.Fatalf("appends %d: batch not split at max_append_size", n)
	}
}

func TestNotModelDataIgnored(t *testing.T) {
	cfg := localConfig(t)
	ld := makeLogs(testRow{model: "m", version: "1", ts: day, features: [][2]any{{"a", 1}}})
	ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().AppendEmpty().Body().SetStr("just a log line")
	e := newTestExporter(t, cfg)
	if err := e.push(t.Context(), ld); err != nil {
		t.Fatal(err)
	}
	if files := localFiles(t, cfg); len(files) != 1 {
		t.Fatalf("files %q", files)
	}
}
