package modeldatablobexporter

import (
	"bytes"
	"encoding/csv"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// csvLine is the reference for appendLine: encoding/csv's Writer, with the
// record terminator made CRLF (and newlines inside cells kept).
func csvLine(t testing.TB, cells []string) string {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if err := w.Write(cells); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	return strings.TrimSuffix(buf.String(), "\n") + "\r\n"
}

// pieces are the strings random cells are made of: CSV specials, spaces
// (ASCII and Unicode), formula starters, multi-byte and invalid UTF-8.
var pieces = []string{"", "a", "Redmond, WA", `say "hi"`, `"`, `""`, ",", "line\nbreak", "cr\rx", "crlf\r\n", " lead", "trail ",
	"\ttab", "\u00a0nbsp", "\u3000ideo", "\u2028ls", "\x85nel", `\.`, `\.x`, `\`, ".", "=cmd", "+1", "-1", "-x", "@sum", "\rCR",
	"ünï", "\xff\xfe", "1e5", "-inf", "nan", "0.5", "\x00"}

func randomString(rng *rand.Rand) string {
	var b strings.Builder
	for range rng.IntN(4) {
		b.WriteString(pieces[rng.IntN(len(pieces))])
	}
	return b.String()
}

func TestAppendLineMatchesEncodingCSV(t *testing.T) {
	records := [][]string{{""}, {"", ""}, {`\.`}, {" "}, {"\u00a0"}, {"a", "b"}, {`"`}, {"\r\n"}, {"x\ny", "", `\.`}}
	for _, p := range pieces {
		records = append(records, []string{p}, []string{p, p})
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 5000 {
		rec := make([]string, 1+rng.IntN(6))
		for i := range rec {
			rec[i] = randomString(rng)
		}
		records = append(records, rec)
	}
	for _, rec := range records {
		if got, want := string(appendLine([]byte("prefix"), rec)), "prefix"+csvLine(t, rec); got != want {
			t.Fatalf("%q:\n got %q\nwant %q", rec, got, want)
		}
	}
}

func FuzzAppendLine(f *testing.F) {
	f.Add("a", "Redmond, WA", `say "hi"`)
	f.Add(`\.`, " lead", "crlf\r\n")
	f.Add("", "\u3000", "\xff")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		for _, rec := range [][]string{{a}, {a, b, c}} {
			if got, want := string(appendLine(nil, rec)), csvLine(t, rec); got != want {
				t.Fatalf("%q:\n got %q\nwant %q", rec, got, want)
			}
		}
	})
}

func randomValue(rng *rand.Rand) any {
	switch rng.IntN(9) {
	case 0, 1:
		return randomString(rng)
	case 2:
		return int64(rng.Uint64()) >> rng.IntN(64)
	case 3:
		return []float64{0, -1.5, 1234567, 1e21, -1e-7, 0.000123, 3.5e7, math.NaN(), math.Inf(1), math.Inf(-1)}[rng.IntN(10)]
	case 4:
		return math.Float64frombits(rng.Uint64())
	case 5:
		return rng.IntN(2) == 0
	case 6:
		return nil
	case 7:
		return []any{int64(1), randomString(rng)}
	default:
		return map[string]any{"k": randomString(rng)}
	}
}

// referenceLine is a row's line written the plain way, the reference the
// encoder's append-style writer is compared with: every cell formatted by
// contract.FormatValue, neutralized when configured, written by csv.Writer.
func referenceLine(t testing.TB, cfg *Config, ld plog.Logs, b *fileBatch, ref recordRef) string {
	e := newEncoder(cfg)
	rl := ld.ResourceLogs().At(ref.rl)
	lr := rl.ScopeLogs().At(ref.sl).LogRecords().At(ref.lr)
	row, _ := contract.ReadRow(lr)
	p := e.resourceParts(rl.Resource().Attributes())
	p.ModelName, p.ModelVersion, p.Designation = row.ModelName, row.ModelVersion, row.Designation
	var cells []string
	for _, name := range contract.ColumnOrder(row.FeatureNames, lr.Body()) {
		cell := ""
		if lr.Body().Type() == pcommon.ValueTypeMap {
			if v, ok := lr.Body().Map().Get(name); ok {
				cell = contract.FormatValue(v)
			}
		}
		cells = append(cells, cell)
	}
	requestID := contract.RequestIDOrNil(row.RequestID)
	cells = append(cells, row.CorrelationID, contract.FormatTimestamp(row.Timestamp), e.boundary,
		b.workspace, p.Webservice, p.ModelName, p.ModelVersion, requestID)
	if b.quarantine {
		cells = append(cells, contract.QuarantineReason(p))
	}
	if cfg.NeutralizeFormulas {
		for i := range cells {
			cells[i] = neutralize(cells[i])
		}
	}
	return csvLine(t, cells)
}

// TestEncodeMatchesReference encodes random pushes (every value type, CSV
// specials, formulas, quarantined rows, undeclared and missing columns,
// several files per push) and checks every line byte for byte against
// referenceLine, and every header against encoding/csv.
func TestEncodeMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	names := []string{"f0", "f1", "f2", "a,b", `q"n`, " sp", "=x"}
	for trial := range 300 {
		cfg := createDefaultConfig()
		cfg.NeutralizeFormulas = rng.IntN(2) == 0
		cfg.Hourly = rng.IntN(4) == 0
		var rows []testRow
		for range 1 + rng.IntN(40) {
			r := testRow{
				model:         []string{"m", "best_model", "../bad", ""}[rng.IntN(4)],
				version:       []string{"1", "2", ""}[rng.IntN(3)],
				designation:   []string{"inputs", "predictions", "in/puts"}[rng.IntN(3)],
				correlationID: randomString(rng),
				requestID:     []string{"", "r-1", randomString(rng)}[rng.IntN(3)],
				ts:            day.Add(time.Duration(rng.IntN(3)) * time.Hour),
			}
			if rng.IntN(4) == 0 {
				r.resource = map[string]string{contract.AttrWebservice: []string{"svc", "Svc, x", "=w"}[rng.IntN(3)]}
			}
			for _, i := range rng.Perm(len(names))[:rng.IntN(len(names)+1)] {
				r.features = append(r.features, [2]any{names[i], randomValue(rng)})
			}
			if rng.IntN(5) == 0 {
				r.undeclared = [][2]any{{"zz", randomValue(rng)}}
			}
			r.noFeatureNames = rng.IntN(8) == 0
			rows = append(rows, r)
			if rng.IntN(3) == 0 { // consecutive rows of one request
				r.correlationID = randomString(rng)
				rows = append(rows, r)
			}
		}
		ld := makeLogs(rows...)
		enc := newEncoder(cfg).encode(ld)
		total := enc.notModelData
		for _, b := range enc.batches {
			total += len(b.refs)
			hdr, err := csv.NewReader(bytes.NewReader(b.header)).Read()
			if err != nil {
				t.Fatalf("trial %d: header %q: %v", trial, b.header, err)
			}
			if want := csvLine(t, hdr); string(b.header) != want {
				t.Fatalf("trial %d: header\n got %q\nwant %q", trial, b.header, want)
			}
			start := 0
			for i, ref := range b.refs {
				got := b.body.String()[start:b.lineEnds[i]]
				start = b.lineEnds[i]
				if want := referenceLine(t, cfg, ld, b, ref); got != want {
					t.Fatalf("trial %d, %s row %d (neutralize %v):\n got %q\nwant %q", trial, b.dir, i, cfg.NeutralizeFormulas, got, want)
				}
			}
			if start != b.body.Len() {
				t.Fatalf("trial %d: %d bytes after the last line", trial, b.body.Len()-start)
			}
		}
		if total != ld.LogRecordCount() {
			t.Fatalf("trial %d: %d rows encoded or skipped of %d", trial, total, ld.LogRecordCount())
		}
	}
}
