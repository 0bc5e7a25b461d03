package appinsightsexporter

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/microsoft/ApplicationInsights-Go/appinsights/contracts"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// resendExceptionsOnly marks a span, in the retry copy of a partial success,
// whose request or dependency was accepted but some of whose exceptions were
// not: only its exception events are encoded again. Never sent as a property.
const resendExceptionsOnly = "appinsightsexporter.resend_exceptions_only"

// encodeTraces appends the envelopes of td: per span one RequestData (server
// and consumer spans) or RemoteDependencyData (client, producer, internal),
// then one ExceptionData per span event named "exception".
func (e *encoder) encodeTraces(td ptrace.Traces) {
	rss := td.ResourceSpans()
	for r := 0; r < rss.Len(); r++ {
		base := e.resourceTags(rss.At(r).Resource())
		sss := rss.At(r).ScopeSpans()
		for s := 0; s < sss.Len(); s++ {
			spans := sss.At(s).Spans()
			for i := 0; i < spans.Len(); i++ {
				e.encodeSpan(origin{r, s, i, -1}, spans.At(i), base)
			}
		}
	}
}

func (e *encoder) encodeSpan(o origin, span ptrace.Span, base map[string]string) {
	attrs := span.Attributes()
	if _, only := attrs.Get(resendExceptionsOnly); !only {
		tags := withTrace(base, span.TraceID(), span.ParentSpanID())
		switch span.Kind() {
		case ptrace.SpanKindServer, ptrace.SpanKindConsumer:
			req := requestData(span)
			tags[tagOperationName] = req.Name
			e.addOrSkip(o, req, span.StartTimestamp().AsTime(), tags)
		default:
			e.addOrSkip(o, dependencyData(span), span.StartTimestamp().AsTime(), tags)
		}
	}
	events := span.Events()
	for j := 0; j < events.Len(); j++ {
		ev := events.At(j)
		if ev.Name() != "exception" {
			continue
		}
		tags := withTrace(base, span.TraceID(), span.SpanID())
		e.addOrSkip(origin{o.r, o.s, o.i, j}, exceptionData(ev.Attributes()), ev.Timestamp().AsTime(), tags)
	}
}

// statusCode is the response code of a span: HTTP status, else gRPC status.
func statusCode(attrs pcommon.Map) (code int64, http, ok bool) {
	if c, ok := integer(attrs, "http.response.status_code", "http.status_code"); ok {
		return c, true, true
	}
	if c, ok := integer(attrs, "rpc.grpc.status_code", "rpc.response.status_code"); ok {
		return c, false, true
	}
	return 0, false, false
}

// success: an Error status fails, an Ok status succeeds; with Unset, an HTTP
// status of 400 or more fails, a non-zero gRPC status fails, else success.
func success(span ptrace.Span) bool {
	switch span.Status().Code() {
	case ptrace.StatusCodeError:
		return false
	case ptrace.StatusCodeOk:
		return true
	}
	code, isHTTP, ok := statusCode(span.Attributes())
	switch {
	case !ok:
		return true
	case isHTTP:
		return code < 400
	default:
		return code == 0
	}
}

func httpMethod(attrs pcommon.Map) string {
	return str(attrs, "http.request.method", "http.method")
}

func requestData(span ptrace.Span) *contracts.RequestData {
	attrs := span.Attributes()
	d := contracts.NewRequestData()
	d.Id = span.SpanID().String()
	d.Name = span.Name()
	if m := httpMethod(attrs); m != "" && d.Name == m {
		if route := str(attrs, "http.route"); route != "" {
			d.Name = m + " " + route
		}
	}
	d.Duration = formatDuration(spanDuration(span))
	d.ResponseCode = "0"
	if code, _, ok := statusCode(attrs); ok {
		d.ResponseCode = strconv.FormatInt(code, 10)
	}
	d.Success = success(span)
	d.Url = requestURL(attrs)
	d.Source = str(attrs, "client.address", "net.sock.peer.addr")
	d.Properties = properties(attrs)
	return d
}

// requestURL is url.full (http.url), else scheme://host/path?query from the
// newer attributes, else empty.
func requestURL(attrs pcommon.Map) string {
	if u := str(attrs, "url.full", "http.url"); u != "" {
		return u
	}
	scheme := str(attrs, "url.scheme", "http.scheme")
	host := hostPort(attrs, "server.address", "server.port")
	if host == "" {
		host = str(attrs, "http.host")
	}
	path := str(attrs, "url.path")
	if scheme == "" || host == "" || path == "" {
		return str(attrs, "http.target")
	}
	u := scheme + "://" + host + path
	if q := str(attrs, "url.query"); q != "" {
		u += "?" + q
	}
	return u
}

// hostPort is addr[:port], leaving out ports 80 and 443.
func hostPort(attrs pcommon.Map, addrKey, portKey string) string {
	addr := str(attrs, addrKey)
	if addr == "" {
		return ""
	}
	if port, ok := integer(attrs, portKey); ok && port > 0 && port != 80 && port != 443 {
		return addr + ":" + strconv.FormatInt(port, 10)
	}
	return addr
}

// sqlSystems are the db.system values shown as type SQL.
var sqlSystems = map[string]bool{"mssql": true, "microsoft.sql_server": true, "sqlserver": true, "azure.sql": true}

// dependencyData maps a client, producer or internal span. The type comes
// from the semantic attributes present, in this order: HTTP (http.request.method),
// database (db.system.name / db.system: "SQL" for SQL Server, else the system name),
// RPC (rpc.system), messaging (messaging.system); else "InProc" for internal
// spans and "Other" for the rest.
func dependencyData(span ptrace.Span) *contracts.RemoteDependencyData {
	attrs := span.Attributes()
	d := contracts.NewRemoteDependencyData()
	d.Id = span.SpanID().String()
	d.Name = span.Name()
	d.Duration = formatDuration(spanDuration(span))
	d.Success = success(span)
	if code, _, ok := statusCode(attrs); ok {
		d.ResultCode = strconv.FormatInt(code, 10)
	}
	server := hostPort(attrs, "server.address", "server.port")
	if server == "" {
		server = hostPort(attrs, "net.peer.name", "net.peer.port")
	}
	switch {
	case httpMethod(attrs) != "":
		d.Type = "HTTP"
		d.Data = str(attrs, "url.full", "http.url")
		u, _ := url.Parse(d.Data)
		if server == "" && u != nil {
			server = u.Host
		}
		if server == "" {
			server = str(attrs, "http.host")
		}
		d.Target = server
		if m := httpMethod(attrs); d.Name == m && u != nil && u.Path != "" {
			d.Name = m + " " + u.Path
		}
	case str(attrs, "db.system.name", "db.system") != "":
		system := str(attrs, "db.system.name", "db.system")
		d.Type = system
		if sqlSystems[strings.ToLower(system)] {
			d.Type = "SQL"
		}
		d.Target = server
		if db := str(attrs, "db.namespace", "db.name"); db != "" {
			if d.Target != "" {
				d.Target += " | " + db
			} else {
				d.Target = db
			}
		}
		d.Data = str(attrs, "db.query.text", "db.statement")
	case str(attrs, "rpc.system") != "":
		d.Type = str(attrs, "rpc.system")
		d.Target = server
		if d.Target == "" {
			d.Target = str(attrs, "rpc.service")
		}
		if svc, m := str(attrs, "rpc.service"), str(attrs, "rpc.method"); svc != "" || m != "" {
			d.Data = svc + "/" + m
		}
	case str(attrs, "messaging.system") != "":
		d.Type = str(attrs, "messaging.system")
		dest := str(attrs, "messaging.destination.name", "messaging.destination")
		switch {
		case server != "" && dest != "":
			d.Target = server + "/" + dest
		case dest != "":
			d.Target = dest
		default:
			d.Target = server
		}
		d.Data = dest
	case span.Kind() == ptrace.SpanKindInternal || span.Kind() == ptrace.SpanKindUnspecified:
		d.Type = "InProc"
	default:
		d.Type = "Other"
		d.Target = server
	}
	d.Properties = properties(attrs)
	return d
}

// exceptionData maps an "exception" span event (exception.type,
// exception.message, exception.stacktrace); its other attributes become properties.
func exceptionData(attrs pcommon.Map) *contracts.ExceptionData {
	det := contracts.NewExceptionDetails()
	det.Id = 1
	det.TypeName = str(attrs, "exception.type")
	det.Message = str(attrs, "exception.message")
	if det.TypeName == "" {
		det.TypeName = "Exception"
	}
	if det.Message == "" {
		det.Message = det.TypeName
	}
	det.Stack = str(attrs, "exception.stacktrace")
	det.HasFullStack = det.Stack != ""
	d := contracts.NewExceptionData()
	d.Exceptions = []*contracts.ExceptionDetails{det}
	d.SeverityLevel = contracts.Error
	d.Properties = properties(attrs, "exception.type", "exception.message", "exception.stacktrace")
	return d
}
