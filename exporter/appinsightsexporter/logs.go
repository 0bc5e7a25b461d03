package appinsightsexporter

import (
	"github.com/microsoft/ApplicationInsights-Go/appinsights/contracts"
	"go.opentelemetry.io/collector/pdata/plog"
)

// encodeLogs appends one MessageData envelope per log record.
func (e *encoder) encodeLogs(ld plog.Logs) {
	rls := ld.ResourceLogs()
	for r := 0; r < rls.Len(); r++ {
		base := e.resourceTags(rls.At(r).Resource())
		sls := rls.At(r).ScopeLogs()
		for s := 0; s < sls.Len(); s++ {
			lrs := sls.At(s).LogRecords()
			for i := 0; i < lrs.Len(); i++ {
				lr := lrs.At(i)
				d := contracts.NewMessageData()
				d.Message = lr.Body().AsString()
				d.SeverityLevel = severityLevel(lr.SeverityNumber())
				d.Properties = properties(lr.Attributes())
				t := lr.Timestamp()
				if t == 0 {
					t = lr.ObservedTimestamp()
				}
				e.addOrSkip(origin{r, s, i, -1}, d, t.AsTime(), withTrace(base, lr.TraceID(), lr.SpanID()))
			}
		}
	}
}

// severityLevel maps the OpenTelemetry severity number ranges to the five
// Application Insights levels: TRACE and DEBUG (1-8) Verbose, INFO (9-12)
// Information, WARN (13-16) Warning, ERROR (17-20) Error, FATAL (21-24)
// Critical; an unspecified severity is Information.
func severityLevel(n plog.SeverityNumber) contracts.SeverityLevel {
	switch {
	case n >= plog.SeverityNumberFatal:
		return contracts.Critical
	case n >= plog.SeverityNumberError:
		return contracts.Error
	case n >= plog.SeverityNumberWarn:
		return contracts.Warning
	case n >= plog.SeverityNumberInfo:
		return contracts.Information
	case n >= plog.SeverityNumberTrace:
		return contracts.Verbose
	}
	return contracts.Information
}
