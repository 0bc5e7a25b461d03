package modeldatablobexporter

import (
	"context"
	"encoding/binary"
	"slices"
	"sort"
	"sync"
	"time"

	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/logsubset"
)

// Rows of a request sent with an Idempotency-Key carry the key and their
// ordinal in the request (contract.AttrIdempotencyKey). The receiver records
// a key only after the persistent queue committed the request, so a kill in
// between leaves the rows queued and the key unknown: the client's resend is
// queued a second time. The exporter closes that window on the write side:
// it remembers the (key, ordinal) of every row it wrote and skips a line
// whose rows it wrote already, whichever copy comes first and however the
// batcher split or merged the requests.
//
// What was written survives a kill with the append journal: each intent
// carries the keys of its lines, so an append and its keys resolve together
// at start (landed: the keys are written; not landed: they are not). A done
// batch's keys are stored as one entry when its intents are retired, in the
// same storage transaction.
//
// A line is keyed when every row in it is; only keyed lines are skipped by
// key, and only the other lines become credits of the journal.

// IdempotencyConfig bounds the rows of keyed requests remembered as written.
type IdempotencyConfig struct {
	// TTL is how long a key's rows are remembered after its first row was
	// written; resends after that are written again.
	TTL time.Duration `mapstructure:"ttl"`
	// MaxKeys bounds the keys remembered (the oldest are forgotten first);
	// 0 turns the check off.
	MaxKeys int `mapstructure:"max_keys"`
}

func (c *IdempotencyConfig) validate() error {
	return contract.ValidateKeyWindow(c.TTL, c.MaxKeys)
}

// rowKey is a row's place in a keyed request; key "" is a row without one.
type rowKey struct {
	key string
	ord int64
}

// rowKeysOf is the rowKey of each referenced record; nil when none has one.
func rowKeysOf(ld plog.Logs, refs []recordRef) []rowKey {
	var out []rowKey
	rls := ld.ResourceLogs()
	for i, r := range refs {
		key, ord, ok := contract.IdempotencyOf(rls.At(r.rl).ScopeLogs().At(r.sl).LogRecords().At(r.lr))
		if !ok {
			continue
		}
		if out == nil {
			out = make([]rowKey, len(refs))
		}
		out[i] = rowKey{key, ord}
	}
	return out
}

// lineKeys is the rowKeys of line i when every row in it has one.
func (b *fileBatch) lineKeys(i int) []rowKey {
	if b.keys == nil {
		return nil
	}
	lo, hi := b.rowsIn(i), b.rowsIn(i+1)
	for _, k := range b.keys[lo:hi] {
		if k.key == "" {
			return nil
		}
	}
	return b.keys[lo:hi]
}

// ordRange is the ordinals [lo, hi).
type ordRange struct{ lo, hi int64 }

type keyedRows struct {
	at     int64 // first row written, unix ns
	ranges []ordRange
}

func (k *keyedRows) has(ord int64) bool {
	i := sort.Search(len(k.ranges), func(i int) bool { return k.ranges[i].hi > ord })
	return i < len(k.ranges) && k.ranges[i].lo <= ord
}

func (k *keyedRows) add(ord int64) {
	i := sort.Search(len(k.ranges), func(i int) bool { return k.ranges[i].hi >= ord })
	switch {
	case i < len(k.ranges) && k.ranges[i].lo <= ord: // in, or just after
		if ord == k.ranges[i].hi {
			k.ranges[i].hi++
			if i+1 < len(k.ranges) && k.ranges[i+1].lo == k.ranges[i].hi {
				k.ranges[i].hi = k.ranges[i+1].hi
				k.ranges = slices.Delete(k.ranges, i+1, i+2)
			}
		}
	case i < len(k.ranges) && k.ranges[i].lo == ord+1:
		k.ranges[i].lo = ord
	default:
		k.ranges = slices.Insert(k.ranges, i, ordRange{ord, ord + 1})
	}
}

// keyWindow is the rows of keyed requests written, per key.
type keyWindow struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu    sync.Mutex
	keys  map[string]*keyedRows
	order []string // first written, oldest first from head
	head  int
	// held are the keys of the pushes writing now, each with a channel
	// closed when that push is done.
	held map[string]chan struct{}
}

// newKeyWindow returns nil when the check is off.
func newKeyWindow(cfg IdempotencyConfig) *keyWindow {
	if cfg.MaxKeys == 0 {
		return nil
	}
	return &keyWindow{ttl: cfg.TTL, max: cfg.MaxKeys, now: time.Now, keys: map[string]*keyedRows{}, held: map[string]chan struct{}{}}
}

// hold takes keys for one push once no other push holds any of them, all
// at once (a push never waits while holding keys), and returns their
// release. Two copies of a request are then never written at the same time,
// whatever the format: the second push finds the first one's rows written.
func (w *keyWindow) hold(ctx context.Context, keys []string) (func(), error) {
	done := make(chan struct{})
	for {
		var busy chan struct{}
		w.mu.Lock()
		for _, k := range keys {
			if ch, ok := w.held[k]; ok {
				busy = ch
				break
			}
		}
		if busy == nil {
			for _, k := range keys {
				w.held[k] = done
			}
			w.mu.Unlock()
			return func() {
				w.mu.Lock()
				for _, k := range keys {
					delete(w.held, k)
				}
				w.mu.Unlock()
				close(done)
			}, nil
		}
		w.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// written reports whether every row of keys was written.
func (w *keyWindow) written(keys []rowKey) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	since := w.now().Add(-w.ttl).UnixNano()
	for _, k := range keys {
		e := w.keys[k.key]
		if e == nil || e.at <= since || !e.has(k.ord) {
			return false
		}
	}
	return true
}

// add remembers rows as written at.
func (w *keyWindow) add(rows []rowKey, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range rows {
		e := w.keys[r.key]
		if e == nil {
			e = &keyedRows{at: at.UnixNano()}
			w.keys[r.key] = e
			w.order = append(w.order, r.key)
		}
		e.add(r.ord)
	}
	w.forget()
}

// forget drops the keys past the TTL or beyond max_keys, oldest first.
func (w *keyWindow) forget() {
	since := w.now().Add(-w.ttl).UnixNano()
	for w.head < len(w.order) {
		k := w.order[w.head]
		e := w.keys[k]
		if e != nil && len(w.keys) <= w.max && e.at > since {
			break
		}
		delete(w.keys, k)
		w.order[w.head] = ""
		w.head++
	}
	if w.head > len(w.order)/2 {
		w.order = append(w.order[:0], w.order[w.head:]...)
		w.head = 0
	}
}

// skipWritten marks the keyed lines of b whose rows were all written (nil
// when none was), counts their rows and warns once per key.
func (w *writer) skipWritten(ctx context.Context, b *fileBatch) []bool {
	if w.keys == nil || b.keys == nil {
		return nil
	}
	var skipped []bool
	var perKey map[string]int
	for i := range b.lineEnds {
		keys := b.lineKeys(i)
		if keys == nil || !w.keys.written(keys) {
			continue
		}
		if skipped == nil {
			skipped = make([]bool, len(b.lineEnds))
			perKey = map[string]int{}
		}
		skipped[i] = true
		for _, k := range keys {
			perKey[k.key]++
		}
	}
	w.warnResent(ctx, perKey, b.dir+"/"+b.stem+b.ext)
	return skipped
}

// keyedLines is the rowKeys of the keyed lines among lines [from, to) of b,
// and per line how many (0: not keyed).
func (b *fileBatch) keyedLines(from, to int) (perLine []int, rows []rowKey) {
	if b.keys == nil {
		return nil, nil
	}
	for i := from; i < to; i++ {
		keys := b.lineKeys(i)
		if keys != nil && perLine == nil {
			perLine = make([]int, to-from)
		}
		if keys != nil {
			perLine[i-from] = len(keys)
			rows = append(rows, keys...)
		}
	}
	return perLine, rows
}

// landedKeys remembers the keyed rows of lines [from, to) of b, which landed.
func (w *writer) landedKeys(b *fileBatch, from, to int, pl *pushLog) {
	if w.keys == nil {
		return
	}
	_, rows := b.keyedLines(from, to)
	w.landedRows(rows, pl)
}

// landedRows remembers the keyed rows among rows, which landed; pl stores
// them when the batch is retired.
func (w *writer) landedRows(rows []rowKey, pl *pushLog) {
	if w.keys == nil || len(rows) == 0 {
		return
	}
	if slices.ContainsFunc(rows, func(r rowKey) bool { return r.key == "" }) {
		rows = slices.DeleteFunc(slices.Clone(rows), func(r rowKey) bool { return r.key == "" })
	}
	w.keys.add(rows, time.Now())
	if pl != nil {
		pl.keyed = append(pl.keyed, rows...)
	}
}

// dropWritten is ld without the records whose (key, ordinal) was written
// or came earlier in ld (ld itself when there is none). The batcher may
// merge the queue's replay of a request and its resend into one push; and
// a resent request's rows are kept out of lines that also hold new rows (an
// MDC line is a request's rows). Two copies in pushes running at the same
// time are caught by skipWritten, under the file's lock.
func (e *blobExporter) dropWritten(ctx context.Context, ld plog.Logs) plog.Logs {
	var keep []logsubset.Ref
	var perKey map[string]int
	var seen map[rowKey]struct{}
	total := 0
	for ri, rl := range ld.ResourceLogs().All() {
		for si, sl := range rl.ScopeLogs().All() {
			for li, lr := range sl.LogRecords().All() {
				ref := logsubset.Ref{Resource: ri, Scope: si, Record: li}
				key, ord, ok := contract.IdempotencyOf(lr)
				if ok && seen == nil {
					seen = map[rowKey]struct{}{}
				}
				_, again := seen[rowKey{key, ord}]
				if !ok || !again && !e.w.keys.written([]rowKey{{key, ord}}) {
					keep = append(keep, ref)
					if ok {
						seen[rowKey{key, ord}] = struct{}{}
					}
					continue
				}
				if perKey == nil {
					perKey = map[string]int{}
				}
				perKey[key]++
				total++
			}
		}
	}
	if total == 0 {
		return ld
	}
	e.w.warnResent(ctx, perKey, "")
	return logsubset.Copy(ld, keep)
}

// holdKeys holds the Idempotency-Keys of ld's rows until the returned
// release (a no-op without keys).
func (e *blobExporter) holdKeys(ctx context.Context, ld plog.Logs) (func(), error) {
	var keys []string
	seen := map[string]struct{}{}
	if e.w.keys != nil {
		for _, rl := range ld.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					key, _, ok := contract.IdempotencyOf(lr)
					if _, dup := seen[key]; ok && !dup {
						seen[key] = struct{}{}
						keys = append(keys, key)
					}
				}
			}
		}
	}
	if len(keys) == 0 {
		return func() {}, nil
	}
	return e.w.keys.hold(ctx, keys)
}

// warnResent counts the rows of keyed requests not written again, with a
// warning per key.
func (w *writer) warnResent(ctx context.Context, perKey map[string]int, file string) {
	rows := 0
	for key, n := range perKey {
		rows += n
		fields := []zap.Field{zap.String("idempotency_key", key), zap.Int("rows", n)}
		if file != "" {
			fields = append(fields, zap.String("file", file))
		}
		w.logger.Warn("Rows of a request sent again (or replayed after a restart) were written already; not writing them again", fields...)
	}
	if rows > 0 {
		w.tel.resent.Add(ctx, int64(rows))
	}
}

// storedKeys is an entry of written keys in the storage extension.
type storedKeys struct {
	key  string
	at   int64
	keys int
}

// keyOps stores rows written at `at` as a new entry and deletes the entries
// past the window's TTL or beyond its max_keys. Called with j.creditMu held.
func (j *journal) keyOps(rows []rowKey, at time.Time) []*storage.Operation {
	var ops []*storage.Operation
	if len(rows) > 0 {
		e := storedKeys{key: j.newKey('k'), at: at.UnixNano(), keys: distinctKeys(rows)}
		ops = append(ops, storage.SetOperation(e.key, encodeKeyEntry(e.at, rows)))
		j.stored = append(j.stored, e)
		j.storedTotal += e.keys
	}
	if j.win == nil {
		return ops
	}
	since := j.win.now().Add(-j.win.ttl).UnixNano()
	for len(j.stored) > 0 && (j.stored[0].at <= since || j.storedTotal > j.win.max) {
		ops = append(ops, storage.DeleteOperation(j.stored[0].key))
		j.storedTotal -= j.stored[0].keys
		j.stored = j.stored[1:]
	}
	return ops
}

func distinctKeys(rows []rowKey) int {
	n := 0
	for i, r := range rows {
		if i == 0 || r.key != rows[i-1].key {
			n++
		}
	}
	return n
}

// adoptKeys takes the stored entries of a previous run into the window.
func (j *journal) adoptKeys(entries []storedKeys, rows [][]rowKey) {
	order := make([]int, len(entries))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return entries[order[a]].at < entries[order[b]].at })
	for _, i := range order {
		j.stored = append(j.stored, entries[i])
		j.storedTotal += entries[i].keys
		if j.win != nil {
			j.win.add(rows[i], time.Unix(0, entries[i].at))
		}
	}
}

// appendKeyRuns encodes rows as runs of consecutive ordinals of one key.
func appendKeyRuns(b []byte, rows []rowKey) []byte {
	var runs [][2]int // start index in rows, length
	for i := 0; i < len(rows); {
		n := 1
		for i+n < len(rows) && rows[i+n].key == rows[i].key && rows[i+n].ord == rows[i].ord+int64(n) {
			n++
		}
		runs = append(runs, [2]int{i, n})
		i += n
	}
	b = binary.AppendUvarint(b, uint64(len(runs)))
	for _, r := range runs {
		first := rows[r[0]]
		b = binary.AppendUvarint(b, uint64(len(first.key)))
		b = append(b, first.key...)
		b = binary.AppendUvarint(b, uint64(first.ord))
		b = binary.AppendUvarint(b, uint64(r[1]))
	}
	return b
}

// keyRuns decodes what appendKeyRuns wrote; at most limit rows.
func (r *reader) keyRuns(limit int) []rowKey {
	var rows []rowKey
	for n := r.count(); n > 0 && r.err == nil; n-- {
		key := string(r.bytes(r.count()))
		first := int64(r.uvarint())
		length := r.uvarint()
		if length > uint64(limit-len(rows)) || first < 0 {
			r.err = errCorrupt
			return nil
		}
		for i := range int64(length) {
			rows = append(rows, rowKey{key, first + i})
		}
	}
	return rows
}

// maxEntryRows bounds the rows one stored entry may decode to.
const maxEntryRows = 10_000_000

func encodeKeyEntry(at int64, rows []rowKey) []byte {
	b := []byte{'k'}
	b = binary.AppendUvarint(b, uint64(at))
	return appendKeyRuns(b, rows)
}

func decodeKeyEntry(b []byte) (int64, []rowKey, error) {
	r := &reader{b: b}
	if string(r.bytes(1)) != "k" {
		return 0, nil, errCorrupt
	}
	at := int64(r.uvarint())
	rows := r.keyRuns(maxEntryRows)
	return at, rows, r.err
}

// appendIntentKeys appends an intent's keys: per line how many rows are
// keyed, then the rows. Nothing when no line is keyed.
func appendIntentKeys(b []byte, perLine []int, rows []rowKey) []byte {
	if perLine == nil {
		return b
	}
	for _, n := range perLine {
		b = binary.AppendUvarint(b, uint64(n))
	}
	return appendKeyRuns(b, rows)
}

// intentKeys decodes what appendIntentKeys wrote for lines lines.
func (r *reader) intentKeys(lines int) (perLine []int, rows []rowKey) {
	if r.err != nil || len(r.b) == 0 {
		return nil, nil
	}
	perLine = make([]int, lines)
	total := 0
	for i := range perLine {
		n := r.uvarint()
		if n > maxEntryRows || total+int(n) > maxEntryRows {
			r.err = errCorrupt
			return nil, nil
		}
		perLine[i] = int(n)
		total += perLine[i]
	}
	rows = r.keyRuns(total)
	if r.err == nil && len(rows) != total {
		r.err = errCorrupt
	}
	return perLine, rows
}
