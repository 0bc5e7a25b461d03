package modeldatablobexporter

import (
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// A record without declared names has its body's keys as columns, in the
// body's order: the same file as a record that declared that order, another
// for another order; declared names come first, the body's other keys after
// them, sorted.
func TestEncodeUndeclaredColumnsFollowTheBody(t *testing.T) {
	ld := plog.NewLogs()
	recs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	add := func(declared []string, keys ...string) {
		lr := recs.AppendEmpty()
		contract.WriteRow(lr, contract.Row{ModelName: "m", ModelVersion: "1", Designation: "inputs", RequestID: "r",
			CorrelationID: "c", FeatureNames: declared, Timestamp: day})
		body := contract.Features(lr)
		for _, k := range keys {
			body.PutStr(k, k+"-value")
		}
	}
	add([]string{"c", "a"}, "c", "a") // declared order
	add(nil, "c", "a")                // the same order, nothing declared
	add(nil, "a", "c")                // another order
	add(nil, "a", "c")
	add([]string{"c"}, "a", "c") // declared first, then the rest sorted
	out := newEncoder(createDefaultConfig()).encode(ld)
	var got []string
	for _, b := range out.batches {
		header, _, _ := strings.Cut(string(b.header), ",$aml")
		var cells []string
		for line := range strings.SplitSeq(strings.TrimSuffix(b.body.String(), "\r\n"), "\r\n") {
			first, _, _ := strings.Cut(line, ",c,")
			cells = append(cells, first)
		}
		got = append(got, header+": "+strings.Join(cells, " | "))
	}
	want := []string{
		"c,a: c-value,a-value | c-value,a-value | c-value,a-value",
		"a,c: a-value,c-value | a-value,c-value",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("batches:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
