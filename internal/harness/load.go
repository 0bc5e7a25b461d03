package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// LoadConfig is one load run.
type LoadConfig struct {
	Rows
	// Targets are the collector's base URLs per door, e.g.
	// {DoorCollect: "http://127.0.0.1:4320", DoorOTLP: "http://127.0.0.1:4318"}.
	Targets map[Door]string
	// Doors are used in turn, request by request (default: every door in Targets: collect, OTLP, v2).
	Doors []Door
	// Requests is the number of requests (each of RowsPerRequest rows).
	Requests int
	// OTLPJSON sends the OTLP door's requests as OTLP/HTTP JSON instead of protobuf.
	OTLPJSON bool
	// Rate is the target in rows per second; 0 sends as fast as Concurrency allows.
	Rate float64
	// Concurrency is the number of requests in flight (default 4).
	Concurrency int
	// MaxDuration bounds the run; requests not started by then are not sent (default 10 min).
	MaxDuration time.Duration
	// RetryFor bounds how long one request is retried on a transport error,
	// 429, 502, 503 or 504 (same body, same ids) before it counts as not acknowledged
	// (default 2 min; 0 with NoRetry).
	RetryFor time.Duration
	NoRetry  bool
	// Header is added to every request (e.g. Authorization).
	Header http.Header
	// IdempotencyKeys sends each request with an Idempotency-Key header (its
	// request id), the same on every resend, as clients/python does: the
	// modeldata receiver answers a resend of an accepted request without
	// writing it again.
	IdempotencyKeys bool
	// Client is the HTTP client (default: a pooled client with a 30 s timeout).
	Client *http.Client
	// Progress, when set, is called after each acknowledged request with
	// the request and the number of acknowledged rows so far.
	Progress func(req int, ackedRows int64)
}

// Manifest is what a load run leaves for the verifier: the rows' description
// and which requests were acknowledged (200) by the collector.
type Manifest struct {
	Rows
	Requests int `json:"requests"`
	// NotAcked lists the requests never answered 200 (their rows may or may
	// not be in storage: counted as "unexpected", not as duplicates, when found).
	NotAcked []int `json:"not_acked,omitempty"`
	// CutOff lists the requests sent again after a connection carrying them
	// broke (not refused): the collector may have taken them before it died,
	// so without an Idempotency-Key the resend may write their rows twice.
	CutOff []int `json:"cut_off,omitempty"`
	// Stats of the run.
	Stats LoadStats `json:"stats"`
}

// LoadStats summarizes a load run.
type LoadStats struct {
	Elapsed         time.Duration  `json:"elapsed_ns"`
	AckedRows       int64          `json:"acked_rows"`
	RowsPerSecond   float64        `json:"rows_per_second"`
	Attempts        int64          `json:"attempts"`
	Retries         int64          `json:"retries"`
	TransportErrors int64          `json:"transport_errors"` // answer lost: the rows may have landed (a retry may duplicate them)
	Status          map[string]int `json:"status"`           // final and intermediate answers by HTTP status
	CallP50         time.Duration  `json:"call_p50_ns"`      // request latency (acked requests)
	CallP99         time.Duration  `json:"call_p99_ns"`
}

// Acked reports whether request req was acknowledged.
func (m *Manifest) Acked(req int) bool {
	if req < 0 || req >= m.Requests {
		return false
	}
	i := sort.SearchInts(m.NotAcked, req)
	return i >= len(m.NotAcked) || m.NotAcked[i] != req
}

// ExpectedRows is the number of rows acknowledged.
func (m *Manifest) ExpectedRows() int64 {
	return int64(m.Requests-len(m.NotAcked)) * int64(m.RowsPerRequest)
}

// NewClient is an HTTP client for loopback load: enough idle connections for
// the concurrency, a bounded timeout.
func NewClient(concurrency int) *http.Client {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        concurrency * 2,
		MaxIdleConnsPerHost: concurrency * 2,
		IdleConnTimeout:     30 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// Load sends cfg.Requests requests and returns the manifest. It stops early
// when ctx ends or MaxDuration passes; requests not started then are listed as
// not acknowledged.
func Load(ctx context.Context, cfg LoadConfig) (*Manifest, error) {
	if err := cfg.prepare(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.MaxDuration)
	defer cancel()
	run := &loadRun{cfg: &cfg, start: time.Now(), status: map[string]int{}}
	var wg sync.WaitGroup
	for w := 0; w < cfg.Concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run.work(ctx)
		}()
	}
	wg.Wait()
	return run.manifest(time.Since(run.start)), nil
}

// prepare fills in the defaults and checks that every door has a target.
func (cfg *LoadConfig) prepare() error {
	cfg.Defaults()
	if cfg.Run == "" {
		return errors.New("harness: Run (the run id) is required")
	}
	if len(cfg.Doors) == 0 {
		for _, d := range []Door{DoorCollect, DoorOTLP, DoorV2} {
			if cfg.Targets[d] != "" {
				cfg.Doors = append(cfg.Doors, d)
			}
		}
	}
	if len(cfg.Doors) == 0 {
		return errors.New("harness: no target")
	}
	for _, d := range cfg.Doors {
		if cfg.Targets[d] == "" {
			return fmt.Errorf("harness: no target for door %q", d)
		}
	}
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 4
	}
	if cfg.MaxDuration <= 0 {
		cfg.MaxDuration = 10 * time.Minute
	}
	if cfg.RetryFor <= 0 && !cfg.NoRetry {
		cfg.RetryFor = 2 * time.Minute
	}
	if cfg.Client == nil {
		cfg.Client = NewClient(cfg.Concurrency)
	}
	return nil
}

// loadRun is the state the workers of one Load share.
type loadRun struct {
	cfg   *LoadConfig
	start time.Time

	next      atomic.Int64 // the next request to send
	acked     atomic.Int64 // rows acknowledged
	attempts  atomic.Int64
	retries   atomic.Int64
	transport atomic.Int64

	mu        sync.Mutex
	notAcked  []int
	cutOff    []int
	status    map[string]int
	latencies []time.Duration
}

// work sends requests, in turn with the other workers, until none is left.
func (r *loadRun) work(ctx context.Context) {
	for {
		req := int(r.next.Add(1) - 1)
		if req >= r.cfg.Requests {
			return
		}
		r.pace(ctx, req)
		if ctx.Err() != nil {
			r.done(req, false, false, 0)
			continue
		}
		t0 := time.Now()
		ok, cut := r.send(ctx, req)
		r.done(req, ok, cut, time.Since(t0))
	}
}

// pace waits until request req is due at the configured Rate.
func (r *loadRun) pace(ctx context.Context, req int) {
	if r.cfg.Rate <= 0 {
		return
	}
	at := r.start.Add(time.Duration(float64(req*r.cfg.RowsPerRequest) / r.cfg.Rate * float64(time.Second)))
	if d := time.Until(at); d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
	}
}

// done records the outcome of request req.
func (r *loadRun) done(req int, ok, cut bool, took time.Duration) {
	r.mu.Lock()
	if cut {
		r.cutOff = append(r.cutOff, req)
	}
	if ok {
		r.latencies = append(r.latencies, took)
	} else {
		r.notAcked = append(r.notAcked, req)
	}
	r.mu.Unlock()
	if ok {
		n := r.acked.Add(int64(r.cfg.RowsPerRequest))
		if r.cfg.Progress != nil {
			r.cfg.Progress(req, n)
		}
	}
}

// record counts one answer (an HTTP status or a kind of failure).
func (r *loadRun) record(code string) {
	r.mu.Lock()
	r.status[code]++
	r.mu.Unlock()
}

// manifest is the run's account, once every worker has returned.
func (r *loadRun) manifest(elapsed time.Duration) *Manifest {
	sort.Ints(r.notAcked)
	sort.Ints(r.cutOff)
	slices.Sort(r.latencies)
	acked := r.acked.Load()
	return &Manifest{Rows: r.cfg.Rows, Requests: r.cfg.Requests, NotAcked: r.notAcked, CutOff: r.cutOff, Stats: LoadStats{
		Elapsed: elapsed, AckedRows: acked, RowsPerSecond: float64(acked) / elapsed.Seconds(),
		Attempts: r.attempts.Load(), Retries: r.retries.Load(), TransportErrors: r.transport.Load(), Status: r.status,
		CallP50: Percentile(r.latencies, 0.50), CallP99: Percentile(r.latencies, 0.99),
	}}
}

// loadRequest is one request as it goes on the wire, every attempt alike.
type loadRequest struct {
	url, contentType string
	body             []byte
	header           http.Header
}

// request builds request req for the door its turn gives it.
func (cfg *LoadConfig) request(req int) (loadRequest, error) {
	door := cfg.Doors[req%len(cfg.Doors)]
	base := cfg.Targets[door]
	switch door {
	case DoorCollect:
		return loadRequest{base + "/v1/collect", "application/json", cfg.CollectBody(req), cfg.Header}, nil
	case DoorOTLP:
		if cfg.OTLPJSON {
			body, err := cfg.OTLPJSONBody(req, time.Now())
			return loadRequest{base + "/v1/logs", "application/json", body, cfg.Header}, err
		}
		body, err := cfg.OTLPBody(req, time.Now())
		return loadRequest{base + "/v1/logs", "application/x-protobuf", body, cfg.Header}, err
	case DoorV2:
		header := cfg.V2Header(req)
		for k, vs := range cfg.Header {
			header[k] = vs
		}
		return loadRequest{base + "/modeldata/log", "application/json", cfg.V2Body(req), header}, nil
	}
	return loadRequest{}, fmt.Errorf("%w %q", errUnknownDoor, door)
}

// withIdempotencyKey adds request req's Idempotency-Key (its request id, the
// same on every send) when the run sends keys.
func (cfg *LoadConfig) withIdempotencyKey(lr loadRequest, req int) loadRequest {
	if !cfg.IdempotencyKeys {
		return lr
	}
	lr.header = lr.header.Clone()
	if lr.header == nil {
		lr.header = http.Header{}
	}
	lr.header.Set("Idempotency-Key", cfg.RequestID(req))
	return lr
}

var errUnknownDoor = errors.New("harness: unknown door")

// send delivers one request, retrying transport errors, 429, 502, 503 and 504
// with the same body (same ids) for up to RetryFor. It reports whether it got 200,
// and whether a connection broke while carrying it (cut).
func (r *loadRun) send(ctx context.Context, req int) (ok, cut bool) {
	lr, err := r.cfg.request(req)
	lr = r.cfg.withIdempotencyKey(lr, req)
	if err != nil {
		if errors.Is(err, errUnknownDoor) {
			r.record("door")
		} else {
			r.record("marshal")
		}
		return false, false
	}
	deadline := time.Now().Add(r.cfg.RetryFor)
	backoff := 50 * time.Millisecond
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			r.retries.Add(1)
		}
		r.attempts.Add(1)
		code, err := post(ctx, r.cfg.Client, lr.url, lr.contentType, lr.body, lr.header)
		switch {
		case err != nil:
			r.transport.Add(1)
			r.record("transport")
			cut = cut || !errors.Is(err, syscall.ECONNREFUSED)
		case code == http.StatusOK:
			r.record("200")
			return true, cut
		default:
			r.record(strconv.Itoa(code))
			if !retryable(code) {
				return false, cut
			}
		}
		if r.cfg.NoRetry || time.Now().Add(backoff).After(deadline) || ctx.Err() != nil {
			return false, cut
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return false, cut
		}
		backoff = min(backoff*2, time.Second)
	}
}

// retryable is what OTLP/HTTP (and clients/python) send again: 429, 502,
// 503, 504 (a proxy in front of a collector that is down answers 502).
func retryable(code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

func post(ctx context.Context, client *http.Client, url, contentType string, body []byte, header http.Header) (int, error) {
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	// With an Idempotency-Key header net/http would resend a request whose
	// kept-alive connection broke, unseen: every send is the harness's own, so
	// the run counts it (attempts, cut off).
	httpReq.GetBody = nil
	for k, vs := range header {
		httpReq.Header[k] = vs
	}
	httpReq.Header.Set("Content-Type", contentType)
	resp, err := client.Do(httpReq)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Percentile of sorted durations (nearest rank); 0 when empty.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}
