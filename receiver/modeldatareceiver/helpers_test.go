package modeldatareceiver

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/otelcol-modeldata/otelcol-modeldata/receiver/modeldatareceiver/internal/metadata"
)

// fixedNow is the receiver's clock in tests.
var fixedNow = time.Date(2020, 8, 13, 15, 54, 16, 691697000, time.UTC)

// handedOut remembers the addresses freeAddr gave, so two servers of one
// test never get the same just-closed port.
var handedOut sync.Map

func freeAddr(t testing.TB) string {
	t.Helper()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		if _, taken := handedOut.LoadOrStore(addr, true); !taken {
			return addr
		}
	}
}

// testReceiver is a started receiver on 127.0.0.1 with its sink.
type testReceiver struct {
	url, v2url string
	sink       *consumertest.LogsSink
	rcv        *modeldataReceiver
}

// startReceiver starts the receiver built by the factory on free ports.
// edit adjusts the default config; next defaults to a LogsSink.
func startReceiver(t testing.TB, edit func(*Config), next consumer.Logs, host component.Host) *testReceiver {
	t.Helper()
	return startReceiverWith(t, receiverOptions{edit: edit, next: next, host: host})
}

// receiverOptions are startReceiverWith's: zero values are the defaults.
type receiverOptions struct {
	set  *receiver.Settings // default: no-op telemetry
	edit func(*Config)
	next consumer.Logs
	host component.Host
	// idemNow is the idempotency window's clock, set before the start loads the window.
	idemNow func() time.Time
}

func startReceiverWith(t testing.TB, o receiverOptions) *testReceiver {
	t.Helper()
	cfg := createDefaultConfig()
	cfg.NetAddr.Endpoint = freeAddr(t)
	if o.edit != nil {
		o.edit(cfg)
	}
	if v2 := cfg.AzureMLV2.Get(); v2 != nil && v2.NetAddr.Endpoint == defaultV2Endpoint {
		v2.NetAddr.Endpoint = freeAddr(t)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	sink := new(consumertest.LogsSink)
	if o.next == nil {
		o.next = sink
	}
	if o.host == nil {
		o.host = componenttest.NewNopHost()
	}
	set := receivertest.NewNopSettings(metadata.Type)
	if o.set != nil {
		set = *o.set
	}
	rcv, err := NewFactory().CreateLogs(context.Background(), set, cfg, o.next)
	if err != nil {
		t.Fatal(err)
	}
	r := rcv.(*modeldataReceiver)
	r.now = func() time.Time { return fixedNow }
	if o.idemNow != nil {
		r.idem.now = o.idemNow
	}
	if err := r.Start(context.Background(), o.host); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	tr := &testReceiver{url: "http://" + cfg.NetAddr.Endpoint + collectPath, sink: sink, rcv: r}
	if v2 := cfg.AzureMLV2.Get(); v2 != nil {
		tr.v2url = "http://" + v2.NetAddr.Endpoint + v2Path
	}
	return tr
}

// telemetrySettings are receiver settings whose metrics a test can read.
func telemetrySettings(t testing.TB) (*componenttest.Telemetry, *receiver.Settings) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	set := receivertest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	return tel, &set
}

// metricSum is the sum of an int64 counter's data points (0 when never recorded).
func metricSum(t testing.TB, tel *componenttest.Telemetry, name string) int64 {
	t.Helper()
	m, err := tel.GetMetric(name)
	if err != nil {
		return 0
	}
	var sum int64
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		sum += dp.Value
	}
	return sum
}

type response struct {
	status int
	header http.Header
	body   string
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("response %d %q: %v", r.status, r.body, err)
	}
	return m
}

func post(t testing.TB, url, contentType, body string, headers map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range headers {
		req.Header[k] = []string{v} // as given: the SDK's lower-case names
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// records flattens everything the sink received.
func records(sink *consumertest.LogsSink) []plog.LogRecord {
	var out []plog.LogRecord
	for _, ld := range sink.AllLogs() {
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			sls := ld.ResourceLogs().At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				lrs := sls.At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					out = append(out, lrs.At(k))
				}
			}
		}
	}
	return out
}

func resources(sink *consumertest.LogsSink) []map[string]any {
	var out []map[string]any
	for _, ld := range sink.AllLogs() {
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			out = append(out, ld.ResourceLogs().At(i).Resource().Attributes().AsRaw())
		}
	}
	return out
}

// bodyOf renders a record's body as ordered "key=type:value" cells, so a
// test sees value types and column order.
func bodyOf(lr plog.LogRecord) []string {
	var out []string
	lr.Body().Map().Range(func(k string, v pcommon.Value) bool {
		out = append(out, fmt.Sprintf("%s=%s:%s", k, v.Type(), v.AsString()))
		return true
	})
	return out
}

func newGzip(w io.Writer) *gzip.Writer { return gzip.NewWriter(w) }

// componentType is the component's type (from metadata.yaml) for the tests.
var componentType = metadata.Type
