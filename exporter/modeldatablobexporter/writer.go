package modeldatablobexporter

import (
	"bytes"
	"cmp"
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.uber.org/zap"
)

// maxAppendAttempts bounds the position races one append may lose to other
// writers before the push is retried by the exporterhelper.
const maxAppendAttempts = 32

// maxRolls bounds the roll index probed when a file is opened.
const maxRolls = 100_000

// writer appends batches of CSV lines to files through a store: header
// written exactly once per file, every append at a known position (so an
// append that landed although its response was lost is recognized instead
// of doubled), files rolled near their limits, and a file whose header
// differs from the batch's left alone for a schema-suffixed sibling.
type writer struct {
	store         store
	maxAppendSize int64
	maxFileSize   int64
	maxBlocks     int
	maxOpenFiles  int
	tel           *telemetry
	logger        *zap.Logger
	j             *journal   // nil or disabled: no persistent queue to replay
	keys          *keyWindow // nil: rows of keyed requests are not checked

	mu    sync.Mutex
	files map[fileKey]*list.Element // of *fileState, most recently used first in lru
	lru   list.List
}

// fileState is what this process knows of the file a batch key currently
// writes to. Its mutex serializes this process's appends to the file.
type fileState struct {
	mu     sync.Mutex
	key    fileKey
	dir    string
	stem   string
	ext    string
	schema string // "" or the header hash of a schema-suffixed file
	roll   int
	name   string
	known  bool  // size and blocks are valid
	size   int64 // a lower bound while the file is shared
	blocks int
	// sharedUntil: until then other writers are taken to append to the
	// file too, and appends go without a position condition.
	sharedUntil time.Time
	// unsure are appends whose answer never came: they may have landed.
	// Another push may move size past them before their retry, so the
	// retry must look for its bytes where it first tried, not at size.
	unsure []unsureAppend
	// replay are intents a previous run left, resolved at the next write;
	// credits are lines that landed before a restart and will be replayed.
	replay  []*intent
	credits []*credit
	refs    int // writes holding the state; guarded by writer.mu
}

// pinned reports whether forgetting file would lose what a retry or a replay
// needs. Called with file.mu held.
func (file *fileState) pinned() bool {
	if len(file.unsure) > 0 || len(file.replay) > 0 {
		return true
	}
	for _, c := range file.credits {
		if len(c.avail) > 0 {
			return true
		}
	}
	return false
}

// unsureAppend is an append whose outcome is unknown.
type unsureAppend struct {
	name string
	spot
}

// spot is where an append of ours may be: at pos, or (anywhere) at some
// line start from pos on; ends are where its lines end (each at a '\n'),
// the last one its length.
type spot struct {
	pos      int64
	anywhere bool
	ends     []int
	sum      [sha256.Size]byte
}

// maxUnsure bounds the unsure appends kept per file; older ones are
// forgotten (their retries, if any, fall back to the position check).
const maxUnsure = 64

func newWriter(s store, cfg *Config, tel *telemetry) *writer {
	return &writer{store: s, maxAppendSize: cfg.MaxAppendSize, maxFileSize: cfg.MaxFileSize, maxBlocks: cfg.MaxBlocks,
		maxOpenFiles: cfg.MaxOpenFiles, tel: tel, logger: zap.NewNop(), files: map[fileKey]*list.Element{},
		keys: newKeyWindow(cfg.Idempotency)}
}

// fileName is <stem>[.<schema>][_<roll>]<ext>.
func fileName(stem, schema string, roll int, ext string) string {
	name := stem
	if schema != "" {
		name += "." + schema
	}
	if roll > 0 {
		name += "_" + strconv.Itoa(roll)
	}
	return name + ext
}

// schemaHash names a header: the first 8 hex digits of its SHA-256.
func schemaHash(header []byte) string {
	sum := sha256.Sum256(header)
	return hex.EncodeToString(sum[:4])
}

// state returns the file state of key (created when missing) and holds it
// until release. The states form an LRU of at most maxOpenFiles; a file
// forgotten is simply found again (size and header read back).
func (w *writer) state(key fileKey) *fileState {
	w.mu.Lock()
	defer w.mu.Unlock()
	var file *fileState
	if el := w.files[key]; el != nil {
		w.lru.MoveToFront(el)
		file = el.Value.(*fileState)
	} else {
		file = &fileState{key: key}
		w.files[key] = w.lru.PushFront(file)
		w.evict()
	}
	file.refs++
	return file
}

func (w *writer) release(file *fileState) {
	w.mu.Lock()
	file.refs--
	w.mu.Unlock()
}

// evict forgets least recently used states beyond maxOpenFiles, skipping
// those in use or pinned (looked at a bounded number of times per call, so
// many pinned states only let the cache pass its cap). Called with w.mu held.
func (w *writer) evict() {
	for tries := 0; w.lru.Len() > w.maxOpenFiles && tries < 8; tries++ {
		el := w.lru.Back()
		file := el.Value.(*fileState)
		if file.refs == 0 && file.mu.TryLock() {
			pinned := file.pinned()
			file.mu.Unlock()
			if !pinned {
				w.lru.Remove(el)
				delete(w.files, file.key)
				continue
			}
		}
		w.lru.MoveToFront(el)
	}
}

// adopt takes what a previous run left in the journal: intents resolved at
// the next write to their file, credits spent by the replayed lines.
func (w *writer) adopt(intents []*intent, credits []*credit) {
	with := func(key fileKey, f func(*fileState)) {
		file := w.state(key)
		file.mu.Lock()
		f(file)
		file.mu.Unlock()
		w.release(file)
	}
	for _, in := range intents {
		with(in.file, func(file *fileState) { file.replay = append(file.replay, in) })
	}
	for _, c := range credits {
		with(c.file, func(file *fileState) { file.credits = append(file.credits, c) })
	}
}

// write appends the batch's lines in order, in appends of at most
// maxAppendSize split at line boundaries. It returns how many lines are in
// the file (written now, or found written before a restart); on error the
// rest are not. pl collects what the batch did to the journal.
func (w *writer) write(ctx context.Context, b *fileBatch, pl *pushLog) (int, error) {
	file := w.state(keyOf(b))
	defer w.release(file)
	file.mu.Lock()
	defer file.mu.Unlock()
	if file.dir == "" {
		file.dir, file.stem, file.ext = b.dir, b.stem, cmp.Or(b.ext, ".csv")
	}
	if err := w.resolve(ctx, file); err != nil {
		return 0, err
	}
	w.expireCredits(ctx, file)
	skipped, spent := w.spendCredits(file, b, w.skipWritten(ctx, b))
	if skipped == nil {
		return w.appendLines(ctx, file, b, pl)
	}
	rest, orig := b.without(skipped)
	n, err := w.appendLines(ctx, file, rest, pl)
	done := len(b.lineEnds)
	if n < len(orig) {
		done = orig[n]
	}
	replayed := 0
	for _, u := range spent {
		if u.line >= done { // not settled: the retry will spend it again
			u.c.avail[u.h]++
			continue
		}
		pl.spent = append(pl.spent, u.creditUse)
		replayed += b.rowsIn(u.line+1) - b.rowsIn(u.line)
	}
	w.tel.replayed.Add(ctx, int64(replayed))
	return done, err
}

// lineUse is a credit spent on line `line` of a batch.
type lineUse struct {
	creditUse
	line int
}

// expireCredits drops credits no replay spent within creditTTL.
func (w *writer) expireCredits(ctx context.Context, file *fileState) {
	file.credits = w.j.expire(ctx, file.credits)
}

// spendCredits marks, besides those skipped already, the batch's unkeyed
// lines that a credit of the file covers (nil when none is skipped).
func (w *writer) spendCredits(file *fileState, b *fileBatch, skipped []bool) ([]bool, []lineUse) {
	if len(file.credits) == 0 {
		return skipped, nil
	}
	var spent []lineUse
	body := b.body.Bytes()
	start := 0
	for i, end := range b.lineEnds {
		line := body[start:end]
		start = end
		if skipped != nil && skipped[i] || b.lineKeys(i) != nil {
			continue
		}
		h := hashLine(line)
		for _, c := range file.credits {
			if c.avail[h] > 0 {
				if c.avail[h]--; c.avail[h] == 0 {
					delete(c.avail, h)
				}
				if skipped == nil {
					skipped = make([]bool, len(b.lineEnds))
				}
				skipped[i] = true
				spent = append(spent, lineUse{creditUse{c, h}, i})
				break
			}
		}
	}
	return skipped, spent
}

// resolve settles the intents a previous run left for this file: one whose
// bytes are at its position landed, and its lines become a credit.
func (w *writer) resolve(ctx context.Context, file *fileState) error {
	for len(file.replay) > 0 {
		in := file.replay[0]
		got, at, found, err := w.find(ctx, in.blob, in.spot())
		if err != nil {
			return err
		}
		var c *credit
		if found {
			in.pos = at
			c = w.j.newCredit(in, got)
		}
		if err := w.j.settle(ctx, in, c, found); err != nil {
			return err
		}
		if found && w.keys != nil {
			w.keys.add(in.keyRows, time.Now())
		}
		if c != nil {
			file.credits = append(file.credits, c)
		}
		if found {
			w.logger.Warn("An append made before the restart landed, but its batch was not acknowledged: the queue replays it, and its rows are not written again",
				zap.String("blob", in.blob), zap.Int64("position", in.pos), zap.Int("lines", len(in.lines)))
		}
		file.replay = file.replay[1:]
	}
	return nil
}

// appendLines appends b's lines in chunks of at most maxAppendSize and
// returns how many landed.
func (w *writer) appendLines(ctx context.Context, file *fileState, b *fileBatch, pl *pushLog) (int, error) {
	body := b.body.Bytes()
	done, start := 0, 0
	for done < len(b.lineEnds) {
		end := done + 1 // at least one line per append
		for end < len(b.lineEnds) && int64(b.lineEnds[end]-start) <= w.maxAppendSize {
			end++
		}
		chunk := body[start:b.lineEnds[end-1]]
		if len(chunk) > azureMaxAppendBlock {
			return done, consumererror.NewPermanent(fmt.Errorf("one CSV line of %d bytes exceeds the 100 MiB append limit", len(chunk)))
		}
		var lines *intent // the lines and keys the journal records
		if w.j.enabled() {
			lines = &intent{lines: make([]int, 0, end-done)}
			for i, prev := done, start; i < end; i++ {
				lines.lines = append(lines.lines, b.lineEnds[i]-prev)
				prev = b.lineEnds[i]
			}
			lines.keyedLines, lines.keyRows = b.keyedLines(done, end)
		}
		if err := w.appendChunk(ctx, file, b.header, chunk, lines, pl); err != nil {
			return done, err
		}
		w.landedKeys(b, done, end, pl)
		w.tel.appended(ctx, b.rowsIn(end)-b.rowsIn(done), len(chunk))
		done, start = end, b.lineEnds[end-1]
	}
	return done, nil
}

// sharedFor is how long a file stays shared after the last sign of another
// writer (a lost race, or an append that landed past our end). Meanwhile its
// appends go without a position condition: writers that meet on it never
// refuse each other, and no append needs the file's size first.
const sharedFor = time.Minute

// appendChunk appends whole lines; lines, when journaled, has their
// lengths and keys. An attempt that loses the file (rolled, gone, taken
// by another writer) is made again, up to maxAppendAttempts.
func (w *writer) appendChunk(ctx context.Context, file *fileState, header, chunk []byte, lines *intent, pl *pushLog) error {
	ctx = withAppendTelemetry(ctx, w.tel)
	n := int64(len(chunk))
	sum := chunkSum{chunk: chunk}
	if len(file.unsure) > 0 {
		if landed, err := w.landedEarlier(ctx, file, sum.get(), n); landed || err != nil {
			return err
		}
	}
	var in *intent // the journal's record of this append
	for attempt := 0; attempt < maxAppendAttempts; attempt++ {
		if !file.known {
			if err := w.open(ctx, file, header); err != nil {
				return err
			}
		}
		hasRows := file.size > int64(len(header))
		if hasRows && (file.size+n > w.maxFileSize || file.blocks+1 > w.maxBlocks) {
			w.roll(file)
			continue
		}
		name := file.dir + "/" + file.name
		shared := time.Now().Before(file.sharedUntil)
		if w.j.enabled() {
			if in == nil {
				in = &intent{file: file.key, sum: sum.get(), lines: lines.lines, keyedLines: lines.keyedLines, keyRows: lines.keyRows}
			}
			in.blob, in.pos, in.anywhere = name, file.size, shared
			if err := w.j.record(ctx, in, pl); err != nil {
				return err
			}
		}
		err := w.appendOnce(ctx, file, name, chunk, shared)
		if err == nil {
			return nil
		}
		if landed, err := w.afterFailedAppend(ctx, file, chunk, err, hasRows, shared, &sum); landed || err != nil {
			return err
		}
	}
	w.tel.racesGaveUp(ctx)
	return fmt.Errorf("append to %s/%s: lost %d position races to other writers", file.dir, file.name, maxAppendAttempts)
}

// chunkSum is a chunk's SHA-256, computed on first use: it matters only for
// an unsure earlier append, the journal or an append that goes unanswered,
// so most appends never compute it.
type chunkSum struct {
	chunk  []byte
	sum    [sha256.Size]byte
	summed bool
}

func (c *chunkSum) get() [sha256.Size]byte {
	if !c.summed {
		c.sum, c.summed = sha256.Sum256(c.chunk), true
	}
	return c.sum
}

// appendOnce appends chunk to the blob name of file: anywhere while the
// file is shared, else on condition that the blob ends where file does.
func (w *writer) appendOnce(ctx context.Context, file *fileState, name string, chunk []byte, shared bool) error {
	n := int64(len(chunk))
	if shared {
		a, err := w.store.appendAny(ctx, name, chunk)
		if err != nil {
			return err
		}
		if a.at > file.size { // another writer appended since our last one
			file.sharedUntil = time.Now().Add(sharedFor)
		}
		file.size, file.blocks = max(file.size, a.at+n), max(file.blocks, a.blocks)
		return nil
	}
	if err := w.store.appendAt(ctx, name, file.size, chunk); err != nil {
		return err
	}
	file.size += n
	file.blocks++
	return nil
}

// afterFailedAppend settles file after an append failed with err: it
// reports whether the chunk is in fact there (landed), or returns the
// error that ends the append; neither means the append is tried again.
func (w *writer) afterFailedAppend(ctx context.Context, file *fileState, chunk []byte, err error, hasRows, shared bool, sum *chunkSum) (landed bool, _ error) {
	switch {
	case errors.Is(err, errPosition):
		// Another writer appended, unless an earlier attempt of ours is
		// what is there (the request was sent more than once). From then
		// on the file is shared: the next attempt needs no position, so
		// none is read.
		w.tel.raceLost(ctx)
		if !errors.Is(err, errRaceLost) {
			landed, err := w.landedAt(ctx, file, chunk)
			if err != nil {
				return false, err
			}
			if landed {
				w.tel.duplicateAvoided(ctx)
				return true, nil
			}
		}
		file.sharedUntil = time.Now().Add(sharedFor)
	case errors.Is(err, errGone):
		file.known = false
	case errors.Is(err, errFull):
		if !hasRows {
			return false, consumererror.NewPermanent(fmt.Errorf("append of %d bytes does not fit in an empty file (max_file_size %d)", len(chunk), w.maxFileSize))
		}
		w.roll(file)
	default:
		// The append may have landed without our seeing the answer: its
		// retry looks for it first (landedEarlier).
		file.addUnsure(chunk, shared, sum.get())
		return false, err
	}
	return false, nil
}

// addUnsure remembers an append that went unanswered at the file's end,
// forgetting the oldest beyond maxUnsure.
func (file *fileState) addUnsure(chunk []byte, shared bool, sum [sha256.Size]byte) {
	if len(file.unsure) == maxUnsure {
		file.unsure = file.unsure[1:]
	}
	at := spot{pos: file.size, anywhere: shared, sum: sum, ends: []int{len(chunk)}}
	if shared {
		at.ends = lineEnds(chunk)
	}
	file.unsure = append(file.unsure, unsureAppend{name: file.name, spot: at})
}

// landedEarlier reports whether a chunk with this checksum was appended
// earlier without an answer and is in fact in the file. An unsure append
// is looked for once: found or not, its entry is dropped.
func (w *writer) landedEarlier(ctx context.Context, file *fileState, sum [sha256.Size]byte, n int64) (bool, error) {
	for i, u := range file.unsure {
		if u.sum != sum || int64(u.ends[len(u.ends)-1]) != n {
			continue
		}
		_, at, landed, err := w.find(ctx, file.dir+"/"+u.name, u.spot)
		if err != nil {
			return false, err
		}
		file.unsure = append(file.unsure[:i], file.unsure[i+1:]...)
		if landed {
			if u.name == file.name && at+n > file.size {
				file.size = at + n
			}
			w.tel.duplicateAvoided(ctx)
		}
		return landed, nil
	}
	return false, nil
}

// landedAt refreshes file after a failed position condition and reports
// whether chunk is already at the position we tried.
func (w *writer) landedAt(ctx context.Context, file *fileState, chunk []byte) (bool, error) {
	name := file.dir + "/" + file.name
	p, err := w.store.props(ctx, name)
	if err != nil {
		return false, err
	}
	pos := file.size
	file.size, file.blocks = p.size, p.blocks
	if p.size < pos+int64(len(chunk)) {
		return false, nil
	}
	got, err := w.store.readAt(ctx, name, pos, int64(len(chunk)))
	if err != nil {
		return false, err
	}
	return bytes.Equal(got, chunk), nil
}

// lineEnds are the offsets just past each '\n' of chunk.
func lineEnds(chunk []byte) []int {
	var ends []int
	for i, c := range chunk {
		if c == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(ends) == 0 || ends[len(ends)-1] != len(chunk) {
		ends = append(ends, len(chunk))
	}
	return ends
}

// scanWindow is the most one read of a scan takes (or twice the append
// looked for, when larger).
const scanWindow = 8 << 20

// find looks in file name for an append of ours at s, and returns its bytes
// and position when found. An append sent without a position is looked for
// at every line start from s.pos on whose lines end where its lines end;
// only those are hashed.
func (w *writer) find(ctx context.Context, name string, s spot) ([]byte, int64, bool, error) {
	if len(s.ends) == 0 {
		return nil, 0, false, nil
	}
	n := int64(s.ends[len(s.ends)-1])
	p, err := w.store.props(ctx, name)
	if err != nil || !p.exists || p.size < s.pos+n {
		return nil, 0, false, err
	}
	if !s.anywhere {
		got, err := w.store.readAt(ctx, name, s.pos, n)
		return got, s.pos, err == nil && int64(len(got)) == n && sha256.Sum256(got) == s.sum, err
	}
	from, inLine := s.pos, false // inLine: from is inside a line, not at its start
	for from+n <= p.size {
		want := min(p.size-from, max(scanWindow, 2*n))
		buf, err := w.store.readAt(ctx, name, from, want)
		if err != nil || len(buf) == 0 {
			return nil, 0, false, err
		}
		i, next := 0, -1 // next: the first line start the window cannot check whole
		if inLine {
			i = bytes.IndexByte(buf, '\n') + 1
			if i == 0 {
				i = len(buf)
			}
		}
		for i < len(buf) {
			if int64(i)+n > int64(len(buf)) {
				next = i
				break
			}
			if endsMatch(buf[i:], s.ends) && sha256.Sum256(buf[i:i+int(n)]) == s.sum {
				return buf[i : i+int(n)], from + int64(i), true, nil
			}
			nl := bytes.IndexByte(buf[i:], '\n')
			if nl < 0 {
				break
			}
			i += nl + 1
		}
		switch {
		case int64(len(buf)) < want || next == 0: // the file ended sooner than its size said
			return nil, 0, false, nil
		case next > 0:
			from, inLine = from+int64(next), false
		default:
			from, inLine = from+int64(len(buf)), buf[len(buf)-1] != '\n'
		}
	}
	return nil, 0, false, nil
}

// endsMatch reports whether each of ends falls just past a '\n' of b.
func endsMatch(b []byte, ends []int) bool {
	for _, e := range ends {
		if b[e-1] != '\n' {
			return false
		}
	}
	return true
}

func (w *writer) roll(file *fileState) {
	file.roll++
	file.known = false
	w.tel.rolled(context.Background())
}

// open finds where file writes: the file named by its roll index, created
// with the header when missing. A file whose header differs from ours is
// left alone; we switch to the schema-suffixed name.
func (w *writer) open(ctx context.Context, file *fileState, header []byte) error {
	hlen := int64(len(header))
	for probes := 0; probes < maxRolls; probes++ {
		file.name = fileName(file.stem, file.schema, file.roll, file.ext)
		name := file.dir + "/" + file.name
		p, err := w.store.props(ctx, name)
		if err != nil {
			return err
		}
		if !p.exists {
			if err := w.store.create(ctx, name); err != nil {
				return err
			}
			if p, err = w.store.props(ctx, name); err != nil {
				return err
			}
		}
		if hlen == 0 { // no header (JSON Lines): any file of ours is ours
			if p, err = w.endLine(ctx, name, p, []byte{'\n'}); err != nil {
				return err
			}
			file.size, file.blocks, file.known = p.size, p.blocks, true
			return nil
		}
		if p.size == 0 {
			// Whoever appends at position 0 first writes the header; the
			// loser's condition fails and it checks the winner's header.
			err := w.store.appendAt(ctx, name, 0, header)
			switch {
			case err == nil:
				file.size, file.blocks, file.known = hlen, 1, true
				return nil
			case errors.Is(err, errPosition):
				w.tel.raceLost(ctx)
				if p, err = w.store.props(ctx, name); err != nil {
					return err
				}
			default:
				return err
			}
		}
		match := false
		if p.size >= hlen {
			got, err := w.store.readAt(ctx, name, 0, hlen)
			if err != nil {
				return err
			}
			match = bytes.Equal(got, header)
		}
		if !match {
			if file.schema != "" {
				return consumererror.NewPermanent(fmt.Errorf("%s has a different header than its schema suffix says", name))
			}
			file.schema, file.roll = schemaHash(header), 0
			continue
		}
		if p, err = w.endLine(ctx, name, p, header[len(bytes.TrimRight(header, "\r\n")):]); err != nil {
			return err
		}
		file.size, file.blocks, file.known = p.size, p.blocks, true
		return nil
	}
	return fmt.Errorf("%s/%s: no writable file after %d rolls", file.dir, file.stem, maxRolls)
}

// endLine makes sure the file of props p ends with a line end before our
// first append to it: a file another writer left with its last line torn
// (no line end) would glue our first row to that line. The line end goes as
// its own append at the file's end, on condition of its position, so
// writers that meet there add one between them, and an answer lost is seen
// landed by the next look at the last byte. A file that refuses the append
// (full, gone) is returned as is: the append that follows meets the same and
// rolls or reopens it.
func (w *writer) endLine(ctx context.Context, name string, p fileProps, lineEnd []byte) (fileProps, error) {
	for attempt := 0; p.size > 0 && attempt < maxAppendAttempts; attempt++ {
		last, err := w.store.readAt(ctx, name, p.size-1, 1)
		if err != nil || len(last) == 1 && last[0] == '\n' {
			return p, err
		}
		end := lineEnd
		if len(last) == 1 && last[0] == '\r' {
			end = []byte{'\n'}
		}
		err = w.store.appendAt(ctx, name, p.size, end)
		switch {
		case err == nil:
			w.logger.Warn("The file's last line had no line end (another writer's torn write?): a line end was added so that our rows start on a line of their own",
				zap.String("blob", name), zap.Int64("position", p.size))
			return fileProps{exists: true, size: p.size + int64(len(end)), blocks: p.blocks + 1}, nil
		case errors.Is(err, errPosition):
			w.tel.raceLost(ctx)
			if p, err = w.store.props(ctx, name); err != nil {
				return p, err
			}
		case errors.Is(err, errFull), errors.Is(err, errGone):
			return p, nil
		default:
			return p, err
		}
	}
	return p, nil
}
