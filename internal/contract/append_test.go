package contract

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// TestAppendValueMatchesFormatValue checks that the append form renders
// every value type exactly as FormatValue does, after existing bytes.
func TestAppendValueMatchesFormatValue(t *testing.T) {
	var values []pcommon.Value
	add := func(set func(v pcommon.Value)) {
		v := pcommon.NewValueEmpty()
		set(v)
		values = append(values, v)
	}
	add(func(pcommon.Value) {})
	add(func(v pcommon.Value) { v.SetStr("a,\"b\"\r\n") })
	add(func(v pcommon.Value) { v.SetStr("") })
	add(func(v pcommon.Value) { v.SetBool(true) })
	add(func(v pcommon.Value) { v.SetBool(false) })
	add(func(v pcommon.Value) { v.SetEmptyBytes().FromRaw([]byte("hi")) })
	add(func(v pcommon.Value) { v.SetEmptyMap().PutStr("k", "v") })
	add(func(v pcommon.Value) {
		s := v.SetEmptySlice()
		s.AppendEmpty().SetInt(1)
		s.AppendEmpty().SetDouble(0.5)
	})
	for _, i := range []int64{0, -1, 7, 100, -42, math.MaxInt64, math.MinInt64} {
		add(func(v pcommon.Value) { v.SetInt(i) })
	}
	for _, f := range []float64{0, math.Copysign(0, -1), 1, -1.5, 1234567, 1e20, 1e21, -1e21, 1e-6, 9.99e-7, -1.5e-9, 1.1386826,
		math.MaxFloat64, math.SmallestNonzeroFloat64, math.NaN(), math.Inf(1), math.Inf(-1)} {
		add(func(v pcommon.Value) { v.SetDouble(f) })
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		f := math.Float64frombits(rng.Uint64())
		add(func(v pcommon.Value) { v.SetDouble(f) })
		i := int64(rng.Uint64())
		add(func(v pcommon.Value) { v.SetInt(i) })
	}
	for _, v := range values {
		want := FormatValue(v)
		if got := string(AppendValue([]byte("x,"), v)); got != "x,"+want {
			t.Errorf("%s %q: AppendValue %q, FormatValue %q", v.Type(), v.AsString(), got, want)
		}
		if v.Type() == pcommon.ValueTypeDouble {
			if got := string(AppendFloat(nil, v.Double())); got != FormatFloat(v.Double()) {
				t.Errorf("%v: AppendFloat %q, FormatFloat %q", v.Double(), got, FormatFloat(v.Double()))
			}
		}
	}
}

func TestAppendTimestamp(t *testing.T) {
	for _, ts := range []time.Time{
		time.Date(2020, 8, 13, 15, 54, 16, 691697000, time.UTC),
		time.Date(2018, 12, 31, 23, 59, 0, 999, time.FixedZone("x", 3600)),
		time.Unix(0, 0),
	} {
		if got, want := string(AppendTimestamp([]byte("a"), ts)), "a"+FormatTimestamp(ts); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

// TestReadRowReuse checks that reading with a reused names slice gives
// what ReadRow gives, whatever the slice held before.
func TestReadRowReuse(t *testing.T) {
	lr := plog.NewLogRecord()
	WriteRow(lr, Row{ModelName: "m", ModelVersion: "1", CorrelationID: "c", RequestID: "r",
		FeatureNames: []string{"a", "b", "c"}, Timestamp: time.Unix(100, 0)})
	noNames := plog.NewLogRecord()
	noNames.Attributes().PutStr(AttrModelName, "m")
	scratch := []string{"old", "values", "here", "and", "more"}
	for _, rec := range []plog.LogRecord{lr, noNames, plog.NewLogRecord()} {
		want, wantOK := ReadRow(rec)
		got, ok := ReadRowReuse(rec, scratch)
		if ok != wantOK || len(got.FeatureNames) != len(want.FeatureNames) {
			t.Fatalf("got %+v %v, want %+v %v", got, ok, want, wantOK)
		}
		got.FeatureNames, want.FeatureNames = append([]string{}, got.FeatureNames...), append([]string{}, want.FeatureNames...)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got %+v, want %+v", got, want)
		}
	}
}

// TestScalarArrayMatchesEncodingJSON checks the direct JSON writing of
// arrays of numbers, booleans and nulls against encoding/json.
func TestScalarArrayMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	doubles := []float64{0, math.Copysign(0, -1), 0.5, -1.5, 1e20, 1e21, 1e-6, 9.99e-7, 1.5e-9, 1e-300, math.MaxFloat64}
	for range 2000 {
		doubles = append(doubles, math.Float64frombits(rng.Uint64()))
	}
	for _, d := range doubles {
		if math.IsNaN(d) || math.IsInf(d, 0) {
			continue
		}
		v := pcommon.NewValueEmpty()
		s := v.SetEmptySlice()
		s.AppendEmpty().SetDouble(d)
		s.AppendEmpty().SetInt(int64(rng.Uint64()))
		s.AppendEmpty().SetBool(true)
		s.AppendEmpty()
		want, err := json.Marshal(v.AsRaw())
		if err != nil {
			t.Fatal(err)
		}
		got, ok := appendScalarArray(nil, v)
		if !ok || string(got) != string(want) {
			t.Errorf("%v: got %q (%v), want %q", d, got, ok, want)
		}
	}
	v := pcommon.NewValueEmpty()
	v.SetEmptySlice().AppendEmpty().SetDouble(math.NaN())
	if _, ok := appendScalarArray(nil, v); ok {
		t.Error("NaN is not JSON: encoding/json's path decides")
	}
}
