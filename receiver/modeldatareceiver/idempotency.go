package modeldatareceiver

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.uber.org/zap"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
	"github.com/otelcol-modeldata/otelcol-modeldata/receiver/modeldatareceiver/internal/metadata"
)

// A client that sends a request again because it got no answer (the
// connection broke, a proxy or its own timeout gave up, the collector
// restarted) names both sends with the same Idempotency-Key header (IETF draft
// draft-ietf-httpapi-idempotency-key-header). The receiver remembers the keys
// of the requests its pipeline accepted, for ttl and at most max_keys of them,
// in a storage extension when one is configured so they survive a restart,
// and answers a repeat with the first answer instead of passing its rows on
// again. A key is recorded once the pipeline accepted the request, right
// after its answer is written: an answer written has left the process, so a
// kill after it loses nothing; a kill between the pipeline's acceptance (the
// persistent queue's commit) and the answer is the one window left, in which
// the client's resend is taken as new.
const (
	idempotencyKeyHeader = "Idempotency-Key"
	// replayedHeader marks an answer repeated from the window (as Stripe's API does).
	replayedHeader = "Idempotent-Replayed"
	maxKeyLen      = 255
	// maxKeptAnswer bounds the answer body kept per key; a repeat of a request
	// whose answer was longer gets its status and a short JSON body.
	maxKeptAnswer = 64 << 10
	// idempotencyStorageName names the receiver's client of the storage extension.
	idempotencyStorageName = "idempotency"
	keyPrefix              = "k/"
)

// IdempotencyConfig is the window of accepted Idempotency-Keys.
type IdempotencyConfig struct {
	// Storage is a storage extension (e.g. file_storage) that keeps the
	// window across restarts; without it the window is in memory only and
	// covers lost answers, not a restart.
	Storage *component.ID `mapstructure:"storage"`
	// TTL is how long an accepted key is remembered.
	TTL time.Duration `mapstructure:"ttl"`
	// MaxKeys bounds the keys remembered (the oldest are forgotten first);
	// 0 turns idempotency off (the header is ignored).
	MaxKeys int `mapstructure:"max_keys"`
}

func (c *IdempotencyConfig) validate() error {
	errs := []error{contract.ValidateKeyWindow(c.TTL, c.MaxKeys)}
	if c.MaxKeys == 0 && c.Storage != nil {
		errs = append(errs, errors.New("idempotency::storage is set but max_keys is 0 (off)"))
	}
	return errors.Join(errs...)
}

// keyEntry is what memory holds of an accepted key; the answer is in the
// storage client.
type keyEntry struct {
	at     int64 // accepted, unix ns
	fp     fingerprint
	status uint16
}

// fingerprint identifies a request: method, path and query, body.
type fingerprint [16]byte

type orderedKey struct {
	key string
	at  int64
}

type idempotencyWindow struct {
	cfg     IdempotencyConfig
	logger  *zap.Logger
	repeats func(context.Context)
	// refused counts a request refused over a limit.
	refused func(context.Context, error)
	now     func() time.Time
	client  storage.Client

	mu       sync.Mutex
	keys     map[string]keyEntry
	order    []orderedKey // accepted order, oldest first from head
	head     int
	inFlight map[string]chan struct{}
	// writeMu keeps storage writes in the order of the memory changes they
	// mirror (a forgotten key deleted after it was accepted again would be lost).
	writeMu sync.Mutex
}

func newIdempotencyWindow(cfg IdempotencyConfig, logger *zap.Logger, tb *metadata.TelemetryBuilder) *idempotencyWindow {
	if cfg.MaxKeys == 0 {
		return nil
	}
	return &idempotencyWindow{
		cfg:      cfg,
		logger:   logger,
		repeats:  func(ctx context.Context) { tb.ModeldataIdempotentRepeats.Add(ctx, 1) },
		refused:  func(ctx context.Context, err error) { countRefusal(ctx, tb, err) },
		now:      time.Now,
		keys:     map[string]keyEntry{},
		inFlight: map[string]chan struct{}{},
	}
}

// open connects the window to its storage (or to memory) and loads the keys
// a previous run accepted.
func (w *idempotencyWindow) open(ctx context.Context, host component.Host, id component.ID) error {
	if w.cfg.Storage == nil {
		w.client = newMemoryClient()
		return nil
	}
	ext, ok := host.GetExtensions()[*w.cfg.Storage].(storage.Extension)
	if !ok {
		return fmt.Errorf("idempotency::storage: %s is not a storage extension of this collector (add it under extensions and service::extensions)", w.cfg.Storage)
	}
	client, err := ext.GetClient(ctx, component.KindReceiver, id, idempotencyStorageName)
	if err != nil {
		return fmt.Errorf("idempotency::storage: %w", err)
	}
	if err := w.load(ctx, client); err != nil {
		_ = client.Close(ctx)
		return fmt.Errorf("idempotency::storage: read the accepted keys: %w", err)
	}
	w.client = client
	if len(w.keys) > 0 {
		w.logger.Info("Idempotency keys of the previous run loaded: a resend of their requests is answered, not written again",
			zap.Int("keys", len(w.keys)))
	}
	return nil
}

func (w *idempotencyWindow) close(ctx context.Context) error {
	if w == nil || w.client == nil {
		return nil
	}
	err := w.client.Close(ctx)
	w.client = nil
	return err
}

func (w *idempotencyWindow) load(ctx context.Context, client storage.Client) error {
	walker, ok := client.(storage.Walker)
	if !ok {
		return errors.New("the storage extension cannot list its keys")
	}
	oldest := w.now().Add(-w.cfg.TTL).UnixNano()
	var loaded []orderedKey
	err := walker.Walk(ctx, func(key string, value []byte) ([]*storage.Operation, error) {
		k, isKey := strings.CutPrefix(key, keyPrefix)
		e, err := decodeKeyEntry(value)
		if !isKey || err != nil || e.at <= oldest {
			return []*storage.Operation{storage.DeleteOperation(key)}, nil
		}
		w.keys[k] = e
		loaded = append(loaded, orderedKey{k, e.at})
		return nil, nil
	})
	if err != nil {
		return err
	}
	slices.SortFunc(loaded, func(a, b orderedKey) int { return cmp.Compare(a.at, b.at) })
	w.order = loaded
	// A smaller max_keys than the previous run's: forget the oldest.
	if forgotten := w.forget(w.now(), 0); len(forgotten) > 0 {
		return client.Batch(ctx, deleteKeys(forgotten)...)
	}
	return nil
}

// wrap answers repeats of accepted requests and records the keys of the
// requests next accepts (a 2xx answer).
func (w *idempotencyWindow) wrap(next http.Handler) http.Handler {
	if w == nil {
		return next
	}
	return http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		key := req.Header.Get(idempotencyKeyHeader)
		if key == "" {
			next.ServeHTTP(rw, req)
			return
		}
		if err := validKey(key); err != nil {
			writeJSONError(rw, http.StatusBadRequest, err.Error())
			return
		}
		for {
			seen, busy, owned := w.claim(key)
			switch {
			case owned:
				w.serveFirst(rw, req, key, next)
				return
			case busy != nil:
				// The same request is being taken right now (the client gave
				// up waiting and sent it again): its outcome decides.
				select {
				case <-busy:
					continue
				case <-req.Context().Done():
					writeJSONError(rw, http.StatusServiceUnavailable, "a request with the same Idempotency-Key is in progress")
					return
				}
			default:
				w.serveRepeat(rw, req, key, seen)
				return
			}
		}
	})
}

func validKey(key string) error {
	if len(key) > maxKeyLen {
		return fmt.Errorf("the %s header is %d bytes long, over %d", idempotencyKeyHeader, len(key), maxKeyLen)
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < 0x21 || c > 0x7e {
			return fmt.Errorf("the %s header has a byte %#x at %d: use printable ASCII without spaces (e.g. a UUID)", idempotencyKeyHeader, c, i)
		}
	}
	return nil
}

// claim returns the key's entry when it was accepted, else a channel closed
// when the request that holds it is done, else takes it (owned).
func (w *idempotencyWindow) claim(key string) (seen keyEntry, busy chan struct{}, owned bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if e, ok := w.keys[key]; ok && e.at > w.now().Add(-w.cfg.TTL).UnixNano() {
		return e, nil, false
	}
	if ch, ok := w.inFlight[key]; ok {
		return keyEntry{}, ch, false
	}
	w.inFlight[key] = make(chan struct{})
	return keyEntry{}, nil, true
}

func (w *idempotencyWindow) release(key string) {
	w.mu.Lock()
	close(w.inFlight[key])
	delete(w.inFlight, key)
	w.mu.Unlock()
}

// serveFirst passes the request on and records its key when the answer says
// the pipeline accepted it.
func (w *idempotencyWindow) serveFirst(rw http.ResponseWriter, req *http.Request, key string, next http.Handler) {
	defer w.release(key)
	h := newRequestHash(req)
	req.Body = readCloser{io.TeeReader(req.Body, h), req.Body}
	answer := &answerWriter{ResponseWriter: rw}
	next.ServeHTTP(answer, req.WithContext(withStamp(req.Context(), key)))
	if answer.status < 200 || answer.status > 299 {
		return
	}
	// The key is committed before the answer leaves (the server sends it when
	// this handler returns): a client whose answer was lost, the process
	// killed after the commit, gets it again from the window on its resend.
	// What the handler left unread still names the request.
	if _, err := io.Copy(io.Discard, req.Body); err == nil {
		w.record(context.WithoutCancel(req.Context()), key, h.sum(), answer)
	}
}

func (w *idempotencyWindow) serveRepeat(rw http.ResponseWriter, req *http.Request, key string, seen keyEntry) {
	h := newRequestHash(req)
	if _, err := io.Copy(h, req.Body); err != nil {
		err = bodyError(err)
		w.refused(req.Context(), err)
		writeJSONError(rw, statusOf(err), err.Error())
		return
	}
	if h.sum() != seen.fp {
		writeJSONError(rw, http.StatusUnprocessableEntity, fmt.Sprintf(
			"the %s %q was used by an earlier request with another method, path, query or body: use a new key for a new request", idempotencyKeyHeader, key))
		return
	}
	w.repeats(req.Context())
	w.logger.Info("Request sent again with an accepted Idempotency-Key: answered as the first time, its rows not passed on again",
		zap.String("idempotency_key", key), zap.Time("accepted", time.Unix(0, seen.at)))
	contentType, body := "application/json", []byte(`{"repeated":true}`)
	if value, err := w.client.Get(req.Context(), keyPrefix+key); err == nil && value != nil {
		if ct, b, ok := decodeAnswer(value); ok {
			contentType, body = ct, b
		}
	}
	rw.Header().Set("Content-Type", contentType)
	rw.Header().Set("Content-Length", strconv.Itoa(len(body)))
	rw.Header().Set(replayedHeader, "true")
	rw.WriteHeader(int(seen.status))
	_, _ = rw.Write(body)
}

// record remembers an accepted key, and forgets the expired ones and the
// oldest beyond max_keys, in memory and in storage.
func (w *idempotencyWindow) record(ctx context.Context, key string, fp fingerprint, answer *answerWriter) {
	now := w.now()
	e := keyEntry{at: now.UnixNano(), fp: fp, status: uint16(answer.status)}
	w.mu.Lock()
	forgotten := w.forget(now, 1)
	w.keys[key] = e
	w.order = append(w.order, orderedKey{key, e.at})
	w.writeMu.Lock()
	w.mu.Unlock()
	ops := append(deleteKeys(forgotten), storage.SetOperation(keyPrefix+key, encodeKeyEntry(e, answer)))
	err := w.client.Batch(ctx, ops...)
	w.writeMu.Unlock()
	if err != nil {
		w.logger.Warn("Could not store an accepted Idempotency-Key: a resend of the request after a restart would be written again",
			zap.String("idempotency_key", key), zap.Error(err))
	}
}

// forget drops, from the oldest, the expired keys and as many as it takes to
// leave room for n more (called with mu held).
func (w *idempotencyWindow) forget(now time.Time, room int) []string {
	oldest := now.Add(-w.cfg.TTL).UnixNano()
	var forgotten []string
	for w.head < len(w.order) {
		o := w.order[w.head]
		if len(w.keys)+room <= w.cfg.MaxKeys && o.at > oldest {
			break
		}
		w.order[w.head] = orderedKey{}
		w.head++
		// A key accepted again after it expired is in order twice: only
		// its newest place counts.
		if e, ok := w.keys[o.key]; ok && e.at == o.at {
			delete(w.keys, o.key)
			forgotten = append(forgotten, o.key)
		}
	}
	if w.head > len(w.order)/2 {
		w.order = append(w.order[:0], w.order[w.head:]...)
		w.head = 0
	}
	return forgotten
}

func deleteKeys(keys []string) []*storage.Operation {
	ops := make([]*storage.Operation, len(keys), len(keys)+1)
	for i, k := range keys {
		ops[i] = storage.DeleteOperation(keyPrefix + k)
	}
	return ops
}

// requestHash is the fingerprint of a request in the making.
type requestHash struct{ hash.Hash }

func newRequestHash(req *http.Request) requestHash {
	h := sha256.New()
	_, _ = io.WriteString(h, req.Method+" "+req.URL.RequestURI()+"\n")
	return requestHash{h}
}

func (h requestHash) sum() fingerprint {
	var fp fingerprint
	copy(fp[:], h.Sum(nil))
	return fp
}

type readCloser struct {
	io.Reader
	io.Closer
}

// answerWriter passes a handler's answer on and keeps its status and body
// (up to maxKeptAnswer; over it, the body is not kept).
type answerWriter struct {
	http.ResponseWriter
	status  int
	body    bytes.Buffer
	tooLong bool
}

func (a *answerWriter) WriteHeader(status int) {
	if a.status == 0 {
		a.status = status
	}
	a.ResponseWriter.WriteHeader(status)
}

func (a *answerWriter) Write(b []byte) (int, error) {
	if a.status == 0 {
		a.status = http.StatusOK
	}
	if !a.tooLong {
		if a.body.Len()+len(b) > maxKeptAnswer {
			a.tooLong = true
			a.body = bytes.Buffer{}
		} else {
			a.body.Write(b)
		}
	}
	return a.ResponseWriter.Write(b)
}

// A stored key: 'k', accepted (unix ns, 8 bytes), fingerprint (16 bytes),
// status (2 bytes), then the answer: Content-Type and body, each
// length-prefixed (uvarint); no answer when the body was over maxKeptAnswer.
const entryHeaderLen = 1 + 8 + 16 + 2

func encodeKeyEntry(e keyEntry, answer *answerWriter) []byte {
	contentType := answer.Header().Get("Content-Type")
	body := answer.body.Bytes()
	b := make([]byte, 0, entryHeaderLen+4+len(contentType)+len(body))
	b = append(b, 'k')
	b = binary.BigEndian.AppendUint64(b, uint64(e.at))
	b = append(b, e.fp[:]...)
	b = binary.BigEndian.AppendUint16(b, e.status)
	if !answer.tooLong {
		b = binary.AppendUvarint(b, uint64(len(contentType)))
		b = append(b, contentType...)
		b = binary.AppendUvarint(b, uint64(len(body)))
		b = append(b, body...)
	}
	return b
}

var errCorruptKey = errors.New("corrupt idempotency key entry")

func decodeKeyEntry(b []byte) (keyEntry, error) {
	if len(b) < entryHeaderLen || b[0] != 'k' {
		return keyEntry{}, errCorruptKey
	}
	var e keyEntry
	e.at = int64(binary.BigEndian.Uint64(b[1:9]))
	copy(e.fp[:], b[9:25])
	e.status = binary.BigEndian.Uint16(b[25:27])
	return e, nil
}

func decodeAnswer(b []byte) (contentType string, body []byte, ok bool) {
	if _, err := decodeKeyEntry(b); err != nil {
		return "", nil, false
	}
	rest := b[entryHeaderLen:]
	field := func() ([]byte, bool) {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return nil, false
		}
		f := rest[k : k+int(n)]
		rest = rest[k+int(n):]
		return f, true
	}
	ct, ok1 := field()
	body, ok2 := field()
	return string(ct), body, ok1 && ok2
}

// memoryClient is the window's storage when no storage extension is
// configured: the answers of the keys in memory.
type memoryClient struct {
	mu sync.Mutex
	m  map[string][]byte
}

func newMemoryClient() *memoryClient { return &memoryClient{m: map[string][]byte{}} }

func (c *memoryClient) Get(_ context.Context, key string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[key], nil
}

func (c *memoryClient) Set(ctx context.Context, key string, value []byte) error {
	return c.Batch(ctx, storage.SetOperation(key, value))
}

func (c *memoryClient) Delete(ctx context.Context, key string) error {
	return c.Batch(ctx, storage.DeleteOperation(key))
}

func (c *memoryClient) Batch(_ context.Context, ops ...*storage.Operation) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, op := range ops {
		switch op.Type {
		case storage.Get:
			op.Value = c.m[op.Key]
		case storage.Set:
			c.m[op.Key] = op.Value
		case storage.Delete:
			delete(c.m, op.Key)
		}
	}
	return nil
}

func (c *memoryClient) Close(context.Context) error { return nil }
