package harness

import (
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// Door is the way rows enter the collector.
type Door string

const (
	// DoorCollect is the modeldata receiver's collect API, POST /v1/collect (JSON).
	DoorCollect Door = "collect"
	// DoorOTLP is OTLP/HTTP logs, POST /v1/logs (protobuf), records in contract form.
	DoorOTLP Door = "otlp"
	// DoorV2 is the azureml-ai-monitoring sidecar route, POST /modeldata/log:
	// DataFrame.to_json(orient="records") with the SDK's ce-* headers.
	DoorV2 Door = "v2"
)

// V2Body is request req as the azureml-ai-monitoring SDK posts it: a list of
// records keyed by feature name.
func (r *Rows) V2Body(req int) []byte {
	names := r.FeatureNames()
	b := make([]byte, 0, 16+r.RowsPerRequest*r.Features*24)
	b = append(b, '[')
	for i := 0; i < r.RowsPerRequest; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		b = strconv.AppendQuote(b, names[0])
		b = append(b, ':')
		b = strconv.AppendQuote(b, r.RowID(req, i))
		for k := 1; k < r.Features; k++ {
			b = append(b, ',')
			b = strconv.AppendQuote(b, names[k])
			b = append(b, ':')
			b = r.appendJSONValue(b, req, i, k)
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

// V2Header is the SDK's headers for request req: the collection (the
// designation, model_inputs for inputs), the request id, and the model as a
// correlation-context header (ce-model-name) with its version.
func (r *Rows) V2Header(req int) http.Header {
	collection := r.Designation
	if collection == contract.DesignationInputs {
		collection = "model_inputs"
	}
	return http.Header{
		"Ce-Type":          {"azureml.inference." + collection},
		"Ce-X-Request-Id":  {r.RequestID(req)},
		"Ce-Model-Name":    {r.Model},
		"Ce-Model-Version": {r.Version},
	}
}

// CollectBody is the JSON body of request req for POST /v1/collect.
func (r *Rows) CollectBody(req int) []byte {
	b := make([]byte, 0, 128+r.RowsPerRequest*r.Features*12)
	b = append(b, `{"model_name":`...)
	b = strconv.AppendQuote(b, r.Model)
	b = append(b, `,"model_version":`...)
	b = strconv.AppendQuote(b, r.Version)
	b = append(b, `,"designation":`...)
	b = strconv.AppendQuote(b, r.Designation)
	b = append(b, `,"request_id":`...)
	b = strconv.AppendQuote(b, r.RequestID(req))
	b = append(b, `,"feature_names":[`...)
	for k, name := range r.FeatureNames() {
		if k > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, name)
	}
	b = append(b, `],"data":[`...)
	for i := 0; i < r.RowsPerRequest; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = strconv.AppendQuote(b, r.RowID(req, i))
		for k := 1; k < r.Features; k++ {
			b = append(b, ',')
			b = r.appendJSONValue(b, req, i, k)
		}
		b = append(b, ']')
	}
	return append(b, "]}"...)
}

// Logs is request req as log records of the run's shape (the OTLP door).
func (r *Rows) Logs(req int, now time.Time) plog.Logs {
	if r.Shape == ShapeSDK {
		return r.sdkLogs(req, now)
	}
	logs := plog.NewLogs()
	sl := logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
	sl.Scope().SetName("github.com/otelcol-modeldata/otelcol-modeldata/internal/harness")
	names := r.FeatureNames()
	ts := pcommon.NewTimestampFromTime(now)
	reqID := r.RequestID(req)
	records := sl.LogRecords()
	records.EnsureCapacity(r.RowsPerRequest)
	for i := 0; i < r.RowsPerRequest; i++ {
		lr := records.AppendEmpty()
		body := contract.Features(lr)
		body.EnsureCapacity(r.Features)
		body.PutStr(RowIDColumn, r.RowID(req, i))
		for k := 1; k < r.Features; k++ {
			switch v := r.Value(req, i, k).(type) {
			case int64:
				body.PutInt(names[k], v)
			case float64:
				body.PutDouble(names[k], v)
			default:
				body.PutStr(names[k], v.(string))
			}
		}
		contract.WriteRow(lr, contract.Row{ModelName: r.Model, ModelVersion: r.Version, Designation: r.Designation,
			CorrelationID: reqID, RequestID: reqID, FeatureNames: names, Timestamp: now})
		lr.SetObservedTimestamp(ts)
	}
	return logs
}

// OTLPBody is request req as an OTLP/HTTP protobuf body.
func (r *Rows) OTLPBody(req int, now time.Time) ([]byte, error) {
	return (&plog.ProtoMarshaler{}).MarshalLogs(r.Logs(req, now))
}

// OTLPJSONBody is request req as an OTLP/HTTP JSON body.
func (r *Rows) OTLPJSONBody(req int, now time.Time) ([]byte, error) {
	return (&plog.JSONMarshaler{}).MarshalLogs(r.Logs(req, now))
}
