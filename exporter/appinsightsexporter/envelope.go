package appinsightsexporter

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// The envelopes follow the public Application Insights (Breeze) schema the
// way Microsoft's @azure/monitor-opentelemetry-exporter writes it: optional
// fields left out when unset, enums as their names ("Warning",
// "Aggregation"), data version 2. README.md has the field-by-field table.

// Context tag keys.
const (
	tagOperationID     = "ai.operation.id"
	tagParentID        = "ai.operation.parentId"
	tagOperationName   = "ai.operation.name"
	tagSyntheticSource = "ai.operation.syntheticSource"
	tagRole            = "ai.cloud.role"
	tagRoleInstance    = "ai.cloud.roleInstance"
	tagApplicationVer  = "ai.application.ver"
	tagDeviceID        = "ai.device.id"
	tagDeviceModel     = "ai.device.model"
	tagLocationIP      = "ai.location.ip"
	tagUserAgent       = "ai.user.userAgent"
	tagUserID          = "ai.user.id"
	tagAuthUserID      = "ai.user.authUserId"
	tagSessionID       = "ai.session.id"
	tagSDKVersion      = "ai.internal.sdkVersion"
)

// Length limits of the schema, as Microsoft's exporter applies them.
const (
	maxIDLength      = 512
	maxNameLength    = 1024 // names, result codes, dependency type and target, operation name
	maxURLLength     = 2048
	maxDataLength    = 8192 // dependency data, property values
	maxMessageLength = 32768
)

// timeLayout is RFC 3339, UTC, up to microseconds.
const timeLayout = "2006-01-02T15:04:05.999999Z"

// dataVersion is the version of every baseData.
const dataVersion = 2

type envelope struct {
	Ver        int               `json:"ver"`
	Name       string            `json:"name"`
	Time       string            `json:"time"`
	SampleRate float64           `json:"sampleRate"`
	IKey       string            `json:"iKey"`
	Tags       map[string]string `json:"tags,omitempty"`
	Data       envelopeData      `json:"data"`
}

type envelopeData struct {
	BaseType string `json:"baseType"`
	BaseData any    `json:"baseData"`
}

type requestData struct {
	Ver          int               `json:"ver"`
	ID           string            `json:"id"`
	Name         string            `json:"name,omitempty"`
	Duration     string            `json:"duration"`
	Success      bool              `json:"success"`
	ResponseCode string            `json:"responseCode"`
	URL          *string           `json:"url,omitempty"` // set (maybe empty) for HTTP requests
	Properties   map[string]string `json:"properties,omitempty"`
}

type dependencyData struct {
	Ver        int               `json:"ver"`
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Duration   string            `json:"duration"`
	Success    bool              `json:"success"`
	ResultCode string            `json:"resultCode"`
	Type       string            `json:"type"`
	Target     string            `json:"target,omitempty"`
	Data       string            `json:"data,omitempty"`
	Properties map[string]string `json:"properties,omitempty"`
}

type exceptionDetails struct {
	TypeName     string `json:"typeName"`
	Message      string `json:"message"`
	HasFullStack bool   `json:"hasFullStack"`
	Stack        string `json:"stack,omitempty"`
}

type exceptionData struct {
	Ver           int                `json:"ver"`
	Exceptions    []exceptionDetails `json:"exceptions"`
	SeverityLevel string             `json:"severityLevel,omitempty"`
	Properties    map[string]string  `json:"properties,omitempty"`
}

type messageData struct {
	Ver           int               `json:"ver"`
	Message       string            `json:"message"`
	SeverityLevel string            `json:"severityLevel,omitempty"`
	Properties    map[string]string `json:"properties,omitempty"`
}

type eventData struct {
	Ver        int               `json:"ver"`
	Name       string            `json:"name"`
	Properties map[string]string `json:"properties,omitempty"`
}

type metricData struct {
	Ver        int               `json:"ver"`
	Metrics    []metricPoint     `json:"metrics"`
	Properties map[string]string `json:"properties,omitempty"`
}

// metricPoint is one entry of metrics[]. Microsoft's exporter sends every
// point as an "Aggregation" (count 1 for sums and gauges) and min/max only
// when recorded.
type metricPoint struct {
	Name  string   `json:"name"`
	Kind  string   `json:"kind,omitempty"`
	Value float64  `json:"value"`
	Count *int64   `json:"count,omitempty"`
	Min   *float64 `json:"min,omitempty"`
	Max   *float64 `json:"max,omitempty"`
}

// Envelope name suffixes and base types.
const (
	kindRequest    = "Request"
	kindDependency = "RemoteDependency"
	kindException  = "Exception"
	kindMessage    = "Message"
	kindEvent      = "Event"
	kindMetric     = "Metric"
)

var baseTypes = map[string]string{
	kindRequest: "RequestData", kindDependency: "RemoteDependencyData", kindException: "ExceptionData",
	kindMessage: "MessageData", kindEvent: "EventData", kindMetric: "MetricData",
}

// origin says which pdata item an envelope came from, so that a partial
// success can be turned back into the items to send again.
// Traces: resource r, scope s, span i; j is -1 for the span's request or
// dependency and the event index for an event. Logs: j is -1.
// Metrics: metric i, data point j. An origin with s < 0 (the per-resource
// _OTELRESOURCE_ metric) is never sent again on its own.
type origin struct{ r, s, i, j int }

// encoder turns pdata into newline-delimited JSON envelopes.
type encoder struct {
	iKey       string // as configured, with dashes
	nameKey    string // iKey without dashes, for envelope names
	appID      string // connection string's ApplicationId, if any
	sdkVersion string

	buf     bytes.Buffer
	origins []origin
	jsonEnc *json.Encoder
	skipped int   // items not encoded (not finite, or a JSON error)
	skipErr error // the last encoding error
}

func newEncoder(tgt target, version string) *encoder {
	if version == "" {
		version = "dev"
	}
	e := &encoder{
		iKey:       tgt.iKey,
		nameKey:    strings.ReplaceAll(tgt.iKey, "-", ""),
		appID:      tgt.appID,
		sdkVersion: "otelcol-modeldata:" + version,
	}
	e.jsonEnc = json.NewEncoder(&e.buf)
	e.jsonEnc.SetEscapeHTML(false)
	return e
}

// reset empties the encoder for a new batch.
func (e *encoder) reset() {
	e.buf.Reset()
	e.origins = e.origins[:0]
	e.skipped, e.skipErr = 0, nil
}

// add appends one envelope (one JSON line) of the given kind.
func (e *encoder) add(o origin, kind string, data any, t time.Time, sampleRate float64, tags map[string]string) error {
	env := envelope{
		Ver:        1,
		Name:       "Microsoft.ApplicationInsights." + e.nameKey + "." + kind,
		Time:       formatTime(t),
		SampleRate: sampleRate,
		IKey:       e.iKey,
		Tags:       tags,
		Data:       envelopeData{BaseType: baseTypes[kind], BaseData: data},
	}
	if err := e.jsonEnc.Encode(env); err != nil { // Encode writes the newline
		return fmt.Errorf("encode %s envelope: %w", env.Data.BaseType, err)
	}
	e.origins = append(e.origins, o)
	return nil
}

// addOrSkip adds the envelope; one that cannot be encoded is counted in
// skipped and never sent (the error is kept for the log).
func (e *encoder) addOrSkip(o origin, kind string, data any, t time.Time, tags map[string]string) {
	e.addSampled(o, kind, data, t, 100, tags)
}

func (e *encoder) addSampled(o origin, kind string, data any, t time.Time, sampleRate float64, tags map[string]string) {
	if err := e.add(o, kind, data, t, sampleRate, tags); err != nil {
		e.skipped++
		e.skipErr = err
	}
}

// resourceTags are the tags every envelope of a resource carries.
func (e *encoder) resourceTags(res pcommon.Resource) map[string]string {
	tags := map[string]string{tagSDKVersion: e.sdkVersion}
	attrs := res.Attributes()
	if role := cloudRole(attrs); role != "" {
		tags[tagRole] = role
	}
	// Microsoft's last fallback is the hostname of the process running the
	// exporter; for a collector that is not the application's host, so the
	// resource's host.name stands in for it.
	if inst := str(attrs, "k8s.pod.name", "service.instance.id", "host.name"); inst != "" {
		tags[tagRoleInstance] = inst
	}
	putTag(tags, tagApplicationVer, str(attrs, "service.version"))
	putTag(tags, tagDeviceID, str(attrs, "device.id"))
	putTag(tags, tagDeviceModel, str(attrs, "device.model.name"))
	return tags
}

// cloudRole is [service.namespace.]service.name; when the service has no
// name of its own (unknown_service:*), the first Kubernetes workload name.
func cloudRole(attrs pcommon.Map) string {
	role := str(attrs, "service.name")
	if role != "" {
		if ns := str(attrs, "service.namespace"); ns != "" {
			role = ns + "." + role
		}
		if !strings.HasPrefix(str(attrs, "service.name"), "unknown_service") {
			return role
		}
	}
	if k8s := str(attrs, "k8s.deployment.name", "k8s.replicaset.name", "k8s.statefulset.name",
		"k8s.job.name", "k8s.cronjob.name", "k8s.daemonset.name"); k8s != "" {
		return k8s
	}
	return role
}

func putTag(tags map[string]string, key, value string) {
	if value != "" {
		tags[key] = value
	}
}

// copyTags copies base with room for n more tags.
func copyTags(base map[string]string, n int) map[string]string {
	tags := make(map[string]string, len(base)+n)
	for k, v := range base {
		tags[k] = v
	}
	return tags
}

// userTags are the tags that spans and log records take from their own
// attributes: end user, session, synthetic source, client IP override.
func userTags(tags map[string]string, attrs pcommon.Map) {
	putTag(tags, tagAuthUserID, str(attrs, "enduser.id"))
	putTag(tags, tagUserID, str(attrs, "enduser.pseudo.id"))
	if v, ok := attrs.Get("session.id"); ok && v.Type() == pcommon.ValueTypeStr {
		tags[tagSessionID] = v.Str()
	}
	if str(attrs, "user_agent.synthetic.type") != "" {
		tags[tagSyntheticSource] = "True"
	}
	putTag(tags, tagLocationIP, str(attrs, "microsoft.client.ip"))
}

// formatTime writes t in UTC; a zero (unset) timestamp becomes now.
func formatTime(t time.Time) string {
	if t.IsZero() || t.UnixNano() <= 0 {
		t = time.Now()
	}
	return t.UTC().Format(timeLayout)
}

// formatDuration writes d as d.hh:mm:ss.fffffff (days, then 100 ns ticks),
// the TimeSpan format of the schema; a negative duration is written as zero.
func formatDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	ticks := int64(d/100) % 10_000_000
	secs := int64(d / time.Second)
	return fmt.Sprintf("%d.%02d:%02d:%02d.%07d", secs/86400, secs/3600%24, secs/60%60, secs%60, ticks)
}

// Attributes never copied to properties because they are mapped to fields
// or tags (Microsoft's httpSemanticValues and legacySemanticValues).
var mappedAttributes = setOf(
	// current semantic conventions
	"client.address", "client.port", "server.address", "server.port", "url.full", "url.path", "url.query",
	"url.scheme", "error.type", "network.local.address", "network.local.port", "network.protocol.name",
	"network.peer.address", "network.peer.port", "network.protocol.version", "network.transport",
	"user_agent.original", "http.request.method", "http.response.status_code", "exception.type",
	"exception.message", "exception.stacktrace", "enduser.id", "enduser.pseudo.id", "session.id",
	"user_agent.synthetic.type",
	// legacy semantic conventions
	"net.peer.ip", "net.peer.name", "net.host.ip", "peer.service", "http.user_agent", "http.method", "http.url",
	"http.status_code", "http.route", "http.host", "db.system", "db.statement", "db.operation", "db.name",
	"rpc.system", "rpc.grpc.status_code", "http.scheme", "http.target", "http.flavor", "net.transport",
	"net.host.name", "net.host.port", "net.peer.port", "http.client_ip", "http.status_text",
	// tag sources
	tagOperationName,
)

// Database attributes mapped to dependency fields (only for database dependencies).
var databaseAttributes = setOf("db.system.name", "db.namespace", "db.query.text", "db.operation.name")

// microsoftAttributes that are kept as properties.
var microsoftAttributes = setOf("_MS.ProcessedByMetricExtractors", "microsoft.gen_ai.main_agent.name",
	"microsoft.gen_ai.main_agent.id", "microsoft.gen_ai.main_agent.version", "microsoft.gen_ai.main_agent.conversation_id")

func setOf(keys ...string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// spanProperties are the attributes of a span or span event not mapped to
// a field or tag, as strings. database says the span is a database call
// (db.system without an HTTP method); dependency that it is sent as a
// dependency.
func spanProperties(attrs pcommon.Map, database, dependency bool) map[string]string {
	return properties(attrs, func(k string) bool {
		switch {
		case k == resendEventsOnly, k == "microsoft.custom_measurements":
			return false
		case strings.HasPrefix(k, "_MS.") || strings.HasPrefix(k, "microsoft."):
			return microsoftAttributes[k]
		case database && dependency && databaseAttributes[k]:
			return false
		case database && (k == "server.address" || k == "server.port"):
			return true
		}
		return !mappedAttributes[k]
	})
}

// logProperties are the attributes of a log record not mapped to a field or tag.
func logProperties(attrs pcommon.Map) map[string]string {
	return properties(attrs, func(k string) bool {
		return !(k == "microsoft.custom_measurements" || strings.HasPrefix(k, "_MS.") ||
			strings.HasPrefix(k, "microsoft") || mappedAttributes[k])
	})
}

// properties are the attributes kept by keep, as strings (maps and slices
// as JSON), each value cut to maxDataLength bytes.
func properties(attrs pcommon.Map, keep func(string) bool) map[string]string {
	if attrs.Len() == 0 {
		return nil
	}
	props := make(map[string]string, attrs.Len())
	attrs.Range(func(k string, v pcommon.Value) bool {
		if keep == nil || keep(k) {
			props[k] = truncate(v.AsString(), maxDataLength)
		}
		return true
	})
	if len(props) == 0 {
		return nil
	}
	return props
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// str returns the first of keys present with a non-empty value, as a string.
func str(attrs pcommon.Map, keys ...string) string {
	for _, k := range keys {
		if v, ok := attrs.Get(k); ok {
			if s := v.AsString(); s != "" {
				return s
			}
		}
	}
	return ""
}

// code returns the first of keys present with a value other than empty or
// zero, as a string (status codes, which Microsoft's exporter treats as
// unset when 0).
func code(attrs pcommon.Map, keys ...string) string {
	for _, k := range keys {
		if v, ok := attrs.Get(k); ok {
			if s := v.AsString(); s != "" && !(s == "0" && v.Type() != pcommon.ValueTypeStr) {
				return s
			}
		}
	}
	return ""
}

// spanDuration is end - start.
func spanDuration(s ptrace.Span) time.Duration {
	return time.Duration(int64(s.EndTimestamp()) - int64(s.StartTimestamp()))
}

// sampleRate is the microsoft.sample_rate attribute, else 100.
func sampleRate(attrs pcommon.Map) float64 {
	if v, ok := attrs.Get("microsoft.sample_rate"); ok {
		switch v.Type() {
		case pcommon.ValueTypeDouble:
			return v.Double()
		case pcommon.ValueTypeInt:
			return float64(v.Int())
		case pcommon.ValueTypeStr:
			if f, err := strconv.ParseFloat(v.Str(), 64); err == nil {
				return f
			}
		}
	}
	return 100
}

var gzipPool = sync.Pool{New: func() any { w, _ := gzip.NewWriterLevel(io.Discard, gzip.DefaultCompression); return w }}

// gzipTo compresses src into dst.
func gzipTo(dst *bytes.Buffer, src []byte) error {
	zw := gzipPool.Get().(*gzip.Writer)
	defer gzipPool.Put(zw)
	zw.Reset(dst)
	if _, err := zw.Write(src); err != nil {
		return err
	}
	return zw.Close()
}
