package requestbudgetextension

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/otelcol-modeldata/otelcol-modeldata/extension/requestbudgetextension/internal/metadata"
	"github.com/otelcol-modeldata/otelcol-modeldata/extension/requestbudgetextension/internal/metadatatest"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

type extensionHost map[component.ID]component.Component

func (h extensionHost) GetExtensions() map[component.ID]component.Component { return h }

// otlpWithBudget starts the upstream otlp receiver's protocol ("http" or
// "grpc") with `middlewares: [{id: request_budget}]`, the extension
// configured by cfg, into next; it returns the receiver's address, the
// extension and its telemetry.
func otlpWithBudget(t *testing.T, cfg *Config, next consumer.Logs, protocol string) (string, *requestBudget, *componenttest.Telemetry) {
	t.Helper()
	addrs, ext, tel := otlpProtocolsWithBudget(t, cfg, next, protocol)
	return addrs[protocol], ext, tel
}

// otlpProtocolsWithBudget is otlpWithBudget with several protocols on one
// budget; it returns the address of each.
func otlpProtocolsWithBudget(t *testing.T, cfg *Config, next consumer.Logs, protocols ...string) (map[string]string, *requestBudget, *componenttest.Telemetry) {
	t.Helper()
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	set := extensiontest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	ext, err := NewFactory().Create(context.Background(), set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	host := extensionHost{component.NewID(metadata.Type): ext}
	if err := ext.Start(context.Background(), host); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ext.Shutdown(context.Background()) })

	addrs := map[string]string{}
	servers := map[string]any{}
	for _, protocol := range protocols {
		addrs[protocol] = fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
		servers[protocol] = map[string]any{"endpoint": addrs[protocol], "middlewares": []any{map[string]any{"id": "request_budget"}}}
	}
	factory := otlpreceiver.NewFactory()
	rcfg := factory.CreateDefaultConfig()
	if err := confmap.NewFromStringMap(map[string]any{"protocols": servers}).Unmarshal(rcfg); err != nil {
		t.Fatal(err)
	}
	rcv, err := factory.CreateLogs(context.Background(), receivertest.NewNopSettings(factory.Type()), rcfg, next)
	if err != nil {
		t.Fatal(err)
	}
	if err := rcv.Start(context.Background(), host); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rcv.Shutdown(context.Background()) })
	return addrs, ext.(*requestBudget), tel
}

// holdFirst is a pipeline that holds the first logs it gets until release
// is closed (entered tells it has them), then passes everything to sink.
func holdFirst(t *testing.T, sink *consumertest.LogsSink) (next consumer.Logs, entered <-chan struct{}, release chan struct{}) {
	t.Helper()
	in, release := make(chan struct{}, 1), make(chan struct{})
	var hold atomic.Bool
	hold.Store(true)
	next, err := consumer.NewLogs(func(ctx context.Context, ld plog.Logs) error {
		if hold.CompareAndSwap(true, false) {
			in <- struct{}{}
			<-release
		}
		return sink.ConsumeLogs(ctx, ld)
	})
	if err != nil {
		t.Fatal(err)
	}
	return next, in, release
}

// otlpBody is an OTLP/HTTP protobuf logs request of one record whose body
// is n bytes of "x" (about n+20 bytes in all).
func otlpBody(t *testing.T, n int) []byte {
	t.Helper()
	logs := plog.NewLogs()
	logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr(strings.Repeat("x", n))
	b, err := (&plog.ProtoMarshaler{}).MarshalLogs(logs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type answer struct {
	status     int
	retryAfter string
	body       []byte
	err        error
}

// post sends body: with its Content-Length, or chunked, or gzip-compressed
// (a small Content-Length of its own; confighttp decompresses it before the
// middleware and drops the length).
func post(url string, body []byte, how string) answer {
	var r io.Reader = bytes.NewReader(body)
	switch how {
	case "chunked":
		r = io.MultiReader(r)
	case "gzip":
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(body)
		_ = zw.Close()
		r = &buf
	}
	req, err := http.NewRequest(http.MethodPost, url, r)
	if err != nil {
		return answer{err: err}
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	if how == "gzip" {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	msg, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), body: msg, err: err}
}

// TestOTLPReceiver: the upstream otlp receiver's http protocol with the
// middleware. While one request of about 800 bytes is held by the
// pipeline, with max_bytes_in_flight 1,500, another of that size is
// answered 503 + Retry-After however it comes: its Content-Length refused
// before a byte is read; chunked, or gzip-compressed (about 60 bytes on
// the wire, 800 once confighttp has decompressed it), as it is read, the
// otlp receiver's answer a 503 whose OTLP Status says Unavailable. Once the
// held request is answered, the same requests are accepted and every
// byte is given back. Bodies that can never fit are 413: an announced
// length over the budget before a byte is read, a compressed body when
// its decompressed bytes go over.
func TestOTLPReceiver(t *testing.T) {
	sink := &consumertest.LogsSink{}
	next, entered, release := holdFirst(t, sink)
	addr, ext, tel := otlpWithBudget(t, &Config{MaxBytesInFlight: 1500, RetryAfter: 2 * time.Second, GRPCBytesPerCall: 1000}, next, "http")
	url := "http://" + addr + "/v1/logs"
	body := otlpBody(t, 760)
	if n := len(body); n <= 750 || n > 1500 {
		t.Fatalf("body of %d bytes: two must not fit in 1,500", n)
	}
	first := make(chan answer, 1)
	go func() { first <- post(url, body, "length") }()
	<-entered

	ways := []string{"length", "chunked", "gzip"}
	for _, how := range ways {
		t.Run("busy, "+how, func(t *testing.T) {
			a := post(url, body, how)
			if a.err != nil || a.status != http.StatusServiceUnavailable || a.retryAfter != "2" || !bytes.Contains(a.body, []byte("max_bytes_in_flight (1500 bytes)")) {
				t.Fatalf("status %d, Retry-After %q, %v: %q", a.status, a.retryAfter, a.err, a.body)
			}
			if how != "length" { // refused while the otlp receiver read it: its own Status message
				var st spb.Status
				if err := proto.Unmarshal(a.body, &st); err != nil || codes.Code(st.Code) != codes.Unavailable {
					t.Errorf("OTLP Status %v (%v), want Unavailable", &st, err)
				}
			}
		})
	}
	close(release)
	if a := <-first; a.err != nil || a.status != http.StatusOK {
		t.Fatalf("held request: %d %v %s", a.status, a.err, a.body)
	}
	for _, how := range ways {
		if a := post(url, body, how); a.err != nil || a.status != http.StatusOK {
			t.Errorf("after the held request (%s): %d %v %s", how, a.status, a.err, a.body)
		}
	}
	if got := sink.LogRecordCount(); got != 1+len(ways) {
		t.Errorf("%d records reached the pipeline, want %d (the accepted requests)", got, 1+len(ways))
	}

	t.Run("too large, Content-Length: 413 from the header", func(t *testing.T) {
		conn, err := net.Dial("tcp", strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/v1/logs"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		// Announced, none of it sent: only an answer from the header can arrive.
		if _, err := io.WriteString(conn, "POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 1501\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no answer before the body: %v", err)
		}
		msg, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(msg), "split it") {
			t.Errorf("status %d: %s", resp.StatusCode, msg)
		}
	})
	t.Run("too large once decompressed: 413", func(t *testing.T) {
		big := otlpBody(t, 4000)
		if a := post(url, big, "gzip"); a.err != nil || a.status != http.StatusRequestEntityTooLarge || a.retryAfter != "" {
			t.Errorf("status %d, Retry-After %q, %v: %s (compressed %d bytes)", a.status, a.retryAfter, a.err, a.body, len(gzipped(t, big)))
		}
	})
	if held := ext.budget.Held(); held != 0 {
		t.Errorf("%d bytes still held after every request was answered", held)
	}
	if got := sink.LogRecordCount(); got != 1+len(ways) {
		t.Errorf("%d records reached the pipeline, want %d", got, 1+len(ways))
	}
	reason := func(r string, n int64) metricdata.DataPoint[int64] {
		return metricdata.DataPoint[int64]{Value: n, Attributes: attribute.NewSet(attribute.String("reason", r))}
	}
	metadatatest.AssertEqualRequestBudgetRequestsRefused(t, tel, []metricdata.DataPoint[int64]{reason("busy", 3), reason("too_large", 2)},
		metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
	metadatatest.AssertEqualRequestBudgetBytesHeld(t, tel, []metricdata.DataPoint[int64]{{Value: 0}},
		metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

// TestOTLPReceiverGRPC: the otlp receiver's grpc protocol with the
// middleware. Each call takes grpc_bytes_per_call (1,000) from its headers
// until it ends, of the budget (1,500) and of the gRPC calls' share (by
// default half the budget, at least a call: 1,000): while one is held by the
// pipeline, another is refused Unavailable with the retry delay (RetryInfo,
// which the OTLP exporters honour) before its message is read; once the first is answered,
// the budget is whole again and the same call is accepted.
func TestOTLPReceiverGRPC(t *testing.T) {
	sink := &consumertest.LogsSink{}
	next, entered, release := holdFirst(t, sink)
	addr, ext, tel := otlpWithBudget(t, &Config{MaxBytesInFlight: 1500, RetryAfter: 2 * time.Second, GRPCBytesPerCall: 1000, GRPCMessageTimeout: time.Minute}, next, "grpc")
	_, _, export := grpcExporter(t, addr)

	first := make(chan error, 1)
	go func() { first <- export() }()
	<-entered
	err := export()
	st := status.Convert(err)
	delay := retryDelayOf(st)
	if st.Code() != codes.Unavailable || delay != 2*time.Second || !strings.Contains(st.Message(), "grpc_max_bytes_in_flight (1000 bytes)") {
		t.Fatalf("second call: %v (retry delay %s), want Unavailable with a 2s RetryInfo", err, delay)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("held call: %v", err)
	}
	// The first call's bytes are given back when its stream ends.
	if !testutil.Poll(10*time.Second, func() bool { return ext.budget.Held() == 0 }) {
		t.Fatalf("%d bytes still held after the call ended", ext.budget.Held())
	}
	if err := export(); err != nil {
		t.Fatalf("after the held call: %v", err)
	}
	if got := sink.LogRecordCount(); got != 2 {
		t.Errorf("%d records reached the pipeline, want 2 (the accepted calls)", got)
	}
	metadatatest.AssertEqualRequestBudgetRequestsRefused(t, tel, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("reason", "grpc_busy"))},
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

// retryDelayOf is the RetryInfo delay of a gRPC status (0: none).
func retryDelayOf(st *status.Status) time.Duration {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	return 0
}

// TestOTLPReceiverGRPCShare: the otlp receiver's grpc and http protocols on
// one budget of 2,000 bytes, 500 per gRPC call, grpc_max_bytes_in_flight
// left to its default (half: 1,000). While an OTLP/HTTP request of 1,600
// bytes is in the pipeline, a gRPC call that fits in the share but not in
// the budget is refused (busy) and gives its share back at once. Then a
// client opens header-only calls: two hold the share, the next two and a
// normal export are refused Unavailable + RetryInfo naming
// grpc_max_bytes_in_flight (grpc_busy) and take nothing of the budget,
// while an OTLP/HTTP request of the rest of the budget is accepted.
func TestOTLPReceiverGRPCShare(t *testing.T) {
	sink := &consumertest.LogsSink{}
	next, entered, release := holdFirst(t, sink)
	cfg := &Config{MaxBytesInFlight: 2000, RetryAfter: time.Second, GRPCBytesPerCall: 500}
	addrs, ext, tel := otlpProtocolsWithBudget(t, cfg, next, "grpc", "http")
	if got := ext.grpcShare.Limit(); got != 1000 {
		t.Fatalf("grpc share %d, want 1000 (half of max_bytes_in_flight)", got)
	}
	httpURL := "http://" + addrs["http"] + "/v1/logs"
	conn, _, export := grpcExporter(t, addrs["grpc"])

	large := otlpBody(t, 1580)
	charge := int64(len(large)) + decodedBytesPerLogRecord // its bytes and its record's share
	if charge <= 1500 || charge > 2000 {
		t.Fatalf("body charged %d bytes: must leave less than a call's 500 free", charge)
	}
	held := make(chan answer, 1)
	go func() { held <- post(httpURL, large, "length") }()
	<-entered
	if st := status.Convert(export()); st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "its max_bytes_in_flight (2000 bytes)") || retryDelayOf(st) != time.Second {
		t.Errorf("gRPC while the budget is held by HTTP: %v, want Unavailable naming max_bytes_in_flight with a 1s RetryInfo", st.Err())
	}
	if ext.budget.Held() != charge || ext.grpcShare.Held() != 0 {
		t.Fatalf("held %d (gRPC share %d), want the HTTP body's %d only: the refused call gives back its share at once", ext.budget.Held(), ext.grpcShare.Held(), charge)
	}
	close(release)
	if a := <-held; a.err != nil || a.status != http.StatusOK {
		t.Fatalf("held OTLP/HTTP request: %d %v %s", a.status, a.err, a.body)
	}
	if !testutil.Poll(10*time.Second, func() bool { return ext.budget.Held() == 0 }) {
		t.Fatalf("%d bytes still held after the HTTP request", ext.budget.Held())
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	open := func() grpc.ClientStream {
		s, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true}, "/opentelemetry.proto.collector.logs.v1.LogsService/Export", grpc.ForceCodec(rawProto{}))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	open()
	open()
	if !testutil.Poll(10*time.Second, func() bool { return ext.budget.Held() == 1000 && ext.grpcShare.Held() == 1000 }) {
		t.Fatalf("held %d (gRPC share %d), want 1000: the two open calls", ext.budget.Held(), ext.grpcShare.Held())
	}
	for i := range 2 {
		st := status.Convert(open().RecvMsg(new([]byte)))
		if st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "grpc_max_bytes_in_flight (1000 bytes)") || retryDelayOf(st) != time.Second {
			t.Errorf("call %d over the gRPC share: %v, want Unavailable naming grpc_max_bytes_in_flight with a 1s RetryInfo", i, st.Err())
		}
	}
	if err := export(); status.Code(err) != codes.Unavailable {
		t.Errorf("an export while the share is held: %v, want Unavailable", err)
	}
	if ext.budget.Held() != 1000 {
		t.Fatalf("held %d, want 1000: the calls over the share take nothing of the budget", ext.budget.Held())
	}
	rest := otlpBody(t, 955-decodedBytesPerLogRecord)
	if n := len(rest) + decodedBytesPerLogRecord; n <= 500 || n > 1000 {
		t.Fatalf("body of %d bytes: want the rest of the budget (1000) after the gRPC share", n)
	}
	if a := post(httpURL, rest, "length"); a.err != nil || a.status != http.StatusOK {
		t.Errorf("OTLP/HTTP of the rest of the budget while gRPC holds its share: %d %v %s", a.status, a.err, a.body)
	}
	cancel()
	if !testutil.Poll(10*time.Second, func() bool { return ext.budget.Held() == 0 && ext.grpcShare.Held() == 0 }) {
		t.Fatalf("held %d (gRPC share %d) after the client closed its calls", ext.budget.Held(), ext.grpcShare.Held())
	}
	if got := sink.LogRecordCount(); got != 2 {
		t.Errorf("%d records reached the pipeline, want 2 (the HTTP requests)", got)
	}
	metadatatest.AssertEqualRequestBudgetRequestsRefused(t, tel, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("reason", "busy"))},
		{Value: 3, Attributes: attribute.NewSet(attribute.String("reason", "grpc_busy"))},
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

// TestOTLPReceiverSlowSenders: the otlp receiver's http protocol with the
// middleware, against the clients of a slowloris attack. Four connections
// announce bodies that fill the whole budget and send one byte each: they
// hold those four bytes only, so a normal export is accepted meanwhile.
// With a body_stall_timeout, each is answered 408 (an OTLP Status
// DeadlineExceeded) once it has sent nothing for that long, gives its byte
// back and is counted stalled.
func TestOTLPReceiverSlowSenders(t *testing.T) {
	for _, tt := range []struct {
		name  string
		stall time.Duration
	}{
		{"no stall timeout: they stay, holding what they sent", 0},
		{"body_stall_timeout: they are cut", 300 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sink := &consumertest.LogsSink{}
			addr, ext, tel := otlpWithBudget(t, &Config{MaxBytesInFlight: 1500, RetryAfter: time.Second, GRPCBytesPerCall: 1000, BodyStallTimeout: tt.stall}, sink, "http")
			var conns []net.Conn
			for range 4 {
				conn, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				if _, err := io.WriteString(conn, "POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 375\r\n\r\n\n"); err != nil {
					t.Fatal(err)
				}
				conns = append(conns, conn)
			}
			if tt.stall == 0 {
				if !testutil.Poll(10*time.Second, func() bool { return ext.budget.Held() == 4 }) {
					t.Fatalf("held %d, want the 4 bytes sent", ext.budget.Held())
				}
				if a := post("http://"+addr+"/v1/logs", otlpBody(t, 760), "length"); a.err != nil || a.status != http.StatusOK {
					t.Fatalf("a normal export while the slow senders are connected: %d %v %s", a.status, a.err, a.body)
				}
				if ext.budget.Held() != 4 || sink.LogRecordCount() != 1 {
					t.Errorf("held %d, %d records; want 4 and 1", ext.budget.Held(), sink.LogRecordCount())
				}
				return
			}
			for i, conn := range conns {
				_ = conn.SetDeadline(time.Now().Add(time.Minute))
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					t.Fatalf("slow sender %d: %v", i, err)
				}
				msg, _ := io.ReadAll(resp.Body)
				var st spb.Status
				if err := proto.Unmarshal(msg, &st); err != nil || resp.StatusCode != http.StatusRequestTimeout || codes.Code(st.Code) != codes.DeadlineExceeded ||
					!strings.Contains(st.Message, "no byte of the body arrived for 300ms (body_stall_timeout)") {
					t.Errorf("slow sender %d: status %d, OTLP Status %v (%v)", i, resp.StatusCode, &st, err)
				}
			}
			if !testutil.Poll(10*time.Second, func() bool { return ext.budget.Held() == 0 }) {
				t.Errorf("%d bytes still held after the slow senders were cut", ext.budget.Held())
			}
			if got := sink.LogRecordCount(); got != 0 {
				t.Errorf("%d records reached the pipeline", got)
			}
			metadatatest.AssertEqualRequestBudgetRequestsRefused(t, tel,
				[]metricdata.DataPoint[int64]{{Value: 4, Attributes: attribute.NewSet(attribute.String("reason", "stalled"))}},
				metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
		})
	}
}

// rawProto sends bytes already encoded as the request message, under the
// proto codec's name.
type rawProto struct{}

func (rawProto) Marshal(v any) ([]byte, error) { return v.([]byte), nil }
func (rawProto) Unmarshal([]byte, any) error   { return nil }
func (rawProto) Name() string                  { return "proto" }

// TestOTLPReceiverGRPCStalled: the otlp receiver's grpc protocol with the
// middleware, against calls whose request never arrives. Of four calls on
// one connection, three send only their headers and one its message but
// never its end: each holds grpc_bytes_per_call (500, 2,000 in all), so
// without grpc_message_timeout every HTTP request and gRPC call is refused
// for as long as the client keeps them open. With it, they are cut after
// that long (DeadlineExceeded), counted stalled and their bytes given
// back, while a call already in the pipeline for longer is not touched and
// the other doors are served.
func TestOTLPReceiverGRPCStalled(t *testing.T) {
	for _, tt := range []struct {
		name    string
		timeout time.Duration
	}{
		{"no grpc_message_timeout: they hold the budget", 0},
		{"grpc_message_timeout: they are cut", 300 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sink := &consumertest.LogsSink{}
			next, entered, release := holdFirst(t, sink)
			cfg := &Config{MaxBytesInFlight: 2000, RetryAfter: time.Second, GRPCBytesPerCall: 500, GRPCMessageTimeout: tt.timeout, GRPCMaxBytesInFlight: 2000}
			addrs, ext, tel := otlpProtocolsWithBudget(t, cfg, next, "grpc", "http")
			httpURL := "http://" + addrs["http"] + "/v1/logs"
			conn, req, export := grpcExporter(t, addrs["grpc"])
			msg, err := req.MarshalProto()
			if err != nil {
				t.Fatal(err)
			}

			// With the timeout, a call is in the pipeline while the others are cut.
			var first chan error
			calls := 4
			if tt.timeout > 0 {
				calls = 3
				first = make(chan error, 1)
				go func() { first <- export() }()
				<-entered
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var stalled []grpc.ClientStream
			for i := range calls {
				s, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true}, "/opentelemetry.proto.collector.logs.v1.LogsService/Export", grpc.ForceCodec(rawProto{}))
				if err != nil {
					t.Fatal(err)
				}
				if i == 0 { // its message, never its end
					if err := s.SendMsg(msg); err != nil {
						t.Fatal(err)
					}
				}
				stalled = append(stalled, s)
			}

			if tt.timeout == 0 {
				if !testutil.Poll(10*time.Second, func() bool { return ext.budget.Held() == 2000 }) {
					t.Fatalf("held %d, want 2000: the four calls", ext.budget.Held())
				}
				if a := post(httpURL, otlpBody(t, 760), "length"); a.status != http.StatusServiceUnavailable {
					t.Errorf("OTLP/HTTP while the calls are open: %d %v %s, want 503", a.status, a.err, a.body)
				}
				if err := export(); status.Code(err) != codes.Unavailable {
					t.Errorf("OTLP/gRPC while the calls are open: %v, want Unavailable", err)
				}
				cancel()
				if !testutil.Poll(10*time.Second, func() bool { return ext.budget.Held() == 0 }) {
					t.Fatalf("%d bytes still held after the client closed its calls", ext.budget.Held())
				}
				metadatatest.AssertEqualRequestBudgetRequestsRefused(t, tel, []metricdata.DataPoint[int64]{
					{Value: 1, Attributes: attribute.NewSet(attribute.String("reason", "busy"))},
					{Value: 1, Attributes: attribute.NewSet(attribute.String("reason", "grpc_busy"))},
				}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
				close(release)
				return
			}

			for i, s := range stalled {
				err := s.RecvMsg(new([]byte))
				if st := status.Convert(err); st.Code() != codes.DeadlineExceeded {
					t.Errorf("stalled call %d: %v, want DeadlineExceeded", i, err)
				}
			}
			if !testutil.Poll(10*time.Second, func() bool { return ext.budget.Held() == 500 }) {
				t.Fatalf("held %d, want 500: the call in the pipeline only", ext.budget.Held())
			}
			if a := post(httpURL, otlpBody(t, 760), "length"); a.err != nil || a.status != http.StatusOK {
				t.Errorf("OTLP/HTTP after the stalled calls were cut: %d %v %s", a.status, a.err, a.body)
			}
			close(release)
			if err := <-first; err != nil {
				t.Errorf("the call in the pipeline for longer than grpc_message_timeout: %v", err)
			}
			if err := export(); err != nil {
				t.Errorf("a normal export after: %v", err)
			}
			if !testutil.Poll(10*time.Second, func() bool { return ext.budget.Held() == 0 }) {
				t.Fatalf("%d bytes still held after every call ended", ext.budget.Held())
			}
			if got := sink.LogRecordCount(); got != 3 {
				t.Errorf("%d records reached the pipeline, want 3 (the normal calls and the HTTP request)", got)
			}
			metadatatest.AssertEqualRequestBudgetRequestsRefused(t, tel, []metricdata.DataPoint[int64]{
				{Value: 3, Attributes: attribute.NewSet(attribute.String("reason", "stalled"))},
			}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
		})
	}
}

// grpcExporter dials the otlp receiver's grpc address: the connection (closed
// at the test's end), a one-row export request, and a call that sends it.
func grpcExporter(t *testing.T, addr string) (*grpc.ClientConn, plogotlp.ExportRequest, func() error) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	logs := plog.NewLogs()
	logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("row")
	req := plogotlp.NewExportRequestFromLogs(logs)
	return conn, req, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := plogotlp.NewGRPCClient(conn).Export(ctx, req)
		return err
	}
}
