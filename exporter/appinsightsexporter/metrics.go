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
	at := origin{r, s, i, 0}
	name := truncate(m.Name(), maxNameLength)
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		encodePoints(e, at, name, m.Gauge().DataPoints(), numberValue, base)
	case pmetric.MetricTypeSum:
		encodePoints(e, at, name, m.Sum().DataPoints(), numberValue, base)
	case pmetric.MetricTypeHistogram:
		encodePoints(e, at, name, m.Histogram().DataPoints(), histogramValue, base)
	case pmetric.MetricTypeExponentialHistogram:
		encodePoints(e, at, name, m.ExponentialHistogram().DataPoints(), exponentialHistogramValue, base)
	case pmetric.MetricTypeSummary:
		encodePoints(e, at, name, m.Summary().DataPoints(), summaryValue, base)
	}
}

// dataPoint is what every pmetric data point type has in common.
type dataPoint interface {
	Flags() pmetric.DataPointFlags
	Attributes() pcommon.Map
	Timestamp() pcommon.Timestamp
}

// dataPoints is a pmetric data point slice.
type dataPoints[P dataPoint] interface {
	Len() int
	At(int) P
}

// encodePoints appends one envelope per recorded point of dps (the points of
// the metric at), with the value point reads from it.
func encodePoints[P dataPoint](e *encoder, at origin, name string, dps dataPoints[P], point func(P) metricPoint, base map[string]string) {
	for j := 0; j < dps.Len(); j++ {
		p := dps.At(j)
		if p.Flags().NoRecordedValue() {
			continue
		}
		at.j = j
		e.encodePoint(at, name, point(p), p.Attributes(), p.Timestamp(), base)
	}
}

// encodePoint appends the envelope of one point, or skips it when a value
// is not finite.
func (e *encoder) encodePoint(at origin, name string, p metricPoint, attrs pcommon.Map, t pcommon.Timestamp, base map[string]string) {
	if !finite(p.Value) || p.Min != nil && !finite(*p.Min) || p.Max != nil && !finite(*p.Max) {
		e.skipped++
		return
	}
	p.Name = name
	p.Kind = "Aggregation"
	d := &metricData{Ver: dataVersion, Metrics: []metricPoint{p}, Properties: properties(attrs, nil)}
	e.addOrSkip(at, kindMetric, d, t.AsTime(), copyTags(base, 0))
}

func numberValue(p pmetric.NumberDataPoint) metricPoint {
	v := p.DoubleValue()
	if p.ValueType() == pmetric.NumberDataPointValueTypeInt {
		v = float64(p.IntValue())
	}
	return metricPoint{Value: v, Count: ptr(int64(1))}
}

func histogramValue(p pmetric.HistogramDataPoint) metricPoint {
	return aggregation(p.Count(), p.Sum(), p.HasMin(), p.Min(), p.HasMax(), p.Max())
}

func exponentialHistogramValue(p pmetric.ExponentialHistogramDataPoint) metricPoint {
	return aggregation(p.Count(), p.Sum(), p.HasMin(), p.Min(), p.HasMax(), p.Max())
}

// summaryValue takes min and max from the 0 and 1 quantiles, when present.
func summaryValue(p pmetric.SummaryDataPoint) metricPoint {
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
	return aggregation(p.Count(), p.Sum(), hasMin, minV, hasMax, maxV)
}

func aggregation(count uint64, sum float64, hasMin bool, minV float64, hasMax bool, maxV float64) metricPoint {
	p := metricPoint{Value: sum, Count: ptr(int64(count))}
	if hasMin {
		p.Min = ptr(minV)
	}
	if hasMax {
		p.Max = ptr(maxV)
	}
	return p
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func ptr[T any](v T) *T { return &v }
