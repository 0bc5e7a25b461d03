package modeldatablobexporter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	pqgo "github.com/parquet-go/parquet-go"
	"go.opentelemetry.io/collector/consumer/consumererror"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// cell is one value read back: its column's type and the value as text.
type cell struct{ typ, val string }

// pqTable is a Parquet file as the parquet-go library (the second
// implementation) reads it: column names and types in file order, rows.
type pqTable struct {
	names []string
	types []string
	rows  [][]cell
}

// readParquetGo reads a whole file with parquet-go.
func readParquetGo(t testing.TB, data []byte) pqTable {
	t.Helper()
	f, err := pqgo.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var tab pqTable
	for _, el := range f.Metadata().Schema[1:] {
		typ := el.Type.V.String()
		if lt := el.LogicalType.String(); lt != "" && lt != "<nil>" {
			typ += "/" + lt
		}
		tab.names = append(tab.names, el.Name)
		tab.types = append(tab.types, typ)
	}
	for _, rg := range f.RowGroups() {
		rows := rg.Rows()
		buf := make([]pqgo.Row, 64)
		for {
			n, err := rows.ReadRows(buf)
			for _, r := range buf[:n] {
				out := make([]cell, len(tab.names))
				for _, v := range r {
					c := cell{typ: tab.types[v.Column()]}
					switch {
					case v.IsNull():
						c.val = "null"
					case strings.HasPrefix(c.typ, "INT64/TIMESTAMP"):
						c.val = time.UnixMicro(v.Int64()).UTC().Format(time.RFC3339Nano)
					case c.typ == pqInt64:
						c.val = fmt.Sprint(v.Int64())
					case c.typ == "DOUBLE":
						c.val = fmt.Sprint(v.Double())
					case c.typ == "BOOLEAN":
						c.val = fmt.Sprint(v.Boolean())
					default:
						c.val = string(v.ByteArray())
					}
					out[v.Column()] = c
				}
				tab.rows = append(tab.rows, out)
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		_ = rows.Close()
	}
	return tab
}

// Parquet type names as read back, per inferred type.
const (
	pqInt64     = "INT64/INT(64,true)"
	pqDouble    = "DOUBLE"
	pqBool      = "BOOLEAN"
	pqString    = "BYTE_ARRAY/STRING"
	pqTimestamp = "INT64/TIMESTAMP(isAdjustedToUTC=true,unit=MICROS)"
)

// expectedCells is what a row must read back as, given its file's column types.
func expectedCells(r testRow, names, types []string, boundary string, cfg *Config) []cell {
	feat := map[string]any{}
	for _, f := range append(r.features, r.undeclared...) {
		feat[f[0].(string)] = f[1]
	}
	parts := contract.PathParts{SubscriptionID: cfg.SubscriptionID, ResourceGroup: cfg.ResourceGroup, Workspace: cfg.Workspace}
	requestID := contract.RequestIDOrNil(r.requestID)
	aml := map[string]string{contract.ColCorrelationID: r.correlationID, contract.ColScoringTimestamp: r.ts.UTC().Format(time.RFC3339Nano),
		contract.ColBoundary: boundary, contract.ColWorkspace: parts.WorkspaceColumn(), contract.ColServiceName: cfg.Webservice,
		contract.ColModelName: r.model, contract.ColModelVersion: r.version, contract.ColRequestID: requestID}
	out := make([]cell, len(names))
	for i, n := range names {
		if v, ok := aml[n]; ok {
			out[i] = cell{types[i], v}
			continue
		}
		v, ok := feat[n]
		if !ok || v == nil {
			out[i] = cell{types[i], "null"}
			continue
		}
		switch types[i] {
		case pqDouble:
			switch x := v.(type) {
			case int64:
				v = float64(x)
			}
			out[i] = cell{types[i], fmt.Sprint(v)}
		case pqString:
			switch x := v.(type) {
			case bool:
				out[i] = cell{types[i], map[bool]string{true: "True", false: "False"}[x]}
			case float64:
				out[i] = cell{types[i], contract.FormatFloat(x)}
			case string:
				out[i] = cell{types[i], strings.ToValidUTF8(x, "\uFFFD")}
			default:
				out[i] = cell{types[i], fmt.Sprint(v)}
			}
		default:
			out[i] = cell{types[i], fmt.Sprint(v)}
		}
	}
	return out
}

// pqPushes are rows of three schemas (one with a type that changes between
// pushes), over two days, some values missing.
func pqPushes(rng *rand.Rand) [][]testRow {
	var pushes [][]testRow
	for p := 0; p < 3; p++ {
		var rows []testRow
		for r := 0; r < 40; r++ {
			ts := day.Add(time.Duration(rng.IntN(3600*3)) * time.Second).Add(time.Duration(rng.IntN(1e6)) * time.Microsecond)
			id := fmt.Sprintf("p%d-r%d", p, r)
			var income any = rng.Float64() * 1e5
			if p == 2 && r%2 == 0 {
				income = rng.Int64N(1e6) // ints and doubles in one column: double
			}
			var note any = randomString(rng)
			if r%4 == 0 {
				note = nil
			}
			// repeated strings with nulls: a dictionary column with nulls
			var city any = []string{"Oslo", "Lima", "Pune"}[rng.IntN(3)]
			if r%5 == 0 {
				city = nil
			}
			rows = append(rows, testRow{model: "m", version: "1", designation: "inputs", correlationID: "c-" + id, requestID: "r-" + id, ts: ts,
				features: [][2]any{{"age", rng.Int64N(100)}, {"income", income}, {"ok", rng.IntN(2) == 0}, {"note", note}, {"city", city}}})
			// mixed types in one column become strings
			var mixed any = rng.IntN(10)
			if r%3 == 0 {
				mixed = "ten"
			}
			rows = append(rows, testRow{model: "m", version: "1", designation: "predictions", correlationID: "c-" + id, ts: ts,
				features: [][2]any{{"score", rng.Float64()}, {"mixed", mixed}}})
		}
		pushes = append(pushes, rows)
	}
	return pushes
}

// fixInts turns the int values of testRows into int64 as pdata stores them.
func fixInts(pushes [][]testRow) {
	for _, rows := range pushes {
		for _, r := range rows {
			for i, f := range r.features {
				if v, ok := f[1].(int); ok {
					r.features[i][1] = int64(v)
				}
			}
		}
	}
}

func TestParquetReadBackWithParquetGo(t *testing.T) {
	for _, tc := range []struct{ backend, layout, compression string }{
		{BackendLocal, LayoutV1, CompressionSnappy},
		{BackendLocal, LayoutV2, CompressionZstd},
		{BackendAzBlob, LayoutV1, CompressionZstd},
		{BackendAzBlob, LayoutV2, CompressionSnappy},
	} {
		t.Run(tc.backend+"/"+tc.layout+"/"+tc.compression, func(t *testing.T) {
			cfg, files := formatTestConfig(t, tc.backend)
			cfg.Format = FormatParquet
			cfg.Parquet.Layout, cfg.Parquet.Compression = tc.layout, tc.compression
			cfg.MDC.InstanceID = "pod-a"
			e := newTestExporter(t, cfg)
			pushes := pqPushes(rand.New(rand.NewPCG(3, 4)))
			fixInts(pushes)
			for _, rows := range pushes {
				push(t, e, rows...)
			}
			commitParquet(t, e)
			got := map[string]bool{}
			n := 0
			for name, data := range files() {
				if !strings.HasSuffix(name, ".parquet") || !strings.Contains(name, "/pod-a-") {
					t.Fatalf("unexpected file %s", name)
				}
				tab := readParquetGo(t, []byte(data))
				for _, r := range tab.rows {
					got[fmt.Sprint(tab.names, r)] = true
					n++
				}
			}
			boundary := contract.BoundaryDay
			if tc.layout == LayoutV2 {
				boundary = contract.BoundaryHour
			}
			want := 0
			for _, rows := range pushes {
				for _, r := range rows {
					want++
					// The file's column types are those inferred for its rows:
					// find the row under each plausible typing.
					if !anyTyping(got, r, boundary, cfg) {
						t.Fatalf("row %+v not read back", r)
					}
				}
			}
			if n != want {
				t.Fatalf("read %d rows, sent %d", n, want)
			}
		})
	}
}

// anyTyping reports whether got holds r under one of the typings its
// columns can have.
func anyTyping(got map[string]bool, r testRow, boundary string, cfg *Config) bool {
	var names []string
	for _, f := range r.features {
		names = append(names, f[0].(string))
	}
	names = append(names, contract.CorrelationColumns...)
	options := [][]string{}
	var rec func(i int, acc []string)
	rec = func(i int, acc []string) {
		if i == len(names) {
			options = append(options, append([]string(nil), acc...))
			return
		}
		switch {
		case names[i] == contract.ColScoringTimestamp:
			rec(i+1, append(acc, pqTimestamp))
		case i >= len(r.features):
			rec(i+1, append(acc, pqString))
		default:
			for _, typ := range []string{pqInt64, pqDouble, pqBool, pqString} {
				rec(i+1, append(acc, typ))
			}
		}
	}
	rec(0, nil)
	for _, types := range options {
		if got[fmt.Sprint(names, expectedCells(r, names, types, boundary, cfg))] {
			return true
		}
	}
	return false
}

// formatTestConfig is a local or Azurite config and a reader of every file it wrote.
func formatTestConfig(t *testing.T, backend string) (*Config, func() map[string]string) {
	if backend == BackendLocal {
		cfg := localConfig(t)
		return cfg, func() map[string]string {
			out := map[string]string{}
			for _, f := range localFiles(t, cfg) {
				out[f] = readLocal(t, cfg, f)
			}
			return out
		}
	}
	az := testutil.StartAzurite(t)
	cfg := azuriteConfig(az)
	return cfg, func() map[string]string { return readBlobs(t, az, cfg.Container) }
}

func TestParquetTypesAndLayout(t *testing.T) {
	cfg := localConfig(t)
	cfg.Format = FormatParquet
	cfg.MDC.InstanceID = "i"
	e := newTestExporter(t, cfg)
	push(t, e, testRow{model: "m", version: "1", designation: "inputs", correlationID: "c", requestID: "r", ts: day,
		features: [][2]any{{"i", int64(1)}, {"d", 1.5}, {"b", true}, {"s", "x"}, {"n", nil}, {"mix", int64(2)}}},
		testRow{model: "m", version: "1", designation: "inputs", correlationID: "c", ts: day,
			features: [][2]any{{"i", int64(2)}, {"d", int64(3)}, {"b", false}, {"s", "y"}, {"n", nil}, {"mix", "z"}}})
	commitParquet(t, e)
	files := localFiles(t, cfg)
	if len(files) != 1 || !strings.HasPrefix(files[0], "00000000-0000-0000-0000-000000000000/local/local/local/m/1/inputs/2018/12/31/i-") {
		t.Fatalf("files %v", files)
	}
	tab := readParquetGo(t, []byte(readLocal(t, cfg, files[0])))
	wantNames := append([]string{"i", "d", "b", "s", "n", "mix"}, contract.CorrelationColumns...)
	wantTypes := []string{pqInt64, pqDouble, pqBool, pqString, pqString, pqString,
		pqString, pqTimestamp, pqString, pqString, pqString, pqString, pqString, pqString}
	if fmt.Sprint(tab.names) != fmt.Sprint(wantNames) || fmt.Sprint(tab.types) != fmt.Sprint(wantTypes) {
		t.Fatalf("columns %v %v", tab.names, tab.types)
	}
	if got := fmt.Sprint(tab.rows[1][:6]); got != "[{INT64/INT(64,true) 2} {DOUBLE 3} {BOOLEAN false} {BYTE_ARRAY/STRING y} {BYTE_ARRAY/STRING null} {BYTE_ARRAY/STRING z}]" {
		t.Fatalf("row 2: %s", got)
	}
	if got := tab.rows[0][7].val; got != "2018-12-31T23:59:59.123456Z" {
		t.Fatalf("scoring timestamp %s", got)
	}
}

// commitParquet commits every open Parquet file of e.
func commitParquet(t testing.TB, e *blobExporter) {
	t.Helper()
	if err := e.pq.commitAll(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A retried batch stages its groups again in the same places: never two
// copies. max_rows closes a file; a schema change commits the open file and
// starts another.
func TestParquetRetrySchemaChangeAndLimits(t *testing.T) {
	for _, backend := range []string{BackendLocal, BackendAzBlob} {
		t.Run(backend, func(t *testing.T) {
			cfg, files := formatTestConfig(t, backend)
			cfg.Format = FormatParquet
			cfg.Parquet.MaxRows = 3
			e := newTestExporter(t, cfg)
			row := func(v any) testRow {
				return testRow{model: "m", version: "1", designation: "inputs", correlationID: "c", ts: day, features: [][2]any{{"a", v}}}
			}
			// The first attempt stages both groups, but its answers are lost.
			store := e.pq.store
			e.pq.store = &answerLostFileStore{blockStore: store, landed: true}
			err := e.push(context.Background(), makeLogs(row(int64(1)), row(int64(2)), row(int64(3)), row(int64(4))))
			var retry consumererror.Logs
			if !errors.As(err, &retry) {
				t.Fatalf("first attempt: %v", err)
			}
			e.pq.store = store
			if err := e.push(context.Background(), retry.Data()); err != nil {
				t.Fatal(err)
			}
			if got := files(); len(got) != 1 {
				t.Fatalf("the file at max_rows 3 is committed, the other open: %v", got)
			}
			push(t, e, row("text")) // another type: the open file is committed
			if got := files(); len(got) != 2 {
				t.Fatalf("schema change: %v", got)
			}
			commitParquet(t, e)
			got := files()
			if len(got) != 3 {
				t.Fatalf("after the commit: %v", got)
			}
			var rows []string
			for _, data := range got {
				tab, _ := readBoth(t, []byte(data))
				for _, r := range tab.rows {
					rows = append(rows, r[0].val)
				}
			}
			slices.Sort(rows)
			if !slices.Equal(rows, []string{"1", "2", "3", "4", "text"}) {
				t.Fatalf("rows %v", rows)
			}
		})
	}
}

func TestParquetQuarantine(t *testing.T) {
	cfg := localConfig(t)
	cfg.Format = FormatParquet
	cfg.MDC.InstanceID = "i"
	e := newTestExporter(t, cfg)
	push(t, e, testRow{model: "m", designation: "inputs", correlationID: "c", ts: day, features: [][2]any{{"a", int64(1)}}})
	commitParquet(t, e)
	files := localFiles(t, cfg)
	if len(files) != 1 || !strings.HasPrefix(files[0], "quarantine/2018/12/31/i-") {
		t.Fatalf("files %v", files)
	}
	tab := readParquetGo(t, []byte(readLocal(t, cfg, files[0])))
	if tab.names[len(tab.names)-1] != contract.ColQuarantineReason || tab.rows[0][len(tab.names)-1].val != "model version is missing" {
		t.Fatalf("%v %v", tab.names, tab.rows)
	}
}

// answerLostFileStore stages row groups (or not) and answers with an
// error, as a collector killed around the staging sees it.
type answerLostFileStore struct {
	blockStore
	landed bool
}

func (s *answerLostFileStore) stage(ctx context.Context, name string, index int, off int64, data []byte) error {
	if s.landed {
		if err := s.blockStore.stage(ctx, name, index, off, data); err != nil {
			return err
		}
	}
	return errors.New("connection reset before the answer")
}

// parquetRequestIDs is the request id of every row of every Parquet file, sorted.
func parquetRequestIDs(t *testing.T, cfg *Config) []string {
	t.Helper()
	var ids []string
	for _, f := range localFiles(t, cfg) {
		tab := readParquetGo(t, []byte(readLocal(t, cfg, f)))
		col := slices.Index(tab.names, contract.ColRequestID)
		for _, r := range tab.rows {
			ids = append(ids, r[col].val)
		}
	}
	slices.Sort(ids)
	return ids
}

// commitLostStore commits files and answers with an error, as a collector
// killed between a commit and the journal's clearing sees it.
type commitLostStore struct{ blockStore }

func (s commitLostStore) commit(ctx context.Context, name string, groups []stagedRange, tail []byte) error {
	if err := s.blockStore.commit(ctx, name, groups, tail); err != nil {
		return err
	}
	return errors.New("connection reset before the answer")
}

// TestParquetReplayAfterKillWritesRowsOnce: a row group staged (or not),
// journaled (or not), its file committed (or not) before the process died
// without acknowledging its batch; the persistent queue replays the batch
// after the restart, as one batch or regrouped with new rows. Every row
// must be in the files exactly as often as it was sent, identical rows
// included.
func TestParquetReplayAfterKillWritesRowsOnce(t *testing.T) {
	tests := []struct {
		name         string
		staged       bool // the group's bytes were staged
		journaled    bool // and journaled: its push returned, killed before the queue's acknowledgment
		committed    bool // and its file committed, the journal not cleared yet
		replay       [][]string
		want         []string
		wantReplayed int64
	}{
		{name: "staged, answer lost, replayed", staged: true,
			replay: [][]string{{"r1", "r2", "r3"}}, want: []string{"r1", "r2", "r3"}},
		{name: "not staged, replayed", replay: [][]string{{"r1", "r2", "r3"}}, want: []string{"r1", "r2", "r3"}},
		{name: "journaled, file left open, replayed as it was", staged: true, journaled: true,
			replay: [][]string{{"r1", "r2", "r3"}}, want: []string{"r1", "r2", "r3"}, wantReplayed: 3},
		{name: "journaled and committed, journal not cleared", staged: true, journaled: true, committed: true,
			replay: [][]string{{"r1", "r2", "r3"}}, want: []string{"r1", "r2", "r3"}, wantReplayed: 3},
		{name: "journaled, replayed in two batches with new rows", staged: true, journaled: true,
			replay: [][]string{{"r4", "r2"}, {"r1", "r3", "r5"}}, want: []string{"r1", "r2", "r3", "r4", "r5"}, wantReplayed: 3},
		{name: "journaled, a new identical row in the replay is kept", staged: true, journaled: true,
			replay: [][]string{{"r1", "r1", "r2", "r3"}}, want: []string{"r1", "r1", "r2", "r3"}, wantReplayed: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := localConfig(t)
			cfg.Format = FormatParquet
			queueDir := t.TempDir()
			if tc.committed {
				cfg.Parquet.MaxAge = 0 // committed inside the push
			}
			e, _, stop := journaledExporter(t, cfg, queueDir)
			switch {
			case tc.committed:
				e.pq.store = commitLostStore{e.pq.store}
			case !tc.journaled:
				e.pq.store = &answerLostFileStore{blockStore: e.pq.store, landed: tc.staged}
			}
			err := e.push(context.Background(), makeLogs(rowsWithIDs("r1", "r2", "r3")...))
			if (err == nil) != tc.journaled {
				t.Fatalf("first push: %v", err)
			}
			stop() // killed before any retry or acknowledgment
			if got := len(localFiles(t, cfg)); got != map[bool]int{false: 0, true: 1}[tc.committed] {
				t.Fatalf("%d files visible before the restart", got)
			}

			cfg.Parquet.MaxAge = 5 * time.Minute
			e, tt, stop := journaledExporter(t, cfg, queueDir)
			defer stop()
			for _, ids := range tc.replay {
				push(t, e, rowsWithIDs(ids...)...)
			}
			commitParquet(t, e)
			if got := parquetRequestIDs(t, cfg); !slices.Equal(got, tc.want) {
				t.Errorf("rows in the files: %v, want %v", got, tc.want)
			}
			if got := counter(t, tt, "otelcol_modeldatablob_rows_replayed"); got != tc.wantReplayed {
				t.Errorf("rows_replayed %d, want %d", got, tc.wantReplayed)
			}
			// Spent credits are gone: a later identical row is written.
			push(t, e, rowsWithIDs("r1")...)
			commitParquet(t, e)
			if got := parquetRequestIDs(t, cfg); len(got) != len(tc.want)+1 {
				t.Errorf("after a new r1: %v", got)
			}
		})
	}
}
