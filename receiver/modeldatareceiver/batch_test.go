package modeldatareceiver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/otelcol-modeldata/otelcol-modeldata/receiver/modeldatareceiver/internal/metadata"
)

// inputsGroup and predictionsGroup are what a client writes for one scoring
// call: the same correlation values on both designations.
const (
	inputsGroup = `{"model_name":"m","model_version":"1","designation":"inputs","feature_names":["age","city"],` +
		`"data":[[31,"Redmond, WA"],[45,"Zürich"]],"correlation_id":"c-1","scoring_timestamp":"2020-08-13T15:54:16.691697",` +
		`"request_id":"r-1","webservice":"svc"}`
	predictionsGroup = `{"model_name":"m","model_version":"1","designation":"predictions","feature_names":["score"],` +
		`"data":[[0.93],[0.12]],"correlation_id":"c-1","scoring_timestamp":"2020-08-13T15:54:16.691697","request_id":"r-1"}`
)

// logged renders every record the sink received with its resource and
// attributes, in order, so two ways of sending can be compared.
func logged(sink *consumertest.LogsSink) []string {
	var out []string
	for _, ld := range sink.AllLogs() {
		rls := ld.ResourceLogs()
		for i := 0; i < rls.Len(); i++ {
			res := rls.At(i).Resource().Attributes().AsRaw()
			sls := rls.At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				lrs := sls.At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					lr := lrs.At(k)
					out = append(out, fmt.Sprintf("%v %v %v %s %s", res, lr.Attributes().AsRaw(), bodyOf(lr), lr.Timestamp(), lr.ObservedTimestamp()))
				}
			}
		}
	}
	return out
}

// TestBatchWritesWhatCollectWrites posts the same groups once to
// /v1/collect one by one and once as a batch: the records, their correlation
// attributes and resources are the same.
func TestBatchWritesWhatCollectWrites(t *testing.T) {
	groups := []string{inputsGroup, predictionsGroup, `{"model_name":"m2","correlation_id":"c-2","data":{"x":1.5,"y":"a\nb"}}`}

	single := startReceiver(t, nil, nil, nil)
	for _, g := range groups {
		if resp := post(t, single.url, "application/json", g, map[string]string{"X-Request-Id": "hdr"}); resp.status != http.StatusOK {
			t.Fatalf("collect: %d %s", resp.status, resp.body)
		}
	}
	batch := startReceiver(t, nil, nil, nil)
	resp := post(t, batch.url+"/batch", ndjsonContentType, strings.Join(groups, "\n")+"\n", map[string]string{"X-Request-Id": "hdr"})
	if resp.status != http.StatusOK {
		t.Fatalf("batch: %d %s", resp.status, resp.body)
	}
	if got := resp.json(t); got["accepted"] != 5.0 || got["groups"] != 3.0 || got["rejected"] != nil {
		t.Errorf("batch response %v", got)
	}
	if n := len(batch.sink.AllLogs()); n != 1 {
		t.Errorf("the batch reached the pipeline in %d calls, want 1", n)
	}
	want, got := logged(single.sink), logged(batch.sink)
	if len(want) != 5 || !reflect.DeepEqual(got, want) {
		t.Errorf("batch records:\n%s\nwant (as /v1/collect writes them):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestBatchAnswers covers what a batch is answered: refused groups listed
// while the others are kept, the whole batch refused only when nothing in it
// is valid, and the request-level errors.
func TestBatchAnswers(t *testing.T) {
	tests := []struct {
		name        string
		method      string
		contentType string
		headers     map[string]string
		body        string
		status      int
		accepted    int // rows that reached the pipeline
		response    string
	}{
		{
			name:     "groups with CRLF line ends and blank lines",
			body:     inputsGroup + "\r\n\r\n" + predictionsGroup + "\r\n",
			status:   http.StatusOK,
			accepted: 4,
			response: `{"groups":2,"accepted":4}`,
		},
		{
			name:     "a refused group loses nothing else",
			body:     inputsGroup + "\n" + `{"data":[[1]]}` + "\n" + `{"model_name":"m/x","data":[[1]]}` + "\n" + predictionsGroup,
			status:   http.StatusOK,
			accepted: 4,
			response: `{"groups":4,"accepted":4,"rejected":[{"group":1,"status":400,"error":"model_name is missing"},` +
				`{"group":2,"status":400,"error":"invalid path segment: model_name \"m/x\"`,
		},
		{
			name:     "headers are defaults for every group",
			headers:  map[string]string{"X-Modeldata-Model-Name": "m"},
			body:     `{"data":[[1]]}` + "\n" + `{"data":[[2]]}`,
			status:   http.StatusOK,
			accepted: 2,
			response: `{"groups":2,"accepted":2}`,
		},
		{
			name:     "every group refused",
			body:     `{"data":[[1]]}` + "\n" + `not json`,
			status:   http.StatusBadRequest,
			response: `"rejected":[{"group":0,"status":400,"error":"model_name is missing"},{"group":1,"status":400,`,
		},
		{
			name:     "no groups",
			body:     "\n \n",
			status:   http.StatusBadRequest,
			response: `{"error":"the body has no collect requests: send one JSON collect request per line"}`,
		},
		{
			name:        "JSON array instead of lines",
			contentType: "application/json",
			body:        "[" + inputsGroup + "]",
			status:      http.StatusUnsupportedMediaType,
			response:    `send application/x-ndjson, one JSON collect request per line`,
		},
		{
			name:        "latin-1",
			contentType: ndjsonContentType + "; charset=iso-8859-1",
			body:        inputsGroup,
			status:      http.StatusUnsupportedMediaType,
			response:    `charset \"iso-8859-1\": only utf-8 is accepted`,
		},
		{
			name:     "GET",
			method:   http.MethodGet,
			status:   http.StatusMethodNotAllowed,
			response: `GET is not allowed`,
		},
		{
			name:     "over max_request_body_size",
			body:     strings.Repeat(inputsGroup+"\n", 20),
			status:   http.StatusRequestEntityTooLarge,
			response: `max_request_body_size`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := startReceiver(t, func(cfg *Config) { cfg.MaxRequestBodySize = 4096 }, nil, nil)
			contentType := tt.contentType
			if contentType == "" {
				contentType = ndjsonContentType
			}
			var resp response
			if tt.method == http.MethodGet {
				got, err := http.Get(r.url + "/batch")
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(got.Body)
				got.Body.Close()
				resp = response{status: got.StatusCode, header: got.Header, body: string(body)}
			} else {
				resp = post(t, r.url+"/batch", contentType, tt.body, tt.headers)
			}
			if resp.status != tt.status || !strings.Contains(resp.body, tt.response) {
				t.Errorf("got %d %s\nwant %d with %s", resp.status, resp.body, tt.status, tt.response)
			}
			if got := len(records(r.sink)); got != tt.accepted {
				t.Errorf("%d rows reached the pipeline, want %d", got, tt.accepted)
			}
		})
	}
}

// TestBatchPipelineRefusal checks that a refused batch is retryable as a
// whole (503 with Retry-After), so the client sends it again.
func TestBatchPipelineRefusal(t *testing.T) {
	r := startReceiver(t, nil, refusingConsumer{errors.New("sending queue is full")}, nil)
	resp := post(t, r.url+"/batch", ndjsonContentType, inputsGroup+"\n"+predictionsGroup, nil)
	if resp.status != http.StatusServiceUnavailable || resp.header.Get("Retry-After") != defaultRetryAfter {
		t.Errorf("got %d Retry-After %q %s", resp.status, resp.header.Get("Retry-After"), resp.body)
	}
}

// benchBatch is what the Python client sends for n scoring calls of 1-5 rows:
// an inputs group of 5 features and a predictions group with the same ids.
func benchBatch(n int) (body []byte, rows int) {
	var b strings.Builder
	for i := 0; i < n; i++ {
		k := i%5 + 1
		ids := fmt.Sprintf(`"correlation_id":"c-%d","scoring_timestamp":"2020-08-13T15:54:16.691697","request_id":"r-%d"`, i, i)
		b.WriteString(`{"model_name":"bench_model","designation":"inputs","model_version":"1","feature_names":["f0","f1","f2","f3","f4"],` + ids + `,"data":[`)
		for r := 0; r < k; r++ {
			if r > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `[1.5,%d,"abc",true,null]`, r)
		}
		b.WriteString("]}\n")
		b.WriteString(`{"model_name":"bench_model","designation":"predictions","model_version":"1","feature_names":["score"],` + ids + `,"data":[`)
		b.WriteString(strings.TrimSuffix(strings.Repeat("[0.5],", k), ",") + "]}\n")
		rows += 2 * k
	}
	return []byte(b.String()), rows
}

// BenchmarkScoringCalls measures 1,000 scoring calls of the Python client
// (2,000 collect groups, 6,000 rows) through the receiver: as one batch, and
// as one /v1/collect request per collect() call, as clients without batching
// send them. Run with -cpu 1.
func BenchmarkScoringCalls(b *testing.B) {
	cfg := createDefaultConfig()
	rcv, err := newReceiver(cfg, receivertest.NewNopSettings(metadata.Type), consumertest.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	body, rows := benchBatch(1000)
	lines := bytes.Split(bytes.TrimSuffix(body, []byte("\n")), []byte("\n"))
	run := func(b *testing.B, handler http.HandlerFunc, path, contentType string, bodies [][]byte) {
		reader := bytes.NewReader(nil)
		req := httptest.NewRequest(http.MethodPost, path, reader)
		req.Header.Set("Content-Type", contentType)
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			for _, one := range bodies {
				reader.Reset(one)
				req.ContentLength = int64(len(one))
				w := httptest.NewRecorder()
				handler(w, req)
				if w.Code != http.StatusOK {
					b.Fatal(w.Code, w.Body.String())
				}
			}
		}
		b.StopTimer()
		perRow := float64(b.Elapsed().Nanoseconds()) / float64(b.N*rows)
		b.ReportMetric(1e9/perRow, "rows/s")
		b.ReportMetric(perRow, "ns/row")
	}
	b.Run("batch", func(b *testing.B) {
		run(b, rcv.handleCollectBatch, batchPath, ndjsonContentType, [][]byte{body})
	})
	b.Run("request_per_call", func(b *testing.B) {
		run(b, rcv.handleCollect, collectPath, "application/json", lines)
	})
}

// FuzzBatch posts hostile batch bodies: the handler never panics, answers
// with a status it documents, and the rows it reports accepted are the rows
// that reached the pipeline.
func FuzzBatch(f *testing.F) {
	for _, seed := range jsonSeeds {
		f.Add(seed + "\n" + inputsGroup)
	}
	f.Add(inputsGroup + "\r\n" + predictionsGroup)
	f.Add("\n\n\n")
	f.Add(inputsGroup + "\n" + `{"model_name":"m","data":[[1]]` + "\n")
	cfg := createDefaultConfig()
	cfg.MaxRequestBodySize = 1 << 16
	sink := new(consumertest.LogsSink)
	rcv, err := newReceiver(cfg, receivertest.NewNopSettings(metadata.Type), sink)
	if err != nil {
		f.Fatal(err)
	}
	rcv.now = func() time.Time { return fixedNow }
	f.Fuzz(func(t *testing.T, body string) {
		sink.Reset()
		req := httptest.NewRequest(http.MethodPost, batchPath, strings.NewReader(body))
		req.Header.Set("Content-Type", ndjsonContentType)
		w := httptest.NewRecorder()
		rcv.handleCollectBatch(w, req)
		var resp batchResponse
		if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
			t.Fatalf("%d %q is not JSON: %v", w.Code, w.Body.String(), err)
		}
		switch w.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d %s", w.Code, w.Body.String())
		}
		if got := sink.LogRecordCount(); got != resp.Accepted {
			t.Fatalf("%d rows reached the pipeline, the answer says %d accepted: %s", got, resp.Accepted, w.Body.String())
		}
		if len(resp.Rejected) > resp.Groups {
			t.Fatalf("more refusals than groups: %s", w.Body.String())
		}
	})
}
