package modeldatareceiver

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
	"github.com/otelcol-modeldata/otelcol-modeldata/receiver/modeldatareceiver/internal/metadata"
)

// TestCollectAcceptedShapes posts every accepted shape of a collect request
// and checks the column order, the body of each row and its designation.
func TestCollectAcceptedShapes(t *testing.T) {
	r := startReceiver(t, nil, nil, nil)
	tests := []struct {
		name        string
		contentType string
		query       string
		headers     map[string]string
		body        string
		designation string
		version     string // when set, every row's model version
		columns     []string
		rows        [][]string
	}{
		{
			name:    "list of rows with feature_names",
			body:    `{"model_name":"m","feature_names":["age","income","city"],"data":[[31,5000.5,"Redmond, WA"],[45,1200,"Zürich"]]}`,
			columns: []string{"age", "income", "city"},
			rows:    [][]string{{"age=Int:31", "income=Double:5000.5", "city=Str:Redmond, WA"}, {"age=Int:45", "income=Int:1200", "city=Str:Zürich"}},
		},
		{
			name:    "one row",
			body:    `{"model_name":"m","feature_names":["a","b"],"data":[1,"x"]}`,
			columns: []string{"a", "b"},
			rows:    [][]string{{"a=Int:1", "b=Str:x"}},
		},
		{
			name:    "list of objects: feature_names first, then keys in order of appearance",
			body:    `{"model_name":"m","feature_names":["b"],"data":[{"z":1,"b":2},{"a":3,"b":4}]}`,
			columns: []string{"b", "z", "a"},
			rows:    [][]string{{"b=Int:2", "z=Int:1", "a=Empty:"}, {"b=Int:4", "z=Empty:", "a=Int:3"}},
		},
		{
			name:    "one object",
			body:    `{"model_name":"m","data":{"y":true,"x":false}}`,
			columns: []string{"y", "x"},
			rows:    [][]string{{"y=Bool:true", "x=Bool:false"}},
		},
		{
			name:    "rows without feature_names are named by position",
			body:    `{"model_name":"m","data":[[1,2],[3,4]]}`,
			columns: []string{"0", "1"},
			rows:    [][]string{{"0=Int:1", "1=Int:2"}, {"0=Int:3", "1=Int:4"}},
		},
		{
			name:    "no rows",
			body:    `{"model_name":"m","feature_names":["a"],"data":[]}`,
			columns: []string{"a"},
		},
		{
			name: "value types",
			body: `{"model_name":"m","feature_names":["i","big","f1","e","neg","s","esc","n","nested","obj"],"data":[[` +
				`9223372036854775807, 9223372036854775808, 1.0, 1e3, -0, "", "a\"b\\c\u00e9\ud83d\ude00\/", null, [1,[2]], {"k":"v","a":1}]]}`,
			columns: []string{"i", "big", "f1", "e", "neg", "s", "esc", "n", "nested", "obj"},
			rows: [][]string{{"i=Int:9223372036854775807", "big=Str:9223372036854775808", "f1=Double:1", "e=Double:1000", "neg=Int:0",
				"s=Str:", `esc=Str:a"b\cé😀/`, "n=Empty:", "nested=Slice:[1,[2]]", `obj=Map:{"a":1,"k":"v"}`}},
		},
		{
			// An integer past int64 keeps its digits, as a string; with a
			// fraction or an exponent a number is a double. A lone
			// surrogate escape is U+FFFD, as encoding/json and Python's json read it.
			name: "integers past int64, lone surrogates",
			body: `{"model_name":"m","feature_names":["min","under","big","huge","frac","exp","in_list","lone","pair_broken"],"data":[[` +
				`-9223372036854775808, -9223372036854775809, 18446744073709551616, 123456789012345678901234567890, 12345678901234567890.0, 1e19,` +
				` [99999999999999999999], "\ud800", "\ud800\u0041"]]}`,
			columns: []string{"min", "under", "big", "huge", "frac", "exp", "in_list", "lone", "pair_broken"},
			rows: [][]string{{"min=Int:-9223372036854775808", "under=Str:-9223372036854775809", "big=Str:18446744073709551616",
				"huge=Str:123456789012345678901234567890", "frac=Double:12345678901234567000", "exp=Double:10000000000000000000",
				`in_list=Slice:["99999999999999999999"]`, "lone=Str:\ufffd", "pair_broken=Str:\ufffdA"}},
		},
		{
			name:    "model_version as an integer past int64",
			body:    `{"model_name":"m","model_version":123456789012345678901234567890,"feature_names":["a"],"data":[[1]]}`,
			columns: []string{"a"}, version: "123456789012345678901234567890",
			rows: [][]string{{"a=Int:1"}},
		},
		{
			name:    "model_version as a number, designation default means general",
			body:    `{"model_name":"m","model_version":7,"designation":"default","feature_names":["a"],"data":[[1]]}`,
			columns: []string{"a"}, designation: "general",
			rows: [][]string{{"a=Int:1"}},
		},
		{
			name:        "charset utf-8 and fields from query parameters",
			contentType: "application/json; charset=UTF-8",
			query:       "?model_name=m&designation=predictions",
			body:        `{"feature_names":["p"],"data":[[0.5]]}`,
			columns:     []string{"p"}, designation: "predictions",
			rows: [][]string{{"p=Double:0.5"}},
		},
		{
			name:        "CSV with header row; cells stay strings",
			contentType: "text/csv",
			query:       "?model_name=m&model_version=1",
			body:        "\ufeffage,city,note\r\n31,\"Redmond, WA\",\"say \"\"hi\"\"\"\r\n45,Zürich,\r\n",
			columns:     []string{"age", "city", "note"},
			rows:        [][]string{{"age=Str:31", "city=Str:Redmond, WA", `note=Str:say "hi"`}, {"age=Str:45", "city=Str:Zürich", "note=Str:"}},
		},
		{
			name:        "CSV with fields from X-Modeldata headers",
			contentType: "application/csv",
			headers:     map[string]string{"X-Modeldata-Model-Name": "m", "X-Modeldata-Designation": "labels"},
			body:        "label\n1\n0",
			columns:     []string{"label"}, designation: "labels",
			rows: [][]string{{"label=Str:1"}, {"label=Str:0"}},
		},
		{
			name: "correlation columns in the data are ids, not features",
			body: `{"model_name":"m","data":[{"score":0.9,"$aml_dc_correlation_id":"c1","$aml_dc_scoring_timestamp":"2020-08-13T15:54:16.691697",` +
				`"$aml_request_id":"r1","$aml_dc_boundary":"1440","$aml_workspace":"s/r/w","$aml_service_name":"svc","$aml_model_name":"m","$aml_model_version":"1"}]}`,
			columns: []string{"score"},
			rows:    [][]string{{"score=Double:0.9"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r.sink.Reset()
			ct := tt.contentType
			if ct == "" {
				ct = "application/json"
			}
			resp := post(t, r.url+tt.query, ct, tt.body, tt.headers)
			if resp.status != http.StatusOK {
				t.Fatalf("status %d: %s", resp.status, resp.body)
			}
			if got := resp.json(t)["accepted"]; got != float64(len(tt.rows)) {
				t.Errorf("accepted %v, want %d", got, len(tt.rows))
			}
			recs := records(r.sink)
			if len(recs) != len(tt.rows) {
				t.Fatalf("%d records, want %d", len(recs), len(tt.rows))
			}
			want := tt.designation
			if want == "" {
				want = contract.DesignationInputs
			}
			for i, lr := range recs {
				if got := contract.Columns(lr); !reflect.DeepEqual(got, tt.columns) {
					t.Errorf("row %d columns %q, want %q", i, got, tt.columns)
				}
				if _, listed := lr.Attributes().Get(contract.AttrFeatureNames); listed {
					t.Errorf("row %d lists its feature names: the body's order is the column order", i)
				}
				if got := bodyOf(lr); !reflect.DeepEqual(got, tt.rows[i]) {
					t.Errorf("row %d body\n got %q\nwant %q", i, got, tt.rows[i])
				}
				row, _ := contract.ReadRow(lr)
				if row.Designation != want {
					t.Errorf("row %d designation %q, want %q", i, row.Designation, want)
				}
				if tt.version != "" && row.ModelVersion != tt.version {
					t.Errorf("row %d model version %q, want %q", i, row.ModelVersion, tt.version)
				}
			}
		})
	}
}

// TestCollectRejected posts every refused shape: each gets its status and a
// message naming the problem, and no row reaches the pipeline.
func TestCollectRejected(t *testing.T) {
	tel, set := telemetrySettings(t)
	r := startReceiverWith(t, receiverOptions{set: set, edit: func(cfg *Config) {
		cfg.MaxRowsPerRequest = 3
		cfg.MaxColumns = 4
		cfg.MaxRequestBodySize = 4096
	}})
	ok := `"model_name":"m","feature_names":["a","b"]`
	tests := []struct {
		name        string
		method      string
		contentType string
		query       string
		body        string
		status      int
		message     string
	}{
		{name: "GET", method: http.MethodGet, status: 405, message: "POST"},
		{name: "no content type", contentType: "-", body: `{}`, status: 415, message: "application/json"},
		{name: "form content type (curl -d default)", contentType: "application/x-www-form-urlencoded", body: `{}`, status: 415, message: "application/json or text/csv"},
		{name: "latin-1 charset", contentType: "text/csv; charset=latin1", body: "a\n1", status: 415, message: "utf-8"},
		{name: "invalid JSON", body: `{"model_name":"m",`, status: 400, message: "invalid JSON"},
		{name: "trailing garbage", body: `{"model_name":"m","data":[]} x`, status: 400, message: "after the JSON value"},
		{name: "body is a list", body: `[[1,2]]`, status: 400, message: "JSON object"},
		{name: "unknown field", body: `{` + ok + `,"rows":[[1,2]]}`, status: 400, message: `unknown field "rows"`},
		{name: "data missing", body: `{` + ok + `}`, status: 400, message: "data is missing"},
		{name: "data a number", body: `{` + ok + `,"data":5}`, status: 400, message: "data must be"},
		{name: "model_name missing", body: `{"data":[[1]]}`, status: 400, message: "model_name is missing"},
		{name: "model_name a number", body: `{"model_name":5,"data":[[1]]}`, status: 400, message: "model_name must be a string"},
		{name: "model_name with a slash", body: `{"model_name":"a/b","data":[[1]]}`, status: 400, message: "model_name"},
		{name: "designation ..", body: `{"model_name":"m","designation":"..","data":[[1]]}`, status: 400, message: "designation"},
		{name: "model_version ends with a dot", body: `{"model_name":"m","model_version":"1.","data":[[1]]}`, status: 400, message: "model_version"},
		{name: "webservice with a control character", body: `{"model_name":"m","webservice":"a\u0007","data":[[1]]}`, status: 400, message: "webservice"},
		{name: "row wider than feature_names", body: `{` + ok + `,"data":[[1,2],[1,2,3]]}`, status: 400, message: "row 1 has 3 values but feature_names has 2"},
		{name: "one row narrower than feature_names", body: `{` + ok + `,"data":[1]}`, status: 400, message: "row 0 has 1 values but feature_names has 2"},
		{name: "rows of different widths", body: `{"model_name":"m","data":[[1],[1,2]]}`, status: 400, message: "row 1 has 2 values but row 0 has 1"},
		{name: "rows and objects mixed", body: `{` + ok + `,"data":[[1,2],{"a":1}]}`, status: 400, message: "mixes"},
		{name: "feature name twice", body: `{"model_name":"m","feature_names":["a","a"],"data":[[1,2]]}`, status: 400, message: `"a" appears twice`},
		{name: "empty feature name", body: `{"model_name":"m","data":[{"":1}]}`, status: 400, message: "empty feature name"},
		{name: "feature_names not strings", body: `{"model_name":"m","feature_names":[1],"data":[[1]]}`, status: 400, message: "feature_names[0] must be a string"},
		{name: "correlation_ids of the wrong length", body: `{` + ok + `,"data":[[1,2]],"correlation_ids":["a","b"]}`, status: 400, message: "correlation_ids has 2 ids for 1 rows"},
		{name: "bad scoring_timestamp", body: `{` + ok + `,"data":[[1,2]],"scoring_timestamp":"yesterday"}`, status: 400, message: "scoring_timestamp"},
		{name: "bad row timestamp", body: `{"model_name":"m","data":[{"a":1,"$aml_dc_scoring_timestamp":"noon"}]}`, status: 400, message: "row 0: $aml_dc_scoring_timestamp: timestamp \"noon\""},
		{name: "row correlation id not a string", body: `{"model_name":"m","data":[{"a":1,"$aml_dc_correlation_id":5}]}`, status: 400, message: "must be a string"},
		{name: "request_id too long", body: `{` + ok + `,"data":[[1,2]],"request_id":"` + strings.Repeat("x", 600) + `"}`, status: 400, message: "request_id is 600 bytes"},
		{name: "invalid UTF-8", body: "{\"model_name\":\"m\xff\",\"data\":[[1]]}", status: 400, message: "not valid UTF-8 (byte 16)"},
		{name: "control character in a string", body: "{\"model_name\":\"m\n\",\"data\":[[1]]}", status: 400, message: "control character"},
		{name: "number out of range", body: `{"model_name":"m","data":[[1e400]]}`, status: 400, message: "out of range"},
		{name: "nesting too deep", body: `{"model_name":"m","data":[[` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `]]}`, status: 400, message: "nesting deeper"},
		{name: "unknown query parameter", query: "?model=m", body: `{` + ok + `,"data":[]}`, status: 400, message: `unknown query parameter "model"`},
		{name: "too many rows", body: `{"model_name":"m","data":[[1],[2],[3],[4]]}`, status: 413, message: "4 rows is over max_rows_per_request (3)"},
		{name: "too many columns", body: `{"model_name":"m","data":[[1,2,3,4,5]]}`, status: 413, message: "max_columns (4)"},
		{name: "too many keyed columns", body: `{"model_name":"m","data":[{"a":1,"b":2},{"c":3,"d":4,"e":5}]}`, status: 413, message: "max_columns (4)"},
		{name: "body too large", body: `{"model_name":"m","data":[["` + strings.Repeat("x", 5000) + `"]]}`, status: 413, message: "max_request_body_size"},
		{name: "CSV row of the wrong width", contentType: "text/csv", query: "?model_name=m", body: "a,b\n1,2\n1\n", status: 400, message: "CSV line 3 has 1 values but the header names 2"},
		{name: "CSV without header", contentType: "text/csv", query: "?model_name=m", body: "", status: 400, message: "empty"},
		{name: "CSV bare quote", contentType: "text/csv", query: "?model_name=m", body: "a\nx\"y\n", status: 400, message: "CSV"},
		{name: "CSV too many rows", contentType: "text/csv", query: "?model_name=m", body: "a\n1\n2\n3\n4\n", status: 413, message: "max_rows_per_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r.sink.Reset()
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			req, err := http.NewRequest(method, r.url+tt.query, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			switch tt.contentType {
			case "":
				req.Header.Set("Content-Type", "application/json")
			case "-":
			default:
				req.Header.Set("Content-Type", tt.contentType)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body struct{ Error string }
			decodeErr := jsonDecode(resp, &body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d (%q), want %d", resp.StatusCode, body.Error, tt.status)
			}
			if decodeErr != nil || !strings.Contains(body.Error, tt.message) {
				t.Errorf("message %q (%v), want it to contain %q", body.Error, decodeErr, tt.message)
			}
			if n := r.sink.LogRecordCount(); n != 0 {
				t.Errorf("%d records reached the pipeline", n)
			}
		})
	}
	// The 413s are counted by the limit that refused them; the 4xx of
	// malformed requests are not.
	assertRefused(t, tel, map[string]int64{limitRows: 2, limitColumns: 2, limitBodySize: 1})
}

func jsonDecode(resp *http.Response, v any) error {
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// TestCollectRecordsExact checks every attribute, the resource, the body
// and the timestamps of the records of one request, and the response.
func TestCollectRecordsExact(t *testing.T) {
	r := startReceiver(t, nil, nil, nil)
	resp := post(t, r.url, "application/json", `{
		"model_name": "best_model", "model_version": "10", "designation": "inputs",
		"subscription_id": "1A2B", "resource_group": "MyRG", "workspace": "MyWS", "webservice": "aks-w-collv9",
		"feature_names": ["age", "income"], "data": [[31, 5000.5], [45, 1200]],
		"user_correlation_id": "user42", "request_id": "ae249167-ab81-46d2-9553-e42c1f93fa77"}`, nil)
	if resp.status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	got := resp.json(t)
	corr, _ := got["correlation_id"].(string)
	if !strings.HasPrefix(corr, "user42-") || len(corr) != len("user42-")+36 {
		t.Errorf("correlation_id %q, want user42-<uuid>", corr)
	}
	want := map[string]any{"accepted": float64(2), "correlation_id": corr, "scoring_timestamp": "2020-08-13T15:54:16.691697",
		"request_id": "ae249167-ab81-46d2-9553-e42c1f93fa77"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("response %v, want %v", got, want)
	}

	if res := resources(r.sink); !reflect.DeepEqual(res, []map[string]any{{
		contract.AttrSubscriptionID: "1A2B", contract.AttrResourceGroup: "MyRG", contract.AttrWorkspace: "MyWS", contract.AttrWebservice: "aks-w-collv9",
	}}) {
		t.Errorf("resource attributes %v", res)
	}
	logs := r.sink.AllLogs()[0]
	if name := logs.ResourceLogs().At(0).ScopeLogs().At(0).Scope().Name(); name != metadata.ScopeName {
		t.Errorf("scope %q", name)
	}
	recs := records(r.sink)
	bodies := []map[string]any{{"age": int64(31), "income": 5000.5}, {"age": int64(45), "income": int64(1200)}}
	for i, lr := range recs {
		attrs := map[string]any{
			contract.AttrModelName: "best_model", contract.AttrModelVersion: "10", contract.AttrDesignation: "inputs",
			contract.AttrCorrelationID: corr, contract.AttrRequestID: "ae249167-ab81-46d2-9553-e42c1f93fa77",
		}
		if got := lr.Attributes().AsRaw(); !reflect.DeepEqual(got, attrs) {
			t.Errorf("row %d attributes\n got %v\nwant %v", i, got, attrs)
		}
		if got := lr.Body().Map().AsRaw(); !reflect.DeepEqual(got, bodies[i]) {
			t.Errorf("row %d body %v, want %v", i, got, bodies[i])
		}
		if lr.EventName() != contract.EventName {
			t.Errorf("row %d event name %q", i, lr.EventName())
		}
		if ts := lr.Timestamp().AsTime(); !ts.Equal(fixedNow) {
			t.Errorf("row %d timestamp %v", i, ts)
		}
		if obs := lr.ObservedTimestamp().AsTime(); !obs.Equal(fixedNow) {
			t.Errorf("row %d observed timestamp %v", i, obs)
		}
	}
	if len(recs) != 2 {
		t.Fatalf("%d records", len(recs))
	}
}

// TestCollectIDs checks how correlation id, scoring timestamp and request
// id are assigned and kept, as the reference collect()/add_correlations()
// round trip needs.
func TestCollectIDs(t *testing.T) {
	r := startReceiver(t, nil, nil, nil)
	row := func(t *testing.T) contract.Row {
		t.Helper()
		recs := records(r.sink)
		if len(recs) == 0 {
			t.Fatal("no records")
		}
		got, _ := contract.ReadRow(recs[0])
		return got
	}
	t.Run("a new uuid correlation id and request id", func(t *testing.T) {
		r.sink.Reset()
		got := post(t, r.url, "application/json", `{"model_name":"m","data":[[1]]}`, nil).json(t)
		rw := row(t)
		if len(rw.CorrelationID) != 36 || len(rw.RequestID) != 36 || rw.CorrelationID == rw.RequestID {
			t.Errorf("ids %q %q", rw.CorrelationID, rw.RequestID)
		}
		if got["correlation_id"] != rw.CorrelationID || got["request_id"] != rw.RequestID {
			t.Errorf("response %v does not match the row %+v", got, rw)
		}
	})
	t.Run("the x-request-id header is the request id", func(t *testing.T) {
		r.sink.Reset()
		got := post(t, r.url, "application/json", `{"model_name":"m","data":[[1]]}`, map[string]string{"X-Request-Id": "hdr-1"}).json(t)
		if got["request_id"] != "hdr-1" || row(t).RequestID != "hdr-1" {
			t.Errorf("response %v", got)
		}
	})
	t.Run("a body request_id wins over the header", func(t *testing.T) {
		r.sink.Reset()
		post(t, r.url, "application/json", `{"model_name":"m","request_id":"body-1","data":[[1]]}`, map[string]string{"X-Request-Id": "hdr-1"})
		if got := row(t).RequestID; got != "body-1" {
			t.Errorf("request id %q", got)
		}
	})
	t.Run("the predictions request keeps the ids of its inputs", func(t *testing.T) {
		r.sink.Reset()
		in := post(t, r.url, "application/json", `{"model_name":"m","data":[[1]]}`, nil).json(t)
		r.sink.Reset()
		out := post(t, r.url, "application/json", fmt.Sprintf(`{"model_name":"m","designation":"predictions","data":[[0.9]],
			"correlation_id":%q,"scoring_timestamp":"2019-12-31T23:59:59.999999","request_id":%q}`, in["correlation_id"], in["request_id"]), nil).json(t)
		rw := row(t)
		if rw.CorrelationID != in["correlation_id"] || rw.RequestID != in["request_id"] || contract.FormatTimestamp(rw.Timestamp) != "2019-12-31T23:59:59.999999" {
			t.Errorf("row %+v, inputs %v", rw, in)
		}
		if out["correlation_id"] != in["correlation_id"] || out["scoring_timestamp"] != "2019-12-31T23:59:59.999999" {
			t.Errorf("response %v", out)
		}
	})
	t.Run("per-row correlation ids and timestamps", func(t *testing.T) {
		r.sink.Reset()
		got := post(t, r.url, "application/json", `{"model_name":"m","data":[[1],[2],[3]],"correlation_ids":["c1","","c3"],
			"scoring_timestamps":["2021-01-02T03:04:05Z",null,""]}`, nil).json(t)
		recs := records(r.sink)
		var ids, times []string
		for _, lr := range recs {
			rw, _ := contract.ReadRow(lr)
			ids = append(ids, rw.CorrelationID)
			times = append(times, contract.FormatTimestamp(rw.Timestamp))
		}
		corr := got["correlation_id"].(string)
		if !reflect.DeepEqual(ids, []string{"c1", corr, "c3"}) {
			t.Errorf("correlation ids %q", ids)
		}
		if !reflect.DeepEqual(times, []string{"2021-01-02T03:04:05.000000", "2020-08-13T15:54:16.691697", "2020-08-13T15:54:16.691697"}) {
			t.Errorf("timestamps %q", times)
		}
		if !reflect.DeepEqual(got["correlation_ids"], []any{"c1", corr, "c3"}) {
			t.Errorf("response correlation_ids %v", got["correlation_ids"])
		}
	})
	t.Run("correlation columns carried by the rows", func(t *testing.T) {
		r.sink.Reset()
		post(t, r.url, "text/csv", "score,$aml_dc_correlation_id,$aml_dc_scoring_timestamp,$aml_request_id\n0.9,c9,2020-08-13T15:54:16.691697,r9\n", map[string]string{"X-Modeldata-Model-Name": "m"})
		rw := row(t)
		if rw.CorrelationID != "c9" || rw.RequestID != "r9" || !rw.Timestamp.Equal(fixedNow) || !slices.Equal(contract.Columns(records(r.sink)[0]), []string{"score"}) {
			t.Errorf("row %+v", rw)
		}
	})
}
