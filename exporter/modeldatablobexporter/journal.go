package modeldatablobexporter

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/extension/xextension/storage"
)

// The append journal closes the window between an append that landed and the
// persistent queue's acknowledgment of its batch. Before each append of rows
// the writer records the intent (file, blob, position, line lengths, SHA-256)
// in the queue's storage extension; when the batch is done (every row written,
// or dropped) its intents are deleted, just before the queue acknowledges it.
// A collector killed in between finds the intents at start: an intent whose
// bytes are in the blob at its position landed, and its lines become credits
// of the file. The queue replays the unacknowledged batch; each replayed line
// equal to a credit is skipped instead of written again, and the credit is
// spent when that push is done.
//
// Lines are matched as a multiset per file, never by looking at the file's
// tail: two identical lines are interchangeable, so a file ends up holding
// each acknowledged line as many times as it was sent, whichever copy a
// credit was spent on.

// fileKey names a file before rolls and schema suffixes: a hash of its
// folder, stem, extension and header.
type fileKey [16]byte

func keyOf(b *fileBatch) fileKey {
	s := sha256.Sum256([]byte(b.ext + "\x00" + b.key()))
	return fileKey(s[:16])
}

// lineHash identifies a line's bytes.
type lineHash [16]byte

func hashLine(line []byte) lineHash {
	s := sha256.Sum256(line)
	return lineHash(s[:16])
}

// intent is an append of rows about to be made.
type intent struct {
	key  string // storage key
	file fileKey
	blob string // dir/name in the container
	pos  int64
	// anywhere: sent without a position condition, so at some line start
	// from pos on.
	anywhere bool
	sum      [sha256.Size]byte
	lines    []int // line lengths, in order
	// keyedLines is, per line, how many keyed rows it holds (0: not keyed;
	// nil: none is); keyRows are those rows, in order.
	keyedLines []int
	keyRows    []rowKey
}

// spot is where the intent's append may be.
func (in *intent) spot() spot {
	ends := make([]int, len(in.lines))
	end := 0
	for i, l := range in.lines {
		end += l
		ends[i] = end
	}
	return spot{pos: in.pos, anywhere: in.anywhere, ends: ends, sum: in.sum}
}

// credit is the lines of an append that landed before a restart, which the
// queue will replay. avail is what pushes may still skip; committed is what
// the storage extension holds (spent only when the skipping push is done).
type credit struct {
	key       string
	file      fileKey
	expires   time.Time
	committed map[lineHash]int
	avail     map[lineHash]int
}

// pushLog is what one batch, across its retries, did to the journal.
type pushLog struct {
	batch   uint64 // identifies the batch (random)
	intents []string
	spent   []creditUse
	keyed   []rowKey // rows of keyed requests that landed
}

type creditUse struct {
	c *credit
	h lineHash
}

type journal struct {
	client storage.Client // nil: an in-memory queue, which nothing replays
	prefix string         // unique per process, so keys never collide across restarts
	seq    atomic.Uint64

	mu       sync.Mutex
	retiring []retiring // done batches, oldest first
	// creditMu guards every credit's committed counts (shared by files'
	// writes and commits) and the stored key entries.
	creditMu sync.Mutex

	win         *keyWindow   // nil: rows of keyed requests are not checked
	stored      []storedKeys // entries of written keys, oldest first
	storedTotal int          // keys in stored
}

const journalName = "appends"

func newJournal(client storage.Client) *journal {
	return &journal{client: client, prefix: strconv.FormatInt(time.Now().UnixNano(), 36)}
}

func (j *journal) enabled() bool { return j != nil && j.client != nil }

func (j *journal) newKey(kind byte) string {
	return string(kind) + "/" + j.prefix + "/" + strconv.FormatUint(j.seq.Add(1), 36)
}

// record persists an intent before its append. Recorded again (before
// another attempt of the same append, the previous one known not to have
// landed), it replaces what it said: only the last attempt may be found.
func (j *journal) record(ctx context.Context, in *intent, pl *pushLog) error {
	first := in.key == ""
	if first {
		in.key = j.newKey('i')
	}
	if err := j.client.Set(ctx, in.key, in.encode()); err != nil {
		return fmt.Errorf("record the append in the storage extension: %w", err)
	}
	if first {
		pl.intents = append(pl.intents, in.key)
	}
	return nil
}

// settle replaces a resolved intent by its credit and its written keys
// (landed false: it never landed).
func (j *journal) settle(ctx context.Context, in *intent, c *credit, landed bool) error {
	ops := []*storage.Operation{storage.DeleteOperation(in.key)}
	if c != nil {
		ops = append(ops, storage.SetOperation(c.key, c.encode()))
	}
	if landed && len(in.keyRows) > 0 {
		j.creditMu.Lock()
		ops = append(ops, j.keyOps(in.keyRows, time.Now())...)
		j.creditMu.Unlock()
	}
	return j.client.Batch(ctx, ops...)
}

// retireAfter is how long a done batch stays in the journal: the queue
// acknowledges a batch's requests one storage write each after the push
// returns, and a kill during those writes replays the requests not yet
// acknowledged. Kept this long, their landed lines are still credited.
const retireAfter = 10 * time.Second

// creditTTL bounds how long a credit no replay spent is kept: a replay
// comes right after a restart, behind the requests queued before it.
const creditTTL = 24 * time.Hour

// done schedules a done batch for retirement and retires those done
// retireAfter ago.
func (j *journal) done(ctx context.Context, pl *pushLog, now time.Time) error {
	if !j.enabled() {
		return nil
	}
	j.mu.Lock()
	if pl != nil && len(pl.intents)+len(pl.spent) > 0 {
		j.retiring = append(j.retiring, retiring{at: now.Add(retireAfter), pl: pl})
	}
	var due []*pushLog
	for len(j.retiring) > 0 && !j.retiring[0].at.After(now) {
		due = append(due, j.retiring[0].pl)
		j.retiring = j.retiring[1:]
	}
	j.mu.Unlock()
	return j.commit(ctx, due)
}

// retireAll retires every done batch (at shutdown, after the queue stopped).
func (j *journal) retireAll(ctx context.Context) error {
	j.mu.Lock()
	var due []*pushLog
	for _, r := range j.retiring {
		due = append(due, r.pl)
	}
	j.retiring = nil
	j.mu.Unlock()
	return j.commit(ctx, due)
}

type retiring struct {
	at time.Time
	pl *pushLog
}

// commit forgets done batches: their intents, and the credits they spent.
func (j *journal) commit(ctx context.Context, pls []*pushLog) error {
	if len(pls) == 0 {
		return nil
	}
	j.creditMu.Lock()
	defer j.creditMu.Unlock()
	var ops []*storage.Operation
	touched := map[*credit]bool{}
	var keyed []rowKey
	for _, pl := range pls {
		keyed = append(keyed, pl.keyed...)
		for _, k := range pl.intents {
			ops = append(ops, storage.DeleteOperation(k))
		}
		for _, u := range pl.spent {
			if u.c.committed[u.h]--; u.c.committed[u.h] <= 0 {
				delete(u.c.committed, u.h)
			}
			touched[u.c] = true
		}
	}
	for c := range touched {
		if len(c.committed) == 0 {
			ops = append(ops, storage.DeleteOperation(c.key))
		} else {
			ops = append(ops, storage.SetOperation(c.key, c.encode()))
		}
	}
	ops = append(ops, j.keyOps(keyed, time.Now())...)
	return j.client.Batch(ctx, ops...)
}

// journaled is what a previous run left in the journal.
type journaled struct {
	intents []*intent     // appends not yet resolved
	credits []*credit     // not yet spent
	files   []*fileIntent // Parquet groups whose batch was not acknowledged
	groups  []*pqStaged   // staged groups of Parquet files not yet committed
}

// load reads what a previous run left.
func (j *journal) load(ctx context.Context) (*journaled, error) {
	w, ok := j.client.(storage.Walker)
	if !ok {
		return nil, errors.New("the storage extension cannot list its keys")
	}
	out := &journaled{}
	var keyEntries []storedKeys
	var keyRows [][]rowKey
	err := w.Walk(ctx, func(key string, value []byte) ([]*storage.Operation, error) {
		switch {
		case strings.HasPrefix(key, "i/"):
			in, err := decodeIntent(value)
			if err != nil {
				return []*storage.Operation{storage.DeleteOperation(key)}, nil
			}
			in.key = key
			out.intents = append(out.intents, in)
		case strings.HasPrefix(key, "k/"):
			at, rows, err := decodeKeyEntry(value)
			if err != nil || j.win == nil || at <= time.Now().Add(-j.win.ttl).UnixNano() {
				return []*storage.Operation{storage.DeleteOperation(key)}, nil
			}
			keyEntries = append(keyEntries, storedKeys{key: key, at: at, keys: distinctKeys(rows)})
			keyRows = append(keyRows, rows)
		case strings.HasPrefix(key, "c/"):
			c, err := decodeCredit(value)
			if err != nil {
				return []*storage.Operation{storage.DeleteOperation(key)}, nil
			}
			c.key = key
			out.credits = append(out.credits, c)
		case strings.HasPrefix(key, "p/"):
			in, err := decodeFileIntent(value)
			if err != nil {
				return []*storage.Operation{storage.DeleteOperation(key)}, nil
			}
			in.key = key
			out.files = append(out.files, in)
		case strings.HasPrefix(key, "g/"):
			g, err := decodeStaged(value)
			if err != nil {
				return []*storage.Operation{storage.DeleteOperation(key)}, nil
			}
			g.key = key
			out.groups = append(out.groups, g)
		}
		return nil, nil
	})
	j.adoptKeys(keyEntries, keyRows)
	return out, err
}

func (in *intent) encode() []byte {
	b := make([]byte, 0, 64+len(in.blob)+3*len(in.lines))
	b = append(b, 'i')
	b = append(b, in.file[:]...)
	b = append(b, in.sum[:]...)
	b = binary.AppendUvarint(b, uint64(in.pos))
	b = binary.AppendUvarint(b, uint64(len(in.blob)))
	b = append(b, in.blob...)
	b = binary.AppendUvarint(b, uint64(len(in.lines)))
	for _, l := range in.lines {
		b = binary.AppendUvarint(b, uint64(l))
	}
	if in.anywhere {
		b = append(b, 'a')
	}
	if in.keyedLines != nil {
		b = append(b, 'k')
		b = appendIntentKeys(b, in.keyedLines, in.keyRows)
	}
	return b
}

var errCorrupt = errors.New("corrupt journal entry")

// reader decodes the journal's entries; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil || len(r.b) < n {
		r.err = errCorrupt
		return make([]byte, n)
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count is a length read from the entry, bounded by the bytes left.
func (r *reader) count() int {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.err = errCorrupt
		return 0
	}
	return int(n)
}

func decodeIntent(b []byte) (*intent, error) {
	r := &reader{b: b}
	if string(r.bytes(1)) != "i" {
		return nil, errCorrupt
	}
	in := &intent{}
	copy(in.file[:], r.bytes(len(in.file)))
	copy(in.sum[:], r.bytes(len(in.sum)))
	in.pos = int64(r.uvarint())
	in.blob = string(r.bytes(r.count()))
	in.lines = make([]int, r.count())
	for i := range in.lines {
		in.lines[i] = int(r.uvarint())
	}
	if r.err == nil && len(r.b) > 0 && r.b[0] == 'a' {
		in.anywhere, r.b = true, r.b[1:]
	}
	if r.err == nil && len(r.b) > 0 && r.b[0] == 'k' {
		r.b = r.b[1:]
		in.keyedLines, in.keyRows = r.intentKeys(len(in.lines))
	}
	if r.err == nil && len(r.b) > 0 {
		return nil, errCorrupt
	}
	return in, r.err
}

func (c *credit) encode() []byte {
	b := make([]byte, 0, 32+20*len(c.committed))
	b = append(b, 'c')
	b = append(b, c.file[:]...)
	b = binary.AppendUvarint(b, uint64(len(c.committed)))
	for h, n := range c.committed {
		b = append(b, h[:]...)
		b = binary.AppendUvarint(b, uint64(n))
	}
	return b
}

func decodeCredit(b []byte) (*credit, error) {
	r := &reader{b: b}
	if string(r.bytes(1)) != "c" {
		return nil, errCorrupt
	}
	c := &credit{expires: time.Now().Add(creditTTL), committed: map[lineHash]int{}, avail: map[lineHash]int{}}
	copy(c.file[:], r.bytes(len(c.file)))
	for n := r.count(); n > 0 && r.err == nil; n-- {
		var h lineHash
		copy(h[:], r.bytes(len(h)))
		v := int(r.uvarint())
		c.committed[h], c.avail[h] = v, v
	}
	return c, r.err
}

// fileIntent is a Parquet row group staged for a file, kept until its
// batch retires: the file's name, the hash of each of its rows without an
// Idempotency-Key (pqFile.lastRowHash) and the keys of the others. If the
// file exists after a restart, its rows are credited and its keys written.
type fileIntent struct {
	key  string
	blob string
	rows []lineHash
	keys []rowKey
}

// pqCredits is the file key of the credits of whole files: a replayed row
// may land in any file, so they form one pool.
var pqCredits = fileKey{'p', 'a', 'r', 'q', 'u', 'e', 't'}

// recordGroup persists a staged row group (until its file is committed)
// and its intent (until its batch retires), in one transaction.
func (j *journal) recordGroup(ctx context.Context, g *pqStaged, in *fileIntent, pl *pushLog) error {
	g.key, in.key = j.newKey('g'), j.newKey('p')
	if err := j.client.Batch(ctx, storage.SetOperation(g.key, g.encode()), storage.SetOperation(in.key, in.encode())); err != nil {
		g.key, in.key = "", ""
		return fmt.Errorf("record the row group in the storage extension: %w", err)
	}
	pl.intents = append(pl.intents, in.key)
	return nil
}

// forgetGroups deletes the entries of a committed file's groups.
func (j *journal) forgetGroups(ctx context.Context, groups []*pqStaged) error {
	if !j.enabled() {
		return nil
	}
	ops := make([]*storage.Operation, 0, len(groups))
	for _, g := range groups {
		if g.key != "" {
			ops = append(ops, storage.DeleteOperation(g.key))
		}
	}
	return j.client.Batch(ctx, ops...)
}

func (g *pqStaged) encode() []byte {
	b := make([]byte, 0, 32+len(g.blob)+len(g.meta))
	b = append(b, 'g')
	b = binary.AppendUvarint(b, uint64(len(g.blob)))
	b = append(b, g.blob...)
	for _, v := range [...]int64{int64(g.index), g.off, g.size, g.rows} {
		b = binary.AppendUvarint(b, uint64(v))
	}
	b = binary.AppendUvarint(b, uint64(len(g.meta)))
	return append(b, g.meta...)
}

func decodeStaged(b []byte) (*pqStaged, error) {
	r := &reader{b: b}
	if string(r.bytes(1)) != "g" {
		return nil, errCorrupt
	}
	g := &pqStaged{blob: string(r.bytes(r.count()))}
	g.index = int(r.uvarint())
	g.off, g.size, g.rows = int64(r.uvarint()), int64(r.uvarint()), int64(r.uvarint())
	g.meta = slices.Clone(r.bytes(r.count()))
	if r.err == nil && (len(r.b) > 0 || g.index >= maxGroupsPerFile || g.off < 0 || g.size < 0) {
		return nil, errCorrupt
	}
	return g, r.err
}

// fileCredit is the credit of a file intent whose file exists.
func (j *journal) fileCredit(in *fileIntent) *credit {
	c := &credit{key: j.newKey('c'), file: pqCredits, expires: time.Now().Add(creditTTL), committed: map[lineHash]int{}, avail: map[lineHash]int{}}
	for _, h := range in.rows {
		c.committed[h]++
		c.avail[h]++
	}
	return c
}

func (in *fileIntent) encode() []byte {
	b := make([]byte, 0, 16+len(in.blob)+len(in.rows)*len(lineHash{}))
	b = append(b, 'p')
	b = binary.AppendUvarint(b, uint64(len(in.blob)))
	b = append(b, in.blob...)
	b = binary.AppendUvarint(b, uint64(len(in.rows)))
	for _, h := range in.rows {
		b = append(b, h[:]...)
	}
	if len(in.keys) > 0 {
		b = append(b, 'k')
		b = appendKeyRuns(b, in.keys)
	}
	return b
}

func decodeFileIntent(b []byte) (*fileIntent, error) {
	r := &reader{b: b}
	if string(r.bytes(1)) != "p" {
		return nil, errCorrupt
	}
	in := &fileIntent{blob: string(r.bytes(r.count()))}
	in.rows = make([]lineHash, r.count())
	for i := range in.rows {
		copy(in.rows[i][:], r.bytes(len(lineHash{})))
	}
	if r.err == nil && len(r.b) > 0 && r.b[0] == 'k' {
		r.b = r.b[1:]
		in.keys = r.keyRuns(maxEntryRows)
	}
	if r.err == nil && len(r.b) > 0 {
		return nil, errCorrupt
	}
	return in, r.err
}

// expire drops credits no replay spent within creditTTL.
func (j *journal) expire(ctx context.Context, credits []*credit) []*credit {
	now := time.Now()
	kept := credits[:0]
	for _, c := range credits {
		if now.Before(c.expires) {
			kept = append(kept, c)
			continue
		}
		if len(c.avail) > 0 {
			if err := j.client.Delete(ctx, c.key); err != nil {
				kept = append(kept, c) // try again next time
				continue
			}
		}
	}
	return kept
}

// newCredit is the credit of an intent that landed: its unkeyed lines, in
// data (nil when every line is keyed: the key window covers those).
func (j *journal) newCredit(in *intent, data []byte) *credit {
	c := &credit{key: j.newKey('c'), file: in.file, expires: time.Now().Add(creditTTL), committed: map[lineHash]int{}, avail: map[lineHash]int{}}
	off := 0
	for i, l := range in.lines {
		line := data[off : off+l]
		off += l
		if in.keyedLines != nil && in.keyedLines[i] > 0 {
			continue
		}
		h := hashLine(line)
		c.committed[h]++
		c.avail[h]++
	}
	if len(c.committed) == 0 {
		return nil
	}
	return c
}

// without is b less the skipped lines, and the index in b of each line kept.
func (b *fileBatch) without(skipped []bool) (*fileBatch, []int) {
	out := &fileBatch{dir: b.dir, stem: b.stem, ext: b.ext, header: b.header, quarantine: b.quarantine, workspace: b.workspace}
	var orig []int
	body := b.body.Bytes()
	start, rows := 0, 0
	for i, end := range b.lineEnds {
		if !skipped[i] {
			out.body.Write(body[start:end])
			out.lineEnds = append(out.lineEnds, out.body.Len())
			orig = append(orig, i)
			if b.keys != nil {
				out.keys = append(out.keys, b.keys[b.rowsIn(i):b.rowsIn(i+1)]...)
			}
			if b.lineRows != nil {
				rows += b.rowsIn(i+1) - b.rowsIn(i)
				out.lineRows = append(out.lineRows, rows)
			}
		}
		start = end
	}
	return out, orig
}
