package logsubset

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/pdata/plog"
)

// twoResources has resources "a" and "b"; "a" has scopes "s0" (bodies a0-0,
// a0-1) and "s1" (a1-0); "b" has scope "s0" (b0-0, b0-1, b0-2).
func twoResources() plog.Logs {
	ld := plog.NewLogs()
	for _, res := range []struct {
		name   string
		scopes [][]string
	}{
		{"a", [][]string{{"a0-0", "a0-1"}, {"a1-0"}}},
		{"b", [][]string{{"b0-0", "b0-1", "b0-2"}}},
	} {
		rl := ld.ResourceLogs().AppendEmpty()
		rl.SetSchemaUrl("https://schema/" + res.name)
		rl.Resource().Attributes().PutStr("service.name", res.name)
		for j, bodies := range res.scopes {
			sl := rl.ScopeLogs().AppendEmpty()
			sl.Scope().SetName("s" + string(rune('0'+j)))
			sl.SetSchemaUrl("https://scope/" + res.name)
			for _, b := range bodies {
				sl.LogRecords().AppendEmpty().Body().SetStr(b)
			}
		}
	}
	return ld
}

// shape lists every copied record as resource/scope/body.
func shape(ld plog.Logs) []string {
	var got []string
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		rl := ld.ResourceLogs().At(i)
		res, _ := rl.Resource().Attributes().Get("service.name")
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			sl := rl.ScopeLogs().At(j)
			for k := 0; k < sl.LogRecords().Len(); k++ {
				got = append(got, res.Str()+"/"+sl.Scope().Name()+"/"+sl.LogRecords().At(k).Body().Str())
			}
		}
	}
	return got
}

func TestCopy(t *testing.T) {
	tests := []struct {
		name string
		refs []Ref
		want []string
	}{
		{"none", nil, nil},
		{"one record", []Ref{{1, 0, 2}}, []string{"b/s0/b0-2"}},
		{"order of ld, not of refs", []Ref{{1, 0, 1}, {0, 1, 0}, {0, 0, 1}}, []string{"a/s0/a0-1", "a/s1/a1-0", "b/s0/b0-1"}},
		{"twice counts once", []Ref{{0, 0, 0}, {0, 0, 0}}, []string{"a/s0/a0-0"}},
		{"out of range ignored", []Ref{{2, 0, 0}, {0, 2, 0}, {0, 0, 5}, {1, 0, 0}}, []string{"b/s0/b0-0"}},
		{"all", []Ref{{0, 0, 0}, {0, 0, 1}, {0, 1, 0}, {1, 0, 0}, {1, 0, 1}, {1, 0, 2}}, []string{"a/s0/a0-0", "a/s0/a0-1", "a/s1/a1-0", "b/s0/b0-0", "b/s0/b0-1", "b/s0/b0-2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ld := twoResources()
			got := Copy(ld, tt.refs)
			assert.Equal(t, tt.want, shape(got))
			assert.Equal(t, 6, ld.LogRecordCount(), "the input is left as it was")
		})
	}
}

// A copied record keeps its resource's and scope's schema URLs and is a
// copy: changing it leaves the input alone.
func TestCopyKeepsSchemaURLsAndIsACopy(t *testing.T) {
	ld := twoResources()
	got := Copy(ld, []Ref{{1, 0, 0}})
	rl := got.ResourceLogs().At(0)
	assert.Equal(t, "https://schema/b", rl.SchemaUrl())
	assert.Equal(t, "https://scope/b", rl.ScopeLogs().At(0).SchemaUrl())
	rl.ScopeLogs().At(0).LogRecords().At(0).Body().SetStr("changed")
	assert.Equal(t, "b0-0", ld.ResourceLogs().At(1).ScopeLogs().At(0).LogRecords().At(0).Body().Str())
}
