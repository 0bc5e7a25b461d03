// Package logsubset copies chosen log records out of a plog.Logs: the
// exporters hand back to the queue only the records that failed, so that a
// retry sends those and nothing that already landed.
package logsubset

import "go.opentelemetry.io/collector/pdata/plog"

// Ref locates one log record: the index of its ResourceLogs, of its
// ScopeLogs within those, and of the record within the scope.
type Ref struct{ Resource, Scope, Record int }

// Copy returns a new plog.Logs that holds the records of ld named by refs,
// in their order in ld, each under a copy of its resource and scope (schema
// URLs included). A resource or scope with no named record is left out;
// refs that name no record of ld, or name one twice, add nothing.
func Copy(ld plog.Logs, refs []Ref) plog.Logs {
	want := make(map[Ref]bool, len(refs))
	for _, r := range refs {
		want[r] = true
	}
	out := plog.NewLogs()
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		var outRL plog.ResourceLogs
		hasRL := false
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			sl := sls.At(j)
			var outSL plog.ScopeLogs
			hasSL := false
			lrs := sl.LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				if !want[Ref{i, j, k}] {
					continue
				}
				if !hasRL {
					outRL = out.ResourceLogs().AppendEmpty()
					rl.Resource().CopyTo(outRL.Resource())
					outRL.SetSchemaUrl(rl.SchemaUrl())
					hasRL = true
				}
				if !hasSL {
					outSL = outRL.ScopeLogs().AppendEmpty()
					sl.Scope().CopyTo(outSL.Scope())
					outSL.SetSchemaUrl(sl.SchemaUrl())
					hasSL = true
				}
				lrs.At(k).CopyTo(outSL.LogRecords().AppendEmpty())
			}
		}
	}
	return out
}
