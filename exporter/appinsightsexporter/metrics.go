package appinsightsexporter

import (
	"math"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// encodeMetrics appends one MetricData envelope (with one point) per data
// point, as Microsoft's exporter writes them: kind "Aggregation"; gauges and
// sums with the value and count 1; histograms, exponential histograms and
// summaries with the sum as value, the count, and min and max when known.
// Cumulative sums and histograms arrive here already turned into deltas
// (see delta.go). Points with no finite value are skipped.
func (e *encoder) encodeMetrics(md pmetric.Metrics) {
	rms := md.ResourceMetrics()
	for r := 0; r < rms.Len(); r++ {
		base := e.resourceTags(rms.At(r).Resource())
		sms := rms.At(r).ScopeMetrics()
		for s := 0; s < sms.Len(); s++ {
			ms := sms.At(s).Metrics()
			for i := 0; i < ms.Len(); i++ {
				e.encodeMetric(r, s, i, ms.At(i), base)
			}
		}
	}
}

func (e *encoder) encodeMetric(r, s, i int, m pmetric.Metric, base map[string]string) {
	emit := func(j int, p metricPoint, attrs pcommon.Map, t pcommon.Timestamp) {
		if !finite(p.Value) || p.Min != nil && !finite(*p.Min) || p.Max != nil && !finite(*p.Max) {
			e.skipped++
			return
		}
		p.Name = truncate(m.Name(), maxNameLength)
		p.Kind = "Aggregation"
		d := &metricData{Ver: dataVersion, Metrics: []metricPoint{p}, Properties: properties(attrs, nil)}
		e.addOrSkip(origin{r, s, i, j}, kindMetric, d, t.AsTime(), copyTags(base, 0))
	}
	number := func(dps pmetric.NumberDataPointSlice) {
		for j := 0; j < dps.Len(); j++ {
			p := dps.At(j)
			if p.Flags().NoRecordedValue() {
				continue
			}
			v := p.DoubleValue()
			if p.ValueType() == pmetric.NumberDataPointValueTypeInt {
				v = float64(p.IntValue())
			}
			emit(j, metricPoint{Value: v, Count: ptr(int64(1))}, p.Attributes(), p.Timestamp())
		}
	}
	aggregation := func(count uint64, sum float64, hasMin bool, minV float64, hasMax bool, maxV float64) metricPoint {
		p := metricPoint{Value: sum, Count: ptr(int64(count))}
		if hasMin {
			p.Min = ptr(minV)
		}
		if hasMax {
			p.Max = ptr(maxV)
		}
		return p
	}
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		number(m.Gauge().DataPoints())
	case pmetric.MetricTypeSum:
		number(m.Sum().DataPoints())
	case pmetric.MetricTypeHistogram:
		dps := m.Histogram().DataPoints()
		for j := 0; j < dps.Len(); j++ {
			p := dps.At(j)
			if p.Flags().NoRecordedValue() {
				continue
			}
			emit(j, aggregation(p.Count(), p.Sum(), p.HasMin(), p.Min(), p.HasMax(), p.Max()), p.Attributes(), p.Timestamp())
		}
	case pmetric.MetricTypeExponentialHistogram:
		dps := m.ExponentialHistogram().DataPoints()
		for j := 0; j < dps.Len(); j++ {
			p := dps.At(j)
			if p.Flags().NoRecordedValue() {
				continue
			}
			emit(j, aggregation(p.Count(), p.Sum(), p.HasMin(), p.Min(), p.HasMax(), p.Max()), p.Attributes(), p.Timestamp())
		}
	case pmetric.MetricTypeSummary:
		dps := m.Summary().DataPoints()
		for j := 0; j < dps.Len(); j++ {
			p := dps.At(j)
			if p.Flags().NoRecordedValue() {
				continue
			}
			var hasMin, hasMax bool
			var minV, maxV float64
			qs := p.QuantileValues()
			for q := 0; q < qs.Len(); q++ {
				switch qs.At(q).Quantile() {
				case 0:
					hasMin, minV = true, qs.At(q).Value()
				case 1:
					hasMax, maxV = true, qs.At(q).Value()
				}
			}
			emit(j, aggregation(p.Count(), p.Sum(), hasMin, minV, hasMax, maxV), p.Attributes(), p.Timestamp())
		}
	}
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func ptr[T any](v T) *T { return &v }
