package contract

import (
	"slices"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// DefaultMaxColumns is the default cap on a row's feature columns, on every
// door rows come in by: the collect route refuses wider rows, the
// featureflattener drops the columns past it.
const DefaultMaxColumns = 1000

// Columns is the feature column order of a record: its declared feature
// names (modeldata.feature_names, duplicates dropped), then the body keys
// not declared, sorted. A record that declares none has its body's own key
// order: pdata maps keep their order through the batcher, the persistent
// queue and Kafka, so the body carries the order without a list per row.
func Columns(lr plog.LogRecord) []string {
	return ColumnOrder(FeatureNames(lr), lr.Body())
}

// ColumnOrder is Columns for declared names already read. It returns
// declared itself when the body adds nothing to it. Feature sets are small,
// so membership is a linear scan.
func ColumnOrder(declared []string, body pcommon.Value) []string {
	if len(declared) == 0 {
		return AppendKeys(nil, body)
	}
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

// AppendKeys appends the keys of a map body to dst, in the body's order:
// the columns of a record that declares none.
func AppendKeys(dst []string, body pcommon.Value) []string {
	if body.Type() != pcommon.ValueTypeMap {
		return dst
	}
	for k := range body.Map().All() {
		dst = append(dst, k)
	}
	return dst
}

// BodyInOrder reports whether the body is a map holding exactly the
// record's columns in column order, so that its cells are read in body
// order without a lookup by name: a record that declares no names, or one
// whose body keys are its declared names in order.
func BodyInOrder(declared []string, body pcommon.Value) bool {
	if len(declared) == 0 {
		return body.Type() == pcommon.ValueTypeMap
	}
	return KeysAre(body, declared)
}

// KeysAre reports whether the body is a map of exactly the keys names, in
// that order.
func KeysAre(body pcommon.Value, names []string) bool {
	if body.Type() != pcommon.ValueTypeMap || body.Map().Len() != len(names) {
		return false
	}
	i := 0
	for k := range body.Map().All() {
		if k != names[i] {
			return false
		}
		i++
	}
	return true
}
