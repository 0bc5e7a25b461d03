package featureflattener

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/metric/noop"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// keys returns n body keys k00000, k00001, ... with their index as value.
func keys(n int) map[string]any {
	m := make(map[string]any, n)
	for i := range n {
		m[fmt.Sprintf("k%05d", i)] = int64(i)
	}
	return m
}

func keyNames(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("k%05d", i))
	}
	return out
}

func bodyKeys(lr plog.LogRecord) []string {
	var out []string
	for k := range lr.Body().Map().All() {
		out = append(out, k)
	}
	return out
}

// TestMaxColumns: a record keeps its first max_columns feature columns in
// column order; the values of the rest are dropped and counted.
func TestMaxColumns(t *testing.T) {
	otel := map[string]any{"model.name": "m", "model.version": "1"}
	tests := []struct {
		name        string
		max         int
		attrs       map[string]any
		body        any
		wantKeys    []string // the body's keys, in order, of every record
		wantNames   []string // modeldata.feature_names (nil: not written)
		wantDropped int64
	}{
		{name: "10,000 body keys, default cap", attrs: otel, body: keys(10000),
			wantKeys: keyNames(0, 1000), wantDropped: 9000},
		{name: "exactly at the cap", max: 5, attrs: otel, body: keys(5), wantKeys: keyNames(0, 5)},
		{name: "nested map counts its columns", max: 3, attrs: otel,
			body: map[string]any{"a": map[string]any{"x": 1, "y": 2, "z": 3}, "b": 4}, wantKeys: []string{"a.x", "a.y", "a.z"}, wantDropped: 1},
		{name: "declared order first; a declared column absent still takes its place", max: 3,
			attrs: map[string]any{"model.name": "m", contract.AttrFeatureNames: []any{"k00003", "gone", "k00001"}}, body: keys(5),
			wantKeys: []string{"k00003", "k00001"}, wantNames: []string{"k00003", "gone", "k00001"}, wantDropped: 3},
		{name: "contract form keeps the body's order", max: 2,
			attrs: map[string]any{contract.AttrModelName: "m"}, body: bodyOf("z", "y", "x"),
			wantKeys: []string{"z", "y"}, wantDropped: 1},
		{name: "each row of a batch", max: 2, attrs: otel,
			body:     []any{map[string]any{"c": 1, "b": 2, "a": 3}, map[string]any{"d": 1, "a": 2}},
			wantKeys: []string{"a", "b", "a", "d"}, wantDropped: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := createDefaultConfig()
			if tc.max > 0 {
				cfg.MaxColumns = tc.max
			}
			process, tel := newTestProcessor(t, cfg)
			ld := oneRecord(t, nil, tc.attrs, nil)
			if v, ok := tc.body.(pcommon.Value); ok { // a map in the order sent
				v.CopyTo(records(ld)[0].Body())
			} else if err := records(ld)[0].Body().FromRaw(tc.body); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, lr := range records(process(ld)) {
				got = append(got, bodyKeys(lr)...)
				if names := strSlice(lr.Attributes().Get(contract.AttrFeatureNames)); !reflect.DeepEqual(names, tc.wantNames) {
					t.Errorf("feature names %q, want %q", names, tc.wantNames)
				}
				if _, ok := lr.Attributes().Get(contract.AttrDroppedColumns); ok {
					t.Errorf("columns over max_columns are not listed in %s", contract.AttrDroppedColumns)
				}
			}
			if !reflect.DeepEqual(got, tc.wantKeys) {
				t.Errorf("body keys (%d) %.200q, want (%d) %.200q", len(got), got, len(tc.wantKeys), tc.wantKeys)
			}
			if got := droppedCounts(t, tel)[reasonMaxColumns]; got != tc.wantDropped {
				t.Errorf("dropped (max_columns) %d, want %d", got, tc.wantDropped)
			}
		})
	}
}

// TestMaxColumnsWarnsOncePerInterval: records over the cap are logged at
// most once per warnInterval, with how many there were since the last.
func TestMaxColumnsWarnsOncePerInterval(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.MaxColumns = 2
	f, err := newFlattener(cfg, noop.Int64Counter{})
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.WarnLevel)
	f.logger = zap.New(core)
	deliver := func(model string, width int) {
		t.Helper()
		ld := oneRecord(t, nil, map[string]any{"model.name": model}, keys(width))
		if _, err := f.processLogs(context.Background(), ld); err != nil {
			t.Fatal(err)
		}
	}
	deliver("a", 3)
	deliver("b", 3)
	deliver("c", 2) // at the cap: not counted
	f.capWarn.next.Store(0)
	deliver("d", 5)

	var got []string
	for _, e := range logs.All() {
		c := e.ContextMap()
		got = append(got, fmt.Sprintf("%v records, model %v, max %v", c["records"], c["model"], c["max_columns"]))
	}
	if want := []string{"1 records, model a, max 2", "2 records, model d, max 2"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("warnings %q, want %q", got, want)
	}
}

// A record at or under the cap is untouched by it (its order stays cached).
func TestMaxColumnsOrderCache(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.MaxColumns = 3
	f := testFlattener(t, cfg)
	st := newState(f)
	attrs := map[string]any{"model.name": "m"}
	for _, width := range []int{3, 4, 3, 4} {
		body := pcommon.NewValueMap()
		if err := body.Map().FromRaw(keys(width)); err != nil {
			t.Fatal(err)
		}
		got, _, _ := flattenRecord(t, f, st, attrs, body)
		if want := keys(3); !reflect.DeepEqual(got, want) {
			t.Fatalf("width %d: body %v, want %v", width, got, want)
		}
	}
}
