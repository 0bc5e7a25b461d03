package featureflattener

import (
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// randomValue builds a random nested value whose leaves are non-media scalars.
func randomValue(r *rand.Rand, v pcommon.Value, depth int) {
	kind := r.IntN(9)
	if depth >= 4 && kind >= 7 {
		kind = r.IntN(7)
	}
	switch kind {
	case 0:
		v.SetInt(r.Int64N(2_000_000) - 1_000_000)
	case 1:
		v.SetDouble(r.NormFloat64() * 1e6)
	case 2:
		v.SetDouble(float64(r.IntN(1_000_000))) // integral double
	case 3:
		v.SetBool(r.IntN(2) == 0)
	case 4:
		// Empty.
	case 5, 6:
		words := []string{"red", "a b", "x,y", `say "hi"`, "ünï", "", "line\nbreak", "98052", "ok"}
		s := words[r.IntN(len(words))]
		for range r.IntN(4) {
			s += " " + words[r.IntN(len(words))]
		}
		v.SetStr(s)
	case 7:
		m := v.SetEmptyMap()
		for i := range r.IntN(5) {
			randomValue(r, m.PutEmpty("k"+strconv.Itoa(i)), depth+1)
		}
	case 8:
		s := v.SetEmptySlice()
		for range r.IntN(4) {
			randomValue(r, s.AppendEmpty(), depth+1)
		}
	}
}

// expectedColumns lists the columns a value must produce: every scalar leaf,
// and with arrays=json every array as its JSON text.
func expectedColumns(name string, v pcommon.Value, arrays string, out map[string]any) {
	switch v.Type() {
	case pcommon.ValueTypeMap:
		for k, e := range v.Map().All() {
			n := k
			if name != "" {
				n = name + "." + k
			}
			expectedColumns(n, e, arrays, out)
		}
	case pcommon.ValueTypeSlice:
		if arrays == ArraysJSON {
			out[name] = contract.FormatValue(v)
			return
		}
		for i, e := range v.Slice().All() {
			expectedColumns(name+"."+strconv.Itoa(i), e, arrays, out)
		}
	default:
		out[name] = v.AsRaw()
	}
}

// Flattening never loses a scalar that is not media: every leaf of a random
// nested body comes out under its path, with its value, and nothing else does.
func TestFlatteningKeepsEveryScalar(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 2))
	for _, arrays := range []string{ArraysIndex, ArraysJSON} {
		cfg := createDefaultConfig()
		cfg.Arrays = arrays
		process, tel := newTestProcessor(t, cfg)
		for i := range 500 {
			ld := oneRecord(t, map[string]any{}, sdkAttrs, nil)
			body := records(ld)[0].Body().SetEmptyMap()
			for j := range 1 + r.IntN(8) {
				randomValue(r, body.PutEmpty("f"+strconv.Itoa(j)), 0)
			}
			want := map[string]any{}
			expectedColumns("", records(ld)[0].Body(), arrays, want)
			before := body.AsRaw()

			lr := records(process(ld))[0]
			if got := lr.Body().Map().AsRaw(); !reflect.DeepEqual(got, want) {
				t.Fatalf("arrays=%s case %d: body %v\n got %#v\nwant %#v", arrays, i, before, got, want)
			}
			names := contract.Columns(lr)
			if len(names) != len(want) {
				t.Fatalf("arrays=%s case %d: %d feature names for %d columns", arrays, i, len(names), len(want))
			}
			for _, n := range names {
				if _, ok := want[n]; !ok {
					t.Fatalf("arrays=%s case %d: feature name %q is not a column", arrays, i, n)
				}
			}
		}
		if c := droppedCounts(t, tel); len(c) != 0 {
			t.Fatalf("arrays=%s: dropped %v", arrays, c)
		}
	}
}
