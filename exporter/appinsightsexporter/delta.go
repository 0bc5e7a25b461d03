package appinsightsexporter

import (
	"container/list"
	"context"
	"sort"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// Application Insights adds up what it receives, so it must get deltas
// (Microsoft's exporter forces delta temporality on the SDK), while OTLP SDKs
// send cumulative values by default. deltaMetrics converts before the
// sending queue, so that a retry or a persisted batch resends the same
// deltas instead of computing them again.
type deltaMetrics struct {
	exporter.Metrics
	conv *deltaConverter
}

func (d *deltaMetrics) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: true}
}

func (d *deltaMetrics) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	d.conv.convert(md)
	if md.DataPointCount() == 0 {
		return nil
	}
	return d.Metrics.ConsumeMetrics(ctx, md)
}

// deltaConverter keeps the last cumulative point of each series (resource,
// scope, metric, point attributes), at most maxSeries of them: beyond that
// the series seen least recently is forgotten, and its next point only sets
// a new baseline. It turns, in place:
//   - monotonic cumulative sums into delta sums (non-monotonic ones, the
//     up-down counters, stay cumulative: Microsoft's exporter keeps those
//     cumulative too);
//   - cumulative histograms, exponential histograms and summaries into
//     their count and sum since the previous point; min and max are kept
//     only when they moved in the interval (else unknown, left out); bucket
//     counts are dropped, as Application Insights does not take them.
//
// The first point of a series is sent whole when the series started after
// the exporter (its start time says so), else it is only the baseline. A
// point older than the last one seen is dropped (its increase is already in
// a later delta); a point with a new start time or a smaller value is a
// restart and is sent whole; a point with no increase is dropped, as
// Microsoft's exporter sends nothing for an interval without recordings.
type deltaConverter struct {
	mu        sync.Mutex
	started   pcommon.Timestamp
	maxSeries int
	series    map[string]*list.Element // of *seriesState
	lru       list.List                // front: most recently seen
}

type seriesState struct {
	key         string
	start, last pcommon.Timestamp
	value       float64 // sums: the cumulative value; the rest: the sum
	count       uint64
	min, max    float64
	hasMinMax   bool
}

func newDeltaConverter(maxSeries int) *deltaConverter {
	return &deltaConverter{
		started:   pcommon.NewTimestampFromTime(time.Now()),
		maxSeries: maxSeries,
		series:    map[string]*list.Element{},
	}
}

// point is what the converter reads of any cumulative point, and how it
// writes the delta back.
type point struct {
	isSum          bool
	start, ts      pcommon.Timestamp
	value          float64 // sums
	count          uint64  // the others
	sum            float64
	min, max       float64
	hasMin, hasMax bool
	setStart       func(pcommon.Timestamp)
	setValue       func(float64)
	setCount       func(uint64, float64)
	setMinMax      func(keepMin, keepMax bool) // nil for summaries
}

func (c *deltaConverter) convert(md pmetric.Metrics) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rms := md.ResourceMetrics()
	for r := 0; r < rms.Len(); r++ {
		resKey := attrsKey(rms.At(r).Resource().Attributes())
		sms := rms.At(r).ScopeMetrics()
		for s := 0; s < sms.Len(); s++ {
			scope := sms.At(s).Scope()
			prefix := resKey + "\x01" + scope.Name() + "\x01" + scope.Version() + "\x01"
			sms.At(s).Metrics().RemoveIf(func(m pmetric.Metric) bool {
				c.convertMetric(prefix+m.Name()+"\x01"+m.Type().String()+"\x01", m)
				return dataPointCount(m) == 0
			})
		}
	}
}

func (c *deltaConverter) convertMetric(prefix string, m pmetric.Metric) {
	switch m.Type() {
	case pmetric.MetricTypeSum:
		sum := m.Sum()
		if sum.AggregationTemporality() != pmetric.AggregationTemporalityCumulative || !sum.IsMonotonic() {
			return
		}
		sum.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
		sum.DataPoints().RemoveIf(func(p pmetric.NumberDataPoint) bool {
			v := p.DoubleValue()
			isInt := p.ValueType() == pmetric.NumberDataPointValueTypeInt
			if isInt {
				v = float64(p.IntValue())
			}
			return !c.delta(prefix+attrsKey(p.Attributes()), point{
				start: p.StartTimestamp(), ts: p.Timestamp(), value: v, isSum: true,
				setStart: p.SetStartTimestamp,
				setValue: func(d float64) {
					if isInt {
						p.SetIntValue(int64(d))
					} else {
						p.SetDoubleValue(d)
					}
				},
			})
		})
	case pmetric.MetricTypeHistogram:
		h := m.Histogram()
		if h.AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
			return
		}
		h.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
		h.DataPoints().RemoveIf(func(p pmetric.HistogramDataPoint) bool {
			p.BucketCounts().FromRaw(nil)
			p.ExplicitBounds().FromRaw(nil)
			return !c.delta(prefix+attrsKey(p.Attributes()), histogramPoint(p))
		})
	case pmetric.MetricTypeExponentialHistogram:
		h := m.ExponentialHistogram()
		if h.AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
			return
		}
		h.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
		h.DataPoints().RemoveIf(func(p pmetric.ExponentialHistogramDataPoint) bool {
			p.Positive().BucketCounts().FromRaw(nil)
			p.Negative().BucketCounts().FromRaw(nil)
			p.SetZeroCount(0)
			return !c.delta(prefix+attrsKey(p.Attributes()), histogramPoint(p))
		})
	case pmetric.MetricTypeSummary:
		m.Summary().DataPoints().RemoveIf(func(p pmetric.SummaryDataPoint) bool {
			return !c.delta(prefix+attrsKey(p.Attributes()), point{
				start: p.StartTimestamp(), ts: p.Timestamp(), count: p.Count(), sum: p.Sum(),
				setStart: p.SetStartTimestamp,
				setCount: func(n uint64, s float64) { p.SetCount(n); p.SetSum(s) },
			})
		})
	}
}

// histogram is what explicit and exponential histogram points have in common.
type histogram interface {
	StartTimestamp() pcommon.Timestamp
	Timestamp() pcommon.Timestamp
	Count() uint64
	Sum() float64
	Min() float64
	Max() float64
	HasMin() bool
	HasMax() bool
	SetStartTimestamp(pcommon.Timestamp)
	SetCount(uint64)
	SetSum(float64)
	RemoveMin()
	RemoveMax()
}

func histogramPoint(p histogram) point {
	return point{
		start: p.StartTimestamp(), ts: p.Timestamp(), count: p.Count(), sum: p.Sum(),
		min: p.Min(), max: p.Max(), hasMin: p.HasMin(), hasMax: p.HasMax(),
		setStart: p.SetStartTimestamp,
		setCount: func(n uint64, s float64) { p.SetCount(n); p.SetSum(s) },
		setMinMax: func(keepMin, keepMax bool) {
			if !keepMin {
				p.RemoveMin()
			}
			if !keepMax {
				p.RemoveMax()
			}
		},
	}
}

// delta updates the series' state with p and writes p's delta into it; it
// reports whether the point is to be sent.
func (c *deltaConverter) delta(key string, p point) bool {
	el, known := c.series[key]
	if !known {
		state := &seriesState{key: key}
		c.remember(state)
		state.update(p)
		// Sent whole only when the whole series is known to have been seen.
		return p.start != 0 && p.start >= c.started && p.nonZero()
	}
	c.lru.MoveToFront(el)
	state := el.Value.(*seriesState)
	if p.ts <= state.last {
		return false
	}
	restart := p.start != 0 && p.start != state.start ||
		p.isSum && p.value < state.value || !p.isSum && p.count < state.count
	prev := *state
	state.update(p)
	if restart {
		return p.nonZero()
	}
	p.setStart(prev.last)
	if p.isSum {
		if p.value == prev.value {
			return false
		}
		p.setValue(p.value - prev.value)
		return true
	}
	if p.count == prev.count {
		return false
	}
	p.setCount(p.count-prev.count, p.sum-prev.value)
	if p.setMinMax != nil {
		// A lifetime min or max that moved was reached in this interval.
		p.setMinMax(p.hasMin && prev.hasMinMax && p.min < prev.min, p.hasMax && prev.hasMinMax && p.max > prev.max)
	}
	return true
}

func (p point) nonZero() bool {
	if p.isSum {
		return p.value != 0
	}
	return p.count != 0
}

func (s *seriesState) update(p point) {
	s.start, s.last = p.start, p.ts
	if p.isSum {
		s.value = p.value
		return
	}
	s.value, s.count = p.sum, p.count
	s.min, s.max, s.hasMinMax = p.min, p.max, p.hasMin && p.hasMax
}

// remember adds a series, forgetting the least recently seen one when full.
func (c *deltaConverter) remember(state *seriesState) {
	if len(c.series) >= c.maxSeries {
		if oldest := c.lru.Back(); oldest != nil {
			delete(c.series, oldest.Value.(*seriesState).key)
			c.lru.Remove(oldest)
		}
	}
	c.series[state.key] = c.lru.PushFront(state)
}

// attrsKey is a canonical text of a map: its pairs sorted by key.
func attrsKey(m pcommon.Map) string {
	if m.Len() == 0 {
		return ""
	}
	keys := make([]string, 0, m.Len())
	m.Range(func(k string, _ pcommon.Value) bool {
		keys = append(keys, k)
		return true
	})
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		v, _ := m.Get(k)
		b.WriteString(k)
		b.WriteByte('\x00')
		b.WriteString(v.Type().String())
		b.WriteByte('\x00')
		b.WriteString(v.AsString())
		b.WriteByte('\x00')
	}
	return b.String()
}
