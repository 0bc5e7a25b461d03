package contract

import (
	"slices"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// Columns is the feature column order of a record: its declared feature
// names (modeldata.feature_names, duplicates dropped), then the body keys
// not declared, sorted. A record without declared names whose body keys are
// already sorted (the featureflattener's output when nothing declares an
// order) has its body's own order.
func Columns(lr plog.LogRecord) []string {
	return ColumnOrder(FeatureNames(lr), lr.Body())
}

// ColumnOrder is Columns for declared names already read. It returns
// declared itself when the body adds nothing to it. Feature sets are small,
// so membership is a linear scan.
func ColumnOrder(declared []string, body pcommon.Value) []string {
	names := declared
	for i, n := range declared {
		if slices.Contains(declared[:i], n) { // a duplicate: copy without them
			names = make([]string, 0, len(declared))
			for _, n := range declared {
				if !slices.Contains(names, n) {
					names = append(names, n)
				}
			}
			break
		}
	}
	if body.Type() != pcommon.ValueTypeMap {
		return names
	}
	var extra []string
	for k := range body.Map().All() {
		if !slices.Contains(names, k) {
			extra = append(extra, k)
		}
	}
	if len(extra) == 0 {
		return names
	}
	slices.Sort(extra)
	return append(names[:len(names):len(names)], extra...)
}

// AppendSortedKeys appends the keys of a map body to dst when they are
// strictly increasing (then they are the record's columns when it declares
// none); ok is false, and dst unchanged in length, otherwise.
func AppendSortedKeys(dst []string, body pcommon.Value) (out []string, ok bool) {
	if body.Type() != pcommon.ValueTypeMap {
		return dst, false
	}
	n := len(dst)
	prev := ""
	for k := range body.Map().All() {
		if len(dst) > n && k <= prev {
			return dst[:n], false
		}
		dst = append(dst, k)
		prev = k
	}
	return dst, true
}

// BodyInOrder reports whether the body is a map of exactly the declared
// names in declared order: then the columns are the body's keys as they
// stand, and its cells need no lookup by name.
func BodyInOrder(declared []string, body pcommon.Value) bool {
	if body.Type() != pcommon.ValueTypeMap || body.Map().Len() != len(declared) {
		return false
	}
	i := 0
	for k := range body.Map().All() {
		if k != declared[i] {
			return false
		}
		i++
	}
	return true
}
