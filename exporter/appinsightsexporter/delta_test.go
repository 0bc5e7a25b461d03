package appinsightsexporter

import (
	"context"
	"reflect"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/otelcol-modeldata/otelcol-modeldata/exporter/appinsightsexporter/internal/metadata"
)

// cumulativeSum is one point of a monotonic cumulative int sum.
type cumulativeSum struct {
	start, at time.Duration // after the converter's start (negative: before)
	value     int64
	series    string // the "model" attribute
}

// counterPoint is a metric "requests" with one point of a monotonic
// cumulative int sum, attribute model=series.
func counterPoint(start, at pcommon.Timestamp, value int64, series string) pmetric.Metrics {
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("requests")
	m.SetEmptySum().SetIsMonotonic(true)
	m.Sum().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := m.Sum().DataPoints().AppendEmpty()
	dp.SetStartTimestamp(start)
	dp.SetTimestamp(at)
	dp.SetIntValue(value)
	dp.Attributes().PutStr("model", series)
	return md
}

func TestDeltaSums(t *testing.T) {
	tests := []struct {
		name   string
		points []cumulativeSum
		want   []int64 // values sent, in order
	}{
		{"first point of a series started after us is sent whole, then deltas",
			[]cumulativeSum{{1, 2, 5, "a"}, {1, 3, 7, "a"}, {1, 4, 12, "a"}}, []int64{5, 2, 5}},
		{"series older than us: the first point is only the baseline",
			[]cumulativeSum{{-10, 2, 500, "a"}, {-10, 3, 507, "a"}}, []int64{7}},
		{"no increase: nothing sent",
			[]cumulativeSum{{1, 2, 5, "a"}, {1, 3, 5, "a"}, {1, 4, 6, "a"}}, []int64{5, 1}},
		{"out of order: the older point is dropped",
			[]cumulativeSum{{1, 2, 5, "a"}, {1, 4, 9, "a"}, {1, 3, 7, "a"}}, []int64{5, 4}},
		{"restart (new start time, smaller value): sent whole",
			[]cumulativeSum{{1, 2, 5, "a"}, {1, 3, 8, "a"}, {4, 5, 2, "a"}, {4, 6, 3, "a"}}, []int64{5, 3, 2, 1}},
		{"series are independent",
			[]cumulativeSum{{1, 2, 5, "a"}, {1, 2, 1, "b"}, {1, 3, 6, "a"}, {1, 3, 4, "b"}}, []int64{5, 1, 1, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conv := newDeltaConverter(100)
			t0 := conv.started.AsTime()
			stamp := func(d time.Duration) pcommon.Timestamp { return pcommon.NewTimestampFromTime(t0.Add(d * time.Second)) }
			var got []int64
			for _, p := range tt.points {
				md := counterPoint(stamp(p.start), stamp(p.at), p.value, p.series)
				conv.convert(md)
				if md.DataPointCount() == 0 {
					continue
				}
				m := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0)
				if m.Sum().AggregationTemporality() != pmetric.AggregationTemporalityDelta {
					t.Fatalf("temporality %v", m.Sum().AggregationTemporality())
				}
				got = append(got, m.Sum().DataPoints().At(0).IntValue())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("sent %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDeltaLeavesOtherPointsAlone(t *testing.T) {
	md := pmetric.NewMetrics()
	ms := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()
	updown := ms.AppendEmpty() // up-down counter: stays cumulative, as with Microsoft's exporter
	updown.SetName("inflight")
	updown.SetEmptySum().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	updown.Sum().DataPoints().AppendEmpty().SetIntValue(3)
	delta := ms.AppendEmpty()
	delta.SetName("requests")
	delta.SetEmptySum().SetIsMonotonic(true)
	delta.Sum().SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	delta.Sum().DataPoints().AppendEmpty().SetIntValue(4)
	gauge := ms.AppendEmpty()
	gauge.SetName("queue")
	gauge.SetEmptyGauge().DataPoints().AppendEmpty().SetDoubleValue(1.5)

	conv := newDeltaConverter(100)
	for range 2 {
		got := pmetric.NewMetrics()
		md.CopyTo(got)
		conv.convert(got)
		if !reflect.DeepEqual(got, md) {
			t.Fatal("gauges, delta sums and up-down counters must pass unchanged")
		}
	}
}

func TestDeltaHistogram(t *testing.T) {
	conv := newDeltaConverter(100)
	t0 := conv.started.AsTime()
	type hist struct {
		count    uint64
		sum      float64
		min, max float64
	}
	type sent struct {
		count          uint64
		sum            float64
		hasMin, hasMax bool
		min, max       float64
	}
	var got []sent
	for i, h := range []hist{{3, 59.75, 7.25, 40}, {3, 59.75, 7.25, 40}, {5, 159.75, 7.25, 90}, {6, 161.75, 2, 90}} {
		md := pmetric.NewMetrics()
		m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName("latency")
		m.SetEmptyHistogram().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		dp := m.Histogram().DataPoints().AppendEmpty()
		dp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Second)))
		dp.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Duration(2+i) * time.Second)))
		dp.SetCount(h.count)
		dp.SetSum(h.sum)
		dp.SetMin(h.min)
		dp.SetMax(h.max)
		dp.BucketCounts().FromRaw([]uint64{1, h.count - 1})
		dp.ExplicitBounds().FromRaw([]float64{10})
		conv.convert(md)
		if md.DataPointCount() == 0 {
			continue
		}
		p := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Histogram().DataPoints().At(0)
		got = append(got, sent{p.Count(), p.Sum(), p.HasMin(), p.HasMax(), p.Min(), p.Max()})
	}
	want := []sent{
		{3, 59.75, true, true, 7.25, 40}, // whole: the series started after us
		// the second point has no new recording: not sent
		{2, 100, false, true, 0, 90}, // the max moved: reached in this interval; the min did not
		{1, 2, true, false, 2, 0},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("sent %+v\nwant %+v", got, want)
	}
}

func TestDeltaSeriesBounded(t *testing.T) {
	conv := newDeltaConverter(2)
	for _, series := range []string{"a", "b", "c", "a"} {
		conv.convert(counterPoint(0, 1, 1, series))
	}
	if len(conv.series) != 2 || conv.lru.Len() != 2 {
		t.Fatalf("%d series kept, want 2", len(conv.series))
	}
	if _, ok := conv.series[conv.lru.Front().Value.(*seriesState).key]; !ok {
		t.Fatal("lru and map disagree")
	}
}

// TestMetricsExporterConvertsBeforeTheQueue: the factory's metrics exporter
// converts cumulative sums, so a counter +5 then +2 arrives as 5, 2.
func TestMetricsExporterConvertsBeforeTheQueue(t *testing.T) {
	f := newFakeIngestion(t)
	exp, err := NewFactory().CreateMetrics(context.Background(), exportertest.NewNopSettings(metadata.Type), testConfig(f.srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Capabilities().MutatesData {
		t.Fatal("the converter changes the data: MutatesData must be true")
	}
	if err := exp.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = exp.Shutdown(context.Background()) }()
	start := time.Now()
	for i, v := range []int64{5, 7} {
		md := counterPoint(pcommon.NewTimestampFromTime(start), pcommon.NewTimestampFromTime(start.Add(time.Duration(i+1)*time.Second)), v, "churn")
		if err := exp.ConsumeMetrics(context.Background(), md); err != nil {
			t.Fatal(err)
		}
	}
	var values []string
	for _, req := range f.requests() {
		values = append(values, describeEnvs(req)...)
	}
	if !reflect.DeepEqual(values, []string{"metric:requests=5", "metric:requests=2"}) {
		t.Fatalf("sent %v", values)
	}
}
