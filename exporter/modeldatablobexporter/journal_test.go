package modeldatablobexporter

import (
	"context"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter/exportertest"

	"github.com/otelcol-modeldata/otelcol-modeldata/exporter/modeldatablobexporter/internal/metadata"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// journaledExporter is an exporter on the local backend whose queue is
// persistent (file_storage in queueDir), as after a restart on that folder.
func journaledExporter(t *testing.T, cfg *Config, queueDir string) (*blobExporter, *componenttest.Telemetry, func()) {
	t.Helper()
	host, stopStorage := testutil.StartFileStorage(t, queueDir)
	cfg.QueueConfig.Get().StorageID = &testutil.FileStorageID
	tt := componenttest.NewTelemetry()
	set := exportertest.NewNopSettings(metadata.Type)
	set.ID = component.NewID(metadata.Type)
	set.TelemetrySettings = tt.NewTelemetrySettings()
	e, err := newExporter(cfg, set)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.start(context.Background(), host); err != nil {
		t.Fatal(err)
	}
	// stop is a kill -9 for the journal: nothing is retired on the way out.
	stop := func() {
		if e.pq != nil {
			e.pq.stopBackground()
		}
		if local, ok := e.store.(*localStore); ok {
			local.forgetLive()
		}
		if e.w.j.enabled() {
			_ = e.w.j.client.Close(context.Background())
		}
		stopStorage()
		_ = tt.Shutdown(context.Background())
	}
	return e, tt, stop
}

// requestIDs is the last cell of every row of the one file, sorted.
func requestIDs(t *testing.T, cfg *Config) []string {
	t.Helper()
	files := testutil.ReadCSVTree(t, cfg.Local.Directory)
	if len(files) != 1 {
		t.Fatalf("want one file, got %v", files)
	}
	var ids []string
	for _, records := range files {
		for _, r := range records[1:] {
			ids = append(ids, r[len(r)-1])
		}
	}
	sort.Strings(ids)
	return ids
}

func rowsWithIDs(ids ...string) []testRow {
	var rows []testRow
	for _, id := range ids {
		rows = append(rows, testRow{model: "m", version: "1", ts: day, requestID: id, features: [][2]any{{"a", 1}}})
	}
	return rows
}

// TestReplayAfterKillWritesRowsOnce: a batch whose append landed (or did not)
// before the process died without acknowledging it is replayed by the
// persistent queue after the restart, as one batch or regrouped with new
// rows. Every row must end up in the file exactly as often as it was sent,
// identical rows included.
func TestReplayAfterKillWritesRowsOnce(t *testing.T) {
	tests := []struct {
		name         string
		landed       bool       // the first append reached the file
		shared       bool       // another writer appends to the file too
		replay       [][]string // the pushes after the restart
		want         []string
		wantReplayed int64
	}{
		{name: "landed, replayed as it was", landed: true,
			replay: [][]string{{"r1", "r2", "r3"}}, want: []string{"r1", "r2", "r3"}, wantReplayed: 3},
		{name: "not landed, replayed", replay: [][]string{{"r1", "r2", "r3"}}, want: []string{"r1", "r2", "r3"}},
		{name: "landed, replayed in two batches with new rows", landed: true,
			replay: [][]string{{"r4", "r2"}, {"r1", "r3", "r5"}}, want: []string{"r1", "r2", "r3", "r4", "r5"}, wantReplayed: 3},
		{name: "landed, a new identical row in the replay is kept", landed: true,
			replay: [][]string{{"r1", "r1", "r2", "r3"}}, want: []string{"r1", "r1", "r2", "r3"}, wantReplayed: 3},
		{name: "landed, the identical row comes before the replay", landed: true,
			replay: [][]string{{"r2"}, {"r1", "r2", "r3"}}, want: []string{"r1", "r2", "r2", "r3"}, wantReplayed: 3},
		{name: "shared file, landed, replayed as it was", landed: true, shared: true,
			replay: [][]string{{"r1", "r2", "r3"}}, want: []string{"r1", "r2", "r3"}, wantReplayed: 3},
		{name: "shared file, not landed, replayed", shared: true,
			replay: [][]string{{"r1", "r2", "r3"}}, want: []string{"r1", "r2", "r3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := localConfig(t)
			queueDir := t.TempDir()
			e, _, stop := journaledExporter(t, cfg, queueDir)
			e.store = &answerLostStore{localStore: e.store.(*localStore), landed: tc.landed, shared: tc.shared}
			e.w.store = e.store
			err := e.push(context.Background(), makeLogs(rowsWithIDs("r1", "r2", "r3")...))
			if err == nil {
				t.Fatal("the first push must fail (its answer was lost)")
			}
			stop() // killed before any retry

			e, tt, stop := journaledExporter(t, cfg, queueDir)
			defer stop()
			for _, ids := range tc.replay {
				push(t, e, rowsWithIDs(ids...)...)
			}
			if got := requestIDs(t, cfg); strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("rows in the file: %v, want %v", got, tc.want)
			}
			if got := counter(t, tt, "otelcol_modeldatablob_rows_replayed"); got != tc.wantReplayed {
				t.Errorf("rows_replayed %d, want %d", got, tc.wantReplayed)
			}
			// Spent credits are gone: a later identical row is written.
			push(t, e, rowsWithIDs("r1")...)
			if got := requestIDs(t, cfg); len(got) != len(tc.want)+1 {
				t.Errorf("after a new r1: %v", got)
			}
		})
	}
}

// TestDoneBatchRetirement: a done batch stays in the journal for
// retireAfter (the queue acknowledges its requests one by one after the
// push; a kill in between replays some). Killed within that time, its
// replayed rows are skipped; retired (or after a clean shutdown), identical
// rows are new rows.
func TestDoneBatchRetirement(t *testing.T) {
	tests := []struct {
		name         string
		end          func(e *blobExporter, stop func())
		want         string
		wantReplayed int64
	}{
		{name: "killed right after the push", end: func(_ *blobExporter, stop func()) { stop() },
			want: "r1,r2", wantReplayed: 2},
		{name: "killed after retireAfter", end: func(e *blobExporter, stop func()) {
			if err := e.w.j.done(context.Background(), nil, time.Now().Add(retireAfter)); err != nil {
				t.Fatal(err)
			}
			stop()
		}, want: "r1,r1,r2,r2"},
		{name: "clean shutdown", end: func(e *blobExporter, stop func()) {
			if err := e.shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			stop()
		}, want: "r1,r1,r2,r2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := localConfig(t)
			queueDir := t.TempDir()
			e, _, stop := journaledExporter(t, cfg, queueDir)
			push(t, e, rowsWithIDs("r1", "r2")...)
			tc.end(e, stop)
			e, tt, stop := journaledExporter(t, cfg, queueDir)
			defer stop()
			push(t, e, rowsWithIDs("r1", "r2")...)
			if got := requestIDs(t, cfg); strings.Join(got, ",") != tc.want {
				t.Errorf("rows: %v, want %s", got, tc.want)
			}
			if got := counter(t, tt, "otelcol_modeldatablob_rows_replayed"); got != tc.wantReplayed {
				t.Errorf("rows_replayed %d, want %d", got, tc.wantReplayed)
			}
		})
	}
}

// TestReplayWaitsForStorage: intents of the previous run are checked at
// the first write to their file; while storage cannot answer, the write
// fails (and is retried) instead of guessing.
func TestReplayWaitsForStorage(t *testing.T) {
	cfg := localConfig(t)
	queueDir := t.TempDir()
	e, _, stop := journaledExporter(t, cfg, queueDir)
	e.store = &answerLostStore{localStore: e.store.(*localStore), landed: true}
	e.w.store = e.store
	if err := e.push(context.Background(), makeLogs(rowsWithIDs("r1")...)); err == nil {
		t.Fatal("want the first push to fail")
	}
	stop()

	e, _, stop = journaledExporter(t, cfg, queueDir)
	defer stop()
	real := e.w.store
	e.w.store = downStore{e.store.(*localStore)}
	if err := e.push(context.Background(), makeLogs(rowsWithIDs("r1")...)); err == nil {
		t.Fatal("want the replay to fail while storage is down")
	}
	e.w.store = real
	push(t, e, rowsWithIDs("r1")...)
	if got := requestIDs(t, cfg); strings.Join(got, ",") != "r1" {
		t.Errorf("rows: %v", got)
	}
}

// downStore answers nothing.
type downStore struct{ *localStore }

func (downStore) props(context.Context, string) (fileProps, error) {
	return fileProps{}, errors.New("connection refused")
}

func TestJournalEntriesRoundTrip(t *testing.T) {
	for _, anywhere := range []bool{false, true} {
		in := &intent{file: fileKey{1, 2}, blob: "a/b/data.csv", pos: 1 << 40, anywhere: anywhere, sum: [32]byte{9}, lines: []int{10, 200000, 3}}
		got, err := decodeIntent(in.encode())
		if err != nil || got.blob != in.blob || got.pos != in.pos || got.anywhere != anywhere || got.sum != in.sum || got.file != in.file ||
			len(got.lines) != 3 || got.lines[1] != 200000 {
			t.Fatalf("intent: %+v, %v", got, err)
		}
	}
	in := &intent{file: fileKey{1, 2}, blob: "a/b/data.csv", pos: 1 << 40, sum: [32]byte{9}, lines: []int{10, 200000, 3}}
	c := &credit{file: fileKey{3}, committed: map[lineHash]int{{1}: 2, {2}: 1}}
	gc, err := decodeCredit(c.encode())
	if err != nil || gc.file != c.file || gc.committed[lineHash{1}] != 2 || gc.avail[lineHash{2}] != 1 {
		t.Fatalf("credit: %+v, %v", gc, err)
	}
	for _, bad := range [][]byte{nil, {'i'}, {'c', 1}, append(in.encode()[:60], 0xff), []byte("x")} {
		if _, err := decodeIntent(bad); err == nil {
			t.Errorf("decodeIntent(%q): want an error", bad)
		}
	}
}
