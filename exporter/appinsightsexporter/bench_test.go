package appinsightsexporter

import (
	"bytes"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// BenchmarkEncodeTraces encodes 1,000 spans (server and client, 8 attributes
// each) into envelopes and gzips them: the work of one push before the POST.
// Run: go test -run '^$' -bench . -benchmem ./exporter/appinsightsexporter/
func BenchmarkEncodeTraces(b *testing.B) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	newResource(rs.Resource())
	ss := rs.ScopeSpans().AppendEmpty()
	for i := 0; i < 1000; i++ {
		kind := ptrace.SpanKindServer
		if i%2 == 1 {
			kind = ptrace.SpanKindClient
		}
		addSpan(ss, "POST", kind, byte(i), time.Duration(i)*time.Millisecond, map[string]any{
			"http.request.method": "POST", "http.route": "/score", "http.response.status_code": 200,
			"url.full": "http://scoring.local:8080/score", "server.address": "scoring.local", "server.port": 8080,
			"model.name": "churn", "model.version": "3",
		})
	}
	enc := newEncoder(target{iKey: testIKey}, "bench")
	var out bytes.Buffer
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		enc.reset()
		enc.encodeTraces(td)
		out.Reset()
		if err := gzipTo(&out, enc.buf.Bytes()); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(len(enc.origins))*float64(b.N)/b.Elapsed().Seconds(), "envelopes/s")
	b.ReportMetric(float64(enc.buf.Len())/float64(len(enc.origins)), "json-bytes/envelope")
	b.ReportMetric(float64(out.Len())/float64(len(enc.origins)), "gzip-bytes/envelope")
}
