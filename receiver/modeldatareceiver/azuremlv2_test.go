package modeldatareceiver

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// sdkRequest is a request byte for byte as azureml-ai-monitoring's
// MdcSender sends it through python-requests: the session's default headers,
// then the correlation context's headers with the "ce-" prefix, then the
// SDK's own headers; the body is DataFrame.to_json(orient="records")
// (ASCII-only, "/" escaped, NaN as null, datetimes as epoch milliseconds).
func sdkRequest(host, collection, requestID, body string, context map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "POST /modeldata/log HTTP/1.1\r\nHost: %s\r\nUser-Agent: python-requests/2.32.3\r\nAccept-Encoding: gzip, deflate\r\nAccept: */*\r\nConnection: keep-alive\r\n", host)
	for k, v := range context {
		fmt.Fprintf(&b, "ce-%s: %s\r\n", k, v)
	}
	fmt.Fprintf(&b, "Content-Type: application/json\r\ntrace-id: 5e1c2a40-7d0e-4a3b-9a4f-1f2e3d4c5b6a\r\nce-time: 1597333456\r\n"+
		"ce-type: azureml.inference.%s\r\nce-collect-data-type: pandas.core.frame.DataFrame\r\nce-agent: azureml-ai-monitoring/1.0.0\r\n"+
		"ce-x-request-id: %s\r\nce-model-version: 10\r\nContent-Length: %d\r\n\r\n%s", collection, requestID, len(body), body)
	return b.String()
}

func sendRaw(t *testing.T, url, raw string) (int, string) {
	t.Helper()
	host := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), v2Path)
	conn, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestV2SDKRequests sends the inputs and outputs of one scoring call as the
// SDK sends them and checks every contract attribute of the rows.
func TestV2SDKRequests(t *testing.T) {
	r := startReceiver(t, func(cfg *Config) { cfg.AzureMLV2.GetOrInsertDefault() }, nil, nil)
	host := strings.TrimSuffix(strings.TrimPrefix(r.v2url, "http://"), v2Path)
	const requestID = "7f0c7c4e-4d1b-4b8a-a0a5-3a0bd0b9d6de"
	inputs := `[{"age":31,"income":5000.5,"city":"Z\u00fcrich","url":"http:\/\/x","joined":1597333456000,"flag":true,"score":null},` +
		`{"age":45,"income":1200.0,"city":"Redmond, WA","url":"","joined":1597333457000,"flag":false,"score":0.25}]`
	outputs := `[{"prediction":0.93},{"prediction":0.12}]`
	ctx := map[string]string{"model-name": "best_model"}
	for _, req := range []struct{ collection, body string }{{"model_inputs", inputs}, {"model_outputs", outputs}} {
		if code, body := sendRaw(t, r.v2url, sdkRequest(host, req.collection, requestID, req.body, ctx)); code != http.StatusOK || body != "{\"accepted\":2}\n" {
			t.Fatalf("%s: %d %q", req.collection, code, body)
		}
	}
	recs := records(r.sink)
	if len(recs) != 4 {
		t.Fatalf("%d records", len(recs))
	}
	scored := time.Unix(1597333456, 0).UTC()
	want := []struct {
		designation string
		columns     []string
		body        []string
	}{
		{"inputs", []string{"age", "income", "city", "url", "joined", "flag", "score"},
			[]string{"age=Int:31", "income=Double:5000.5", "city=Str:Zürich", "url=Str:http://x", "joined=Int:1597333456000", "flag=Bool:true", "score=Empty:"}},
		{"inputs", []string{"age", "income", "city", "url", "joined", "flag", "score"},
			[]string{"age=Int:45", "income=Double:1200", "city=Str:Redmond, WA", "url=Str:", "joined=Int:1597333457000", "flag=Bool:false", "score=Double:0.25"}},
		{"predictions", []string{"prediction"}, []string{"prediction=Double:0.93"}},
		{"predictions", []string{"prediction"}, []string{"prediction=Double:0.12"}},
	}
	for i, lr := range recs {
		attrs := map[string]any{
			contract.AttrModelName: "best_model", contract.AttrModelVersion: "10", contract.AttrDesignation: want[i].designation,
			contract.AttrCorrelationID: requestID, contract.AttrRequestID: requestID,
		}
		if got := contract.Columns(lr); !reflect.DeepEqual(got, want[i].columns) {
			t.Errorf("row %d columns %q, want %q", i, got, want[i].columns)
		}
		if got := lr.Attributes().AsRaw(); !reflect.DeepEqual(got, attrs) {
			t.Errorf("row %d attributes\n got %v\nwant %v", i, got, attrs)
		}
		if got := bodyOf(lr); !reflect.DeepEqual(got, want[i].body) {
			t.Errorf("row %d body\n got %q\nwant %q", i, got, want[i].body)
		}
		if !lr.Timestamp().AsTime().Equal(scored) || lr.EventName() != contract.EventName {
			t.Errorf("row %d timestamp %v event %q", i, lr.Timestamp().AsTime(), lr.EventName())
		}
	}
}

// TestV2Config checks collection mapping, switches and sampling, and where
// model name, version and webservice come from.
func TestV2Config(t *testing.T) {
	r := startReceiver(t, func(cfg *Config) {
		v2 := cfg.AzureMLV2.GetOrInsertDefault()
		v2.ModelName = "configured"
		v2.ModelVersion = "3"
		v2.Webservice = "svc"
		v2.Collections = map[string]CollectionConfig{
			"model_outputs":  {Designation: "scores"},
			"feedback":       {Designation: "labels"},
			"debug":          {Enabled: ptr(false)},
			"model_inputs":   {SamplingRate: ptr(0.0)},
			"model_features": {SamplingRate: ptr(1.0)},
		}
	}, nil, nil)
	tests := []struct {
		name              string
		headers           map[string]string
		accepted          float64
		model, version    string
		designation       string
		correlationIsUUID bool
	}{
		{name: "mapped collection, model from config, version from config",
			headers:  map[string]string{"ce-type": "azureml.inference.model_outputs", "ce-x-request-id": "r1"},
			accepted: 1, model: "configured", version: "3", designation: "scores"},
		{name: "model name from the context header, version from ce-model-version",
			headers:  map[string]string{"ce-type": "azureml.inference.feedback", "ce-x-request-id": "r2", "ce-model-name": "from_header", "ce-model-version": "9"},
			accepted: 1, model: "from_header", version: "9", designation: "labels"},
		{name: "unlisted collection keeps its name as designation; no request id",
			headers:  map[string]string{"ce-type": "azureml.inference.model_inputs_outputs"},
			accepted: 1, model: "configured", version: "3", designation: "model_inputs_outputs", correlationIsUUID: true},
		{name: "disabled collection", headers: map[string]string{"ce-type": "azureml.inference.debug"}},
		{name: "sampling rate 0", headers: map[string]string{"ce-type": "azureml.inference.model_inputs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r.sink.Reset()
			resp := post(t, r.v2url, "application/json", `[{"a":1}]`, tt.headers)
			if resp.status != http.StatusOK {
				t.Fatalf("status %d: %s", resp.status, resp.body)
			}
			if got := resp.json(t)["accepted"]; got != tt.accepted {
				t.Fatalf("accepted %v, want %v", got, tt.accepted)
			}
			if tt.accepted == 0 {
				return
			}
			row, _ := contract.ReadRow(records(r.sink)[0])
			if row.ModelName != tt.model || row.ModelVersion != tt.version || row.Designation != tt.designation {
				t.Errorf("row %+v", row)
			}
			if tt.correlationIsUUID && (len(row.CorrelationID) != 36 || row.RequestID != row.CorrelationID) {
				t.Errorf("ids %q %q", row.CorrelationID, row.RequestID)
			}
			if !tt.correlationIsUUID && (row.RequestID != tt.headers["ce-x-request-id"] || row.CorrelationID != row.RequestID) {
				t.Errorf("ids %q %q", row.CorrelationID, row.RequestID)
			}
			if !row.Timestamp.Equal(fixedNow) {
				t.Errorf("timestamp %v: without ce-time the receive time applies", row.Timestamp)
			}
			if res := resources(r.sink); !reflect.DeepEqual(res, []map[string]any{{contract.AttrWebservice: "svc"}}) {
				t.Errorf("resource %v", res)
			}
		})
	}
}

// TestV2Rejected checks the refusals of the v2 route: each a 4xx with a
// plain-text message the SDK hands to the caller's on_error.
func TestV2Rejected(t *testing.T) {
	r := startReceiver(t, func(cfg *Config) {
		cfg.MaxRowsPerRequest = 2
		cfg.AzureMLV2.GetOrInsertDefault()
	}, nil, nil)
	sdk := map[string]string{"ce-type": "azureml.inference.model_inputs", "ce-model-name": "m"}
	with := func(k, v string) map[string]string {
		h := map[string]string{}
		for a, b := range sdk {
			h[a] = b
		}
		if v == "" {
			delete(h, k)
		} else {
			h[k] = v
		}
		return h
	}
	tests := []struct {
		name, contentType, body string
		headers                 map[string]string
		status                  int
		message                 string
	}{
		{"compact mode", "application/octet-stream", "   a\n0  1\n", sdk, 415, "AZUREML_MDC_FORMAT_COMPACT"},
		{"text body", "text/plain", "x", sdk, 415, "application/json"},
		{"no ce-type", "application/json", `[]`, with("ce-type", ""), 400, "ce-type"},
		{"foreign ce-type", "application/json", `[]`, with("ce-type", "com.example.event"), 400, "azureml.inference."},
		{"collection that cannot be a designation", "application/json", `[]`, with("ce-type", "azureml.inference.a/b"), 400, "designation"},
		{"no model name", "application/json", `[]`, with("ce-model-name", ""), 400, "azureml_v2::model_name"},
		{"model name with a slash", "application/json", `[]`, with("ce-model-name", "a/b"), 400, "model name"},
		{"bad ce-time", "application/json", `[]`, with("ce-time", "yesterday"), 400, "ce-time"},
		{"bad model version", "application/json", `[]`, with("ce-model-version", ".."), 400, "model version"},
		{"body is an object", "application/json", `{"a":[1]}`, sdk, 400, "list of records"},
		{"record is a list", "application/json", `[[1]]`, sdk, 400, "record 0 must be a JSON object"},
		{"invalid JSON", "application/json", `[{"a":1}`, sdk, 400, "invalid JSON"},
		{"too many rows", "application/json", `[{"a":1},{"a":2},{"a":3}]`, sdk, 413, "max_rows_per_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r.sink.Reset()
			resp := post(t, r.v2url, tt.contentType, tt.body, tt.headers)
			if resp.status != tt.status || !strings.Contains(resp.body, tt.message) {
				t.Errorf("%d %q, want %d containing %q", resp.status, resp.body, tt.status, tt.message)
			}
			if r.sink.LogRecordCount() != 0 {
				t.Errorf("%d records reached the pipeline", r.sink.LogRecordCount())
			}
		})
	}
	req, _ := http.NewRequest(http.MethodGet, r.v2url, nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

// TestV2OffByDefault checks that the default config opens no v2 port.
func TestV2OffByDefault(t *testing.T) {
	if createDefaultConfig().AzureMLV2.HasValue() {
		t.Fatal("azureml_v2 is on in the default config")
	}
}
