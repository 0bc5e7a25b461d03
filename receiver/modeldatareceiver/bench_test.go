package modeldatareceiver

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/otelcol-modeldata/otelcol-modeldata/receiver/modeldatareceiver/internal/metadata"
)

// benchBody is a collect request of rows×10 features: ints, doubles,
// strings and a bool, as a tabular model's inputs look.
func benchBody(rows int) []byte {
	var b strings.Builder
	b.WriteString(`{"model_name":"best_model","model_version":"10","designation":"inputs","request_id":"ae249167-ab81-46d2-9553-e42c1f93fa77",`)
	b.WriteString(`"feature_names":["age","income","city","score","visits","ratio","segment","active","tenure","balance"],"data":[`)
	for r := 0; r < rows; r++ {
		if r > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `[%d,%d.25,"Redmond, WA",%g,%d,0.%d,"segment-%d",%t,%d,%d.5]`, 20+r%50, 1000+r, 0.5+float64(r)/1000, r%7, r%10, r%4, r%2 == 0, r, r*3)
	}
	b.WriteString("]}")
	return []byte(b.String())
}

// batchBody is a /v1/collect/batch body of groups collect requests of one
// row × 10 features each, as the Python client sends one line per
// collect() call: its own correlation id, scoring timestamp and request id.
func batchBody(groups int) []byte {
	var b strings.Builder
	for g := 0; g < groups; g++ {
		fmt.Fprintf(&b, `{"model_name":"best_model","designation":"inputs","model_version":"10","feature_names":["age","income","city","score","visits","ratio","segment","active","tenure","balance"],`+
			`"correlation_id":"c-%d","scoring_timestamp":"2026-11-30T01:02:03.%06dZ","request_id":"ae249167-ab81-46d2-9553-%012d","data":[[%d,%d.25,"Redmond, WA",%g,%d,0.%d,"segment-%d",%t,%d,%d.5]]}`+"\n",
			g, g, g, 20+g%50, 1000+g, 0.5+float64(g)/1000, g%7, g%10, g%4, g%2 == 0, g, g*3)
	}
	return []byte(b.String())
}

// BenchmarkCollectJSON measures a 10-feature JSON request of 100 rows
// through the collect handler (read, decode, validate, build the log
// records, hand them to a nop consumer, answer). Run with -cpu 1.
func BenchmarkCollectJSON(b *testing.B) {
	benchmarkHandler(b, collectPath, "application/json", benchBody(100), `"accepted":100`, 100)
}

// BenchmarkCollectBatch measures a /v1/collect/batch body of 100 one-row
// collect requests through the batch handler.
func BenchmarkCollectBatch(b *testing.B) {
	benchmarkHandler(b, batchPath, ndjsonContentType, batchBody(100), `"accepted":100`, 100)
}

func benchmarkHandler(b *testing.B, path, contentType string, body []byte, accepted string, rows int) {
	cfg := createDefaultConfig()
	rcv, err := newReceiver(cfg, receivertest.NewNopSettings(metadata.Type), consumertest.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	var handler http.Handler = http.HandlerFunc(rcv.handleCollect)
	if path == batchPath {
		handler = http.HandlerFunc(rcv.handleCollectBatch)
	}
	// As the server runs it: inside the bytes-in-flight budget.
	handler = rcv.budget.Wrap(handler, rcv.refuser(writeJSONError))
	reader := bytes.NewReader(body)
	template := httptest.NewRequest(http.MethodPost, path, reader)
	template.Header.Set("Content-Type", contentType)
	template = template.WithContext(context.Background())
	request := func() *http.Request {
		req := *template // the budget replaces the body of the request it is given
		reader.Reset(body)
		req.ContentLength = int64(len(body))
		return &req
	}
	w := httptest.NewRecorder()
	handler.ServeHTTP(w, request())
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), accepted) {
		b.Fatalf("%d %s", w.Code, w.Body.String())
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, request())
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
	b.StopTimer()
	perRow := float64(b.Elapsed().Nanoseconds()) / float64(b.N*rows)
	b.ReportMetric(1e9/perRow, "rows/s")
	b.ReportMetric(perRow, "ns/row")
}

// BenchmarkParseNumbers is the JSON parser alone on arrays of numbers as
// model inputs hold them: small integers, decimals of a few digits, and
// doubles printed in full or with an exponent.
func BenchmarkParseNumbers(b *testing.B) {
	for _, kind := range []struct {
		name   string
		number func(i int) string
	}{
		{"ints", func(i int) string { return strconv.Itoa(i % 5000) }},
		{"decimals", func(i int) string { return fmt.Sprintf("%d.%d", i%1000, i%100) }},
		{"doubles", func(i int) string { return strconv.FormatFloat(float64(i)/7, 'g', -1, 64) }},
		{"exponents", func(i int) string { return fmt.Sprintf("%de-%d", i, i%30) }},
	} {
		b.Run(kind.name, func(b *testing.B) {
			const count = 10000
			var sb strings.Builder
			sb.WriteByte('[')
			for i := range count {
				if i > 0 {
					sb.WriteByte(',')
				}
				sb.WriteString(kind.number(i))
			}
			sb.WriteByte(']')
			src := sb.String()
			nodes, err := parseJSON(src, nil, count+1)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(src)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if nodes, err = parseJSON(src, nodes, count+1); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*count), "ns/number")
		})
	}
}
