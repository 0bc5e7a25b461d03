package appinsightsexporter

import (
	"go.opentelemetry.io/collector/pdata/plog"
)

// encodeLogs appends one envelope per log record: ExceptionData when it
// carries exception.type (Python's logger.exception, and every SDK's
// exception logging), EventData when it carries microsoft.custom_event.name,
// else MessageData.
func (e *encoder) encodeLogs(ld plog.Logs) {
	rls := ld.ResourceLogs()
	for r := 0; r < rls.Len(); r++ {
		base := e.resourceTags(rls.At(r).Resource())
		sls := rls.At(r).ScopeLogs()
		for s := 0; s < sls.Len(); s++ {
			lrs := sls.At(s).LogRecords()
			for i := 0; i < lrs.Len(); i++ {
				e.encodeLog(origin{r, s, i, -1}, lrs.At(i), base)
			}
		}
	}
}

func (e *encoder) encodeLog(o origin, lr plog.LogRecord, base map[string]string) {
	attrs := lr.Attributes()
	tags := withTrace(base, lr.TraceID(), lr.SpanID())
	putTag(tags, tagOperationName, truncate(str(attrs, tagOperationName), maxNameLength))
	userTags(tags, attrs)
	props := logProperties(attrs)
	t := lr.Timestamp()
	if t == 0 {
		t = lr.ObservedTimestamp()
	}
	switch {
	case str(attrs, "exception.type") != "":
		// Without exception.message the log body is the best message there is.
		d := &exceptionData{
			Ver:           dataVersion,
			Exceptions:    []exceptionDetails{exceptionFrom(attrs, lr.Body().AsString())},
			SeverityLevel: severityLevel(lr.SeverityNumber()),
			Properties:    props,
		}
		e.addOrSkip(o, kindException, d, t.AsTime(), tags)
	case str(attrs, "microsoft.custom_event.name") != "":
		d := &eventData{Ver: dataVersion, Name: truncate(str(attrs, "microsoft.custom_event.name"), maxNameLength), Properties: props}
		e.addOrSkip(o, kindEvent, d, t.AsTime(), tags)
	default:
		msg := lr.Body().AsString()
		if msg == "" {
			msg = "n/a"
		}
		d := &messageData{Ver: dataVersion, Message: truncate(msg, maxMessageLength), SeverityLevel: severityLevel(lr.SeverityNumber()), Properties: props}
		e.addOrSkip(o, kindMessage, d, t.AsTime(), tags)
	}
}

// severityLevel maps the OpenTelemetry severity number ranges to the five
// Application Insights levels: TRACE and DEBUG (1-8) Verbose, INFO (9-12)
// Information, WARN (13-16) Warning, ERROR (17-20) Error, FATAL (21-24)
// Critical; an unspecified severity is left out.
func severityLevel(n plog.SeverityNumber) string {
	switch {
	case n > plog.SeverityNumberFatal4:
		return ""
	case n >= plog.SeverityNumberFatal:
		return "Critical"
	case n >= plog.SeverityNumberError:
		return "Error"
	case n >= plog.SeverityNumberWarn:
		return "Warning"
	case n >= plog.SeverityNumberInfo:
		return "Information"
	case n >= plog.SeverityNumberTrace:
		return "Verbose"
	}
	return ""
}
