package modeldatastats

import (
	"math"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/otelcol-modeldata/otelcol-modeldata/connector/modeldatastats/internal/metadata"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// Metric names and attributes (README.md documents them). Drift scores and
// rates carry no unit, so Prometheus exports them under these names (a unit
// of "1" would add a _ratio suffix).
const (
	metricRows        = "modeldata.feature.rows"
	metricNulls       = "modeldata.feature.nulls"
	metricValues      = "modeldata.feature.values"
	metricDistrib     = "modeldata.feature.distribution"
	metricTopValues   = "modeldata.feature.top_values"
	metricDistinct    = "modeldata.feature.distinct"
	metricPSI         = "modeldata.feature.drift.psi"
	metricJS          = "modeldata.feature.drift.jensen_shannon"
	metricWasserstein = "modeldata.feature.drift.wasserstein"
	metricOutOfRange  = "modeldata.feature.out_of_bounds.rate"
	metricTypeErrors  = "modeldata.feature.type_error.rate"
	metricCut         = "modeldata.stats.cut"

	attrFeature   = "modeldata.feature.name"
	attrValueType = "modeldata.value.type"
	attrValue     = "modeldata.feature.value"
	attrLimit     = "modeldata.stats.limit"
)

// metricSet holds the metrics of one emitted window, each created on first use.
type metricSet struct {
	sm         pmetric.ScopeMetrics
	byName     map[string]pmetric.Metric
	start, end pcommon.Timestamp
}

func (s *metricSet) metric(name, unit, desc string, kind pmetric.MetricType) pmetric.Metric {
	if m, ok := s.byName[name]; ok {
		return m
	}
	m := s.sm.Metrics().AppendEmpty()
	m.SetName(name)
	m.SetUnit(unit)
	m.SetDescription(desc)
	switch kind {
	case pmetric.MetricTypeSum:
		m.SetEmptySum().SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
		m.Sum().SetIsMonotonic(true)
	case pmetric.MetricTypeGauge:
		m.SetEmptyGauge()
	case pmetric.MetricTypeExponentialHistogram:
		m.SetEmptyExponentialHistogram().SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	}
	s.byName[name] = m
	return m
}

func (s *metricSet) sum(name, unit, desc string, attrs pcommon.Map, v uint64) pcommon.Map {
	dp := s.metric(name, unit, desc, pmetric.MetricTypeSum).Sum().DataPoints().AppendEmpty()
	dp.SetStartTimestamp(s.start)
	dp.SetTimestamp(s.end)
	dp.SetIntValue(int64(v))
	attrs.CopyTo(dp.Attributes())
	return dp.Attributes()
}

func (s *metricSet) gauge(name, unit, desc string, attrs pcommon.Map, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	dp := s.metric(name, unit, desc, pmetric.MetricTypeGauge).Gauge().DataPoints().AppendEmpty()
	dp.SetStartTimestamp(s.start)
	dp.SetTimestamp(s.end)
	dp.SetDoubleValue(v)
	attrs.CopyTo(dp.Attributes())
}

// buildMetrics turns one window into metrics, models and features in a
// stable order (model, version, designation; features as first seen).
func buildMetrics(models map[modelKey]*modelStats, cut map[string]uint64, topK int, start, end time.Time) pmetric.Metrics {
	md := pmetric.NewMetrics()
	sm := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(metadata.ScopeName)
	s := &metricSet{sm: sm, byName: map[string]pmetric.Metric{},
		start: pcommon.NewTimestampFromTime(start), end: pcommon.NewTimestampFromTime(end)}

	keys := make([]modelKey, 0, len(models))
	for k := range models {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b modelKey) int {
		return strings.Compare(a.model+"\x00"+a.version+"\x00"+a.designation, b.model+"\x00"+b.version+"\x00"+b.designation)
	})
	attrs := pcommon.NewMap()
	for _, k := range keys {
		for _, fs := range models[k].order {
			attrs.Clear()
			attrs.PutStr(contract.AttrModelName, k.model)
			attrs.PutStr(contract.AttrModelVersion, k.version)
			attrs.PutStr(contract.AttrDesignation, k.designation)
			attrs.PutStr(attrFeature, fs.name)
			addFeature(s, attrs, fs, topK)
		}
	}
	for _, limit := range []string{cutModels, cutFeatures, cutValues} {
		if n := cut[limit]; n > 0 {
			attrs.Clear()
			attrs.PutStr(attrLimit, limit)
			s.sum(metricCut, "{value}", "Rows (models), cells (features) or categorical values (values) left out of the statistics by a cardinality limit.", attrs, n)
		}
	}
	return md
}

func addFeature(s *metricSet, attrs pcommon.Map, fs *featureStats, topK int) {
	s.sum(metricRows, "{row}", "Rows that carried the feature (a value or a declared column left empty).", attrs, fs.rows)
	s.sum(metricNulls, "{row}", "Rows where the feature was null, empty, NaN or missing.", attrs, fs.nulls)
	for t, n := range fs.types {
		if n > 0 {
			s.sum(metricValues, "{value}", "Non-null values by value type.", attrs, n).PutStr(attrValueType, valueTypeNames[t])
		}
	}
	if fs.hist != nil {
		dp := s.metric(metricDistrib, "", "Distribution of the numeric values (base-2 exponential histogram).",
			pmetric.MetricTypeExponentialHistogram).ExponentialHistogram().DataPoints().AppendEmpty()
		dp.SetStartTimestamp(s.start)
		dp.SetTimestamp(s.end)
		attrs.CopyTo(dp.Attributes())
		fs.hist.copyTo(dp)
	}
	if len(fs.values) > 0 {
		top, other := fs.topValues(topK)
		for _, v := range top {
			s.sum(metricTopValues, "{value}", "Counts of the most frequent categorical values; the rest as __other__.", attrs, fs.values[v]).PutStr(attrValue, v)
		}
		if other > 0 {
			s.sum(metricTopValues, "{value}", "", attrs, other).PutStr(attrValue, OtherValue)
		}
	}
	if len(fs.values) > 0 {
		s.gauge(metricDistinct, "{value}", "Distinct categorical values in the window: exact up to max_tracked_values, then estimated (HyperLogLog, precision 14).", attrs, fs.distinctEstimate())
	}
	if d, ok := fs.drift(); ok {
		s.gauge(metricOutOfRange, "", "Share of the window's values outside the baseline's range (numeric) or set (categorical).", attrs, d.outOfRange)
		s.gauge(metricTypeErrors, "", "Share of the window's values that are not of the baseline's type.", attrs, d.typeErrors)
		if fs.compared > fs.typeErrors {
			s.gauge(metricPSI, "", "Population stability index against the baseline.", attrs, d.psi)
			s.gauge(metricJS, "", "Jensen-Shannon distance (base 2) against the baseline.", attrs, d.js)
		}
		if d.hasWasserstein {
			s.gauge(metricWasserstein, "", "Wasserstein distance to the baseline, divided by the baseline's standard deviation.", attrs, d.wasserstein)
		}
	}
}
