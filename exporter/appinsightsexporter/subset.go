package appinsightsexporter

import (
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/logsubset"
)

// The retry copies hold exactly the items whose envelopes are to be sent
// again: encoding a copy makes exactly those envelopes, no more.

type itemKey struct{ r, s, i int }

// spanParts are the envelopes of one span to send again.
type spanParts struct {
	primary bool         // the request or dependency
	events  map[int]bool // event indexes
}

// tracesSubset copies the spans of td named by failed. A span keeps only its
// failed events; one whose request or dependency was accepted is marked so
// that its request or dependency is not encoded again.
func tracesSubset(td ptrace.Traces, failed []origin) ptrace.Traces {
	want := map[itemKey]*spanParts{}
	for _, o := range failed {
		k := itemKey{o.r, o.s, o.i}
		p := want[k]
		if p == nil {
			p = &spanParts{events: map[int]bool{}}
			want[k] = p
		}
		if o.j < 0 {
			p.primary = true
		} else {
			p.events[o.j] = true
		}
	}
	out := ptrace.NewTraces()
	td.CopyTo(out)
	r := -1
	out.ResourceSpans().RemoveIf(func(rs ptrace.ResourceSpans) bool {
		r++
		s := -1
		rs.ScopeSpans().RemoveIf(func(ss ptrace.ScopeSpans) bool {
			s++
			i := -1
			ss.Spans().RemoveIf(func(span ptrace.Span) bool {
				i++
				p := want[itemKey{r, s, i}]
				if p == nil {
					return true
				}
				if !p.primary {
					span.Attributes().PutBool(resendEventsOnly, true)
				}
				j := -1
				span.Events().RemoveIf(func(ptrace.SpanEvent) bool {
					j++
					return !p.events[j]
				})
				return false
			})
			return ss.Spans().Len() == 0
		})
		return rs.ScopeSpans().Len() == 0
	})
	return out
}

// logsSubset copies the log records of ld named by failed.
func logsSubset(ld plog.Logs, failed []origin) plog.Logs {
	refs := make([]logsubset.Ref, len(failed))
	for k, o := range failed {
		refs[k] = logsubset.Ref{Resource: o.r, Scope: o.s, Record: o.i}
	}
	return logsubset.Copy(ld, refs)
}

// metricsSubset copies the data points of md named by failed.
func metricsSubset(md pmetric.Metrics, failed []origin) pmetric.Metrics {
	want := map[origin]bool{}
	for _, o := range failed {
		want[o] = true
	}
	out := pmetric.NewMetrics()
	md.CopyTo(out)
	r := -1
	out.ResourceMetrics().RemoveIf(func(rm pmetric.ResourceMetrics) bool {
		r++
		s := -1
		rm.ScopeMetrics().RemoveIf(func(sm pmetric.ScopeMetrics) bool {
			s++
			i := -1
			sm.Metrics().RemoveIf(func(m pmetric.Metric) bool {
				i++
				j := -1
				drop := func() bool { j++; return !want[origin{r, s, i, j}] }
				switch m.Type() {
				case pmetric.MetricTypeGauge:
					m.Gauge().DataPoints().RemoveIf(func(pmetric.NumberDataPoint) bool { return drop() })
				case pmetric.MetricTypeSum:
					m.Sum().DataPoints().RemoveIf(func(pmetric.NumberDataPoint) bool { return drop() })
				case pmetric.MetricTypeHistogram:
					m.Histogram().DataPoints().RemoveIf(func(pmetric.HistogramDataPoint) bool { return drop() })
				case pmetric.MetricTypeExponentialHistogram:
					m.ExponentialHistogram().DataPoints().RemoveIf(func(pmetric.ExponentialHistogramDataPoint) bool { return drop() })
				case pmetric.MetricTypeSummary:
					m.Summary().DataPoints().RemoveIf(func(pmetric.SummaryDataPoint) bool { return drop() })
				}
				return j < 0 || dataPointCount(m) == 0
			})
			return sm.Metrics().Len() == 0
		})
		return rm.ScopeMetrics().Len() == 0
	})
	return out
}

func dataPointCount(m pmetric.Metric) int {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return m.Gauge().DataPoints().Len()
	case pmetric.MetricTypeSum:
		return m.Sum().DataPoints().Len()
	case pmetric.MetricTypeHistogram:
		return m.Histogram().DataPoints().Len()
	case pmetric.MetricTypeExponentialHistogram:
		return m.ExponentialHistogram().DataPoints().Len()
	case pmetric.MetricTypeSummary:
		return m.Summary().DataPoints().Len()
	}
	return 0
}
