package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/harness"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/harness/faultproxy"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// faultSize is the load of a fault run: CI smoke or full (make faults).
type faultSize struct {
	requests int           // of rowsPerRequest rows
	rate     float64       // rows/s
	outage   time.Duration // how long the fault lasts
	// rowsPerRequest is 100 when 0.
	rowsPerRequest int
}

func (s faultSize) rowsEach() int {
	if s.rowsPerRequest == 0 {
		return 100
	}
	return s.rowsPerRequest
}

func faultRun(smoke, full faultSize) faultSize {
	if harnessFull() {
		return full
	}
	return smoke
}

// faultLoad runs a paced load in the background and injects the fault each
// time a share in `at` of the rows is acknowledged: fault() starts it, heal()
// ends it after the outage. It returns the manifest and the verifier's report
// read after drain (see waitVerified), and logs how long after the last heal
// every acknowledged row was found. Every request carries an Idempotency-Key,
// the same on every resend.
func faultLoad(t *testing.T, size faultSize, collectURL string, at []float64, fault, heal func(),
	verify verifier, drain func()) (*harness.Manifest, *harness.Report) {
	t.Helper()
	m, rep, _ := faultLoadDrain(t, size, collectURL, at, fault, heal, verify, drain, false)
	return m, rep
}

// drainTimes is how long after the last heal the rows were found.
type drainTimes struct {
	// queued: every row acknowledged before the heal (what the collector
	// held while storage was away); 0 when not measured.
	queued time.Duration
	// all: every acknowledged row, including those the client sent again
	// after its 503s and the rest of the paced load.
	all time.Duration
}

// faultLoadDrain is faultLoad that, with measureQueued, also polls from the
// last heal until every row acknowledged before it is found.
func faultLoadDrain(t *testing.T, size faultSize, collectURL string, at []float64, fault, heal func(),
	verify verifier, drain func(), measureQueued bool) (*harness.Manifest, *harness.Report, drainTimes) {
	t.Helper()
	var (
		acked   atomic.Int64
		ackMu   sync.Mutex
		ackedAt = make([]bool, size.requests)
	)
	total := int64(size.requests * size.rowsEach())
	loadTime := time.Duration(float64(total) / size.rate * float64(time.Second))
	cfg := harness.LoadConfig{
		Rows:     harness.Rows{Run: harness.NewRunID(), Features: 10, RowsPerRequest: size.rowsEach()},
		Targets:  map[harness.Door]string{harness.DoorCollect: collectURL},
		Requests: size.requests, Rate: size.rate, Concurrency: 4,
		// A request refused with 503 while the queue is full is retried
		// (same ids) until storage is back and the queue drains.
		MaxDuration: 2*loadTime + time.Duration(len(at))*size.outage + 10*time.Minute,
		RetryFor:    size.outage + 3*time.Minute,
		// A request whose answer a kill cut off is sent again with the
		// same key: the receiver answers it without writing it twice.
		IdempotencyKeys: true,
		Progress: func(req int, n int64) {
			ackMu.Lock()
			ackedAt[req] = true
			ackMu.Unlock()
			acked.Store(n)
		},
	}
	cfg.Rows.Defaults()
	type result struct {
		m   *harness.Manifest
		err error
	}
	done := make(chan result, 1)
	go func() {
		m, err := harness.Load(context.Background(), cfg)
		done <- result{m, err}
	}()
	var healed time.Time
	queuedDrained := make(chan time.Duration, 1)
	for i, share := range at {
		if !testutil.Poll(loadTime+2*time.Minute, func() bool { return acked.Load() >= int64(share*float64(total)) }) {
			t.Fatalf("load stalled at %d rows before the fault", acked.Load())
		}
		t.Logf("fault at %d/%d acknowledged rows", acked.Load(), total)
		fault()
		time.Sleep(size.outage) // the outage itself: the scenario, not a wait for an outcome
		heal()
		healed = time.Now()
		t.Logf("healed after %s at %d acknowledged rows", size.outage, acked.Load())
		if measureQueued && i == len(at)-1 {
			queued := harness.Manifest{Rows: cfg.Rows, Requests: size.requests}
			ackMu.Lock()
			for req, ok := range ackedAt {
				if !ok {
					queued.NotAcked = append(queued.NotAcked, req)
				}
			}
			ackMu.Unlock()
			go func() {
				if !testutil.Poll(3*time.Minute, func() bool {
					rep, err := verify(&queued)
					return err == nil && rep.Found+rep.Malformed >= rep.Expected
				}) {
					queuedDrained <- -1
					return
				}
				queuedDrained <- time.Since(healed)
			}()
		}
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	m := r.m
	loadEnded := time.Now()
	t.Logf("load: %d requests, not acked %d, %.0f rows/s, attempts %d, retries %d, transport errors %d, status %v",
		m.Requests, len(m.NotAcked), m.Stats.RowsPerSecond, m.Stats.Attempts, m.Stats.Retries, m.Stats.TransportErrors, m.Stats.Status)
	rep := waitFound(t, m, verify, 3*time.Minute)
	var d drainTimes
	if rep.Found+rep.Malformed >= rep.Expected {
		d.all = time.Since(healed)
		t.Logf("DRAIN: every acknowledged row found %.1f s after the last heal (load ended %.1f s after it)",
			d.all.Seconds(), loadEnded.Sub(healed).Seconds())
	}
	if measureQueued {
		d.queued = <-queuedDrained
		t.Logf("DRAIN-QUEUED: every row acknowledged before the heal found %.1f s after it", d.queued.Seconds())
	}
	return m, settled(t, m, verify, rep, drain), d
}

// TestHarnessFaultKill9 kills the collector with SIGKILL at random moments
// under load (persistent queue in file_storage; 3 kills in CI, 20 in the full
// run), restarts it each time, and counts every row: none missing, none
// doubled. A batch appended but not yet acknowledged to the queue is replayed
// after the restart, and the exporter's append journal skips its landed rows;
// a request the kill cut off after the queue committed it is resent with its
// Idempotency-Key, and the exporter writes each (key, ordinal) row once.
// TestHarnessFaultKill9LargeRequests does the same with requests of 10,000
// rows, each handed on in several pieces: a kill between two pieces leaves
// the first queued and the request unanswered, and its resend is written once.
func TestHarnessFaultKill9(t *testing.T) {
	testKill9(t, "KILL9", 20, faultRun(faultSize{requests: 100, rate: 3000, outage: 500 * time.Millisecond},
		faultSize{requests: 2000, rate: 3000, outage: time.Second}))
}

func TestHarnessFaultKill9LargeRequests(t *testing.T) {
	testKill9(t, "KILL9-LARGE", 10, faultRun(faultSize{requests: 12, rate: 20000, outage: 500 * time.Millisecond, rowsPerRequest: 10000},
		faultSize{requests: 40, rate: 20000, outage: time.Second, rowsPerRequest: 10000}))
}

// testKill9 runs the load of size with 3 random kills (fullKills in the full
// run) and asserts every row exactly once.
func testKill9(t *testing.T, label string, fullKills int, size faultSize) {
	testutil.CollectorBinary(t)
	az := testutil.StartAzurite(t)
	collect, health, metricsPort := harnessAddr(t), harnessAddr(t), testutil.FreePort(t)
	cfg := harness.CollectorConfig{CollectAddr: collect, HealthAddr: health, ConnectionString: az.ConnectionString(),
		QueueDir: filepath.Join(t.TempDir(), "queue"), FlushTimeout: "500ms", MinBatch: 1000, MetricsPort: metricsPort}
	col := testutil.StartCollector(t, cfg.YAML(), collect, health)
	// Resends the restarted receiver answered from its idempotency window,
	// and rows of keyed requests the exporter found written already, summed
	// over the collector's lives (read just before each kill and before the
	// final drain stops it).
	var repeats, resent float64
	countRepeats := func() {
		v, _ := harness.MetricSum(context.Background(), metricsURL(metricsPort), "otelcol_modeldata_idempotent_repeats")
		repeats += v
		v, _ = harness.MetricSum(context.Background(), metricsURL(metricsPort), "otelcol_modeldatablob_rows_resent")
		resent += v
	}
	kills := 3
	if harnessFull() {
		kills = fullKills
	}
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	at := make([]float64, kills)
	for i := range at {
		at[i] = 0.05 + 0.9*rng.Float64()
	}
	sort.Float64s(at)
	t.Logf("kill -9 at shares %.3f of the acknowledged rows (seed %d)", at, seed)
	m, rep := faultLoad(t, size, "http://"+collect, at,
		func() { countRepeats(); col.Kill() }, func() { col.Restart(collect, health) }, azuriteVerifier(t, az),
		func() { countRepeats(); drainCollector(t, col, metricsURL(metricsPort))() })
	t.Logf("%s: %d kills, requests of %d rows, expected %d, found %d, missing %d, duplicated %d, malformed %d; %d requests cut off and resent; "+
		"resends answered from the idempotency window: %.0f; rows of keyed requests not written again (rows_resent): %.0f",
		label, kills, size.rowsEach(), rep.Expected, rep.Found, rep.Missing, rep.Duplicated, rep.Malformed, len(m.CutOff), repeats, resent)
	assertExactlyOnceAcrossKills(t, m, rep)
}

// assertExactlyOnceAcrossKills: no row missing, damaged or doubled. A
// request whose connection the kill cut was sent again with the same
// Idempotency-Key; when the kill fell between the persistent queue's commit
// of the request and the answer, the queue holds both copies, and the
// exporter writes each (key, ordinal) row once. Duplicates are reported
// apart: of requests cut off and resent, and of others; either fails.
func assertExactlyOnceAcrossKills(t *testing.T, m *harness.Manifest, rep *harness.Report) {
	t.Helper()
	var resent, doubled []int
	for _, req := range rep.DuplicateRequests {
		if slices.Contains(m.CutOff, req) {
			resent = append(resent, req)
		} else {
			doubled = append(doubled, req)
		}
	}
	t.Logf("requests cut off by a kill and sent again: %d; of them written twice: %d %v; other requests with a duplicated row: %d %v",
		len(m.CutOff), len(resent), resent, len(doubled), doubled)
	if len(m.NotAcked) > 0 || rep.Missing > 0 || rep.Malformed > 0 || rep.Found != rep.Expected || len(doubled) > 0 || len(resent) > 0 {
		t.Errorf("not exactly once across kill -9: %s (not acked %d); missing %v; malformed %v; written twice: resent requests %v, others %v",
			rep, len(m.NotAcked), rep.MissingSample, rep.MalformedSample, resent, doubled)
	}
}

// TestHarnessFaultKill9AnswerLost aims at what the Idempotency-Key is for:
// the collector takes a request (the persistent queue holds it) and writes
// its answer, the answer never reaches the client, and the collector is
// killed (-9) before the client sends the request again. The fault proxy
// between the load client and the receiver forwards one request, SIGKILLs the
// collector once the answer is back, and drops the answer; the client sends
// the request again, with the same key, to the restarted collector, which
// finds the key in file_storage and answers without writing the rows again.
func TestHarnessFaultKill9AnswerLost(t *testing.T) {
	testutil.CollectorBinary(t)
	size := faultRun(faultSize{requests: 60, rate: 3000, outage: time.Second}, faultSize{requests: 600, rate: 3000, outage: time.Second})
	az := testutil.StartAzurite(t)
	collect, health, metricsPort := harnessAddr(t), harnessAddr(t), testutil.FreePort(t)
	cfg := harness.CollectorConfig{CollectAddr: collect, HealthAddr: health, ConnectionString: az.ConnectionString(),
		QueueDir: filepath.Join(t.TempDir(), "queue"), FlushTimeout: "500ms", MinBatch: 1000, MetricsPort: metricsPort}
	col := testutil.StartCollector(t, cfg.YAML(), collect, health)
	p, err := faultproxy.Start("http://" + collect)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	fired, killed := make(chan struct{}), make(chan struct{})
	p.SetHook(func() {
		close(fired)
		<-killed // the collector is dead before its answer goes on
	})
	var repeats float64 // of the restarted collector, read before the drain stops it
	m, rep := faultLoad(t, size, p.URL(), []float64{0.3},
		func() {
			p.SetMode(faultproxy.HookAfterAnswer)
			select {
			case <-fired:
			case <-time.After(time.Minute):
				t.Fatal("no request reached the proxy")
			}
			col.Kill()
			close(killed)
		},
		func() { col.Restart(collect, health) }, azuriteVerifier(t, az),
		func() {
			repeats, _ = harness.MetricSum(context.Background(), metricsURL(metricsPort), "otelcol_modeldata_idempotent_repeats")
			drainCollector(t, col, metricsURL(metricsPort))()
		})
	key := p.HookedHeader().Get("Idempotency-Key")
	lost := -1
	for req := range m.Requests {
		if m.RequestID(req) == key {
			lost = req
		}
	}
	t.Logf("KILL9-ANSWER-LOST: request %d (key %q) taken, its answer lost, the collector killed; resends answered from the idempotency window: %.0f; expected %d, found %d, missing %d, duplicated %d",
		lost, key, repeats, rep.Expected, rep.Found, rep.Missing, rep.Duplicated)
	if lost < 0 || !slices.Contains(m.CutOff, lost) {
		t.Errorf("the request whose answer was lost (%d, key %q) was not cut off and sent again: the run proves nothing", lost, key)
	}
	if slices.Contains(rep.DuplicateRequests, lost) || repeats < 1 {
		t.Errorf("the resend of request %d was written again (duplicated requests %v, resends answered %.0f)", lost, rep.DuplicateRequests, repeats)
	}
	assertExactlyOnceAcrossKills(t, m, rep)
}

// TestHarnessFaultAzuriteDown stops the blob service under load (60 s in CI,
// 15 minutes in the full run), starts it again on the same data, and expects
// every row once. The exporter's default retry never gives up; once the
// queue is full the receiver answers 503 and the client retries.
func TestHarnessFaultAzuriteDown(t *testing.T) {
	testutil.CollectorBinary(t)
	size := faultRun(faultSize{requests: 60, rate: 2000, outage: time.Minute}, faultSize{requests: 1000, rate: 200, outage: 15 * time.Minute})
	az := testutil.StartAzurite(t)
	collect, health := harnessAddr(t), harnessAddr(t)
	// Storage is reached through the fault proxy, which passes every
	// request (502 while Azurite is down) and counts them.
	p, err := faultproxy.Start(fmt.Sprintf("http://127.0.0.1:%d", az.Port()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	// A small queue, so it fills during the outage and the receiver refuses (503) instead.
	cfg := harness.CollectorConfig{CollectAddr: collect, HealthAddr: health, ConnectionString: proxiedConnectionString(p),
		FlushTimeout: "500ms", MinBatch: 1000, Timeout: "10s", QueueSize: 20}
	col := testutil.StartCollector(t, cfg.YAML(), collect, health)
	var before, during int64 // requests that reached the proxy
	stop := func() { before = p.Passed(); az.Stop() }
	restart := func() { during = p.Passed() - before; az.Restart() }
	m, rep, d := faultLoadDrain(t, size, "http://"+collect, []float64{0.3}, stop, restart, azuriteVerifier(t, az), col.Stop, true)
	assertZeroLoss(t, m, rep)
	perSecond := float64(during) / size.outage.Seconds()
	t.Logf("STORAGE-DOWN: %d requests reached storage in %s of outage (%.1f/s); queued rows drained %.1f s after it returned, every row %.1f s",
		during, size.outage, perSecond, d.queued.Seconds(), d.all.Seconds())
	// The exporter backs off (1 s initial, 2 s at most, 10 consumers, each
	// try at most 3 requests): storage is never hammered while it is away.
	if perSecond > maxRequestsPerSecondDown {
		t.Errorf("%.1f requests/s reached storage while it was down, over %d/s", perSecond, maxRequestsPerSecondDown)
	}
	// The last row the collector held lands within 5 s of storage's return.
	if d.queued < 0 || d.queued > 5*time.Second {
		t.Errorf("the queued rows were all found %.1f s after storage returned, want at most 5 s", d.queued.Seconds())
	}
}

// maxRequestsPerSecondDown bounds the requests the exporter sends to a storage
// that is down: its 10 queue consumers retrying every second with 3 tries each.
const maxRequestsPerSecondDown = 30

// proxiedConnectionString points the exporter at the fault proxy in front of Azurite.
func proxiedConnectionString(p *faultproxy.Proxy) string {
	return fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=%s/%s;",
		testutil.AzuriteAccount, testutil.AzuriteKey, p.URL(), testutil.AzuriteAccount)
}

// startProxied starts Azurite, the fault proxy in front of it and a collector
// writing through the proxy with the given queue consumers (0: the default).
// It returns the collector's collect URL and its drain.
func startProxied(t *testing.T, consumers int) (*testutil.Azurite, *faultproxy.Proxy, string, func()) {
	t.Helper()
	testutil.CollectorBinary(t)
	az := testutil.StartAzurite(t)
	p, err := faultproxy.Start(fmt.Sprintf("http://127.0.0.1:%d", az.Port()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	collect, health, metricsPort := harnessAddr(t), harnessAddr(t), testutil.FreePort(t)
	cfg := harness.CollectorConfig{CollectAddr: collect, HealthAddr: health, ConnectionString: proxiedConnectionString(p),
		FlushTimeout: "500ms", MinBatch: 1000, Timeout: "10s", MetricsPort: metricsPort, QueueConsumers: consumers}
	col := testutil.StartCollector(t, cfg.YAML(), collect, health)
	return az, p, "http://" + collect, drainCollector(t, col, metricsURL(metricsPort))
}

// logExporterMetrics logs the blob exporter's own counters of a run.
func logExporterMetrics(t *testing.T, metricsURL string) {
	for _, name := range []string{"otelcol_modeldatablob_appends", "otelcol_modeldatablob_write_failures", "otelcol_modeldatablob_duplicates_avoided",
		"otelcol_modeldatablob_rows_replayed", "otelcol_modeldatablob_rows_resent", "otelcol_modeldatablob_rows_dropped"} {
		v, err := harness.MetricSum(context.Background(), metricsURL, name)
		t.Logf("%s = %.0f (%v)", name, v, err)
	}
}

// TestHarnessFault503 has the blob service answer 503 ServerBusy to every
// request for a while (20 s in the full run).
func TestHarnessFault503(t *testing.T) {
	proxyFaultRun(t, 0, faultproxy.Unavailable, "requests answered 503")
}

// TestHarnessFaultLostAnswers forwards appends to the blob service and then
// drops the connection, so the append lands but the exporter never hears it
// (a timeout after success). The retried append must not write the rows twice,
// with one queue consumer and with the default 10, where another push to the
// same file can append between the lost append and its retry.
func TestHarnessFaultLostAnswers(t *testing.T) {
	for _, consumers := range []int{0, 1} {
		name := "default_consumers"
		if consumers > 0 {
			name = fmt.Sprintf("%d_consumer", consumers)
		}
		t.Run(name, func(t *testing.T) {
			proxyFaultRun(t, consumers, faultproxy.DropAnswer, "appends landed with their answer dropped")
		})
	}
}

// proxyFaultRun puts the fault proxy in mode for a while (3 s, 20 s in the
// full run) under a paced load, with the given queue consumers (0: the
// default), and asserts zero loss and that some requests met the fault
// (injected says what they are, for the log).
func proxyFaultRun(t *testing.T, consumers int, mode faultproxy.Mode, injected string) {
	size := faultRun(faultSize{requests: 60, rate: 2000, outage: 3 * time.Second}, faultSize{requests: 600, rate: 2000, outage: 20 * time.Second})
	az, p, collect, drain := startProxied(t, consumers)
	m, rep := faultLoad(t, size, collect, []float64{0.3},
		func() { p.SetMode(mode) }, func() { p.SetMode(faultproxy.Pass) }, azuriteVerifier(t, az), drain)
	t.Logf("proxy: %d %s, %d passed", p.Injected(), injected, p.Passed())
	if p.Injected() == 0 {
		t.Error("no request met the fault: the run proves nothing")
	}
	assertZeroLoss(t, m, rep)
}

// TestHarnessFaultKill9AfterAppend aims the kill at the window between an
// append that landed and the queue's acknowledgment: the fault proxy lets one
// append land in Azurite and SIGKILLs the collector before the exporter hears
// the answer (so the batch is still in the persistent queue). After the
// restart the queue replays the batch; the append journal must find its rows
// written, so every row is there exactly once.
func TestHarnessFaultKill9AfterAppend(t *testing.T) {
	testutil.CollectorBinary(t)
	size := faultRun(faultSize{requests: 60, rate: 3000, outage: time.Second}, faultSize{requests: 600, rate: 3000, outage: time.Second})
	az := testutil.StartAzurite(t)
	p, err := faultproxy.Start(fmt.Sprintf("http://127.0.0.1:%d", az.Port()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	collect, health, metricsPort := harnessAddr(t), harnessAddr(t), testutil.FreePort(t)
	cfg := harness.CollectorConfig{CollectAddr: collect, HealthAddr: health, ConnectionString: proxiedConnectionString(p),
		QueueDir: filepath.Join(t.TempDir(), "queue"), FlushTimeout: "500ms", MinBatch: 1000, Timeout: "10s", MetricsPort: metricsPort}
	col := testutil.StartCollector(t, cfg.YAML(), collect, health)
	fired, killed := make(chan struct{}), make(chan struct{})
	p.SetHook(func() {
		close(fired)
		<-killed // the collector is dead before its append is answered
	})
	m, rep := faultLoad(t, size, "http://"+collect, []float64{0.3},
		func() {
			p.SetMode(faultproxy.HookAfterAppend)
			select {
			case <-fired:
			case <-time.After(time.Minute):
				t.Fatal("no append reached the proxy")
			}
			col.Kill()
			close(killed)
		},
		func() { col.Restart(collect, health) }, azuriteVerifier(t, az),
		drainCollector(t, col, metricsURL(metricsPort))) // logs the restarted collector's counters
	t.Logf("KILL9-AFTER-APPEND: expected %d, found %d, missing %d, duplicated %d", rep.Expected, rep.Found, rep.Missing, rep.Duplicated)
	assertExactlyOnceAcrossKills(t, m, rep)
}
