package modeldatablobexporter

import (
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// A record without declared names has its body keys sorted as columns, even
// right after a record that declared its keys in another order; records whose
// keys are already sorted (the flattener's output) keep their order.
func TestEncodeUndeclaredColumnsAreSorted(t *testing.T) {
	ld := plog.NewLogs()
	recs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	add := func(declared []string, keys ...string) {
		lr := recs.AppendEmpty()
		contract.WriteRow(lr, contract.Row{ModelName: "m", ModelVersion: "1", Designation: "inputs", RequestID: "r",
			CorrelationID: "c", FeatureNames: declared, Timestamp: day})
		if declared == nil {
			lr.Attributes().Remove(contract.AttrFeatureNames)
		}
		body := contract.Features(lr)
		for _, k := range keys {
			body.PutStr(k, k+"-value")
		}
	}
	add([]string{"c", "a"}, "c", "a") // declared order
	add(nil, "c", "a")                // the same keys, nothing declared: sorted
	add(nil, "a", "c")                // already sorted
	add(nil, "a", "c")
	out := newEncoder(createDefaultConfig()).encode(ld)
	var got []string
	for _, b := range out.batches {
		header, _, _ := strings.Cut(string(b.header), ",$aml")
		got = append(got, header+": "+strings.ReplaceAll(b.body.String(), "\r\n", " | "))
	}
	want := []string{
		"c,a: c-value,a-value,c,",
		"a,c: a-value,c-value,c,",
	}
	if len(got) != 2 || !strings.HasPrefix(got[0], want[0]) || !strings.HasPrefix(got[1], want[1]) ||
		strings.Count(got[1], "a-value,c-value") != 3 {
		t.Fatalf("batches:\n%s", strings.Join(got, "\n"))
	}
}
