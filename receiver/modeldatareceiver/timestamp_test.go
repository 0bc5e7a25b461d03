package modeldatareceiver

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// scoringTimestampCases are timestamps at the edges of what a row can carry
// (contract.CheckTimestamp): written is the $aml_dc_scoring_timestamp cell
// an accepted one gets, refused the part of the 400's message that says why.
var scoringTimestampCases = []struct {
	sent, written, refused string
}{
	{sent: "2020-08-13T15:54:16.691697", written: "2020-08-13T15:54:16.691697"},
	{sent: "2262-04-11T23:47:16.854775", written: "2262-04-11T23:47:16.854775"},
	{sent: "1970-01-01T00:00:00.000001Z", written: "1970-01-01T00:00:00.000001"},
	{sent: "2262-04-12T01:00:00+02:00", written: "2262-04-11T23:00:00.000000"},
	{sent: "2262-04-11T23:47:16.854775808", refused: "out of range: a scoring timestamp is from 1970-01-01T00:00:00.000000001Z to 2262-04-11T23:47:16.854775807Z"},
	{sent: "2262-04-12T00:00:00", refused: "out of range"},
	{sent: "2554-07-21T23:34:33", refused: "out of range"},
	{sent: "9999-12-31T23:59:59.999999", refused: "out of range"},
	{sent: "1969-12-31T23:59:59.5", refused: "out of range"},
	{sent: "1900-01-01T00:00:00", refused: "out of range"},
	{sent: "1677-09-21T00:12:43.145224", refused: "out of range"},
	{sent: "0001-01-01T00:00:00", refused: "out of range"},
	{sent: "0000-01-01T00:00:00Z", refused: "out of range"},
	{sent: "1970-01-01T00:00:00", refused: "1970-01-01T00:00:00Z exactly"},
	{sent: "1970-01-01T01:00:00+01:00", refused: "1970-01-01T00:00:00Z exactly"},
}

// TestScoringTimestampRange sends each timestamp through every place a
// collect request can carry one: an accepted one is answered and written as
// sent (UTC, microseconds), in the date folder of that time; a refused one
// is a 400 naming the field and the range, and nothing reaches the pipeline.
func TestScoringTimestampRange(t *testing.T) {
	r := startReceiver(t, nil, nil, nil)
	const fields = `"model_name":"m","model_version":"1"`
	places := []struct {
		name string
		// request builds the request for a timestamp.
		request func(ts string) (query, contentType, body string, headers map[string]string)
		field   string // named in the refusal
		echoed  bool   // the answer's scoring_timestamp is the row's
	}{
		{"body field", func(ts string) (string, string, string, map[string]string) {
			return "", "application/json", `{` + fields + `,"scoring_timestamp":` + jsonString(ts) + `,"data":[[1]]}`, nil
		}, "scoring_timestamp", true},
		{"query parameter", func(ts string) (string, string, string, map[string]string) {
			return "?scoring_timestamp=" + url.QueryEscape(ts), "application/json", `{` + fields + `,"data":[[1]]}`, nil
		}, "scoring_timestamp", true},
		{"header", func(ts string) (string, string, string, map[string]string) {
			return "", "application/json", `{` + fields + `,"data":[[1]]}`, map[string]string{"X-Modeldata-Scoring-Timestamp": ts}
		}, "scoring_timestamp", true},
		{"CSV with the field as a query parameter", func(ts string) (string, string, string, map[string]string) {
			return "?model_name=m&model_version=1&scoring_timestamp=" + url.QueryEscape(ts), "text/csv", "a\n1\n", nil
		}, "scoring_timestamp", true},
		{"per-row list", func(ts string) (string, string, string, map[string]string) {
			return "", "application/json", `{` + fields + `,"scoring_timestamps":[` + jsonString(ts) + `],"data":[[1]]}`, nil
		}, "row 0: scoring_timestamps[0]", false},
		{"row column in JSON", func(ts string) (string, string, string, map[string]string) {
			return "", "application/json", `{` + fields + `,"data":[{"a":1,"$aml_dc_scoring_timestamp":` + jsonString(ts) + `}]}`, nil
		}, "row 0: $aml_dc_scoring_timestamp", false},
		{"row column in CSV", func(ts string) (string, string, string, map[string]string) {
			return "?model_name=m&model_version=1", "text/csv", "a,$aml_dc_scoring_timestamp\n1," + ts + "\n", nil
		}, "row 0: $aml_dc_scoring_timestamp", false},
	}
	for _, p := range places {
		for _, tc := range scoringTimestampCases {
			t.Run(p.name+"/"+tc.sent, func(t *testing.T) {
				r.sink.Reset()
				query, ct, body, headers := p.request(tc.sent)
				resp := post(t, r.url+query, ct, body, headers)
				if tc.refused != "" {
					var answer struct{ Error string }
					_ = json.Unmarshal([]byte(resp.body), &answer)
					want := p.field + ": timestamp " + jsonString(tc.sent) + " "
					if resp.status != http.StatusBadRequest || !strings.Contains(answer.Error, want) || !strings.Contains(answer.Error, tc.refused) {
						t.Errorf("%d %q, want 400 containing %q and %q", resp.status, resp.body, want, tc.refused)
					}
					if n := r.sink.LogRecordCount(); n != 0 {
						t.Errorf("%d records reached the pipeline", n)
					}
					return
				}
				if resp.status != http.StatusOK {
					t.Fatalf("status %d: %s", resp.status, resp.body)
				}
				recs := records(r.sink)
				if len(recs) != 1 {
					t.Fatalf("%d records, want 1", len(recs))
				}
				row, _ := contract.ReadRow(recs[0])
				if got := contract.FormatTimestamp(row.Timestamp); got != tc.written {
					t.Errorf("written %q, want %q", got, tc.written)
				}
				if day, want := row.Timestamp.Format("2006/01/02"), tc.written[:4]+"/"+tc.written[5:7]+"/"+tc.written[8:10]; day != want {
					t.Errorf("date folder %q, want %q", day, want)
				}
				if echoed := resp.json(t)["scoring_timestamp"]; p.echoed && echoed != tc.written {
					t.Errorf("answered %q, written %q", echoed, tc.written)
				}
			})
		}
	}
}

// TestScoringTimestampRangeBatch: in a batch, the line with a timestamp out
// of range is refused with its reason and the others are written.
func TestScoringTimestampRangeBatch(t *testing.T) {
	r := startReceiver(t, nil, nil, nil)
	body := `{"model_name":"m","model_version":"1","scoring_timestamp":"2021-01-01T00:00:00","data":[[1]]}` + "\n" +
		`{"model_name":"m","model_version":"1","scoring_timestamp":"9999-12-31T23:59:59.999999","data":[[2]]}` + "\n" +
		`{"model_name":"m","model_version":"1","scoring_timestamps":["0001-01-01T00:00:00"],"data":[[3]]}` + "\n"
	resp := post(t, strings.TrimSuffix(r.url, "/")+"/batch", ndjsonContentType, body, nil)
	var got batchResponse
	if err := json.Unmarshal([]byte(resp.body), &got); err != nil || resp.status != http.StatusOK {
		t.Fatalf("%d %q: %v", resp.status, resp.body, err)
	}
	if got.Groups != 3 || got.Accepted != 1 || len(got.Rejected) != 2 ||
		got.Rejected[0].Group != 1 || got.Rejected[0].Status != 400 || !strings.Contains(got.Rejected[0].Error, "scoring_timestamp: timestamp \"9999-12-31T23:59:59.999999\" is out of range") ||
		got.Rejected[1].Group != 2 || !strings.Contains(got.Rejected[1].Error, "row 0: scoring_timestamps[0]: timestamp \"0001-01-01T00:00:00\" is out of range") {
		t.Fatalf("answer %+v", got)
	}
	recs := records(r.sink)
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	if row, _ := contract.ReadRow(recs[0]); contract.FormatTimestamp(row.Timestamp) != "2021-01-01T00:00:00.000000" || bodyOf(recs[0])[0] != "0=Int:1" {
		t.Errorf("written %v %q", row.Timestamp, bodyOf(recs[0]))
	}
}

// TestV2CETimeRange: the v2 route's ce-time (epoch seconds) has the same
// range as every other scoring timestamp.
func TestV2CETimeRange(t *testing.T) {
	r := startReceiver(t, func(cfg *Config) { cfg.AzureMLV2.GetOrInsertDefault() }, nil, nil)
	tests := []struct {
		ceTime, written, refused string
	}{
		{ceTime: "1597333456.5", written: "2020-08-13T15:44:16.500000"},
		{ceTime: "9223372036.5", written: "2262-04-11T23:47:16.500000"},
		{ceTime: "0.000001", written: "1970-01-01T00:00:00.000001"},
		{ceTime: "9223372037", refused: "out of range: a scoring timestamp is from 1970-01-01T00:00:00.000000001Z"},
		{ceTime: "-1", refused: "out of range"},
		{ceTime: "-9223372036.5", refused: "out of range"},
		{ceTime: "99999999999", refused: "out of range"},
		{ceTime: "1e30", refused: "out of range"},
		{ceTime: "1e400", refused: "out of range"},
		{ceTime: "-1e30", refused: "out of range"},
		{ceTime: "Infinity", refused: "out of range"},
		{ceTime: "0", refused: "1970-01-01T00:00:00Z exactly"},
		{ceTime: "NaN", refused: "expected epoch seconds"},
		{ceTime: "abc", refused: "expected epoch seconds"},
	}
	for _, tt := range tests {
		t.Run(tt.ceTime, func(t *testing.T) {
			r.sink.Reset()
			resp := post(t, r.v2url, "application/json", `[{"a":1}]`,
				map[string]string{"ce-type": "azureml.inference.model_inputs", "ce-model-name": "m", "ce-time": tt.ceTime})
			if tt.refused != "" {
				if resp.status != http.StatusBadRequest || !strings.Contains(resp.body, "ce-time") || !strings.Contains(resp.body, tt.refused) {
					t.Errorf("%d %q, want 400 naming ce-time and containing %q", resp.status, resp.body, tt.refused)
				}
				if n := r.sink.LogRecordCount(); n != 0 {
					t.Errorf("%d records reached the pipeline", n)
				}
				return
			}
			recs := records(r.sink)
			if resp.status != http.StatusOK || len(recs) != 1 {
				t.Fatalf("%d %q, %d records", resp.status, resp.body, len(recs))
			}
			if row, _ := contract.ReadRow(recs[0]); contract.FormatTimestamp(row.Timestamp) != tt.written {
				t.Errorf("written %q, want %q", contract.FormatTimestamp(row.Timestamp), tt.written)
			}
		})
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
