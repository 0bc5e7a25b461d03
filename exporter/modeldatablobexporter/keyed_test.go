package modeldatablobexporter

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// part is rows of one request: its Idempotency-Key ("" none) and the
// ordinal of its first row; each row's request id names it in the output.
type part struct {
	key   string
	first int64
	ids   []string
}

func keyed(key string, first int64, ids ...string) part { return part{key, first, ids} }

// keyedLogs is one push of the parts' rows, stamped as the receiver does.
func keyedLogs(parts ...part) plog.Logs {
	ld := plog.NewLogs()
	for _, p := range parts {
		pl := makeLogs(rowsWithIDs(p.ids...)...)
		if p.key != "" {
			contract.StampIdempotency(pl, p.key, p.first)
		}
		pl.ResourceLogs().MoveAndAppendTo(ld.ResourceLogs())
	}
	return ld
}

// idsInFiles counts, across every file under the data folder, the
// occurrences of the request ids ("r<n>") sent: CSV rows or MDC rows.
func idsInFiles(t *testing.T, dir string, ids []string) string {
	t.Helper()
	var all []byte
	err := filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		all = append(all, b...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, id := range ids {
		for range strings.Count(string(all), `"`+id+`"`) + strings.Count(string(all), ","+id+"\r\n") {
			got = append(got, id)
		}
	}
	sort.Strings(got)
	return strings.Join(got, ",")
}

func distinct(pushes [][]part) []string {
	seen := map[string]bool{}
	var ids []string
	for _, p := range pushes {
		for _, pt := range p {
			for _, id := range pt.ids {
				if !seen[id] {
					seen[id] = true
					ids = append(ids, id)
				}
			}
		}
	}
	return ids
}

// TestKeyedRowsWrittenOnce pushes the rows of keyed requests as the
// batcher may hand them over (whole, split, merged with others, resent)
// and counts the rows in the files, for CSV and MDC JSON Lines.
func TestKeyedRowsWrittenOnce(t *testing.T) {
	tests := []struct {
		name       string
		edit       func(*Config)
		pushes     [][]part
		want       string
		wantResent int64
	}{
		{name: "a resend is not written again",
			pushes: [][]part{{keyed("k1", 0, "r1", "r2", "r3")}, {keyed("k1", 0, "r1", "r2", "r3")}},
			want:   "r1,r2,r3", wantResent: 3},
		{name: "the replay and the resend merged into one push",
			pushes: [][]part{{keyed("k1", 0, "r1", "r2", "r3"), keyed("k2", 0, "r4"), keyed("k1", 0, "r1", "r2", "r3")}},
			want:   "r1,r2,r3,r4", wantResent: 3},
		{name: "split by the batcher, then resent whole",
			pushes: [][]part{{keyed("k1", 0, "r1", "r2")}, {keyed("k1", 2, "r3")}, {keyed("k1", 0, "r1", "r2", "r3")}},
			want:   "r1,r2,r3", wantResent: 3},
		{name: "resent whole, then the first copy's rows in two pushes",
			pushes: [][]part{{keyed("k1", 0, "r1", "r2", "r3")}, {keyed("k1", 2, "r3")}, {keyed("k1", 0, "r1", "r2")}},
			want:   "r1,r2,r3", wantResent: 3},
		{name: "a partly written request: its other rows are written",
			pushes: [][]part{{keyed("k1", 0, "r1")}, {keyed("k1", 0, "r1", "r2", "r3")}},
			want:   "r1,r2,r3", wantResent: 1},
		{name: "merged with new requests",
			pushes: [][]part{{keyed("k1", 0, "r1", "r2")}, {keyed("k2", 0, "r3"), keyed("k1", 0, "r1", "r2"), keyed("", 0, "r4")}},
			want:   "r1,r2,r3,r4", wantResent: 2},
		{name: "identical rows of different keys are different rows",
			pushes: [][]part{{keyed("k1", 0, "r1")}, {keyed("k2", 0, "r1")}},
			want:   "r1,r1"},
		{name: "rows without a key are always written",
			pushes: [][]part{{keyed("", 0, "r1")}, {keyed("", 0, "r1")}},
			want:   "r1,r1"},
		{name: "max_keys 0 turns the check off", edit: func(c *Config) { c.Idempotency.MaxKeys = 0 },
			pushes: [][]part{{keyed("k1", 0, "r1")}, {keyed("k1", 0, "r1")}},
			want:   "r1,r1"},
		{name: "the oldest key beyond max_keys is forgotten", edit: func(c *Config) { c.Idempotency.MaxKeys = 1 },
			pushes: [][]part{{keyed("k1", 0, "r1")}, {keyed("k2", 0, "r2")}, {keyed("k2", 0, "r2")}, {keyed("k1", 0, "r1")}},
			want:   "r1,r1,r2", wantResent: 1},
	}
	for _, format := range []string{FormatCSV, FormatMDCJSONL} {
		for _, tc := range tests {
			t.Run(format+"/"+tc.name, func(t *testing.T) {
				cfg := localConfig(t)
				cfg.Format = format
				if tc.edit != nil {
					tc.edit(cfg)
				}
				e, tt := newTestExporterTel(t, cfg)
				for _, p := range tc.pushes {
					if err := e.push(context.Background(), keyedLogs(p...)); err != nil {
						t.Fatal(err)
					}
				}
				if got := idsInFiles(t, cfg.Local.Directory, distinct(tc.pushes)); got != tc.want {
					t.Errorf("rows: %s, want %s", got, tc.want)
				}
				if got := counter(t, tt, "otelcol_modeldatablob_rows_resent"); got != tc.wantResent {
					t.Errorf("rows_resent %d, want %d", got, tc.wantResent)
				}
			})
		}
	}
}

// TestKeyedRowsAcrossKill: the request was queued, the collector killed
// before its answer left (the client resends it) and, in some cases, after
// some of its rows landed. After the restart on the same file_storage the
// queue replays the first copy and the resend arrives, in either order:
// every row is written once.
func TestKeyedRowsAcrossKill(t *testing.T) {
	first := []part{keyed("k1", 0, "r1", "r2"), keyed("", 0, "r9")}
	tests := []struct {
		name string
		// before is what happened before the kill.
		before       func(t *testing.T, e *blobExporter, stop func())
		after        [][]part
		want         string
		wantResent   int64
		wantReplayed int64
	}{
		{name: "killed before any append", before: func(_ *testing.T, _ *blobExporter, stop func()) { stop() },
			after: [][]part{first, {keyed("k1", 0, "r1", "r2")}}, want: "r1,r2,r9", wantResent: 2},
		{name: "append landed, answer lost, killed: replay then resend", before: killAfterLandedAppend(first),
			after: [][]part{first, {keyed("k1", 0, "r1", "r2")}}, want: "r1,r2,r9", wantResent: 4, wantReplayed: 1},
		{name: "append landed, answer lost, killed: resend then replay", before: killAfterLandedAppend(first),
			after: [][]part{{keyed("k1", 0, "r1", "r2")}, first}, want: "r1,r2,r9", wantResent: 4, wantReplayed: 1},
		{name: "append lost, killed", before: killAfterLostAppend(first),
			after: [][]part{{keyed("k1", 0, "r1", "r2")}, first}, want: "r1,r2,r9", wantResent: 2},
		{name: "batch done, killed before its retirement", before: func(t *testing.T, e *blobExporter, stop func()) {
			if err := e.push(context.Background(), keyedLogs(first...)); err != nil {
				t.Fatal(err)
			}
			stop()
		}, after: [][]part{{keyed("k1", 0, "r1", "r2")}}, want: "r1,r2,r9", wantResent: 2},
		{name: "batch done and retired, killed", before: func(t *testing.T, e *blobExporter, stop func()) {
			if err := e.push(context.Background(), keyedLogs(first...)); err != nil {
				t.Fatal(err)
			}
			if err := e.w.j.done(context.Background(), nil, time.Now().Add(retireAfter)); err != nil {
				t.Fatal(err)
			}
			stop()
		}, after: [][]part{{keyed("k1", 0, "r1", "r2")}}, want: "r1,r2,r9", wantResent: 2},
		{name: "clean shutdown", before: func(t *testing.T, e *blobExporter, stop func()) {
			if err := e.push(context.Background(), keyedLogs(first...)); err != nil {
				t.Fatal(err)
			}
			if err := e.shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			stop()
		}, after: [][]part{{keyed("k1", 0, "r1", "r2")}}, want: "r1,r2,r9", wantResent: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := localConfig(t)
			queueDir := t.TempDir()
			e, _, stop := journaledExporter(t, cfg, queueDir)
			tc.before(t, e, stop)

			e, tt, stop := journaledExporter(t, cfg, queueDir)
			defer stop()
			for _, p := range tc.after {
				if err := e.push(context.Background(), keyedLogs(p...)); err != nil {
					t.Fatal(err)
				}
			}
			if got := idsInFiles(t, cfg.Local.Directory, []string{"r1", "r2", "r9"}); got != tc.want {
				t.Errorf("rows: %s, want %s", got, tc.want)
			}
			if got := counter(t, tt, "otelcol_modeldatablob_rows_resent"); got != tc.wantResent {
				t.Errorf("rows_resent %d, want %d", got, tc.wantResent)
			}
			if got := counter(t, tt, "otelcol_modeldatablob_rows_replayed"); got != tc.wantReplayed {
				t.Errorf("rows_replayed %d, want %d", got, tc.wantReplayed)
			}
		})
	}
}

// killAfterLandedAppend pushes parts through a store whose append lands but
// whose answer is lost, then kills.
func killAfterLandedAppend(parts []part) func(*testing.T, *blobExporter, func()) {
	return killAfterUnansweredAppend(parts, true)
}

func killAfterLostAppend(parts []part) func(*testing.T, *blobExporter, func()) {
	return killAfterUnansweredAppend(parts, false)
}

func killAfterUnansweredAppend(parts []part, landed bool) func(*testing.T, *blobExporter, func()) {
	return func(t *testing.T, e *blobExporter, stop func()) {
		e.store = &answerLostStore{localStore: e.store.(*localStore), landed: landed}
		e.w.store = e.store
		if err := e.push(context.Background(), keyedLogs(parts...)); err == nil {
			t.Fatal("the first push must fail (its answer was lost)")
		}
		stop()
	}
}

func TestKeyWindow(t *testing.T) {
	now := time.Unix(1000, 0)
	w := newKeyWindow(IdempotencyConfig{TTL: time.Minute, MaxKeys: 2})
	w.now = func() time.Time { return now }
	var rows []rowKey
	for _, o := range []int64{5, 3, 4, 9, 0, 7, 8, 1} {
		rows = append(rows, rowKey{"a", o})
	}
	w.add(rows, now)
	if got := w.keys["a"].ranges; len(got) != 3 || got[0] != (ordRange{0, 2}) || got[1] != (ordRange{3, 6}) || got[2] != (ordRange{7, 10}) {
		t.Fatalf("ranges %v", got)
	}
	for o, want := range map[int64]bool{0: true, 1: true, 2: false, 5: true, 6: false, 9: true, 10: false} {
		if got := w.written([]rowKey{{"a", o}}); got != want {
			t.Errorf("written(a,%d) = %v", o, got)
		}
	}
	w.add([]rowKey{{"a", 2}, {"a", 6}}, now)
	if got := w.keys["a"].ranges; len(got) != 1 || got[0] != (ordRange{0, 10}) {
		t.Fatalf("ranges after filling the gaps %v", got)
	}
	w.add([]rowKey{{"b", 0}}, now.Add(time.Second))
	w.add([]rowKey{{"c", 0}}, now.Add(2*time.Second))
	if w.written([]rowKey{{"a", 0}}) || !w.written([]rowKey{{"b", 0}}) || !w.written([]rowKey{{"c", 0}}) {
		t.Error("max_keys 2 must forget a, the oldest")
	}
	now = now.Add(time.Minute + time.Second + time.Millisecond)
	if w.written([]rowKey{{"b", 0}}) || !w.written([]rowKey{{"c", 0}}) {
		t.Error("b is past the TTL, c is not")
	}
}

func TestKeyedJournalEntriesRoundTrip(t *testing.T) {
	rows := []rowKey{{"k1", 0}, {"k1", 1}, {"k1", 2}, {"k2", 7}, {"k1", 3}}
	in := &intent{file: fileKey{1}, blob: "a/data.csv", lines: []int{3, 4, 5, 6, 7, 8}, keyedLines: []int{1, 1, 0, 1, 1, 1}, keyRows: rows}
	got, err := decodeIntent(in.encode())
	if err != nil || len(got.keyRows) != 5 || got.keyRows[3] != (rowKey{"k2", 7}) || got.keyRows[4] != (rowKey{"k1", 3}) || got.keyedLines[2] != 0 {
		t.Fatalf("intent: %+v, %v", got, err)
	}
	at, gotRows, err := decodeKeyEntry(encodeKeyEntry(42, rows))
	if err != nil || at != 42 || len(gotRows) != 5 || gotRows[2] != (rowKey{"k1", 2}) {
		t.Fatalf("key entry: %d %v %v", at, gotRows, err)
	}
	// An entry claiming more rows than its lines hold is corrupt, not a
	// huge allocation.
	bad := append([]byte{'k', 1}, appendKeyRuns(nil, []rowKey{{"k", 0}})...)
	bad[len(bad)-1] = 0xff
	bad = append(bad, 0xff, 0xff, 0xff, 0x7f)
	if _, _, err := decodeKeyEntry(bad); err == nil {
		t.Error("want an error for an oversized run")
	}
	huge := &intent{file: fileKey{1}, blob: "a/data.csv", lines: []int{3}, keyedLines: []int{1 << 62}, keyRows: []rowKey{{"k", 0}}}
	if _, err := decodeIntent(huge.encode()); err == nil {
		t.Error("want an error for a line count past the bound")
	}
	if _, err := decodeIntent(append(in.encode(), 9)); err == nil {
		t.Error("want an error for trailing garbage in the keys")
	}
}

func TestIdempotencyConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  IdempotencyConfig
		want string
	}{
		{IdempotencyConfig{TTL: time.Minute, MaxKeys: 1}, ""},
		{IdempotencyConfig{MaxKeys: 0}, ""},
		{IdempotencyConfig{TTL: 0, MaxKeys: 5}, "idempotency::ttl must be positive"},
		{IdempotencyConfig{TTL: time.Minute, MaxKeys: -1}, "idempotency::max_keys must be between 0"},
		{IdempotencyConfig{TTL: time.Minute, MaxKeys: 10_000_001}, "idempotency::max_keys must be between 0"},
	} {
		err := tc.cfg.validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// TestKeyedCopiesPushedAtOnce: copies of one request in pushes running at
// the same time (the queue's replay and the resend, on several consumers)
// are written once, whatever the format.
func TestKeyedCopiesPushedAtOnce(t *testing.T) {
	for _, format := range []string{FormatCSV, FormatMDCJSONL, FormatParquet} {
		t.Run(format, func(t *testing.T) {
			cfg := localConfig(t)
			cfg.Format = format
			e, tt := newTestExporterTel(t, cfg)
			const copies = 8
			errs := make(chan error, copies)
			for range copies {
				go func() {
					errs <- e.push(context.Background(), keyedLogs(keyed("k1", 0, "r1", "r2", "r3"), keyed("k2", 0, "r4")))
				}()
			}
			for range copies {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			if got := counter(t, tt, "otelcol_modeldatablob_rows_resent"); got != 4*(copies-1) {
				t.Errorf("rows_resent %d, want %d", got, 4*(copies-1))
			}
			if got := counter(t, tt, "otelcol_modeldatablob_rows_written"); got != 4 {
				t.Errorf("rows_written %d, want 4", got)
			}
			if format == FormatParquet {
				commitParquet(t, e)
				if got := parquetRequestIDs(t, cfg); !slices.Equal(got, []string{"r1", "r2", "r3", "r4"}) {
					t.Errorf("rows: %v", got)
				}
				return
			}
			if got := idsInFiles(t, cfg.Local.Directory, []string{"r1", "r2", "r3", "r4"}); got != "r1,r2,r3,r4" {
				t.Errorf("rows: %s", got)
			}
		})
	}
}
