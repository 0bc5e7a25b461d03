package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/harness"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// budgetRequests is how many max-size OTLP/HTTP bodies are sent at once:
// sixteen are about 300 MiB of bodies, ten times what the request_budget of
// the DaemonSet (64 MiB) lets in.
const budgetRequests = 16

// TestHarnessOTLPRequestBudget sends sixteen max-size OTLP/HTTP protobuf
// bodies (19 MiB, 3,900 records of 50 features each) at once to the built
// collector under the DaemonSet's memory settings and its otlp receiver's
// request_budget middleware (read from deploy/kubernetes/daemonset.yaml), in
// a memory cgroup of its container limit when the machine allows one. The
// bodies over the budget are answered 503 + Retry-After; the collector is
// not killed, its anonymous memory stays under the container limit, a
// small request afterwards is answered 200, and every row of every
// acknowledged request is in the CSV files exactly once (nothing of a
// refused one). The same for 32 OTLP/gRPC calls of 3.8 MiB at once on one
// connection: each takes grpc_bytes_per_call (4 MiB), gRPC calls together
// at most grpc_max_bytes_in_flight (by default half the budget: 8 calls),
// so at most 8 are taken and the others are refused Unavailable with a
// RetryInfo, those over the gRPC share naming grpc_max_bytes_in_flight. With MODELDATA_HARNESS_FULL,
// sixteen collect and sixteen OTLP/HTTP max-size bodies go at once to both
// doors' budgets, and the same bodies and calls to the collector without
// the middleware, for the figures in docs/benchmarks.md (logged, not
// asserted: that collector may be killed).
func TestHarnessOTLPRequestBudget(t *testing.T) {
	ds := loadDeploySettings(t, "daemonset.yaml")
	t.Run("request_budget", func(t *testing.T) {
		bodies := budgetBodies()
		c := memoryCollector(t, ds, false)
		sampler := samplePeak(c.pid)
		answers := sendAtOnce(c.otlp+"/v1/logs", bodies)
		var acked []int
		refused := 0
		for i, a := range answers {
			switch {
			case a.err != nil:
				t.Fatalf("body %d: %v (answers %v)", i, a.err, answers)
			case a.status == http.StatusOK:
				acked = append(acked, i)
			case a.status == http.StatusServiceUnavailable && strings.Contains(a.msg, "max_bytes_in_flight"):
				if a.retryAfter == "" {
					t.Errorf("body %d: 503 without Retry-After: %s", i, a.msg)
				}
				refused++
			case a.status == http.StatusServiceUnavailable: // the memory_limiter, after decoding
			default:
				t.Fatalf("body %d: status %d: %s", i, a.status, a.msg)
			}
		}
		if len(acked) == 0 || refused == 0 {
			t.Fatalf("answers %v: want some accepted and some refused by request_budget", answers)
		}
		small := otlpBudgetSmall()
		var after []int
		testutil.Poll(30*time.Second, func() bool {
			a := postOTLP(c.otlp+"/v1/logs", small)
			after = append(after, a.status)
			return a.err == nil && a.status == http.StatusOK
		})
		if after[len(after)-1] != http.StatusOK {
			t.Fatalf("a small request after: answers %v", after)
		}
		waitSent(t, c.metrics, len(acked)*fullRows+1)
		anon, file, hwm := sampler.peaks(t)
		t.Logf("MEMORY %d OTLP/HTTP protobuf bodies of %.1f MiB at once, request_budget max_bytes_in_flight %.0f MiB (GOMEMLIMIT=%s): %s; then %d answers until a 200; "+
			"peak resident set %.0f MiB (anon %.0f, file-backed %.0f) for a container limit of %.0f MiB; %s",
			len(bodies), mib(len(bodies[0])), mib(budgetBytes(t, ds)), ds.goMemLimit, summarize(answers), len(after),
			mib(hwm), mib(anon), mib(file), mib(ds.containerLimit), c.cgroupReport(t))
		if anon >= ds.containerLimit {
			t.Errorf("peak anonymous resident set %.0f MiB, over the container limit %.0f MiB", mib(anon), mib(ds.containerLimit))
		}
		verifyBudgetRows(t, c.data, acked, fullRows)
	})
	t.Run("request_budget, gRPC", func(t *testing.T) {
		if ds.otlpMiddleware["grpc"] == nil {
			t.Fatal("the DaemonSet's otlp receiver names no middlewares on grpc")
		}
		c := memoryCollector(t, ds, false)
		sampler := samplePeak(c.pid)
		msgs := grpcMessages(t)
		answers := exportAtOnce(t, c.otlpGRPC, msgs...)
		var acked []int
		refused, overShare := 0, 0
		for i, err := range answers {
			st := status.Convert(err)
			switch {
			case err == nil:
				acked = append(acked, i)
			case st.Code() == codes.Unavailable && strings.Contains(st.Message(), "max_bytes_in_flight"):
				if retryDelay(st) == 0 {
					t.Errorf("call %d: Unavailable without RetryInfo: %v", i, err)
				}
				if strings.Contains(st.Message(), "grpc_max_bytes_in_flight") {
					overShare++
				}
				refused++
			case st.Code() == codes.Unavailable: // the memory_limiter, after decoding
			default:
				t.Fatalf("call %d: %v", i, err)
			}
		}
		if len(acked) == 0 || refused == 0 {
			t.Fatalf("%d accepted, %d refused by request_budget of %d: want some of each (%v)", len(acked), refused, len(msgs), answers)
		}
		// The deploy configs leave grpc_max_bytes_in_flight and
		// grpc_bytes_per_call (4 MiB) to their defaults.
		if share := budgetBytes(t, ds) / 2 / (4 << 20); int64(len(acked)) > share || overShare == 0 {
			t.Errorf("%d calls taken, %d refused over grpc_max_bytes_in_flight: want at most %d taken (the gRPC share, half the budget) and the share to refuse some", len(acked), overShare, share)
		}
		small := otlpBudgetSmall()
		var after []error
		testutil.Poll(30*time.Second, func() bool {
			after = append(after, exportAtOnce(t, c.otlpGRPC, small)...)
			return after[len(after)-1] == nil
		})
		if err := after[len(after)-1]; err != nil {
			t.Fatalf("a small call after: %v (%d tries)", err, len(after))
		}
		waitSent(t, c.metrics, len(acked)*grpcRows+1)
		anon, file, hwm := sampler.peaks(t)
		t.Logf("MEMORY %d OTLP/gRPC calls of %.1f MiB at once, request_budget max_bytes_in_flight %.0f MiB (GOMEMLIMIT=%s): %d OK, %d Unavailable + RetryInfo (request_budget; %d of them over grpc_max_bytes_in_flight), %d Unavailable (memory_limiter); then %d calls until an OK; "+
			"peak resident set %.0f MiB (anon %.0f, file-backed %.0f) for a container limit of %.0f MiB; %s",
			len(msgs), mib(len(msgs[0])), mib(budgetBytes(t, ds)), ds.goMemLimit, len(acked), refused, overShare, len(msgs)-len(acked)-refused, len(after),
			mib(hwm), mib(anon), mib(file), mib(ds.containerLimit), c.cgroupReport(t))
		if anon >= ds.containerLimit {
			t.Errorf("peak anonymous resident set %.0f MiB, over the container limit %.0f MiB", mib(anon), mib(ds.containerLimit))
		}
		verifyBudgetRows(t, c.data, acked, grpcRows)
	})
	if !harnessFull() {
		return
	}
	// Both doors at their budget at once: the modeldata receiver's
	// max_bytes_in_flight and request_budget are two budgets, so a pod holds
	// up to both (measured for docs/benchmarks.md, asserted as the others).
	t.Run("collect and OTLP/HTTP at once", func(t *testing.T) {
		otlpBodies := budgetBodies()
		collect := fullBodies()[0]
		c := memoryCollector(t, ds, false)
		sampler := samplePeak(c.pid)
		var wg sync.WaitGroup
		var otlpAnswers []otlpAnswer
		collectCodes := make([]int, budgetRequests)
		start := make(chan struct{})
		wg.Go(func() { <-start; otlpAnswers = sendAtOnce(c.otlp+"/v1/logs", otlpBodies) })
		client := &http.Client{Timeout: 2 * time.Minute}
		for i := range collectCodes {
			wg.Go(func() { <-start; collectCodes[i], _, _ = sendBody(client, c.url(collect), collect) })
		}
		close(start)
		wg.Wait()
		accepted := 0
		for _, a := range otlpAnswers {
			if a.status == http.StatusOK {
				accepted++
			}
		}
		collectAccepted := 0
		for _, code := range collectCodes {
			if code == http.StatusOK {
				collectAccepted++
			}
		}
		waitSent(t, c.metrics, accepted*fullRows+collectAccepted*collect.rows)
		anon, file, hwm := sampler.peaks(t)
		t.Logf("MEMORY %d collect JSON and %d OTLP/HTTP max-size bodies at once (GOMEMLIMIT=%s): collect %v, OTLP %s; peak resident set %.0f MiB (anon %.0f, file-backed %.0f) for a container limit of %.0f MiB; %s",
			len(collectCodes), len(otlpAnswers), ds.goMemLimit, collectCodes, summarize(otlpAnswers), mib(hwm), mib(anon), mib(file), mib(ds.containerLimit), c.cgroupReport(t))
		if anon >= ds.containerLimit {
			t.Errorf("peak anonymous resident set %.0f MiB, over the container limit %.0f MiB", mib(anon), mib(ds.containerLimit))
		}
	})
	t.Run("without request_budget, gRPC", func(t *testing.T) {
		bare := ds
		bare.requestBudget = nil
		c := memoryCollector(t, bare, false)
		sampler := samplePeak(c.pid)
		msgs := grpcMessages(t)
		answers := exportAtOnce(t, c.otlpGRPC, msgs...)
		byCode := map[string]int{}
		for _, err := range answers {
			byCode[status.Code(err).String()]++
		}
		report := "no cgroup"
		if c.cgroup != nil {
			if u, err := c.cgroup.usage(); err == nil {
				report = fmt.Sprintf("cgroup: peak %.0f MiB charged, limit hit %d times, %d out-of-memory kills", mib(u.peak), u.hits, u.oomKills)
			}
		}
		anon, file := sampler.sampled()
		t.Logf("MEMORY %d OTLP/gRPC calls of %.1f MiB at once, WITHOUT request_budget (GOMEMLIMIT=%s): %v; peak anon %.0f MiB, file-backed %.0f, for a container limit of %.0f MiB; %s",
			len(msgs), mib(len(msgs[0])), ds.goMemLimit, byCode, mib(anon), mib(file), mib(ds.containerLimit), report)
	})
	t.Run("without request_budget", func(t *testing.T) {
		bare := ds
		bare.requestBudget = nil
		bodies := budgetBodies()
		c := memoryCollector(t, bare, false)
		sampler := samplePeak(c.pid)
		answers := sendAtOnce(c.otlp+"/v1/logs", bodies)
		small := postOTLP(c.otlp+"/v1/logs", otlpBudgetSmall())
		report := "no cgroup"
		if c.cgroup != nil {
			if u, err := c.cgroup.usage(); err == nil {
				report = fmt.Sprintf("cgroup: peak %.0f MiB charged, limit hit %d times, %d out-of-memory kills", mib(u.peak), u.hits, u.oomKills)
			}
		}
		anon, file := sampler.sampled()
		t.Logf("MEMORY %d OTLP/HTTP protobuf bodies of %.1f MiB at once, WITHOUT request_budget (GOMEMLIMIT=%s): %s; then a small request: %d %v; "+
			"peak anon %.0f MiB, file-backed %.0f, for a container limit of %.0f MiB; %s",
			len(bodies), mib(len(bodies[0])), ds.goMemLimit, summarize(answers), small.status, small.err, mib(anon), mib(file), mib(ds.containerLimit), report)
	})
}

// budgetBytes is the max_bytes_in_flight of the manifest's request_budget.
func budgetBytes(t *testing.T, ds deploySettings) int64 {
	t.Helper()
	cfg, _ := ds.requestBudget.(map[string]any)
	n, ok := cfg["max_bytes_in_flight"].(float64)
	if !ok {
		t.Fatalf("request_budget %v: no max_bytes_in_flight", ds.requestBudget)
	}
	return int64(n)
}

// budgetBodies are budgetRequests max-size OTLP/HTTP protobuf bodies, body
// i's rows carrying the correlation ids budgetRowID(i, 0..fullRows-1).
func budgetBodies() [][]byte {
	return numbered(otlpFullBody(fullNames(), func(i int) string { return budgetRowID(0, i) }), budgetRequests)
}

func fullNames() []string {
	names := make([]string, fullFeatures)
	for k := range names {
		names[k] = fmt.Sprintf("f%02d", k)
	}
	return names
}

// numbered is n copies of first, a body of rows with the ids of body 0,
// copy req with the ids of body req: the body number is changed in place
// (same width), so every length in the protobuf holds.
func numbered(first []byte, n int) [][]byte {
	bodies := [][]byte{first}
	for req := 1; req < n; req++ {
		bodies = append(bodies, bytes.ReplaceAll(first, []byte(budgetRowID(0, -1)), []byte(budgetRowID(req, -1))))
	}
	return bodies
}

// grpcCalls of grpcRows rows (50 string features, as the max-size HTTP
// bodies) are sent at once on gRPC: each message is just under grpc-go's
// default largest message (4 MiB), and together they are twice the
// DaemonSet's request_budget.
const grpcCalls, grpcRows = 32, 780

// grpcMessages are grpcCalls OTLP export requests in protobuf, call i's
// rows carrying the correlation ids budgetRowID(i, 0..grpcRows-1).
func grpcMessages(t *testing.T) [][]byte {
	t.Helper()
	first := otlpFullBodyRows(fullNames(), grpcRows, fullCell(26), func(i int) string { return budgetRowID(0, i) })
	if len(first) >= 4<<20 {
		t.Fatalf("a message of %d bytes: over grpc-go's default largest message", len(first))
	}
	return numbered(first, grpcCalls)
}

// exportMethod is the OTLP logs export call; an OTLP/HTTP protobuf body is
// its request message (ExportLogsServiceRequest and LogsData share their
// encoding).
const exportMethod = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"

// rawCodec sends messages already in protobuf as they are, so the test does
// not hold the records of every call decoded.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return v.([]byte), nil }
func (rawCodec) Unmarshal([]byte, any) error   { return nil }
func (rawCodec) Name() string                  { return "proto" }

// exportAtOnce makes every export call at the same moment, on one
// connection as an OTLP exporter does, and returns their errors in order.
func exportAtOnce(t *testing.T, addr string, msgs ...[]byte) []error {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	errs := make([]error, len(msgs))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, m := range msgs {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			<-start
			var reply []byte
			errs[i] = conn.Invoke(ctx, exportMethod, m, &reply, grpc.ForceCodec(rawCodec{}))
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// retryDelay is the RetryInfo delay of a status (0: none).
func retryDelay(st *status.Status) time.Duration {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	return 0
}

// budgetRowID is the correlation id of row i of body req (i < 0: the
// prefix of body req's ids).
func budgetRowID(req, i int) string {
	if i < 0 {
		return fmt.Sprintf("budget.%02d.", req)
	}
	return fmt.Sprintf("budget.%02d.%04d", req, i)
}

// otlpBudgetSmall is a one-row OTLP/HTTP protobuf body whose correlation id
// is budget.small.
func otlpBudgetSmall() []byte {
	return otlpFullBodyRows([]string{"f00"}, 1, "s", func(int) string { return "budget.small" })
}

type otlpAnswer struct {
	status          int
	retryAfter, msg string
	err             error
}

func (a otlpAnswer) String() string {
	if a.err != nil {
		return "error"
	}
	return fmt.Sprint(a.status)
}

func postOTLP(url string, body []byte) otlpAnswer {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return otlpAnswer{err: err}
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
	if err != nil {
		return otlpAnswer{err: err}
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return otlpAnswer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), msg: string(msg)}
}

// sendAtOnce posts every body at the same moment and returns the answers in order.
func sendAtOnce(url string, bodies [][]byte) []otlpAnswer {
	answers := make([]otlpAnswer, len(bodies))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, b := range bodies {
		wg.Go(func() {
			<-start
			answers[i] = postOTLP(url, b)
		})
	}
	close(start)
	wg.Wait()
	return answers
}

// summarize counts answers by status: "200 ×3, 503 ×13 (Retry-After 1)".
func summarize(answers []otlpAnswer) string {
	counts := map[string]int{}
	var keys []string
	retryAfter := map[string]bool{}
	for _, a := range answers {
		k := a.String()
		if counts[k] == 0 {
			keys = append(keys, k)
		}
		counts[k]++
		if a.retryAfter != "" {
			retryAfter[a.retryAfter] = true
		}
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s ×%d", k, counts[k])
	}
	return fmt.Sprintf("%s (Retry-After %v)", strings.Join(parts, ", "), slices.Sorted(func(yield func(string) bool) {
		for v := range retryAfter {
			if !yield(v) {
				return
			}
		}
	}))
}

// verifyBudgetRows checks that the CSV files below dir hold every row of
// the acknowledged bodies exactly once, the small request's row, and no row
// of a refused body.
func verifyBudgetRows(t *testing.T, dir string, acked []int, rowsPer int) {
	t.Helper()
	seen := map[string]int{}
	for name, records := range testutil.ReadCSVTree(t, dir) {
		col := slices.Index(records[0], contract.ColCorrelationID)
		if col < 0 {
			t.Fatalf("%s: no %s column in %v", name, contract.ColCorrelationID, records[0])
		}
		for _, rec := range records[1:] {
			seen[rec[col]]++
		}
	}
	want := map[string]bool{"budget.small": true}
	for _, req := range acked {
		for i := 0; i < rowsPer; i++ {
			want[budgetRowID(req, i)] = true
		}
	}
	var missing, doubled, unexpected int
	for id := range want {
		switch n := seen[id]; {
		case n == 0:
			missing++
		case n > 1:
			doubled++
		}
	}
	for id := range seen {
		if !want[id] {
			unexpected++
		}
	}
	t.Logf("MEMORY verifier: %d rows of %d acknowledged bodies expected, %d found, %d missing, %d doubled, %d of refused bodies",
		len(want), len(acked), len(seen)-unexpected, missing, doubled, unexpected)
	if missing+doubled+unexpected > 0 {
		t.Errorf("rows: %d missing, %d doubled, %d of refused bodies", missing, doubled, unexpected)
	}
}

// TestHarnessSlowSenders is the slowloris attack of the red team against
// the built collector with the DaemonSet's settings (one request_budget of
// 64 MiB for the collect, v2 and OTLP/HTTP bodies): four connections
// announce 16 MiB on the collect route and four on OTLP/HTTP, twice the
// budget, and send one byte each. They hold the eight bytes sent, so normal
// requests on every route are answered 200 while they are open; once they
// have sent nothing for body_stall_timeout (10 s by default), each is
// answered 408, counted stalled, and the budget holds nothing.
func TestHarnessSlowSenders(t *testing.T) {
	ds := loadDeploySettings(t, "daemonset.yaml")
	c := memoryCollector(t, ds, false)
	held := func() float64 {
		n, _ := harness.MetricSum(context.Background(), c.metrics, "otelcol_request_budget_bytes_held")
		return n
	}
	var conns []net.Conn
	for _, target := range []struct{ base, path, contentType string }{
		{c.collect, "/v1/collect", "application/json"},
		{c.otlp, "/v1/logs", "application/x-protobuf"},
	} {
		for range 4 {
			conn, err := net.Dial("tcp", strings.TrimPrefix(target.base, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n[", target.path, target.contentType, 16<<20); err != nil {
				t.Fatal(err)
			}
			conns = append(conns, conn)
		}
	}
	if !testutil.Poll(time.Minute, func() bool { return held() == float64(len(conns)) }) {
		t.Fatalf("otelcol_request_budget_bytes_held %v, want the %d bytes sent", held(), len(conns))
	}
	client := &http.Client{Timeout: time.Minute}
	for _, b := range []adversarialBody{
		{route: collectRoute, contentType: "application/json", body: []byte(`{"model_name":"slow","data":[[1]]}`)},
		{route: v2Route, contentType: "application/json", body: []byte(`[{"a":1}]`)},
	} {
		if code, msg, err := sendBody(client, c.url(b), b); err != nil || code != http.StatusOK {
			t.Errorf("%s while the slow senders hold their connections: %d %s %v", c.url(b), code, msg, err)
		}
	}
	if a := postOTLP(c.otlp+"/v1/logs", otlpBudgetSmall()); a.err != nil || a.status != http.StatusOK {
		t.Errorf("OTLP/HTTP while the slow senders hold their connections: %v", a)
	}
	for i, conn := range conns {
		_ = conn.SetDeadline(time.Now().Add(2 * time.Minute))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("slow sender %d: %v", i, err)
		}
		msg, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusRequestTimeout || !bytes.Contains(msg, []byte("body_stall_timeout")) {
			t.Errorf("slow sender %d: status %d: %q", i, resp.StatusCode, msg)
		}
	}
	stalled := func() float64 {
		n, _ := harness.MetricSum(context.Background(), c.metrics, "otelcol_request_budget_requests_refused", `reason="stalled"`)
		return n
	}
	if !testutil.Poll(time.Minute, func() bool { return stalled() == float64(len(conns)) && held() == 0 }) {
		t.Errorf("stalled refusals counted %v, want %d; bytes held %v, want 0", stalled(), len(conns), held())
	}
	t.Logf("SLOWLORIS %d connections announcing 16 MiB (collect, OTLP/HTTP) held %d bytes; collect, v2 and OTLP/HTTP answered meanwhile; each cut with 408", len(conns), len(conns))
}
