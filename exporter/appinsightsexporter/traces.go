package appinsightsexporter

import (
	"encoding/json"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// resendEventsOnly marks a span, in the retry copy of a partial success,
// whose request or dependency was accepted but some of whose events were
// not: only its events are encoded again. Never sent as a property.
const resendEventsOnly = "appinsightsexporter.resend_events_only"

// encodeTraces appends the envelopes of td: per resource one _OTELRESOURCE_
// metric, per span one RequestData (server and consumer spans) or
// RemoteDependencyData (client, producer, internal), then per span event one
// ExceptionData (events named "exception") or MessageData (the others).
func (e *encoder) encodeTraces(td ptrace.Traces) {
	rss := td.ResourceSpans()
	for r := 0; r < rss.Len(); r++ {
		res := rss.At(r).Resource()
		base := e.resourceTags(res)
		sss := rss.At(r).ScopeSpans()
		first := true
		for s := 0; s < sss.Len(); s++ {
			spans := sss.At(s).Spans()
			for i := 0; i < spans.Len(); i++ {
				if first {
					e.encodeResourceMetric(r, res, base)
					first = false
				}
				e.encodeSpan(origin{r, s, i, -1}, spans.At(i), base)
			}
		}
	}
}

// encodeResourceMetric appends the _OTELRESOURCE_ metric Microsoft's trace
// exporter sends with each batch: value 1, the resource attributes (but the
// telemetry.sdk.* ones) as properties, and the connection string's
// ApplicationId as microsoft.applicationId.
func (e *encoder) encodeResourceMetric(r int, res pcommon.Resource, base map[string]string) {
	props := properties(res.Attributes(), func(k string) bool {
		return !strings.HasPrefix(k, "_MS.") && k != "telemetry.sdk.version" && k != "telemetry.sdk.language" && k != "telemetry.sdk.name"
	})
	if e.appID != "" {
		if _, set := res.Attributes().Get("microsoft.applicationId"); !set {
			if props == nil {
				props = map[string]string{}
			}
			props["microsoft.applicationId"] = e.appID
		}
	}
	if len(props) == 0 {
		return
	}
	d := &metricData{Ver: dataVersion, Metrics: []metricPoint{{Name: "_OTELRESOURCE_", Value: 1}}, Properties: props}
	e.addOrSkip(origin{r, -1, -1, -1}, kindMetric, d, time.Now(), copyTags(base, 0))
}

func (e *encoder) encodeSpan(o origin, span ptrace.Span, base map[string]string) {
	attrs := span.Attributes()
	rate := sampleRate(attrs)
	if _, only := attrs.Get(resendEventsOnly); !only {
		tags := spanTags(span, base)
		var kind string
		var data any
		switch span.Kind() {
		case ptrace.SpanKindServer, ptrace.SpanKindConsumer:
			kind, data = kindRequest, newRequestData(span, tags)
		default:
			kind, data = kindDependency, newDependencyData(span)
		}
		e.addSampled(o, kind, data, span.StartTimestamp().AsTime(), rate, tags)
	}
	events := span.Events()
	for j := 0; j < events.Len(); j++ {
		ev := events.At(j)
		tags := withTrace(base, span.TraceID(), span.SpanID())
		session := str(attrs, "session.id")
		if v, ok := ev.Attributes().Get("session.id"); ok && v.Type() == pcommon.ValueTypeStr {
			session = v.Str()
		}
		putTag(tags, tagSessionID, session)
		props := spanProperties(ev.Attributes(), false, false)
		if ev.Name() == "exception" {
			e.addSampled(origin{o.r, o.s, o.i, j}, kindException, newExceptionData(ev.Attributes(), props), ev.Timestamp().AsTime(), rate, tags)
		} else {
			d := &messageData{Ver: dataVersion, Message: truncate(ev.Name(), maxMessageLength), Properties: props}
			e.addSampled(origin{o.r, o.s, o.i, j}, kindMessage, d, ev.Timestamp().AsTime(), rate, tags)
		}
	}
}

// withTrace copies base and adds the operation id and parent id.
func withTrace(base map[string]string, traceID pcommon.TraceID, parent pcommon.SpanID) map[string]string {
	tags := copyTags(base, 3)
	if !traceID.IsEmpty() {
		tags[tagOperationID] = traceID.String()
	}
	if !parent.IsEmpty() {
		tags[tagParentID] = parent.String()
	}
	return tags
}

// spanTags are the tags of a span's request or dependency. For a server
// span: ai.location.ip from the client address, and ai.operation.name,
// "METHOD route" (or "METHOD path" from url.full) for HTTP, else the span
// name. For a consumer span the span name; for other kinds only an explicit
// ai.operation.name attribute.
func spanTags(span ptrace.Span, base map[string]string) map[string]string {
	attrs := span.Attributes()
	tags := withTrace(base, span.TraceID(), span.ParentSpanID())
	userTags(tags, attrs)
	putTag(tags, tagUserAgent, str(attrs, "user_agent.original", "http.user_agent"))
	switch span.Kind() {
	case ptrace.SpanKindServer:
		if _, set := tags[tagLocationIP]; !set {
			putTag(tags, tagLocationIP, str(attrs, "client.address", "http.client_ip", "network.peer.address", "net.peer.ip"))
		}
		name := span.Name()
		if m := httpMethod(attrs); m != "" {
			if route := str(attrs, "http.route"); route != "" {
				name = m + " " + route
			} else if u := parseURL(str(attrs, "url.full", "http.url")); u != nil {
				name = m + " " + urlPath(u)
			}
		}
		tags[tagOperationName] = truncate(name, maxNameLength)
	case ptrace.SpanKindConsumer:
		name := str(attrs, tagOperationName)
		if name == "" {
			name = span.Name()
		}
		tags[tagOperationName] = truncate(name, maxNameLength)
	default:
		putTag(tags, tagOperationName, truncate(str(attrs, tagOperationName), maxNameLength))
	}
	return tags
}

func httpMethod(attrs pcommon.Map) string {
	return str(attrs, "http.request.method", "http.method")
}

// parseURL parses an absolute URL; nil for anything else.
func parseURL(s string) *url.URL {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil
	}
	return u
}

// urlPath is the URL's path as a browser shows it: escaped, "/" at least.
func urlPath(u *url.URL) string {
	if p := u.EscapedPath(); p != "" {
		return p
	}
	return "/"
}

// newRequestData maps a server or consumer span; its name is the operation name.
func newRequestData(span ptrace.Span, tags map[string]string) *requestData {
	attrs := span.Attributes()
	d := &requestData{
		Ver:          dataVersion,
		ID:           span.SpanID().String(),
		Name:         tags[tagOperationName],
		Duration:     formatDuration(spanDuration(span)),
		ResponseCode: "0",
	}
	switch span.Status().Code() {
	case ptrace.StatusCodeUnset:
		c, _ := strconv.Atoi(code(attrs, "http.response.status_code", "http.status_code"))
		d.Success = c < 400
	default:
		d.Success = span.Status().Code() == ptrace.StatusCodeOk
	}
	if httpMethod(attrs) != "" {
		d.URL = ptr(truncate(httpURL(attrs), maxURLLength))
		if c := code(attrs, "http.response.status_code", "http.status_code"); c != "" {
			d.ResponseCode = c
		}
	} else if c := code(attrs, "rpc.grpc.status_code"); c != "" {
		d.ResponseCode = c
	}
	d.ResponseCode = truncate(d.ResponseCode, maxNameLength)
	d.Properties = withLinks(spanProperties(attrs, false, false), span.Links())
	return d
}

// httpURL is url.full (http.url); else scheme://host + target, where target
// is url.path (else url.query, else http.target) and host is server.address
// (http.host), else client.address:port or the peer address:port.
func httpURL(attrs pcommon.Map) string {
	if u := str(attrs, "url.full", "http.url"); u != "" {
		return u
	}
	scheme := str(attrs, "url.scheme", "http.scheme")
	target := str(attrs, "url.path", "url.query", "http.target")
	if scheme == "" || target == "" {
		return ""
	}
	if host := str(attrs, "server.address", "http.host"); host != "" {
		return scheme + "://" + host + target
	}
	port := str(attrs, "client.port", "server.port", "net.peer.port")
	if port == "" {
		return ""
	}
	if name := str(attrs, "client.address", "net.peer.name"); name != "" {
		return scheme + "://" + name + ":" + port + target
	}
	if ip := str(attrs, "network.peer.address", "net.peer.ip"); ip != "" {
		return scheme + "://" + ip + ":" + port + target
	}
	return ""
}

// dependencyTarget is peer.service, else server.address (http.host), else
// url.full (http.url), else client.address (net.peer.name), else the peer
// address.
func dependencyTarget(attrs pcommon.Map) string {
	return str(attrs, "peer.service", "server.address", "http.host", "url.full", "http.url",
		"client.address", "net.peer.name", "network.peer.address", "net.peer.ip")
}

// defaultPort matches a URL-shaped target with an explicit port.
var defaultPort = regexp.MustCompile(`(https?)(://.*)(:\d+)(\S*)`)

// sqlSystems are the db.system values shown as type SQL.
var sqlSystems = setOf("db2", "derby", "mariadb", "mssql", "oracle", "sqlite", "other_sql", "hsqldb", "h2")

// newDependencyData maps a client, producer or internal span. The type comes
// from the semantic attributes present, in this order: HTTP ("Http"),
// database ("SQL" for SQL databases, else the system name), RPC ("GRPC", or
// "WCF Service"); else "Queue Message" for producer spans, "InProc" for
// internal spans with a parent (or "InProc | <az.namespace>"), else
// "Dependency".
func newDependencyData(span ptrace.Span) *dependencyData {
	attrs := span.Attributes()
	d := &dependencyData{
		Ver:        dataVersion,
		ID:         span.SpanID().String(),
		Name:       span.Name(),
		Duration:   formatDuration(spanDuration(span)),
		Success:    span.Status().Code() != ptrace.StatusCodeError,
		ResultCode: "0",
		Type:       "Dependency",
	}
	switch {
	case span.Kind() == ptrace.SpanKindProducer:
		d.Type = "Queue Message"
	case span.Kind() == ptrace.SpanKindInternal && !span.ParentSpanID().IsEmpty():
		d.Type = "InProc"
	}
	dbSystem := str(attrs, "db.system.name", "db.system")
	database := false
	switch {
	case httpMethod(attrs) != "":
		d.setHTTP(attrs)
	case dbSystem != "":
		database = true
		d.setDatabase(attrs, dbSystem)
	case str(attrs, "rpc.system") != "":
		d.setRPC(attrs)
	}
	if ns := str(attrs, "az.namespace"); ns != "" && span.Kind() == ptrace.SpanKindInternal {
		d.Type = "InProc | " + ns
	}
	d.ID = truncate(d.ID, maxIDLength)
	d.Name = truncate(d.Name, maxNameLength)
	d.ResultCode = truncate(d.ResultCode, maxNameLength)
	d.Data = truncate(d.Data, maxDataLength)
	d.Type = truncate(d.Type, maxNameLength)
	d.Target = truncate(d.Target, maxNameLength)
	d.Properties = withLinks(spanProperties(attrs, database, true), span.Links())
	return d
}

// setHTTP fills an HTTP client call: "<method> <path>", the URL, the status
// code, and the target without its scheme's default port.
func (d *dependencyData) setHTTP(attrs pcommon.Map) {
	if u := parseURL(str(attrs, "url.full", "http.url")); u != nil {
		d.Name = httpMethod(attrs) + " " + urlPath(u)
	}
	d.Type = "Http"
	d.Data = httpURL(attrs)
	if c := code(attrs, "http.response.status_code", "http.status_code"); c != "" {
		d.ResultCode = c
	}
	target := dependencyTarget(attrs)
	if m := defaultPort.FindStringSubmatch(target); m != nil && (m[1] == "https" && m[3] == ":443" || m[1] == "http" && m[3] == ":80") {
		target = m[1] + m[2] + m[4]
	}
	d.Target = target
}

// setDatabase fills a database call: its system (SQL for the SQL ones), the
// query, and "<server>|<database>" as the target.
func (d *dependencyData) setDatabase(attrs pcommon.Map, dbSystem string) {
	d.Type = dbSystem
	if sqlSystems[dbSystem] {
		d.Type = "SQL"
	}
	d.Data = str(attrs, "db.query.text", "db.statement", "db.operation.name", "db.operation")
	target, db := dependencyTarget(attrs), str(attrs, "db.namespace", "db.name")
	switch {
	case target != "" && db != "":
		d.Target = target + "|" + db
	case target != "":
		d.Target = target
	case db != "":
		d.Target = db
	default:
		d.Target = dbSystem
	}
}

// setRPC fills an RPC call: GRPC (or WCF Service), the gRPC status code, and
// the target, else the RPC system.
func (d *dependencyData) setRPC(attrs pcommon.Map) {
	system := str(attrs, "rpc.system")
	d.Type = "GRPC"
	if system == "WCF Service" {
		d.Type = system
	}
	if c := code(attrs, "rpc.grpc.status_code"); c != "" {
		d.ResultCode = c
	}
	d.Target = dependencyTarget(attrs)
	if d.Target == "" {
		d.Target = system
	}
}

// withLinks adds the span's links as the _MS.links property
// ([{"operation_Id":trace id,"id":span id}, ...]).
func withLinks(props map[string]string, links ptrace.SpanLinkSlice) map[string]string {
	if links.Len() == 0 {
		return props
	}
	type link struct {
		OperationID string `json:"operation_Id"`
		ID          string `json:"id"`
	}
	ls := make([]link, links.Len())
	for i := range ls {
		ls[i] = link{links.At(i).TraceID().String(), links.At(i).SpanID().String()}
	}
	b, _ := json.Marshal(ls)
	if props == nil {
		props = map[string]string{}
	}
	props["_MS.links"] = string(b)
	return props
}

// newExceptionData maps an "exception" span event (exception.type,
// exception.message, exception.stacktrace); its other attributes are props.
func newExceptionData(attrs pcommon.Map, props map[string]string) *exceptionData {
	return &exceptionData{Ver: dataVersion, Exceptions: []exceptionDetails{exceptionFrom(attrs, "")}, Properties: props}
}

// exceptionFrom reads the exception.* attributes; a missing type is
// "Exception", a missing message is fallback, else "Exception".
func exceptionFrom(attrs pcommon.Map, fallback string) exceptionDetails {
	det := exceptionDetails{
		TypeName: str(attrs, "exception.type"),
		Message:  str(attrs, "exception.message"),
		Stack:    str(attrs, "exception.stacktrace"),
	}
	if det.TypeName == "" {
		det.TypeName = "Exception"
	}
	if det.Message == "" {
		det.Message = fallback
	}
	if det.Message == "" {
		det.Message = "Exception"
	}
	det.Message = truncate(det.Message, maxMessageLength)
	det.HasFullStack = det.Stack != ""
	return det
}
