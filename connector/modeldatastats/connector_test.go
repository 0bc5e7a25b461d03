package modeldatastats

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/otelcol-modeldata/otelcol-modeldata/connector/modeldatastats/internal/metadata"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// rowsLogs builds contract records of one model: each row maps feature
// names to raw values (nil: an empty value); declared are the feature names.
func rowsLogs(model string, declared []string, rows ...map[string]any) plog.Logs {
	logs := plog.NewLogs()
	lrs := logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for _, r := range rows {
		lr := lrs.AppendEmpty()
		body := contract.Features(lr)
		for _, name := range slices.Sorted(func(yield func(string) bool) {
			for k := range r {
				if !yield(k) {
					return
				}
			}
		}) {
			if err := body.PutEmpty(name).FromRaw(r[name]); err != nil {
				panic(err)
			}
		}
		contract.WriteRow(lr, contract.Row{ModelName: model, ModelVersion: "1", Designation: "inputs", FeatureNames: declared})
	}
	return logs
}

// points indexes a window's data points by metric name and attribute values
// ("feature" or "feature/value").
func points(md pmetric.Metrics) map[string]map[string]pmetric.NumberDataPoint {
	out := map[string]map[string]pmetric.NumberDataPoint{}
	ms := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	for i := 0; i < ms.Len(); i++ {
		m := ms.At(i)
		var dps pmetric.NumberDataPointSlice
		switch m.Type() {
		case pmetric.MetricTypeSum:
			dps = m.Sum().DataPoints()
		case pmetric.MetricTypeGauge:
			dps = m.Gauge().DataPoints()
		default:
			continue
		}
		out[m.Name()] = map[string]pmetric.NumberDataPoint{}
		for j := 0; j < dps.Len(); j++ {
			var key []string
			for _, a := range []string{attrFeature, attrValueType, attrValue, attrLimit} {
				if v, ok := dps.At(j).Attributes().Get(a); ok {
					key = append(key, v.Str())
				}
			}
			out[m.Name()][strings.Join(key, "/")] = dps.At(j)
		}
	}
	return out
}

// newTestConnector is the connector with its baselines loaded, not started
// (no window timer): tests read its state directly.
func newTestConnector(tb testing.TB, cfg *Config) *statsConnector {
	tb.Helper()
	c, err := newConnector(connectortest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
	if err != nil {
		tb.Fatal(err)
	}
	if err := c.loadBaselines(); err != nil {
		tb.Fatal(err)
	}
	return c
}

// startConnector creates and starts the connector with its metrics going to the returned sink.
func startConnector(t *testing.T, cfg *Config) (connector.Logs, *consumertest.MetricsSink) {
	t.Helper()
	sink := new(consumertest.MetricsSink)
	c, err := NewFactory().CreateLogsToMetrics(t.Context(), connectortest.NewNopSettings(metadata.Type), cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(t.Context(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	return c, sink
}

// runWindow sends logs through a started connector and returns the one window its shutdown emits.
func runWindow(t *testing.T, cfg *Config, logs ...plog.Logs) pmetric.Metrics {
	t.Helper()
	c, sink := startConnector(t, cfg)
	for _, l := range logs {
		if err := c.ConsumeLogs(t.Context(), l); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(sink.AllMetrics()); n != 1 {
		t.Fatalf("%d metric batches, want the one window", n)
	}
	return sink.AllMetrics()[0]
}

func TestWindowMetrics(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.TopK = 1
	md := runWindow(t, cfg, rowsLogs("churn", []string{"age", "city", "vip", "note"},
		map[string]any{"age": int64(31), "city": "Bern", "vip": true, "note": ""},
		map[string]any{"age": 45.5, "city": "Bern", "vip": false},
		map[string]any{"age": nil, "city": "Oslo", "vip": "yes", "note": "x"},
	))
	p := points(md)
	want := map[string]map[string]int64{
		metricRows:      {"age": 3, "city": 3, "vip": 3, "note": 3},
		metricNulls:     {"age": 1, "city": 0, "vip": 0, "note": 2},
		metricValues:    {"age/int": 1, "age/double": 1, "city/string": 3, "vip/bool": 2, "vip/string": 1, "note/string": 1},
		metricTopValues: {"city/Bern": 2, "city/" + OtherValue: 1, "vip/False": 1, "vip/" + OtherValue: 2, "note/x": 1},
	}
	for name, byKey := range want {
		if len(p[name]) != len(byKey) {
			t.Errorf("%s: %d points, want %d (%v)", name, len(p[name]), len(byKey), byKey)
		}
		for key, v := range byKey {
			if got := p[name][key].IntValue(); got != v {
				t.Errorf("%s{%s} = %d, want %d", name, key, got, v)
			}
		}
	}
	if got := p[metricDistinct]["city"].DoubleValue(); got != 2 {
		t.Errorf("distinct cities %g, want 2", got)
	}
	dp := p[metricRows]["age"]
	for k, v := range map[string]string{contract.AttrModelName: "churn", contract.AttrModelVersion: "1", contract.AttrDesignation: "inputs"} {
		if got, _ := dp.Attributes().Get(k); got.Str() != v {
			t.Errorf("attribute %s = %q, want %q", k, got.Str(), v)
		}
	}
	if dp.StartTimestamp() == 0 || dp.Timestamp() < dp.StartTimestamp() {
		t.Errorf("window %v..%v", dp.StartTimestamp(), dp.Timestamp())
	}
	var hist pmetric.ExponentialHistogramDataPoint
	ms := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	for i := 0; i < ms.Len(); i++ {
		if ms.At(i).Name() == metricDistrib {
			if ms.At(i).ExponentialHistogram().AggregationTemporality() != pmetric.AggregationTemporalityDelta {
				t.Error("histogram is not delta")
			}
			hist = ms.At(i).ExponentialHistogram().DataPoints().At(0)
		}
	}
	if hist.Count() != 2 || hist.Sum() != 76.5 || hist.Min() != 31 || hist.Max() != 45.5 {
		t.Errorf("age histogram count/sum/min/max %d/%g/%g/%g", hist.Count(), hist.Sum(), hist.Min(), hist.Max())
	}
	if _, ok := p[metricPSI]; ok {
		t.Error("drift emitted without a baseline")
	}
}

// TestLimits: what a cardinality bound leaves out is counted, per limit.
func TestLimits(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.MaxModels, cfg.MaxFeatures, cfg.TopK, cfg.MaxTrackedValues = 1, 2, 1, 1
	md := runWindow(t, cfg,
		rowsLogs("a", nil, map[string]any{"f1": "x", "f2": "y", "f3": "z"}, map[string]any{"f1": "w", "f2": "y", "f3": "z"}),
		rowsLogs("b", nil, map[string]any{"f1": "x"}))
	p := points(md)
	for limit, n := range map[string]int64{cutModels: 1, cutFeatures: 2, cutValues: 1} {
		if got := p[metricCut][limit].IntValue(); got != n {
			t.Errorf("cut{%s} = %d, want %d", limit, got, n)
		}
	}
	if got := p[metricTopValues]["f1/"+OtherValue].IntValue(); got != 1 {
		t.Errorf("f1 other = %d, want 1", got)
	}
}

// TestProfileRoundTrip: a window saved to profile_dir is a baseline under
// which the same data shows no drift.
func TestProfileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	cfg := createDefaultConfig()
	cfg.ProfileDir = dir
	rows := csvLogs(t, filepath.Join("testdata", "wine", "baseline.csv"), "wine")
	runWindow(t, cfg, rows)
	cfg = createDefaultConfig()
	cfg.Baselines = []BaselineConfig{{Model: "wine", Profile: filepath.Join(dir, "wine_1_inputs.json")}}
	p := points(runWindow(t, cfg, rows))
	for _, feature := range []string{"alcohol", "proline", "class"} {
		for _, m := range []string{metricJS, metricOutOfRange, metricTypeErrors} {
			if got := p[m][feature].DoubleValue(); got != 0 {
				t.Errorf("%s{%s} = %g, want 0", m, feature, got)
			}
		}
		if _, ok := p[metricPSI][feature]; !ok {
			t.Errorf("no PSI for %s", feature)
		}
	}
	if got := p[metricWasserstein]["alcohol"].DoubleValue(); got != 0 {
		t.Errorf("Wasserstein %g, want 0", got)
	}
}

func TestBaselineErrors(t *testing.T) {
	for name, bc := range map[string]BaselineConfig{
		"no such file": {Model: "m", CSV: "testdata/missing.csv"},
		"bad profile":  {Model: "m", Profile: "testdata/config.yaml"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := createDefaultConfig()
			cfg.Baselines = []BaselineConfig{bc}
			c, err := NewFactory().CreateLogsToMetrics(t.Context(), connectortest.NewNopSettings(metadata.Type), cfg, new(consumertest.MetricsSink))
			if err != nil {
				t.Fatal(err)
			}
			err = c.Start(t.Context(), componenttest.NewNopHost())
			if err == nil || !strings.HasPrefix(err.Error(), "baselines[0]: ") {
				t.Fatalf("error %v", err)
			}
		})
	}
}

// TestWindowTimer: the timer emits windows while rows keep coming.
func TestWindowTimer(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.Window = time.Second
	c, sink := startConnector(t, cfg)
	defer func() { _ = c.Shutdown(context.Background()) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(sink.AllMetrics()) < 2 && time.Now().Before(deadline) {
		if err := c.ConsumeLogs(t.Context(), rowsLogs("m", nil, map[string]any{"x": 1.0})); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(sink.AllMetrics()) < 2 {
		t.Fatal("fewer than two windows emitted in 10 s")
	}
}

// TestExpHistQuantiles: on a heavy-tailed sample that forces downscaling,
// every quantile is within the histogram's relative error of the exact one.
func TestExpHistQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	h := newExpHist(20)
	values := make([]float64, 100000)
	for i := range values {
		values[i] = math.Exp(rng.NormFloat64()*3) * float64(1-2*(i%7/6)) // a seventh negative
		h.record(values[i])
	}
	slices.Sort(values)
	if h.scale >= maxScale || h.count != uint64(len(values)) {
		t.Fatalf("scale %d count %d", h.scale, h.count)
	}
	relErr := math.Exp2(math.Ldexp(1, -int(h.scale))) - 1
	for _, q := range []float64{0.001, 0.1, 0.25, 0.5, 0.75, 0.9, 0.999} {
		exact := values[int(math.Ceil(q*float64(len(values))))-1]
		if got := h.quantile(q); math.Abs(got-exact) > relErr*math.Abs(exact) {
			t.Errorf("q%g = %g, exact %g (relative error bound %g)", q, got, exact, relErr)
		}
	}
	var dp = pmetric.NewExponentialHistogramDataPoint()
	h.copyTo(dp)
	var total uint64
	for _, c := range dp.Positive().BucketCounts().AsRaw() {
		total += c
	}
	for _, c := range dp.Negative().BucketCounts().AsRaw() {
		total += c
	}
	if total+dp.ZeroCount() != dp.Count() || dp.Positive().BucketCounts().Len() > 20 {
		t.Errorf("buckets hold %d of %d values, %d positive buckets", total, dp.Count(), dp.Positive().BucketCounts().Len())
	}
}

// TestDistinctBeyondTracked: past max_tracked_values the distinct count is
// the HyperLogLog estimate, within three standard errors (3 × 0.81 %).
func TestDistinctBeyondTracked(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.MaxTrackedValues = 100
	var rows []map[string]any
	for i := 0; i < 20000; i++ {
		rows = append(rows, map[string]any{"id": "id-" + strconv.Itoa(i%5000)})
	}
	p := points(runWindow(t, cfg, rowsLogs("m", nil, rows...)))
	if got := p[metricDistinct]["id"].DoubleValue(); math.Abs(got-5000) > 5000*3*0.0081 {
		t.Errorf("distinct estimate %g, exact 5000", got)
	}
	if got := p[metricCut][cutValues].IntValue(); got != 20000-4*100 {
		t.Errorf("cut values %d, want %d", got, 20000-4*100)
	}
}

// TestStateBoundedByLimits: a window's state stops growing with the rows:
// after 50,000 rows of unique strings and unique numbers against a
// baseline, each feature holds at most max_tracked_values values,
// sample_size samples and histogram_max_buckets buckets per sign.
func TestStateBoundedByLimits(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.MaxTrackedValues, cfg.SampleSize, cfg.HistogramMaxBuckets = 50, 64, 16
	cfg.Baselines = []BaselineConfig{{Model: "wine", CSV: filepath.Join("testdata", "wine", "baseline.csv")}}
	c := newTestConnector(t, cfg)
	rng := rand.New(rand.NewPCG(3, 3))
	for batch := 0; batch < 500; batch++ {
		var rows []map[string]any
		for i := 0; i < 100; i++ {
			rows = append(rows, map[string]any{"class": "c" + strconv.Itoa(batch*100+i), "alcohol": math.Exp(rng.NormFloat64() * 10)})
		}
		if err := c.ConsumeLogs(t.Context(), rowsLogs("wine", nil, rows...)); err != nil {
			t.Fatal(err)
		}
	}
	ms := c.models[modelKey{"wine", "1", "inputs"}]
	class, alcohol := ms.features["class"], ms.features["alcohol"]
	if class.rows != 50000 || len(class.values) != 50 || class.other != 50000-50 {
		t.Errorf("class: %d rows, %d tracked values, %d other", class.rows, len(class.values), class.other)
	}
	if alcohol.rows != 50000 || len(alcohol.sample) != 64 || len(alcohol.hist.pos.counts) > 16 || len(alcohol.binCounts) != alcohol.numBase.bins+2 {
		t.Errorf("alcohol: %d rows, %d samples, %d buckets, %d bins", alcohol.rows, len(alcohol.sample), len(alcohol.hist.pos.counts), len(alcohol.binCounts))
	}
}
