package featureflattener

import (
	"bytes"
	"context"
	"math/rand/v2"
	"reflect"
	"strconv"
	"sync"
	"testing"

	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
	"github.com/otelcol-modeldata/otelcol-modeldata/processor/featureflattener/internal/metadata"
)

func testFlattener(t *testing.T, cfg *Config) *flattener {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	f, err := newFlattener(cfg, noop.Int64Counter{})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// newState is a state with nothing cached.
func newState(f *flattener) *state {
	st := f.pool.New().(*state)
	st.counts = map[string]int64{}
	return st
}

// flattenRecord runs one record through prepare and processRecord with st,
// and returns what the exporter sees: body, feature names, dropped columns.
func flattenRecord(t *testing.T, f *flattener, st *state, attrs map[string]any, body pcommon.Value) (map[string]any, []string, []string) {
	t.Helper()
	return flattenRecordWith(t, f, st, attrs, body, nil)
}

// flattenRecordWith is flattenRecord that also hands the record to check.
func flattenRecordWith(t *testing.T, f *flattener, st *state, attrs map[string]any, body pcommon.Value, check func(plog.LogRecord)) (map[string]any, []string, []string) {
	t.Helper()
	lr := plog.NewLogRecord()
	if err := lr.Attributes().FromRaw(attrs); err != nil {
		t.Fatal(err)
	}
	body.CopyTo(lr.Body())
	k := f.prepare(st, lr, pcommon.NewResource(), 1)
	if k != kindRecord && k != kindContract {
		t.Fatalf("record kind %d", k)
	}
	f.processRecord(st, lr, nil, k == kindContract)
	if check != nil {
		check(lr)
	}
	return lr.Body().Map().AsRaw(), contract.Columns(lr), strSlice(lr.Attributes().Get(contract.AttrDroppedColumns))
}

// bodyOf builds a body map with the given keys, in that order; a key
// "p.q" becomes a nested map p with key q.
func bodyOf(keys ...string) pcommon.Value {
	v := pcommon.NewValueMap()
	for i, k := range keys {
		m := v.Map()
		for {
			p, rest, nested := cut(k)
			if !nested {
				m.PutInt(k, int64(i))
				break
			}
			sub, ok := m.Get(p)
			if !ok {
				sub = m.PutEmpty(p)
				sub.SetEmptyMap()
			}
			m, k = sub.Map(), rest
		}
	}
	return v
}

func cut(k string) (string, string, bool) {
	for i := 0; i < len(k); i++ {
		if k[i] == '.' {
			return k[:i], k[i+1:], true
		}
	}
	return k, "", false
}

// The cached order of one set of names is never used for another: same
// count, other names; same names, other declared names or rule; a record
// with a dropped value.
func TestOrderCacheKeepsLayoutsApart(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.Rules = []Rule{{Model: "ranked", Columns: []string{"c"}}}
	f := testFlattener(t, cfg)
	st := newState(f)
	plain := map[string]any{"model.name": "m"}
	steps := []struct {
		attrs map[string]any
		body  pcommon.Value
		names []string
	}{
		{plain, bodyOf("b", "a", "c"), []string{"a", "b", "c"}},
		{plain, bodyOf("c", "b", "a"), []string{"a", "b", "c"}},
		{plain, bodyOf("a", "b", "d"), []string{"a", "b", "d"}},
		{plain, bodyOf("x.b", "a", "x.a"), []string{"a", "x.a", "x.b"}},
		{with(plain, contract.AttrFeatureNames, []any{"c"}), bodyOf("a", "b", "c"), []string{"c", "a", "b"}},
		{with(plain, contract.AttrFeatureNames, []any{"c", "gone"}), bodyOf("a", "b", "c"), []string{"c", "gone", "a", "b"}},
		{with(plain, contract.AttrFeatureNames, []any{"x"}), bodyOf("x.b", "a", "x.a"), []string{"x.a", "x.b", "a"}},
		{map[string]any{"model.name": "ranked"}, bodyOf("a", "b", "c"), []string{"c", "a", "b"}},
		{plain, bodyOf("a", "b", "c", "image"), nil}, // dropped: not cached
		{plain, bodyOf("b", "c", "a"), []string{"a", "b", "c"}},
	}
	steps[8].body.Map().PutStr("image", "cat")
	steps[8].names = []string{"a", "b", "c"}
	for round := range 2 { // the second round runs with every layout cached
		for i, s := range steps {
			_, got, _ := flattenRecord(t, f, st, s.attrs, s.body)
			if !reflect.DeepEqual(got, s.names) {
				t.Errorf("round %d step %d: feature names %q, want %q", round, i, got, s.names)
			}
		}
	}
	if len(st.orders) == 0 {
		t.Fatal("nothing cached")
	}
}

// A record that came in contract form and declares no names keeps its body's
// order (a nested map's columns, sorted, in its key's place) and gets no
// list; an SDK record's columns are sorted, the body rebuilt in that order,
// also without a list. Only a declared column absent from the body needs
// one; a list the body's order now says is removed.
func TestColumnOrderWithoutList(t *testing.T) {
	f := testFlattener(t, createDefaultConfig())
	st := newState(f)
	contractForm := map[string]any{contract.AttrModelName: "m"}
	sdk := map[string]any{"model.name": "m"}
	tests := []struct {
		name   string
		attrs  map[string]any
		body   pcommon.Value
		want   []string
		listed bool
	}{
		{"contract form, flat", contractForm, bodyOf("z", "b", "a"), []string{"z", "b", "a"}, false},
		{"contract form, nested", contractForm, bodyOf("z", "addr.b", "addr.a", "c"), []string{"z", "addr.a", "addr.b", "c"}, false},
		{"sdk, flat", sdk, bodyOf("z", "b", "a"), []string{"a", "b", "z"}, false},
		{"sdk, nested", sdk, bodyOf("z", "addr.b", "addr.a", "c"), []string{"addr.a", "addr.b", "c", "z"}, false},
		{"sdk, declared", with(sdk, contract.AttrFeatureNames, []any{"z", "b"}), bodyOf("a", "b", "z"), []string{"z", "b", "a"}, false},
		{"sdk, declared nested", with(sdk, contract.AttrFeatureNames, []any{"addr", "a"}), bodyOf("a", "addr.y", "addr.x"), []string{"addr.x", "addr.y", "a"}, false},
		{"sdk, declared absent", with(sdk, contract.AttrFeatureNames, []any{"gone", "a"}), bodyOf("b", "a"), []string{"gone", "a", "b"}, true},
		{"contract form, media dropped", contractForm, bodyOf("z", "photo", "a"), []string{"z", "a"}, false},
		{"contract form, a JSON string body", contractForm, pcommon.NewValueStr(`{"z": 1, "b": 2, "a": 3}`), []string{"a", "b", "z"}, false},
	}
	tests[len(tests)-2].body.Map().PutEmptyBytes("photo").FromRaw(pngHead())
	for range 2 { // the second round with the orders cached
		for _, tt := range tests {
			_, got, _ := flattenRecordWith(t, f, st, tt.attrs, tt.body, func(lr plog.LogRecord) {
				if keys := contract.AppendKeys(nil, lr.Body()); !tt.listed && !reflect.DeepEqual(keys, tt.want) {
					t.Errorf("%s: body keys %q, want %q", tt.name, keys, tt.want)
				}
				if _, listed := lr.Attributes().Get(contract.AttrFeatureNames); listed != tt.listed {
					t.Errorf("%s: listed %v, want %v", tt.name, listed, tt.listed)
				}
			})
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s: columns %q, want %q", tt.name, got, tt.want)
			}
		}
	}
}

// A state with its caches (column orders, names by parent and key) filled
// by many records gives the same rows as a fresh state, for random
// layouts, key orders, declared names and rules.
func TestOrderCacheSameAsFreshState(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.Columns = []string{"k3", "g"}
	cfg.Rules = []Rule{
		{Model: "renamed", Rename: map[string]string{"k1": "z", "g.k0": "k2"}},
		{Model: "excluding", Exclude: []string{"k2"}},
		{Model: "ordered", Columns: []string{"k4", "k1"}},
	}
	f := testFlattener(t, cfg)
	cached := newState(f)
	r := rand.New(rand.NewPCG(7, 9))
	models := []string{"m", "renamed", "excluding", "ordered"}
	layouts := [][]string{
		{"k0", "k1", "k2", "k3", "k4"},
		{"k0", "k1", "k2", "k3", "k5"},
		{"k1", "k2", "g.k0", "g.k1", "k4"},
		{"k0", "g.k0", "g.k1", "g.k2"},
		{"k0", "k1", "k2", "k3", "k4", "g.k0"},
		wideLayout("g", maxChildren+8), // more keys than a name remembers
	}
	declared := [][]any{nil, {"k4", "k0"}, {"g", "absent"}, {"k2", "k2"}, {"z"}}
	for i := range 2000 {
		keys := append([]string(nil), layouts[r.IntN(len(layouts))]...)
		r.Shuffle(len(keys), func(a, b int) { keys[a], keys[b] = keys[b], keys[a] })
		attrs := map[string]any{"model.name": models[r.IntN(len(models))]}
		if d := declared[r.IntN(len(declared))]; d != nil {
			attrs[contract.AttrFeatureNames] = d
		}
		body := bodyOf(keys...)
		if r.IntN(10) == 0 {
			body.Map().PutEmptyBytes("k" + strconv.Itoa(r.IntN(6))) // a drop, maybe a duplicate
		}
		if r.IntN(10) == 0 {
			body.Map().PutStr("g.k1", "dotted") // the name of a nested column, maybe a duplicate
		}
		wb, wn, wd := flattenRecord(t, f, newState(f), attrs, body)
		gb, gn, gd := flattenRecord(t, f, cached, attrs, body)
		if !reflect.DeepEqual(gb, wb) || !reflect.DeepEqual(gn, wn) || !reflect.DeepEqual(gd, wd) {
			t.Fatalf("record %d (%v, keys %q): cached state gives\n%v %q %q\nfresh state gives\n%v %q %q", i, attrs, keys, gb, gn, gd, wb, wn, wd)
		}
	}
	if len(cached.orders) < len(layouts) {
		t.Fatalf("only %d orders cached", len(cached.orders))
	}
}

func wideLayout(prefix string, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = prefix + ".k" + strconv.Itoa(i)
	}
	return keys
}

func TestOrderCacheBounded(t *testing.T) {
	f := testFlattener(t, createDefaultConfig())
	st := newState(f)
	attrs := map[string]any{"model.name": "m"}
	for i := range maxOrders + 10 {
		flattenRecord(t, f, st, attrs, bodyOf("a", "f"+strconv.Itoa(i)))
		if len(st.orders) > maxOrders {
			t.Fatalf("%d orders cached", len(st.orders))
		}
	}
	// Wide records, each a pool of names but one: the fields over all
	// cached orders are bounded too.
	pool := make([]string, 300)
	for i := range pool {
		pool[i] = "w" + strconv.Itoa(i)
	}
	for skip := range pool {
		keys := append(append([]string(nil), pool[:skip]...), pool[skip+1:]...)
		flattenRecord(t, f, st, attrs, bodyOf(keys...))
		total := 0
		for _, e := range st.orders {
			total += len(e.fields)
		}
		if total > maxOrderFields || total != st.orderFields {
			t.Fatalf("%d fields cached (counted %d)", total, st.orderFields)
		}
	}
	if len(pool)*(len(pool)-1) <= maxOrderFields {
		t.Fatal("the test does not reach the bound")
	}
	// And the keys a name remembers.
	if len(st.root.children) > maxChildren || !st.root.wide {
		t.Fatalf("%d top-level keys remembered, wide %v", len(st.root.children), st.root.wide)
	}
}

// Concurrent calls each flatten with their own state: same rows as one at
// a time (run with -race).
func TestConcurrentCallsKeepStatesApart(t *testing.T) {
	process, _ := newTestProcessor(t, createDefaultConfig())
	p, err := NewFactory().CreateLogs(context.Background(), processortest.NewNopSettings(metadata.Type),
		createDefaultConfig(), consumertest.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	build := func(layout int) plog.Logs {
		ld := plog.NewLogs()
		recs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
		for i := range 50 {
			lr := recs.AppendEmpty()
			lr.Attributes().PutStr("model.name", "m")
			lr.Attributes().PutStr("correlation.id", "c") // a generated one would differ from run to run
			lr.SetTimestamp(1)
			bodyOf(wideLayout("g"+strconv.Itoa(layout), 3+(i+layout)%5)...).CopyTo(lr.Body())
		}
		return ld
	}
	want := make([][]byte, 4)
	for l := range want {
		want[l] = marshal(t, process(build(l)))
	}
	var wg sync.WaitGroup
	errs := make(chan string, 4*20)
	for l := range want {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				ld := build(l)
				if err := p.ConsumeLogs(context.Background(), ld); err != nil {
					errs <- err.Error()
					return
				}
				if got, _ := (&plog.JSONMarshaler{}).MarshalLogs(ld); !bytes.Equal(got, want[l]) {
					errs <- "layout " + strconv.Itoa(l) + ": rows differ"
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
