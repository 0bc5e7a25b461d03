package modeldatareceiver

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
	"github.com/otelcol-modeldata/otelcol-modeldata/receiver/modeldatareceiver/internal/metadata"
)

const (
	idemBody      = `{"model_name":"m","data":[[1],[2],[3]]}`
	idemBodyOther = `{"model_name":"m","data":[[4]]}`
	idemBatch     = `{"model_name":"m","data":[[1],[2]]}` + "\n" + `{"model_name":"m","designation":"predictions","data":[[3]]}`
)

// flakyConsumer refuses the first `refuse` batches (a full queue), then
// passes everything to the sink.
type flakyConsumer struct {
	refuse atomic.Int32
	sink   *consumertest.LogsSink
}

func (c *flakyConsumer) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }
func (c *flakyConsumer) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	if c.refuse.Add(-1) >= 0 {
		return errors.New("sending queue is full")
	}
	return c.sink.ConsumeLogs(ctx, ld)
}

type idemSend struct {
	path, key, body string // path "" is /v1/collect
	want            int
	replayed        bool
}

// TestIdempotencyKey sends sequences of requests and counts the rows that
// reach the pipeline: a repeat of an accepted request is answered as the
// first time and passes nothing on.
func TestIdempotencyKey(t *testing.T) {
	for _, tc := range []struct {
		name    string
		refuse  int32 // first batches the pipeline refuses
		edit    func(*Config)
		sends   []idemSend
		rows    int
		repeats int64
	}{
		{name: "a repeat is answered, not passed on", sends: []idemSend{
			{key: "k1", body: idemBody, want: 200}, {key: "k1", body: idemBody, want: 200, replayed: true},
			{key: "k1", body: idemBody, want: 200, replayed: true}}, rows: 3, repeats: 2},
		{name: "without a key every send is new", sends: []idemSend{
			{body: idemBody, want: 200}, {body: idemBody, want: 200}}, rows: 6},
		{name: "different keys are different requests", sends: []idemSend{
			{key: "k1", body: idemBody, want: 200}, {key: "k2", body: idemBody, want: 200}}, rows: 6},
		{name: "a key reused with another body is refused", sends: []idemSend{
			{key: "k1", body: idemBody, want: 200}, {key: "k1", body: idemBodyOther, want: 422}}, rows: 3},
		{name: "a key reused on another route is refused", sends: []idemSend{
			{key: "k1", body: idemBody, want: 200}, {path: batchPath, key: "k1", body: idemBody, want: 422}}, rows: 3},
		{name: "a refused request is not recorded: its resend is taken", refuse: 1, sends: []idemSend{
			{key: "k1", body: idemBody, want: 503}, {key: "k1", body: idemBody, want: 200},
			{key: "k1", body: idemBody, want: 200, replayed: true}}, rows: 3, repeats: 1},
		{name: "a bad request is not recorded", sends: []idemSend{
			{key: "k1", body: `{"data":[[1]]}`, want: 400}, {key: "k1", body: idemBody, want: 200}}, rows: 3},
		{name: "batch route", sends: []idemSend{
			{path: batchPath, key: "b1", body: idemBatch, want: 200},
			{path: batchPath, key: "b1", body: idemBatch, want: 200, replayed: true}}, rows: 3, repeats: 1},
		{name: "key too long", sends: []idemSend{{key: strings.Repeat("k", maxKeyLen+1), body: idemBody, want: 400}}},
		{name: "key with a space", sends: []idemSend{{key: "a b", body: idemBody, want: 400}}},
		{name: "max_keys 0 turns it off", edit: func(c *Config) { c.Idempotency.MaxKeys = 0 }, sends: []idemSend{
			{key: "k1", body: idemBody, want: 200}, {key: "k1", body: idemBody, want: 200}}, rows: 6},
		{name: "the oldest key beyond max_keys is forgotten", edit: func(c *Config) { c.Idempotency.MaxKeys = 1 }, sends: []idemSend{
			{key: "k1", body: idemBody, want: 200}, {key: "k2", body: idemBody, want: 200},
			{key: "k2", body: idemBody, want: 200, replayed: true}, {key: "k1", body: idemBody, want: 200}}, rows: 9, repeats: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tel, set := telemetrySettings(t)
			next := &flakyConsumer{sink: new(consumertest.LogsSink)}
			next.refuse.Store(tc.refuse)
			r := startReceiverWith(t, receiverOptions{set: set, edit: tc.edit, next: next})
			var first string
			for i, s := range tc.sends {
				url := r.url
				if s.path == batchPath {
					url += "/batch"
				}
				contentType := "application/json"
				if s.path == batchPath {
					contentType = ndjsonContentType
				}
				headers := map[string]string{}
				if s.key != "" {
					headers[idempotencyKeyHeader] = s.key
				}
				resp := post(t, url, contentType, s.body, headers)
				if resp.status != s.want || (resp.header.Get(replayedHeader) == "true") != s.replayed {
					t.Fatalf("send %d: %d %s %q, want %d replayed %v", i, resp.status, replayedHeader, resp.header.Get(replayedHeader), s.want, s.replayed)
				}
				if s.want == 200 && s.key == tc.sends[0].key && s.path == tc.sends[0].path {
					// The repeat's answer is the first answer: same correlation id.
					if first == "" || !s.replayed {
						first = resp.body
					} else if resp.body != first {
						t.Errorf("send %d answered %s, the first answer was %s", i, resp.body, first)
					}
				}
			}
			if got := len(records(next.sink)); got != tc.rows {
				t.Errorf("%d rows reached the pipeline, want %d", got, tc.rows)
			}
			if got := metricSum(t, tel, "otelcol_modeldata_idempotent_repeats"); got != tc.repeats {
				t.Errorf("repeats metric %d, want %d", got, tc.repeats)
			}
		})
	}
}

// TestIdempotencyKeySurvivesRestart: with file_storage, a key accepted
// before a restart is still known after it; after ttl it is forgotten, in
// memory and in storage.
func TestIdempotencyKeySurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	storageID := testutil.FileStorageID
	edit := func(c *Config) { c.Idempotency.Storage = &storageID }
	sink := new(consumertest.LogsSink)
	run := func(now time.Time, key string) response {
		host, stop := testutil.StartFileStorage(t, dir)
		defer stop()
		set := receivertest.NewNopSettings(metadata.Type)
		set.ID = component.NewID(metadata.Type) // the same receiver across restarts
		r := startReceiverWith(t, receiverOptions{set: &set, edit: edit, next: sink, host: host, idemNow: func() time.Time { return now }})
		defer func() {
			if err := r.rcv.Shutdown(context.Background()); err != nil {
				t.Error(err)
			}
		}()
		return post(t, r.url, "application/json", idemBody, map[string]string{idempotencyKeyHeader: key})
	}
	start := time.Now()
	for i, step := range []struct {
		at       time.Duration
		key      string
		replayed bool
		rows     int
	}{
		{0, "k1", false, 3},
		{time.Minute, "k1", true, 3},                  // restarted: still known
		{2 * time.Minute, "k2", false, 6},             // another key
		{contract.DefaultKeyTTL, "k1", false, 9},      // k1 expired (accepted at 0): taken again
		{contract.DefaultKeyTTL, "k2", true, 9},       // k2 not yet
		{3 * contract.DefaultKeyTTL, "k2", false, 12}, // loaded expired: dropped at start
	} {
		resp := run(start.Add(step.at), step.key)
		if resp.status != 200 || (resp.header.Get(replayedHeader) == "true") != step.replayed {
			t.Fatalf("step %d: %d %s replayed %q, want replayed %v", i, resp.status, resp.body, resp.header.Get(replayedHeader), step.replayed)
		}
		if got := len(records(sink)); got != step.rows {
			t.Fatalf("step %d: %d rows reached the pipeline, want %d", i, got, step.rows)
		}
	}
}

// blockingConsumer holds every batch until released.
type blockingConsumer struct {
	entered chan struct{}
	release chan struct{}
	sink    *consumertest.LogsSink
}

func (c *blockingConsumer) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }
func (c *blockingConsumer) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	c.entered <- struct{}{}
	<-c.release
	return c.sink.ConsumeLogs(ctx, ld)
}

// TestIdempotencyKeyWhileInFlight: sends of one key while the first is still
// being taken wait for its outcome and are answered from it.
func TestIdempotencyKeyWhileInFlight(t *testing.T) {
	next := &blockingConsumer{entered: make(chan struct{}, 8), release: make(chan struct{}), sink: new(consumertest.LogsSink)}
	r := startReceiverWith(t, receiverOptions{next: next})
	statuses := make(chan int, 8)
	var wg sync.WaitGroup
	send := func() {
		defer wg.Done()
		statuses <- post(t, r.url, "application/json", idemBody, map[string]string{idempotencyKeyHeader: "k1"}).status
	}
	wg.Add(1)
	go send()
	<-next.entered // the first is in the pipeline
	for range 5 {
		wg.Add(1)
		go send()
	}
	close(next.release)
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != 200 {
			t.Errorf("status %d", s)
		}
	}
	if got := len(records(next.sink)); got != 3 {
		t.Errorf("%d rows reached the pipeline, want 3", got)
	}
}

func TestIdempotencyConfig(t *testing.T) {
	storageID := component.MustNewID("file_storage")
	for _, tc := range []struct {
		cfg  IdempotencyConfig
		want string
	}{
		{IdempotencyConfig{TTL: time.Minute, MaxKeys: 10}, ""},
		{IdempotencyConfig{TTL: time.Minute, MaxKeys: 10, Storage: &storageID}, ""},
		{IdempotencyConfig{}, ""},
		{IdempotencyConfig{TTL: 0, MaxKeys: 10}, "idempotency::ttl must be positive"},
		{IdempotencyConfig{TTL: time.Minute, MaxKeys: -1}, "idempotency::max_keys must be between 0 (off) and"},
		{IdempotencyConfig{TTL: time.Minute, MaxKeys: 10_000_001}, "idempotency::max_keys must be between 0 (off) and"},
		{IdempotencyConfig{Storage: &storageID}, "idempotency::storage is set but max_keys is 0"},
	} {
		err := tc.cfg.validate()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// TestIdempotencyStorageMissing: a storage id that names no storage
// extension fails the start with a clear message.
func TestIdempotencyStorageMissing(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.NetAddr.Endpoint = freeAddr(t)
	missing := component.MustNewID("file_storage")
	cfg.Idempotency.Storage = &missing
	_, set := telemetrySettings(t)
	r, err := newReceiver(cfg, *set, consumertest.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	err = r.Start(context.Background(), testutil.StorageHost{})
	if err == nil || !strings.Contains(err.Error(), "idempotency::storage: file_storage is not a storage extension") {
		t.Fatalf("start: %v", err)
	}
}

func TestKeyEntryRoundTrip(t *testing.T) {
	for _, body := range []string{"", `{"accepted":3}`, strings.Repeat("x", maxKeptAnswer), strings.Repeat("x", maxKeptAnswer+1)} {
		answer := &answerWriter{ResponseWriter: httptest.NewRecorder()}
		answer.Header().Set("Content-Type", "application/json")
		answer.WriteHeader(http.StatusOK)
		_, _ = answer.Write([]byte(body[:len(body)/2]))
		_, _ = answer.Write([]byte(body[len(body)/2:]))
		e := keyEntry{at: 1234567890123, fp: fingerprint{1, 2, 3}, status: 200}
		b := encodeKeyEntry(e, answer)
		got, err := decodeKeyEntry(b)
		if err != nil || got != e {
			t.Errorf("entry %+v %v, want %+v", got, err, e)
		}
		ct, gotBody, ok := decodeAnswer(b)
		if kept := len(body) <= maxKeptAnswer; ok != kept || (kept && (ct != "application/json" || string(gotBody) != body)) {
			t.Errorf("answer of %d bytes: %q %d bytes, kept %v", len(body), ct, len(gotBody), ok)
		}
	}
	if _, err := decodeKeyEntry([]byte("k123")); err == nil {
		t.Error("a short entry decoded")
	}
}

// BenchmarkIdempotencyRecord times recording one accepted key in file_storage:
// the window between the persistent queue's commit of a request and its key's
// commit, in which a kill -9 makes a resend of the request look new.
func BenchmarkIdempotencyRecord(b *testing.B) {
	host, stop := testutil.StartFileStorage(b, b.TempDir())
	defer stop()
	storageID := testutil.FileStorageID
	_, set := telemetrySettings(b)
	w := newIdempotencyWindow(IdempotencyConfig{Storage: &storageID, TTL: time.Hour, MaxKeys: contract.DefaultMaxKeys}, set.Logger, mustTelemetry(b, set))
	if err := w.open(context.Background(), host, component.NewID(metadata.Type)); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = w.close(context.Background()) }()
	answer := &answerWriter{ResponseWriter: httptest.NewRecorder(), status: http.StatusOK}
	answer.Header().Set("Content-Type", "application/json")
	answer.body.WriteString(`{"accepted":100,"correlation_id":"1b4e28ba-2fa1-11d2-883f-0016d3cca427","scoring_timestamp":"2020-08-13T15:54:16.691697","request_id":"1b4e28ba-2fa1-11d2-883f-0016d3cca427"}`)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w.record(context.Background(), "1b4e28ba-2fa1-11d2-883f-"+strconv.Itoa(i), fingerprint{}, answer)
	}
}

func mustTelemetry(tb testing.TB, set *receiver.Settings) *metadata.TelemetryBuilder {
	t, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// BenchmarkIdempotencyWindowMemory reports the heap a full window of
// max_keys keys holds: in memory only (the answers too) and with file_storage
// (the keys' fingerprints and times; the answers are on disk).
func BenchmarkIdempotencyWindowMemory(b *testing.B) {
	storageID := testutil.FileStorageID
	for _, tc := range []struct {
		name    string
		storage *component.ID
	}{{"memory", nil}, {"file_storage", &storageID}} {
		b.Run(tc.name, func(b *testing.B) {
			host, stop := testutil.StartFileStorage(b, b.TempDir())
			defer stop()
			_, set := telemetrySettings(b)
			for i := 0; i < b.N; i++ {
				w := newIdempotencyWindow(IdempotencyConfig{Storage: tc.storage, TTL: time.Hour, MaxKeys: contract.DefaultMaxKeys}, set.Logger, mustTelemetry(b, set))
				if err := w.open(context.Background(), host, component.NewIDWithName(metadata.Type, strconv.Itoa(i))); err != nil {
					b.Fatal(err)
				}
				answer := &answerWriter{ResponseWriter: httptest.NewRecorder(), status: http.StatusOK}
				answer.Header().Set("Content-Type", "application/json")
				answer.body.WriteString(`{"groups":2,"accepted":7}`)
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				for k := 0; k < contract.DefaultMaxKeys; k++ {
					w.record(context.Background(), "1b4e28ba-2fa1-11d2-883f-"+strconv.Itoa(100000000+k), fingerprint{}, answer)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/contract.DefaultMaxKeys, "heap-B/key")
				runtime.KeepAlive(w)
				_ = w.close(context.Background())
			}
		})
	}
}
