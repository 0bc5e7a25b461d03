package modeldatablobexporter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	pqgo "github.com/parquet-go/parquet-go"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// readArrowGo reads a whole file with arrow-go (pqarrow), each value as
// text the way readParquetGo renders it.
func readArrowGo(t testing.TB, data []byte) (names []string, rows [][]string) {
	t.Helper()
	rdr, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Close()
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tab, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Release()
	rows = make([][]string, tab.NumRows())
	for c := range int(tab.NumCols()) {
		names = append(names, tab.Schema().Field(c).Name)
		r := 0
		for _, chunk := range tab.Column(c).Data().Chunks() {
			for i := range chunk.Len() {
				rows[r] = append(rows[r], arrowCell(chunk, i))
				r++
			}
		}
	}
	return names, rows
}

func arrowCell(a arrow.Array, i int) string {
	if a.IsNull(i) {
		return "null"
	}
	switch a := a.(type) {
	case *array.Int64:
		return fmt.Sprint(a.Value(i))
	case *array.Float64:
		return fmt.Sprint(a.Value(i))
	case *array.Boolean:
		return fmt.Sprint(a.Value(i))
	case *array.String:
		return a.Value(i)
	case *array.Timestamp:
		return time.UnixMicro(int64(a.Value(i))).UTC().Format(time.RFC3339Nano)
	}
	return a.ValueStr(i)
}

// readBoth reads a file with parquet-go and arrow-go, fails unless both
// read the same rows, and returns parquet-go's table and row groups.
func readBoth(t testing.TB, data []byte) (pqTable, int) {
	t.Helper()
	tab := readParquetGo(t, data)
	names, rows := readArrowGo(t, data)
	if !slices.Equal(names, tab.names) || len(rows) != len(tab.rows) {
		t.Fatalf("arrow-go reads %v and %d rows, parquet-go %v and %d rows", names, len(rows), tab.names, len(tab.rows))
	}
	for r := range rows {
		for c := range rows[r] {
			if rows[r][c] != tab.rows[r][c].val {
				t.Fatalf("row %d column %s: arrow-go %q, parquet-go %q", r, names[c], rows[r][c], tab.rows[r][c].val)
			}
		}
	}
	f, err := pqgo.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	return tab, len(f.RowGroups())
}

// idRows are rows of one folder and column set, request ids as given.
func idRows(ids ...string) []testRow {
	var rows []testRow
	for i, id := range ids {
		rows = append(rows, testRow{model: "m", version: "1", designation: "inputs", correlationID: "c" + id, requestID: id, ts: day,
			features: [][2]any{{"n", int64(i)}, {"x", float64(i) / 4}, {"s", "v" + id}, {"b", i%2 == 0}}})
	}
	return rows
}

// requestIDsIn is the request id of every row of the files, sorted, and
// the row groups of each file.
func requestIDsIn(t *testing.T, files map[string]string) (ids []string, groups []int) {
	t.Helper()
	for name, data := range files {
		if !strings.HasSuffix(name, ".parquet") {
			t.Fatalf("unexpected file %s", name)
		}
		tab, n := readBoth(t, []byte(data))
		groups = append(groups, n)
		col := slices.Index(tab.names, contract.ColRequestID)
		for _, r := range tab.rows {
			ids = append(ids, r[col].val)
		}
	}
	slices.Sort(ids)
	slices.Sort(groups)
	return ids, groups
}

// TestParquetPushesShareAFile: pushes into one folder and column set stage
// one row group each into one file, invisible until its commit (here at
// shutdown), then read back whole by two libraries.
func TestParquetPushesShareAFile(t *testing.T) {
	for _, backend := range []string{BackendLocal, BackendAzBlob} {
		t.Run(backend, func(t *testing.T) {
			cfg, files := formatTestConfig(t, backend)
			cfg.Format = FormatParquet
			e := newTestExporter(t, cfg)
			push(t, e, idRows("r1", "r2")...)
			push(t, e, idRows("r3")...)
			push(t, e, idRows("r4", "r5", "r6")...)
			if got := files(); len(got) != 0 {
				t.Fatalf("visible before the commit: %v", got)
			}
			if err := e.shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			ids, groups := requestIDsIn(t, files())
			if !slices.Equal(ids, []string{"r1", "r2", "r3", "r4", "r5", "r6"}) || !slices.Equal(groups, []int{3}) {
				t.Fatalf("rows %v in files of %v row groups", ids, groups)
			}
			if backend == BackendLocal {
				assertNoStaging(t, cfg)
			}
		})
	}
}

func assertNoStaging(t *testing.T, cfg *Config) {
	t.Helper()
	err := filepath.Walk(cfg.Local.Directory, func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.HasPrefix(fi.Name(), ".tmp-") {
			t.Errorf("staging file left: %s", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// fakeClock is a time that tests move.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestParquetRolls: what commits the open file before the next push's rows
// go to a new one.
func TestParquetRolls(t *testing.T) {
	tests := []struct {
		name   string
		config func(*Config)
		second []testRow
		before func(*fakeClock) // between the pushes
	}{
		{name: "max_rows", config: func(c *Config) { c.Parquet.MaxRows = 4 }, second: idRows("r4", "r5")},
		{name: "max_bytes", config: func(c *Config) { c.Parquet.MaxBytes = 400 }, second: idRows("r4", "r5")},
		{name: "max_age", second: idRows("r4", "r5"), before: func(c *fakeClock) { c.add(5 * time.Minute) }},
		{name: "column type", second: []testRow{{model: "m", version: "1", designation: "inputs", requestID: "r4", ts: day,
			features: [][2]any{{"n", "text"}, {"x", 1.5}, {"s", "v"}, {"b", true}}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := localConfig(t)
			cfg.Format = FormatParquet
			if tc.config != nil {
				tc.config(cfg)
			}
			e := newTestExporter(t, cfg)
			clock := &fakeClock{now: time.Now()}
			e.pq.now = clock.Now
			push(t, e, idRows("r1", "r2", "r3")...)
			if tc.before != nil {
				tc.before(clock)
			}
			push(t, e, tc.second...)
			if files := localFiles(t, cfg); len(files) != 1 {
				t.Fatalf("want the first file committed: %v", files)
			}
			first, _ := requestIDsIn(t, map[string]string{"f.parquet": readLocal(t, cfg, localFiles(t, cfg)[0])})
			if !slices.Equal(first, []string{"r1", "r2", "r3"}) {
				t.Fatalf("first file holds %v", first)
			}
			commitParquet(t, e)
			if files := localFiles(t, cfg); len(files) != 2 {
				t.Fatalf("want two files: %v", files)
			}
		})
	}
}

// TestParquetTimerCommits: a file that reached max_age is committed with
// no further push.
func TestParquetTimerCommits(t *testing.T) {
	cfg := localConfig(t)
	cfg.Format = FormatParquet
	cfg.Parquet.MaxAge = 50 * time.Millisecond
	e := newTestExporter(t, cfg)
	push(t, e, idRows("r1", "r2")...)
	if !testutil.Poll(10*time.Second, func() bool { return len(localFiles(t, cfg)) == 1 }) {
		t.Fatal("the file was not committed by the timer")
	}
	ids, groups := requestIDsIn(t, map[string]string{"f.parquet": readLocal(t, cfg, localFiles(t, cfg)[0])})
	if !slices.Equal(ids, []string{"r1", "r2"}) || !slices.Equal(groups, []int{1}) {
		t.Fatalf("rows %v, groups %v", ids, groups)
	}
}

// TestParquetMaxOpenFiles: opening a file beyond max_open_files commits
// the least recently written.
func TestParquetMaxOpenFiles(t *testing.T) {
	cfg := localConfig(t)
	cfg.Format = FormatParquet
	cfg.Parquet.MaxOpenFiles = 1
	e := newTestExporter(t, cfg)
	push(t, e, idRows("r1")...)
	other := idRows("r2")
	other[0].model = "other"
	push(t, e, other...)
	if files := localFiles(t, cfg); len(files) != 1 || !strings.Contains(files[0], "/m/1/") {
		t.Fatalf("want the first model's file committed: %v", files)
	}
}

// TestParquetKeyedResendAfterKill (#12): a keyed request's rows staged and
// journaled, the collector killed before the queue acknowledged them and
// before the file's commit; after the restart the queue replays the
// request and the client sends it again. The rows are in the files once.
func TestParquetKeyedResendAfterKill(t *testing.T) {
	cfg := localConfig(t)
	cfg.Format = FormatParquet
	queueDir := t.TempDir()
	e, _, stop := journaledExporter(t, cfg, queueDir)
	if err := e.push(context.Background(), keyedLogs(keyed("k1", 0, "r1", "r2", "r3"))); err != nil {
		t.Fatal(err)
	}
	stop() // kill -9: no commit, no retirement

	e, tt, stop := journaledExporter(t, cfg, queueDir)
	defer stop()
	for range 2 { // the queue's replay, then the client's resend
		if err := e.push(context.Background(), keyedLogs(keyed("k1", 0, "r1", "r2", "r3"))); err != nil {
			t.Fatal(err)
		}
	}
	commitParquet(t, e)
	if got := parquetRequestIDs(t, cfg); !slices.Equal(got, []string{"r1", "r2", "r3"}) {
		t.Fatalf("rows in the files: %v", got)
	}
	if got := counter(t, tt, "otelcol_modeldatablob_rows_resent"); got != 6 {
		t.Errorf("rows_resent %d, want 6", got)
	}
}

// TestParquetLeftOpenOnAzurite: a file left open by a kill is committed
// from its staged blocks and journal at the next start.
func TestParquetLeftOpenOnAzurite(t *testing.T) {
	az := testutil.StartAzurite(t)
	cfg := azuriteConfig(az)
	cfg.Format = FormatParquet
	queueDir := t.TempDir()
	e, _, stop := journaledExporter(t, cfg, queueDir)
	push(t, e, idRows("r1", "r2")...)
	push(t, e, idRows("r3")...)
	stop()
	if got := readBlobs(t, az, cfg.Container); len(got) != 0 {
		t.Fatalf("visible before the restart: %v", got)
	}
	e, tt, stop := journaledExporter(t, cfg, queueDir)
	defer stop()
	push(t, e, idRows("r1", "r2")...) // the queue replays the second push's batch only
	push(t, e, idRows("r3")...)
	commitParquet(t, e)
	ids, groups := requestIDsIn(t, readBlobs(t, az, cfg.Container))
	// r1 and r2 were acknowledged before the kill in the real flow; here
	// neither batch retired, so both replays are credited and skipped.
	if !slices.Equal(ids, []string{"r1", "r2", "r3"}) || !slices.Equal(groups, []int{2}) {
		t.Fatalf("rows %v in files of %v row groups", ids, groups)
	}
	if got := counter(t, tt, "otelcol_modeldatablob_rows_replayed"); got != 3 {
		t.Errorf("rows_replayed %d, want 3", got)
	}
}

// TestParquetFooterRebuilt: the footer of a file of several groups holds
// each group at its place; its size per group bounds an open file's memory.
func TestParquetFooterRebuilt(t *testing.T) {
	cfg := localConfig(t)
	cfg.Format = FormatParquet
	w := newPQWriter(cfg, nil)
	var features [][2]any
	for i := range 10 {
		features = append(features, [2]any{fmt.Sprintf("f%d", i), float64(i)})
	}
	rows := make([]testRow, 1000)
	for i := range rows {
		rows[i] = testRow{model: "m", version: "1", designation: "inputs", correlationID: fmt.Sprint("c", i), requestID: fmt.Sprint("r", i), ts: day, features: features}
	}
	var groups []*pqStaged
	var data []byte
	data = append(data, pqMagic...)
	for i := range 3 {
		f := w.encode(makeLogs(rows...)).batches[0].pq
		mini, err := w.fileBytes(f)
		if err != nil {
			t.Fatal(err)
		}
		g, err := splitGroup(mini)
		if err != nil {
			t.Fatal(err)
		}
		st := &pqStaged{index: i, off: int64(len(data)), size: int64(len(g.chunks)), rows: int64(len(f.rows))}
		if st.meta, err = g.placed(st.off, i); err != nil {
			t.Fatal(err)
		}
		data = append(data, g.chunks...)
		groups = append(groups, st)
	}
	tail, err := footer(groups)
	if err != nil {
		t.Fatal(err)
	}
	data = append(data, tail...)
	tab, n := readBoth(t, data)
	if n != 3 || len(tab.rows) != 3000 {
		t.Fatalf("%d groups, %d rows", n, len(tab.rows))
	}
	t.Logf("metadata kept per row group of 18 columns: %d bytes", len(groups[0].meta))
}

// failCommitsStore refuses the first commits, as storage down would.
type failCommitsStore struct {
	blockStore
	fails atomic.Int32
}

func (s *failCommitsStore) commit(ctx context.Context, name string, groups []stagedRange, tail []byte) error {
	if s.fails.Add(-1) >= 0 {
		return errors.New("storage down")
	}
	return s.blockStore.commit(ctx, name, groups, tail)
}

// TestParquetFailedCommitRetried: a commit that fails (the rows are staged
// and acknowledged) is retried by the timer until it lands.
func TestParquetFailedCommitRetried(t *testing.T) {
	cfg := localConfig(t)
	cfg.Format = FormatParquet
	cfg.Parquet.MaxAge = 20 * time.Millisecond
	e := newTestExporter(t, cfg)
	store := &failCommitsStore{blockStore: e.pq.store}
	store.fails.Store(3)
	e.pq.store = store
	push(t, e, idRows("r1", "r2")...)
	if !testutil.Poll(10*time.Second, func() bool { return len(localFiles(t, cfg)) == 1 }) {
		t.Fatal("the failed commit was not retried")
	}
	if got := parquetRequestIDs(t, cfg); !slices.Equal(got, []string{"r1", "r2"}) {
		t.Fatalf("rows %v", got)
	}
	assertNoStaging(t, cfg)
}

// TestParquetPushFitsOpenFile: a push whose values fit the open file's
// column types (integers in a column of doubles, any value in a column of
// strings, no value at all) goes into it; a column the file has no value
// in yet takes none.
func TestParquetPushFitsOpenFile(t *testing.T) {
	cfg := localConfig(t)
	cfg.Format = FormatParquet
	e := newTestExporter(t, cfg)
	row := func(id string, x, s, n any) testRow {
		return testRow{model: "m", version: "1", designation: "inputs", requestID: id, ts: day, features: [][2]any{{"x", x}, {"s", s}, {"n", n}}}
	}
	push(t, e, row("r1", 1.5, "a", nil))
	push(t, e, row("r2", int64(2), int64(7), nil))
	push(t, e, row("r3", nil, nil, nil))
	commitParquet(t, e)
	files := localFiles(t, cfg)
	if len(files) != 1 {
		t.Fatalf("want one file: %v", files)
	}
	tab, groups := readBoth(t, []byte(readLocal(t, cfg, files[0])))
	if groups != 3 || fmt.Sprint(tab.types[:3]) != fmt.Sprint([]string{pqDouble, pqString, pqString}) {
		t.Fatalf("%d groups, types %v", groups, tab.types)
	}
	if got := tab.rows[1][0].val + " " + tab.rows[1][1].val; got != "2 7" {
		t.Fatalf("row 2: %s", got)
	}
	push(t, e, row("r4", 1.5, "a", int64(1))) // n had no value in the file: another file
	commitParquet(t, e)
	if files := localFiles(t, cfg); len(files) != 2 {
		t.Fatalf("want a second file: %v", files)
	}
}

// forgetLive drops the store's staging files from liveStaging, as the
// death of the process that wrote them would.
func (s *localStore) forgetLive() {
	liveStaging.Range(func(path, store any) bool {
		if store == s {
			liveStaging.Delete(path)
		}
		return true
	})
}

// stagingFiles is the path of every staging file under the local folder.
func stagingFiles(t *testing.T, cfg *Config) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(cfg.Local.Directory, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), stagingPrefix) {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// endRun makes the files at paths look written by a process that has
// ended (before this one started).
func endRun(t *testing.T, paths ...string) {
	t.Helper()
	old := processStart.Add(-time.Minute)
	for _, p := range paths {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
}

// waitSwept waits for the exporter's sweep of earlier runs' staging.
func waitSwept(e *blobExporter) {
	if e.pq.swept != nil {
		<-e.pq.swept
	}
}

// blobsWithUncommitted is the length of every blob of a container, blobs
// that hold only uncommitted blocks included.
func blobsWithUncommitted(t *testing.T, az *testutil.Azurite, containerName string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	pager := containerClient(t, az, containerName).NewListBlobsFlatPager(&container.ListBlobsFlatOptions{
		Include: container.ListBlobsInclude{UncommittedBlobs: true}})
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range page.Segment.BlobItems {
			out[*b.Name] = *b.Properties.ContentLength
		}
	}
	return out
}

// TestParquetStagedNotJournaledAfterKill (#12): the collector is killed
// after a push staged a row group and before it journaled it, so the push
// was never acknowledged. After the restart the queue replays the push:
// every row is in the committed files once, the files read back whole, and
// nothing staged is left in sight: locally the staging file is removed at
// start; on Azure the blocks stay uncommitted, where no read and no default
// listing sees them (the service discards them after 7 days), and a commit
// drops those of a file it does not list.
func TestParquetStagedNotJournaledAfterKill(t *testing.T) {
	tests := []struct {
		name      string
		journaled []string // a push staged and journaled before the kill
		killed    []string // the push killed between staging and journaling
	}{
		{name: "first row group of a file", killed: []string{"r1", "r2", "r3"}},
		{name: "second row group of a file", journaled: []string{"r1", "r2"}, killed: []string{"r3"}},
	}
	for _, backend := range []string{BackendLocal, BackendAzBlob} {
		for _, tc := range tests {
			t.Run(backend+"/"+tc.name, func(t *testing.T) {
				var cfg *Config
				var az *testutil.Azurite
				if backend == BackendLocal {
					cfg = localConfig(t)
				} else {
					az = testutil.StartAzurite(t)
					cfg = azuriteConfig(az)
				}
				cfg.Format = FormatParquet
				cfg.MDC.InstanceID = "host-a"
				queueDir := t.TempDir()
				e, _, stop := journaledExporter(t, cfg, queueDir)
				if tc.journaled != nil {
					push(t, e, idRows(tc.journaled...)...)
				}
				e.pq.store = &answerLostFileStore{blockStore: e.pq.store, landed: true}
				if err := e.push(context.Background(), makeLogs(idRows(tc.killed...)...)); err == nil {
					t.Fatal("the killed push succeeded")
				}
				stop()
				if backend == BackendLocal {
					if got := stagingFiles(t, cfg); len(got) != 1 {
						t.Fatalf("staging files before the restart: %v", got)
					}
					endRun(t, stagingFiles(t, cfg)...)
				}

				e, tt, stop := journaledExporter(t, cfg, queueDir)
				defer stop()
				waitSwept(e)
				for _, ids := range [][]string{tc.journaled, tc.killed} { // the queue's replay
					if ids != nil {
						push(t, e, idRows(ids...)...)
					}
				}
				commitParquet(t, e)
				var files map[string]string
				if backend == BackendLocal {
					if got := stagingFiles(t, cfg); len(got) != 0 {
						t.Errorf("staging files after the restart: %v", got)
					}
					files = map[string]string{}
					for _, f := range localFiles(t, cfg) {
						files[f] = readLocal(t, cfg, f)
					}
				} else {
					files = readBlobs(t, az, cfg.Container)
					assertStagedBlocks(t, az, cfg.Container, files, tc.journaled == nil)
				}
				ids, _ := requestIDsIn(t, files)
				want := append(slices.Clone(tc.journaled), tc.killed...)
				if !slices.Equal(ids, want) {
					t.Errorf("rows %v, want %v", ids, want)
				}
				if got := counter(t, tt, "otelcol_modeldatablob_rows_replayed"); got != int64(len(tc.journaled)) {
					t.Errorf("rows_replayed %d, want %d", got, len(tc.journaled))
				}
			})
		}
	}
}

// assertStagedBlocks checks what a kill between staging and journaling
// leaves on Azure: a file that holds only the killed group's uncommitted
// blocks (orphan) is a blob of length 0 that only a listing of
// uncommitted blobs shows and that reads as missing; the committed files
// keep no uncommitted block.
func assertStagedBlocks(t *testing.T, az *testutil.Azurite, containerName string, committed map[string]string, orphan bool) {
	t.Helper()
	c := containerClient(t, az, containerName)
	var hidden []string
	for name, size := range blobsWithUncommitted(t, az, containerName) {
		bl, err := c.NewBlockBlobClient(name).GetBlockList(context.Background(), blockblob.BlockListTypeUncommitted, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := committed[name]; ok {
			if n := len(bl.UncommittedBlocks); n != 0 {
				t.Errorf("%s: %d uncommitted blocks after its commit", name, n)
			}
			continue
		}
		hidden = append(hidden, name)
		if _, err := c.NewBlobClient(name).GetProperties(context.Background(), nil); !bloberror.HasCode(err, bloberror.BlobNotFound) {
			t.Errorf("%s (uncommitted blocks only) reads as %v, want BlobNotFound", name, err)
		}
		if size != 0 || len(bl.UncommittedBlocks) == 0 {
			t.Errorf("%s: length %d, %d uncommitted blocks", name, size, len(bl.UncommittedBlocks))
		}
	}
	if want := map[bool]int{true: 1}[orphan]; len(hidden) != want {
		t.Errorf("blobs of uncommitted blocks only: %v, want %d", hidden, want)
	}
}

// TestParquetSweepRemovesOnlyEndedRuns (#12): at start an exporter removes
// the staging files of its instance's earlier runs that no journal entry
// names, and leaves every other: those of another exporter of the
// collector writing to the same folder (whatever their age), of another
// instance, written since this process started (another live process), or
// not named as the exporter names its files.
func TestParquetSweepRemovesOnlyEndedRuns(t *testing.T) {
	cfg := localConfig(t)
	cfg.Format = FormatParquet
	cfg.MDC.InstanceID = "host-a"
	queueDir := t.TempDir()
	e, _, stop := journaledExporter(t, cfg, queueDir)
	e.pq.store = &answerLostFileStore{blockStore: e.pq.store, landed: true}
	if err := e.push(context.Background(), makeLogs(idRows("r1")...)); err == nil {
		t.Fatal("the killed push succeeded")
	}
	stop()
	orphan := stagingFiles(t, cfg)

	other := *cfg // another exporter of the collector, on the same folder
	other.QueueConfig = createDefaultConfig().QueueConfig
	sharing := newTestExporter(t, &other)
	waitSwept(sharing)
	push(t, sharing, idRows("s1", "s2")...)
	dir := filepath.Dir(orphan[0])
	open := slices.DeleteFunc(stagingFiles(t, cfg), func(p string) bool { return p == orphan[0] })

	tests := []struct {
		name  string
		path  string // made unless it exists
		ended bool   // last written before this process started
		kept  bool
	}{
		{name: "this instance's, killed before journaling", path: orphan[0], ended: true},
		{name: "another exporter's open file", path: open[0], ended: true, kept: true},
		{name: "another instance's", path: filepath.Join(dir, ".tmp-host-b-0123456789abcdef.parquet.staging"), ended: true, kept: true},
		{name: "written since this process started", path: filepath.Join(dir, ".tmp-host-a-0123456789abcdef.parquet.staging"), kept: true},
		{name: "not a name of the exporter", path: filepath.Join(dir, ".tmp-host-a-report.parquet.staging"), ended: true, kept: true},
	}
	for _, tc := range tests {
		if _, err := os.Stat(tc.path); errors.Is(err, os.ErrNotExist) {
			if err := os.WriteFile(tc.path, []byte("staged"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if tc.ended {
			endRun(t, tc.path)
		}
	}

	e, _, stop = journaledExporter(t, cfg, queueDir)
	defer stop()
	waitSwept(e)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := os.Stat(tc.path); (err == nil) != tc.kept {
				t.Errorf("kept %v, want %v (%v)", err == nil, tc.kept, err)
			}
		})
	}
	commitParquet(t, sharing)
	if got := parquetRequestIDs(t, cfg); !slices.Equal(got, []string{"s1", "s2"}) {
		t.Errorf("rows of the other exporter: %v", got)
	}
}

// TestParquetFileWithoutGroupsDiscarded: a file whose only staged group
// failed (its push is retried into another file) is committed with no
// group: its staging is removed, nothing becomes visible.
func TestParquetFileWithoutGroupsDiscarded(t *testing.T) {
	cfg := localConfig(t)
	cfg.Format = FormatParquet
	e := newTestExporter(t, cfg)
	store := e.pq.store
	e.pq.store = &answerLostFileStore{blockStore: store, landed: true}
	if err := e.push(context.Background(), makeLogs(idRows("r1")...)); err == nil {
		t.Fatal("the push succeeded")
	}
	e.pq.store = store
	if got := stagingFiles(t, cfg); len(got) != 1 {
		t.Fatalf("staging files: %v", got)
	}
	commitParquet(t, e)
	if got := stagingFiles(t, cfg); len(got) != 0 {
		t.Errorf("staging files after the commit: %v", got)
	}
	if got := localFiles(t, cfg); len(got) != 0 {
		t.Errorf("files: %v", got)
	}
}
