package modeldatablobexporter

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
	"go.uber.org/zap"
)

// A Parquet file stays open across pushes. Each push encodes its rows of a
// file as one row group (a one-group Parquet file of its own) and, before
// the push returns, stages the group's column chunks in storage (uncommitted
// blocks of the block blob; locally, bytes of a synced temporary file) and
// journals the group's footer (offsets moved to its place in the final file)
// in the queue's storage extension. At commit the footer of the whole file is
// rebuilt from the groups' footers and the file becomes visible at once.
// After a kill -9 the journaled groups of the files left open are committed
// at start, before the queue's replay is written.

// pqMagic starts and ends every Parquet file.
const pqMagic = "PAR1"

// maxGroupsPerFile bounds the row groups of one file (Azure keeps at most
// 50,000 committed and 100,000 uncommitted blocks per blob).
const maxGroupsPerFile = 10_000

// pqGroup is one push's rows of a file, encoded: the column chunks of its
// one-group file and that file's footer.
type pqGroup struct {
	chunks []byte
	meta   format.FileMetaData
}

// splitGroup splits a one-row-group Parquet file into its column chunks and
// its decoded footer.
func splitGroup(data []byte) (*pqGroup, error) {
	n := len(data)
	if n < 12 || string(data[:4]) != pqMagic || string(data[n-4:]) != pqMagic {
		return nil, errors.New("not a Parquet file")
	}
	start := n - 8 - int(binary.LittleEndian.Uint32(data[n-8:]))
	if start < 4 {
		return nil, errors.New("the Parquet footer is longer than the file")
	}
	g := &pqGroup{chunks: data[4:start]}
	if err := thrift.Unmarshal(new(thrift.CompactProtocol), data[start:n-8], &g.meta); err != nil {
		return nil, fmt.Errorf("read the row group's footer: %w", err)
	}
	if len(g.meta.RowGroups) != 1 {
		return nil, fmt.Errorf("%d row groups in one push's file", len(g.meta.RowGroups))
	}
	return g, nil
}

// placed is the group's footer with its offsets moved to off, where its
// column chunks start in the final file, as group number ordinal.
func (g *pqGroup) placed(off int64, ordinal int) ([]byte, error) {
	delta := off - int64(len(pqMagic))
	rg := &g.meta.RowGroups[0]
	rg.Ordinal = int16(ordinal)
	rg.FileOffset = shifted(rg.FileOffset, delta)
	for i := range rg.Columns {
		c := &rg.Columns[i]
		c.FileOffset = shifted(c.FileOffset, delta)
		c.OffsetIndexOffset = shifted(c.OffsetIndexOffset, delta)
		c.ColumnIndexOffset = shifted(c.ColumnIndexOffset, delta)
		m := &c.MetaData
		m.DataPageOffset = shifted(m.DataPageOffset, delta)
		m.DictionaryPageOffset = shifted(m.DictionaryPageOffset, delta)
		m.IndexPageOffset = shifted(m.IndexPageOffset, delta)
		m.BloomFilterOffset = shifted(m.BloomFilterOffset, delta)
	}
	return thrift.Marshal(new(thrift.CompactProtocol), &g.meta)
}

// shifted is an offset moved by delta; 0 (not set) stays 0.
func shifted(off, delta int64) int64 {
	if off == 0 {
		return 0
	}
	return off + delta
}

// pqStaged is one staged row group of a file, as journaled.
type pqStaged struct {
	key   string // in the journal; "" without one
	blob  string
	index int
	off   int64 // where its column chunks start in the final file
	size  int64
	rows  int64
	meta  []byte // its one-group footer, offsets as in the final file
}

func (g *pqStaged) span() stagedRange { return stagedRange{index: g.index, off: g.off, size: g.size} }

// stagedRange is where a staged group goes in its file.
type stagedRange struct {
	index     int
	off, size int64
}

// footer is the tail of the file made of groups (in order, from index 0):
// the footer rebuilt from theirs, its length, the magic.
func footer(groups []*pqStaged) ([]byte, error) {
	var file format.FileMetaData
	for i, g := range groups {
		var m format.FileMetaData
		if err := thrift.Unmarshal(new(thrift.CompactProtocol), g.meta, &m); err != nil || len(m.RowGroups) != 1 {
			return nil, fmt.Errorf("row group %d of %s: corrupt footer (%v)", g.index, g.blob, err)
		}
		if i == 0 {
			file = m
			file.RowGroups = nil
			file.NumRows = 0
		}
		file.RowGroups = append(file.RowGroups, m.RowGroups[0])
		file.NumRows += m.RowGroups[0].NumRows
	}
	b, err := thrift.Marshal(new(thrift.CompactProtocol), &file)
	if err != nil {
		return nil, err
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(b)))
	return append(b, pqMagic...), nil
}

// pqOpen is a file open for row groups. It holds only their metadata.
type pqOpen struct {
	mu        sync.Mutex     // held while staging or committing
	slot      string         // folder and columns: one open file each
	sig       string         // slot and column types: another type is another file
	types     []parquet.Type // the feature columns' types
	valued    []bool         // per feature column, whether a value set its type
	blob      string
	opened    time.Time
	lastUsed  time.Time // guarded by pqWriter.fmu
	detached  atomic.Bool
	committed bool
	groups    []*pqStaged
	rows      int64
	bytes     int64 // values before compression, for max_bytes
	end       int64 // where the next group goes
}

// full reports whether a group of rows and bytes must go to a new file.
func (of *pqOpen) full(p *ParquetConfig, rows int, bytes int64, now time.Time) bool {
	return len(of.groups) > 0 && (of.rows+int64(rows) > int64(p.MaxRows) || of.bytes+bytes > p.MaxBytes ||
		len(of.groups) >= maxGroupsPerFile || p.MaxAge > 0 && now.Sub(of.opened) >= p.MaxAge)
}

// atLimit reports whether the file can take no more rows.
func (of *pqOpen) atLimit(p *ParquetConfig) bool {
	return p.MaxAge == 0 || of.rows >= int64(p.MaxRows) || of.bytes >= p.MaxBytes || len(of.groups) >= maxGroupsPerFile
}

func (of *pqOpen) spans() []stagedRange {
	out := make([]stagedRange, len(of.groups))
	for i, g := range of.groups {
		out[i] = g.span()
	}
	return out
}

// newBlobName is <instance>-<16 random hex digits>.parquet: unique per
// writer and file.
func (w *pqWriter) newBlobName(dir string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return dir + "/" + w.instance + "-" + hex.EncodeToString(b[:]) + ".parquet"
}

// ownsBlob reports whether base is a file name newBlobName makes: a file
// of this writer's instance, of this run or an earlier one.
func (w *pqWriter) ownsBlob(base string) bool {
	id, ok := strings.CutPrefix(base, w.instance+"-")
	id, isParquet := strings.CutSuffix(id, ".parquet")
	if !ok || !isParquet || len(id) != 16 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

// fileFor is the open file of f's folder, columns and types. A file of the
// same folder and columns with other types is committed first; so is the
// least recently written file when max_open_files are open.
func (w *pqWriter) fileFor(ctx context.Context, f *pqFile) *pqOpen {
	slot, sig := f.slot(), f.signature()
	now := w.now()
	var evict []*pqOpen
	w.fmu.Lock()
	of := w.files[slot]
	if of != nil && of.sig != sig {
		evict = append(evict, of)
		w.detachLocked(of)
		of = nil
	}
	if of == nil {
		if len(w.files) >= w.cfg.Parquet.MaxOpenFiles {
			lru := w.leastRecentLocked()
			evict = append(evict, lru)
			w.detachLocked(lru)
		}
		of = &pqOpen{slot: slot, sig: sig, blob: w.newBlobName(f.dir), opened: now, end: int64(len(pqMagic))}
		of.types, of.valued = f.types()
		w.files[slot] = of
	}
	of.lastUsed = now
	w.fmu.Unlock()
	for _, old := range evict {
		old.mu.Lock()
		w.close(ctx, old)
		old.mu.Unlock()
	}
	return of
}

// openTypes is the feature column types of the open file of slot (nil: none).
func (w *pqWriter) openTypes(slot string) ([]parquet.Type, []bool) {
	w.fmu.Lock()
	defer w.fmu.Unlock()
	if of := w.files[slot]; of != nil {
		return of.types, of.valued
	}
	return nil, nil
}

func (w *pqWriter) leastRecentLocked() *pqOpen {
	var lru *pqOpen
	for _, of := range w.files {
		if lru == nil || of.lastUsed.Before(lru.lastUsed) {
			lru = of
		}
	}
	return lru
}

// detachLocked takes of out of the open files: it takes no more groups.
func (w *pqWriter) detachLocked(of *pqOpen) {
	if w.files[of.slot] == of {
		delete(w.files, of.slot)
	}
	of.detached.Store(true)
}

// stageGroup puts f's rows, encoded as g, in their open file: staged and
// journaled before it returns. It returns the group's size.
func (w *pqWriter) stageGroup(ctx context.Context, f *pqFile, g *pqGroup, keys []rowKey, pl *pushLog) (int, error) {
	for {
		of := w.fileFor(ctx, f)
		of.mu.Lock()
		if of.detached.Load() { // committed by another push or the timer meanwhile
			of.mu.Unlock()
			continue
		}
		if of.full(&w.cfg.Parquet, len(f.rows), f.bytes, w.now()) {
			w.retire(ctx, of)
			of.mu.Unlock()
			continue
		}
		err := w.stageInto(ctx, of, f, g, keys, pl)
		if err == nil && of.atLimit(&w.cfg.Parquet) {
			w.retire(ctx, of)
		}
		of.mu.Unlock()
		return len(g.chunks), err
	}
}

// retire takes of out of the open files and commits it. Called with of.mu
// held.
func (w *pqWriter) retire(ctx context.Context, of *pqOpen) {
	w.fmu.Lock()
	w.detachLocked(of)
	w.fmu.Unlock()
	w.close(ctx, of)
}

// stageInto stages g as of's next group and journals it with the hashes
// and keys of its rows. Called with of.mu held. A failed attempt leaves the
// group's number free: the retry stages to the same blocks (or bytes).
func (w *pqWriter) stageInto(ctx context.Context, of *pqOpen, f *pqFile, g *pqGroup, keys []rowKey, pl *pushLog) error {
	st := &pqStaged{blob: of.blob, index: len(of.groups), off: of.end, size: int64(len(g.chunks)), rows: int64(len(f.rows))}
	var err error
	if st.meta, err = g.placed(st.off, st.index); err != nil {
		return err
	}
	if err := w.store.stage(ctx, of.blob, st.index, st.off, g.chunks); err != nil {
		return err
	}
	if w.j.enabled() {
		hashes, keyed := splitKeyed(f.hashes, keys)
		in := &fileIntent{blob: of.blob, rows: hashes, keys: keyed}
		if err := w.j.recordGroup(ctx, st, in, pl); err != nil {
			return err
		}
	}
	of.groups = append(of.groups, st)
	of.rows += st.rows
	of.bytes += f.bytes
	of.end += st.size
	return nil
}

// splitKeyed splits a group's rows (their hashes, and their keys when
// any has one) into the hashes of rows without a key, credited after a
// restart, and the keys of the others, which the key window covers.
func splitKeyed(hashes []lineHash, keys []rowKey) ([]lineHash, []rowKey) {
	if keys == nil {
		return hashes, nil
	}
	var unkeyed []lineHash
	var keyed []rowKey
	for i, h := range hashes {
		if keys[i].key == "" {
			unkeyed = append(unkeyed, h)
		} else {
			keyed = append(keyed, keys[i])
		}
	}
	return unkeyed, keyed
}

// close commits a detached file; one that fails is retried by the timer
// (or at shutdown). Called with of.mu held.
func (w *pqWriter) close(ctx context.Context, of *pqOpen) {
	if err := w.commit(ctx, of); err != nil {
		w.fmu.Lock()
		if !slices.Contains(w.closing, of) {
			w.closing = append(w.closing, of)
		}
		w.fmu.Unlock()
		w.logger.Warn("Could not commit a Parquet file; its rows are staged and journaled, and the commit is retried",
			zap.String("blob", of.blob), zap.Int64("rows", of.rows), zap.Error(err))
	}
}

// commit makes a detached file visible. Called with of.mu held.
func (w *pqWriter) commit(ctx context.Context, of *pqOpen) error {
	if of.committed {
		return nil
	}
	// A file without groups may hold the staging of a push that failed
	// (retried into another file): nothing of it was acknowledged.
	if len(of.groups) == 0 {
		if err := w.store.discard(ctx, of.blob); err != nil {
			return err
		}
	} else if err := w.commitGroups(ctx, of.blob, of.groups, of.spans()); err != nil {
		return err
	}
	of.committed = true
	w.fmu.Lock()
	w.closing = slices.DeleteFunc(w.closing, func(c *pqOpen) bool { return c == of })
	w.fmu.Unlock()
	return nil
}

// commitGroups commits blob made of its staged groups, then forgets them in
// the journal (a commit whose journal entries remain is found done at start).
func (w *pqWriter) commitGroups(ctx context.Context, blob string, groups []*pqStaged, spans []stagedRange) error {
	tail, err := footer(groups)
	if err != nil {
		return err
	}
	if err := w.store.commit(ctx, blob, spans, tail); err != nil {
		return err
	}
	w.logger.Debug("Committed a Parquet file", zap.String("blob", blob), zap.Int("row_groups", len(groups)))
	if w.j.enabled() {
		if err := w.j.forgetGroups(ctx, groups); err != nil {
			w.logger.Warn("Could not clear a committed Parquet file from the journal; it is found committed at the next start",
				zap.String("blob", blob), zap.Error(err))
		}
	}
	return nil
}

// commitDue commits the files open max_age or longer and retries the
// commits that failed.
func (w *pqWriter) commitDue(ctx context.Context) {
	now := w.now()
	var due []*pqOpen
	w.fmu.Lock()
	for _, of := range w.files {
		if now.Sub(of.opened) >= w.cfg.Parquet.MaxAge {
			due = append(due, of)
			w.detachLocked(of)
		}
	}
	retry := slices.Clone(w.closing)
	w.fmu.Unlock()
	for _, of := range due {
		of.mu.Lock()
		w.close(ctx, of)
		of.mu.Unlock()
	}
	for _, of := range retry {
		of.mu.Lock()
		err := w.commit(ctx, of)
		of.mu.Unlock()
		if err != nil {
			w.logger.Debug("Parquet commit retry failed", zap.String("blob", of.blob), zap.Error(err))
		}
	}
}

// commitAll commits every file: open, and failed before (at shutdown).
func (w *pqWriter) commitAll(ctx context.Context) error {
	w.fmu.Lock()
	all := slices.Clone(w.closing)
	for _, of := range w.files {
		all = append(all, of)
		w.detachLocked(of)
	}
	w.fmu.Unlock()
	var errs []error
	for _, of := range all {
		of.mu.Lock()
		if err := w.commit(ctx, of); err != nil {
			errs = append(errs, fmt.Errorf("commit %s (%d rows): %w", of.blob, of.rows, err))
		}
		of.mu.Unlock()
	}
	return errors.Join(errs...)
}

// timerTick is how often the timer looks for files past max_age: a file is
// committed at most this long after it reached max_age.
func timerTick(maxAge time.Duration) time.Duration {
	if maxAge == 0 { // files are committed in the push: only failed commits are retried
		return 5 * time.Second
	}
	return min(max(maxAge/10, 10*time.Millisecond), 5*time.Second)
}

// startTimer commits files that reach max_age while no push comes, retries
// failed commits and commits the files left open by a previous run.
func (w *pqWriter) startTimer() {
	w.stop, w.stopped = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(w.stopped)
		t := time.NewTicker(timerTick(w.cfg.Parquet.MaxAge))
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
				w.tick()
			}
		}
	}()
}

func (w *pqWriter) tick() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := w.resolve(ctx); err != nil {
		w.logger.Debug("Could not resolve the Parquet journal yet", zap.Error(err))
		return
	}
	w.commitDue(ctx)
}

// stopTimer stops the max_age timer and waits for it.
func (w *pqWriter) stopTimer() {
	if w.stop != nil {
		close(w.stop)
		<-w.stopped
		w.stop = nil
	}
}

// startSweep removes, in the background, what an earlier run killed
// between staging a file's first row group and journaling it left staged:
// its rows were never acknowledged, so the queue replays them into
// another file, and no journal entry names the file.
func (w *pqWriter) startSweep() {
	sweeper, ok := w.store.(stagingSweeper)
	if !ok {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.stopSweep, w.swept = cancel, make(chan struct{})
	go func() {
		defer close(w.swept)
		w.sweep(ctx, sweeper)
	}()
}

// sweep removes the staging of this instance's files that no journal entry
// references (the files journaled are committed from it).
func (w *pqWriter) sweep(ctx context.Context, sweeper stagingSweeper) {
	w.mu.Lock()
	journaled := map[string]bool{}
	for _, g := range w.resumed {
		journaled[g.blob] = true
	}
	w.mu.Unlock()
	removed, err := sweeper.sweepStaging(ctx, func(name string) bool {
		return !journaled[name] && w.ownsBlob(path.Base(name))
	})
	if removed > 0 {
		w.logger.Info("Removed the staging of Parquet files an earlier run was killed before journaling; their rows were not acknowledged and are replayed by the queue",
			zap.Int("files", removed))
	}
	if err != nil && ctx.Err() == nil {
		w.logger.Warn("Could not look through every folder for Parquet staging left by an earlier run", zap.Error(err))
	}
}

// stopBackground stops the max_age timer and the sweep, and waits for them.
func (w *pqWriter) stopBackground() {
	w.stopTimer()
	if w.stopSweep != nil {
		w.stopSweep()
		<-w.swept
		w.stopSweep = nil
	}
}

// shutdown stops the timer and commits every file (the queue has stopped).
func (w *pqWriter) shutdown(ctx context.Context) error {
	w.stopBackground()
	err := w.commitAll(ctx)
	if err != nil {
		w.logger.Error("Parquet files not committed at shutdown; their rows are staged, and with a persistent queue committed at the next start", zap.Error(err))
	}
	return err
}

// commitResumed commits the files the previous run left open (their groups
// journaled), or finds them committed. Called with w.mu held.
func (w *pqWriter) commitResumed(ctx context.Context) error {
	byBlob := map[string][]*pqStaged{}
	var order []string
	for _, g := range w.resumed {
		if byBlob[g.blob] == nil {
			order = append(order, g.blob)
		}
		byBlob[g.blob] = append(byBlob[g.blob], g)
	}
	for _, blob := range order {
		groups := byBlob[blob]
		slices.SortFunc(groups, func(a, b *pqStaged) int { return a.index - b.index })
		p, err := w.store.props(ctx, blob)
		if err != nil {
			return err
		}
		if !p.exists {
			if err := w.commitLeftOpen(ctx, blob, groups); err != nil {
				return err
			}
		}
		if err := w.j.forgetGroups(ctx, groups); err != nil {
			return err
		}
		w.resumed = slices.DeleteFunc(w.resumed, func(g *pqStaged) bool { return g.blob == blob })
	}
	return nil
}

// errStagedMissing is a file whose staged groups are no longer all in
// storage (deleted, or uncommitted blocks expired after 7 days on Azure).
var errStagedMissing = errors.New("staged row groups missing")

// commitLeftOpen commits a file of the previous run from its journaled
// groups. A file whose groups are not all there any more cannot be made:
// it is reported and given up, never retried forever.
func (w *pqWriter) commitLeftOpen(ctx context.Context, blob string, groups []*pqStaged) error {
	spans := make([]stagedRange, len(groups))
	rows := int64(0)
	for i, g := range groups {
		if g.index != i {
			w.logger.Error("A Parquet file left open by the previous run lacks a row group in the journal; it is given up",
				zap.String("blob", blob), zap.Int("missing_group", i))
			return nil
		}
		spans[i] = g.span()
		rows += g.rows
	}
	err := w.commitGroups(ctx, blob, groups, spans)
	if errors.Is(err, errStagedMissing) {
		w.logger.Error("A Parquet file left open by the previous run cannot be committed: its staged rows are gone",
			zap.String("blob", blob), zap.Int64("rows", rows), zap.Error(err))
		return nil
	}
	if err != nil {
		return err
	}
	w.logger.Warn("Committed a Parquet file the previous run left open", zap.String("blob", blob),
		zap.Int("row_groups", len(groups)), zap.Int64("rows", rows))
	return nil
}
