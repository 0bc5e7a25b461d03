package appinsightsexporter

import (
	"math"

	"github.com/microsoft/ApplicationInsights-Go/appinsights/contracts"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// encodeMetrics appends one MetricData envelope (with one DataPoint) per
// data point: gauges and sums as a Measurement of the value; histograms,
// exponential histograms and summaries as an Aggregation (count, sum as
// value, min and max when known). Points with no finite value are skipped.
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
	emit := func(j int, dp *contracts.DataPoint, attrs pcommon.Map, t pcommon.Timestamp) {
		if !finite(dp.Value) || !finite(dp.Min) || !finite(dp.Max) {
			e.skipped++
			return
		}
		dp.Name = m.Name()
		d := contracts.NewMetricData()
		d.Metrics = []*contracts.DataPoint{dp}
		d.Properties = properties(attrs)
		e.addOrSkip(origin{r, s, i, j}, d, t.AsTime(), copyTags(base))
	}
	number := func(dps pmetric.NumberDataPointSlice) {
		for j := 0; j < dps.Len(); j++ {
			p := dps.At(j)
			if p.Flags().NoRecordedValue() {
				continue
			}
			dp := contracts.NewDataPoint()
			dp.Kind = contracts.Measurement
			dp.Count = 1
			if p.ValueType() == pmetric.NumberDataPointValueTypeInt {
				dp.Value = float64(p.IntValue())
			} else {
				dp.Value = p.DoubleValue()
			}
			emit(j, dp, p.Attributes(), p.Timestamp())
		}
	}
	aggregation := func(count uint64, sum float64, hasMin bool, minV float64, hasMax bool, maxV float64) *contracts.DataPoint {
		dp := contracts.NewDataPoint()
		dp.Kind = contracts.Aggregation
		dp.Count = int(count)
		dp.Value = sum
		// Without min/max the mean is the best bound AI can show.
		mean := 0.0
		if count > 0 {
			mean = sum / float64(count)
		}
		dp.Min, dp.Max = mean, mean
		if hasMin {
			dp.Min = minV
		}
		if hasMax {
			dp.Max = maxV
		}
		return dp
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

func copyTags(base map[string]string) map[string]string {
	tags := make(map[string]string, len(base))
	for k, v := range base {
		tags[k] = v
	}
	return tags
}
