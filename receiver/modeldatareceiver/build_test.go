package modeldatareceiver

import (
	"bytes"
	"net/http"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"
)

// TestSharedRecordsMatchPerRowRecords checks that rows built as copies of
// one shared record (every row has the request's ids) are byte for byte the
// records the per-row path writes when each row names the same ids.
func TestSharedRecordsMatchPerRowRecords(t *testing.T) {
	r := startReceiver(t, nil, nil, nil)
	const fields = `"model_name":"m","model_version":"3","designation":"predictions","correlation_id":"c-1",
		"request_id":"r-1","scoring_timestamp":"2021-01-02T03:04:05.123456Z","webservice":"svc",
		"feature_names":["x","y","z"],"data":[[1,"a",null],[2.5,"b,c",true],[-3,"",{"k":[1,2]}]]`
	var got [][]byte
	for _, body := range []string{
		`{` + fields + `}`, // shared record, copied per row
		`{` + fields + `,"correlation_ids":["c-1","c-1","c-1"]}`, // per-row ids, the same values
	} {
		r.sink.Reset()
		if resp := post(t, r.url, "application/json", body, nil); resp.status != http.StatusOK {
			t.Fatalf("status %d: %s", resp.status, resp.body)
		}
		if n := len(r.sink.AllLogs()); n != 1 {
			t.Fatalf("%d batches", n)
		}
		b, err := (&plog.ProtoMarshaler{}).MarshalLogs(r.sink.AllLogs()[0])
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, b)
	}
	if len(records(r.sink)) != 3 {
		t.Fatalf("%d records", len(records(r.sink)))
	}
	if !bytes.Equal(got[0], got[1]) {
		t.Errorf("shared-record logs differ from per-row logs:\n%x\n%x", got[0], got[1])
	}
}
