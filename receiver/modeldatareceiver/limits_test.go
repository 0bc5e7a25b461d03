package modeldatareceiver

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestCSVLineEnds: "\n", "\r\n" and "\r"-only bodies, and any mix, give the
// same rows; a quoted cell keeps its line ends byte for byte.
func TestCSVLineEnds(t *testing.T) {
	r := startReceiver(t, nil, nil, nil)
	rows := [][]string{{"a=Str:1", "b=Str:2"}, {"a=Str:3", "b=Str:4"}}
	tests := []struct {
		name, body string
		want       [][]string
	}{
		{"LF", "a,b\n1,2\n3,4\n", rows},
		{"CRLF", "a,b\r\n1,2\r\n3,4\r\n", rows},
		{"CR only (old Mac, some Excel exports)", "a,b\r1,2\r3,4\r", rows},
		{"mixed", "a,b\r1,2\n3,4\r\n", rows},
		{"no final line end", "a,b\r1,2\r3,4", rows},
		{"blank lines skipped", "a,b\r\n\r\n1,2\r\r3,4\n\n", rows},
		{"byte order mark", "\ufeffa,b\r1,2\r3,4", rows},
		{"quoted CRLF, CR and LF kept exactly", "a,b\r\n\"x\r\ny\",\"p\rq\nr\"\r\n\"\",\"say \"\"hi\"\"\"\r\n",
			[][]string{{"a=Str:x\r\ny", "b=Str:p\rq\nr"}, {"a=Str:", `b=Str:say "hi"`}}},
		{"empty last cell", "a,b\r1,\r3,4", [][]string{{"a=Str:1", "b=Str:"}, {"a=Str:3", "b=Str:4"}}},
		{"spaces kept", "a,b\n 1 , 2\n3,4\n", [][]string{{"a=Str: 1 ", "b=Str: 2"}, {"a=Str:3", "b=Str:4"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r.sink.Reset()
			resp := post(t, r.url+"?model_name=m", "text/csv", tt.body, nil)
			if resp.status != http.StatusOK {
				t.Fatalf("status %d: %s", resp.status, resp.body)
			}
			var got [][]string
			for _, lr := range records(r.sink) {
				got = append(got, bodyOf(lr))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("rows\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestCSVRejected: malformed CSV and CSV without rows get 400 naming the
// line, and nothing reaches the pipeline.
func TestCSVRejected(t *testing.T) {
	r := startReceiver(t, nil, nil, nil)
	tests := []struct{ name, body, message string }{
		{"header only", "a,b\n", "no rows"},
		{"header and blank lines", "a,b\r\n\r\n\r\n", "no rows"},
		{"wrong width, CR line ends", "a,b\r1,2\r1\r", "CSV line 3 has 1 values but the header names 2"},
		{"wrong width after a quoted CR", "a,b\r\"x\ry\",2\r1\r", "CSV line 4 has 1 values"},
		{"quote inside an unquoted cell", "a\rx\"y\r", "line 2: a quote inside an unquoted cell"},
		{"text after a closing quote", "a\r\"x\"y\r", "line 2: text after the closing quote"},
		{"unclosed quote", "a\r\"x\r\r", "line 2: a quoted cell is not closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r.sink.Reset()
			resp := post(t, r.url+"?model_name=m", "text/csv", tt.body, nil)
			if resp.status != http.StatusBadRequest || !strings.Contains(resp.body, tt.message) {
				t.Errorf("status %d %s, want 400 with %q", resp.status, resp.body, tt.message)
			}
			if n := r.sink.LogRecordCount(); n != 0 {
				t.Errorf("%d records reached the pipeline", n)
			}
		})
	}
}

// TestValueBudget: a request with more values than max_values_per_request
// is refused with 413 on every route, whatever its shape, before its rows
// are built, and counted in otelcol_modeldata_requests_refused.
func TestValueBudget(t *testing.T) {
	tel, set := telemetrySettings(t)
	r := startReceiverWith(t, receiverOptions{set: set, edit: func(cfg *Config) {
		cfg.MaxValuesPerRequest = 12
		cfg.AzureMLV2.GetOrInsertDefault().ModelName = "m"
	}})
	tiny := strings.TrimSuffix(strings.Repeat("[0,0,0],", 1000), ",")
	tests := []struct {
		name, url, contentType, body, message string
		status                                int
	}{
		{"many tiny rows", r.url, "application/json", `{"model_name":"m","data":[` + tiny + `]}`, "4003 values, over max_values_per_request (12)", 413},
		{"at the budget", r.url, "application/json", `{"model_name":"m","data":[[0,0,0],[0,0,0]]}`, `"accepted":2`, 200},
		{"keyed rows that each name other keys", r.url, "application/json", `{"model_name":"m","data":[{"a":1},{"b":1},{"c":1},{"d":1}]}`,
			"4 rows × 4 distinct keys is 16 values", 413},
		{"CSV", r.url + "?model_name=m", "text/csv", "a,b\n1,2\n1,2\n1,2\n1,2\n1,2\n1,2\n1,2\n", "over max_values_per_request (12)", 413},
		{"batch of collect requests", r.url + "/batch", "application/x-ndjson", strings.Repeat(`{"model_name":"m","data":[[0,0,0]]}`+"\n", 3), "over max_values_per_request (12)", 413},
		{"batch within the budget", r.url + "/batch", "application/x-ndjson", `{"model_name":"m","data":[[0,0,0]]}`, `"accepted":1`, 200},
		{"v2 records", r.v2url, "application/json", `[` + strings.TrimSuffix(strings.Repeat(`{"a":0,"b":0},`, 10), ",") + `]`, "over max_values_per_request (12)", 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r.sink.Reset()
			headers := map[string]string{"ce-type": "azureml.inference.model_inputs"}
			resp := post(t, tt.url, tt.contentType, tt.body, headers)
			if resp.status != tt.status || !strings.Contains(resp.body, tt.message) {
				t.Errorf("status %d %s, want %d with %q", resp.status, resp.body, tt.status, tt.message)
			}
			if tt.status != 200 && r.sink.LogRecordCount() != 0 {
				t.Errorf("%d records reached the pipeline", r.sink.LogRecordCount())
			}
		})
	}
	assertRefused(t, tel, map[string]int64{limitValues: 5})
}

// TestContentLengthRefused: a Content-Length over max_request_body_size is
// answered 413 from the header, without waiting for the body; a body
// without a length is cut at the limit. Both are counted as refusals.
func TestContentLengthRefused(t *testing.T) {
	tel, set := telemetrySettings(t)
	r := startReceiverWith(t, receiverOptions{set: set, edit: func(cfg *Config) { cfg.MaxRequestBodySize = 1 << 20 }})
	conn, err := net.Dial("tcp", strings.TrimSuffix(strings.TrimPrefix(r.url, "http://"), collectPath))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	// 10 GB announced, none of it sent: only an answer from the header can arrive.
	_, err = io.WriteString(conn, "POST /v1/collect HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer before the body: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "10000000000 bytes, over max_request_body_size (1048576 bytes)") {
		t.Errorf("status %d %s", resp.StatusCode, b)
	}

	// Chunked (no length): read up to the limit, then refused.
	big := io.MultiReader(strings.NewReader(`{"model_name":"m","data":[["`), strings.NewReader(strings.Repeat("x", 2<<20)), strings.NewReader(`"]]}`))
	req, _ := http.NewRequest(http.MethodPost, r.url, big)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "max_request_body_size") {
		t.Errorf("chunked: status %d %s", res.StatusCode, b)
	}
	if r.sink.LogRecordCount() != 0 {
		t.Errorf("%d records reached the pipeline", r.sink.LogRecordCount())
	}
	assertRefused(t, tel, map[string]int64{limitBodySize: 2})
}
