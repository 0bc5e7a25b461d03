package harness

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// Shapes of the records the OTLP door sends.
const (
	// ShapeContract: records already in contract form (modeldata.* attributes,
	// flat body, declared feature names), as the modeldata receiver writes them.
	ShapeContract = ""
	// ShapeSDK: what an OTel SDK user emits: attributes model.name,
	// model.version, modeldata.designation and request.id (no correlation id,
	// no feature names), body a nested map the featureflattener flattens.
	// At 10 features: row_id, seven doubles, a string with a comma and
	// address.zip; at more: doubles, ints and strings at the top level and
	// under two nesting levels (customer.*, customer.address.*, usage.*,
	// usage.device.*).
	ShapeSDK = "sdk"
)

// Cell kinds of an SDK-shaped column.
const (
	kindID = iota
	kindDouble
	kindInt
	kindString
	kindCommaString
)

// sdkColumn is one column of the SDK shape: its flattened name (the path of
// map keys joined by ".") and what its values are.
type sdkColumn struct {
	name string
	path []string
	kind int
}

// sdkColumns are the columns of the SDK shape in the order the body holds them.
func sdkColumns(features int) []sdkColumn {
	cols := []sdkColumn{{name: RowIDColumn, kind: kindID}}
	add := func(name string, kind int) {
		if len(cols) < features {
			cols = append(cols, sdkColumn{name: name, kind: kind})
		}
	}
	if features <= 10 {
		for k := 1; k <= 7; k++ {
			add("f"+strconv.Itoa(k), kindDouble)
		}
		add("note", kindCommaString)
		add("address.zip", kindString)
	} else {
		// Four groups: top level, customer.* (one level), customer.address.*
		// and usage.device.* (two levels), usage.* (one level).
		groups := []string{"", "customer.", "customer.address.", "usage.", "usage.device."}
		for k := 1; len(cols) < features; k++ {
			kind := kindDouble
			switch {
			case k%10 == 8:
				kind = kindCommaString
			case k%7 == 1:
				kind = kindInt
			case k%7 == 3:
				kind = kindString
			}
			add(groups[k%len(groups)]+"v"+strconv.Itoa(k), kind)
		}
	}
	for i := range cols {
		cols[i].path = strings.Split(cols[i].name, ".")
	}
	return cols
}

// sdkValue is the value of an SDK-shaped column k of row i of request req.
func (r *Rows) sdkValue(req, i, k, kind int) any {
	s := r.seq(req, i)
	switch kind {
	case kindID:
		return r.RowID(req, i)
	case kindDouble:
		return float64(s) + float64(k%256+1)/512
	case kindInt:
		return s * int64(k)
	case kindCommaString:
		return "Redmond, WA " + strconv.FormatInt(s%97, 10)
	default:
		return "v" + strconv.Itoa(k) + "_" + strconv.FormatInt(s%89, 10)
	}
}

// layout is the CSV feature columns of a run (header order) and, for each,
// how to compute its cell.
type layout struct {
	names []string
	// sdk[c] is the SDK column written in CSV column c, and gen[c] its index
	// in the body (the seed of its values); nil for the contract shape.
	sdk []sdkColumn
	gen []int
}

// layout of the run: the contract shape's columns in declared order; the
// SDK shape's as the featureflattener writes them with no declared order,
// sorted by name.
func (r *Rows) layout() layout {
	if r.Shape != ShapeSDK {
		return layout{names: r.FeatureNames()}
	}
	cols := sdkColumns(r.Features)
	gen := make([]int, len(cols))
	for k := range gen {
		gen[k] = k
	}
	slices.SortFunc(gen, func(a, b int) int { return strings.Compare(cols[a].name, cols[b].name) })
	l := layout{names: make([]string, len(cols)), sdk: make([]sdkColumn, len(cols)), gen: gen}
	for c, k := range gen {
		l.names[c], l.sdk[c] = cols[k].name, cols[k]
	}
	return l
}

// cell is CSV column c of row i of request req as the exporter writes it.
func (r *Rows) cell(l *layout, req, i, c int) string {
	if l.sdk == nil {
		if c == 0 {
			return r.RowID(req, i)
		}
		return r.Cell(req, i, c)
	}
	return formatCell(r.sdkValue(req, i, l.gen[c], l.sdk[c].kind))
}

func formatCell(v any) string {
	switch v := v.(type) {
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return contract.FormatFloat(v)
	default:
		return v.(string)
	}
}

// sdkLogs is request req as SDK-shaped log records.
func (r *Rows) sdkLogs(req int, now time.Time) plog.Logs {
	logs := plog.NewLogs()
	rl := logs.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "scoring-service")
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("scoring")
	cols := sdkColumns(r.Features)
	ts := pcommon.NewTimestampFromTime(now)
	reqID := r.RequestID(req)
	records := sl.LogRecords()
	records.EnsureCapacity(r.RowsPerRequest)
	for i := 0; i < r.RowsPerRequest; i++ {
		lr := records.AppendEmpty()
		lr.SetTimestamp(ts)
		lr.SetObservedTimestamp(ts)
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
		attrs := lr.Attributes()
		attrs.PutStr("model.name", r.Model)
		attrs.PutStr("model.version", r.Version)
		attrs.PutStr(contract.AttrDesignation, r.Designation)
		attrs.PutStr("request.id", reqID)
		body := lr.Body().SetEmptyMap()
		for k, col := range cols {
			m := body
			for _, key := range col.path[:len(col.path)-1] {
				v, ok := m.Get(key)
				if !ok {
					v = m.PutEmpty(key)
					v.SetEmptyMap()
				}
				m = v.Map()
			}
			leaf := col.path[len(col.path)-1]
			switch v := r.sdkValue(req, i, k, col.kind).(type) {
			case int64:
				m.PutInt(leaf, v)
			case float64:
				m.PutDouble(leaf, v)
			default:
				m.PutStr(leaf, v.(string))
			}
		}
	}
	return logs
}

// lookupPath finds a column in a record body: under its flattened name
// (a stock pipeline that flattened it), else by its path of nested maps.
func lookupPath(body pcommon.Map, name string, path []string) (pcommon.Value, bool) {
	if v, ok := body.Get(name); ok || len(path) <= 1 {
		return v, ok
	}
	m := body
	for _, key := range path[:len(path)-1] {
		v, ok := m.Get(key)
		if !ok || v.Type() != pcommon.ValueTypeMap {
			return pcommon.Value{}, false
		}
		m = v.Map()
	}
	return m.Get(path[len(path)-1])
}
