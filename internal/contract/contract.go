// Package contract is the data contract of otelcol-modeldata, written once:
// how one row of model data (inputs, predictions, labels, ...) travels as an
// OpenTelemetry log record, and how it lands in the Azure ML "modeldata"
// CSV layout. The receiver writes it, the feature flattener normalizes to it,
// and the blob exporter reads it; docs/data-contract.md explains it for users.
//
// A model data row is one plog.LogRecord with:
//   - attribute AttrModelName (string, required: its presence makes a record model data)
//   - attribute AttrModelVersion (string)
//   - attribute AttrDesignation (string; DefaultDesignation when absent)
//   - attribute AttrCorrelationID, AttrRequestID (strings)
//   - attribute AttrFeatureNames (slice of strings): the column order, when
//     the body's own key order is not it (Columns)
//   - body: a map of feature name to a scalar value (string, bool, int, double, or empty)
//   - timestamp: the scoring timestamp (observed timestamp when unset)
//   - event name EventName
//
// The path parts subscription id, resource group, workspace and web service
// come from the exporter's config, overridden per record by the resource
// attributes AttrSubscriptionID, AttrResourceGroup, AttrWorkspace and
// AttrWebservice.
package contract

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// Log record attributes.
const (
	AttrModelName      = "modeldata.model.name"
	AttrModelVersion   = "modeldata.model.version"
	AttrDesignation    = "modeldata.designation"
	AttrCorrelationID  = "modeldata.correlation_id"
	AttrRequestID      = "modeldata.request_id"
	AttrFeatureNames   = "modeldata.feature_names"
	AttrDroppedColumns = "modeldata.dropped_columns"
)

// Resource attributes that override the exporter's configured path parts.
const (
	AttrSubscriptionID = "modeldata.subscription_id"
	AttrResourceGroup  = "modeldata.resource_group"
	AttrWorkspace      = "modeldata.workspace"
	AttrWebservice     = "modeldata.webservice"
)

// Resource attributes naming the Azure ML v2 online endpoint and deployment
// of the MDC layout (modelDataCollector/<endpoint>/<deployment>/...); the
// exporter's configured defaults apply when they are absent.
const (
	AttrEndpoint   = "modeldata.endpoint"
	AttrDeployment = "modeldata.deployment"
)

// Azure ML v2 collection names that model monitoring recognizes, and the
// designations that map to them by default.
const (
	CollectionModelInputs  = "model_inputs"
	CollectionModelOutputs = "model_outputs"
)

// DefaultCollections maps designations to v2 collection names; a
// designation not listed is its own collection name.
func DefaultCollections() map[string]string {
	return map[string]string{DesignationInputs: CollectionModelInputs, DesignationPredictions: CollectionModelOutputs}
}

const (
	// EventName marks a log record as a model data row.
	EventName = "modeldata.row"
	// DefaultDesignation is used when a row carries none (the reference
	// collector's "default" designation meant "general").
	DefaultDesignation = "general"
	// NilRequestID is written when the request id is unknown, as the
	// reference collector did.
	NilRequestID = "00000000-0000-0000-0000-000000000000"
)

// Well-known designations. Any other name that is a valid path segment is allowed.
const (
	DesignationInputs      = "inputs"
	DesignationPredictions = "predictions"
	DesignationLabels      = "labels"
	DesignationSignals     = "signals"
	DesignationGeneral     = "general"
)

// Row is the contract view of one model data log record.
type Row struct {
	ModelName     string
	ModelVersion  string
	Designation   string
	CorrelationID string
	RequestID     string
	FeatureNames  []string
	// Timestamp is the scoring timestamp.
	Timestamp time.Time
}

// IsModelData reports whether a record is a model data row (it names a model).
func IsModelData(lr plog.LogRecord) bool {
	v, ok := lr.Attributes().Get(AttrModelName)
	return ok && v.Type() == pcommon.ValueTypeStr && v.Str() != ""
}

// ReadRow reads the contract attributes of a record. ok is false when the
// record is not model data. Designation falls back to DefaultDesignation and
// the timestamp to the observed timestamp.
func ReadRow(lr plog.LogRecord) (row Row, ok bool) {
	return ReadRowReuse(lr, nil)
}

// ReadRowReuse is ReadRow for a caller reading many records: the feature
// names are appended to names[:0], so row.FeatureNames shares names'
// storage and is overwritten by the next call that passes it. It reads the
// attributes in one pass.
func ReadRowReuse(lr plog.LogRecord, names []string) (row Row, ok bool) {
	const (
		seenModel = 1 << iota
		seenVersion
		seenDesignation
		seenCorrelation
		seenRequest
		seenNames
	)
	seen := 0
	// first reports whether key bit is met for the first time (Get finds
	// the first of repeated keys; so does this).
	first := func(bit int) bool {
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		return true
	}
	names = names[:0]
	for k, v := range lr.Attributes().All() {
		switch k {
		case AttrModelName:
			if first(seenModel) && v.Type() == pcommon.ValueTypeStr {
				row.ModelName = v.Str()
			}
		case AttrModelVersion:
			if first(seenVersion) {
				row.ModelVersion = v.AsString()
			}
		case AttrDesignation:
			if first(seenDesignation) {
				row.Designation = v.AsString()
			}
		case AttrCorrelationID:
			if first(seenCorrelation) {
				row.CorrelationID = v.AsString()
			}
		case AttrRequestID:
			if first(seenRequest) {
				row.RequestID = v.AsString()
			}
		case AttrFeatureNames:
			if first(seenNames) && v.Type() == pcommon.ValueTypeSlice {
				for _, e := range v.Slice().All() {
					names = append(names, e.AsString())
				}
			}
		}
	}
	if row.ModelName == "" {
		return Row{}, false
	}
	if row.Designation == "" {
		row.Designation = DefaultDesignation
	}
	row.FeatureNames = names
	row.Timestamp = ScoringTime(lr)
	return row, true
}

// WriteRow sets the contract attributes, event name and timestamp of a record,
// and its feature names when row has any. Feature values go in the body,
// through Features: a writer that puts them in column order declares no names.
func WriteRow(lr plog.LogRecord, row Row) {
	if row.Designation == "" {
		row.Designation = DefaultDesignation
	}
	if len(row.FeatureNames) == 0 {
		PutRowAttributes(lr.Attributes(), row, 0)
	} else {
		PutRowAttributes(lr.Attributes(), row, 1) // room for the feature names too
		SetFeatureNames(lr, row.FeatureNames)
	}
	lr.SetEventName(EventName)
	if !row.Timestamp.IsZero() {
		lr.SetTimestamp(pcommon.NewTimestampFromTime(row.Timestamp))
	}
}

// PutRowAttributes sets the attributes of row's non-empty model name,
// model version, designation, correlation id and request id, growing attrs
// once for all of them and spare more; an attribute that already holds its
// value as a string is left as it is.
func PutRowAttributes(attrs pcommon.Map, row Row, spare int) {
	kvs := [...]struct{ key, value string }{{AttrModelName, row.ModelName}, {AttrModelVersion, row.ModelVersion},
		{AttrDesignation, row.Designation}, {AttrCorrelationID, row.CorrelationID}, {AttrRequestID, row.RequestID}}
	missing := 0
	for i, kv := range kvs {
		if kv.value == "" {
			continue
		}
		if v, ok := attrs.Get(kv.key); ok && v.Type() == pcommon.ValueTypeStr && v.Str() == kv.value {
			kvs[i].value = "" // already there
			continue
		}
		missing++
	}
	if missing == 0 {
		return
	}
	attrs.EnsureCapacity(attrs.Len() + missing + spare)
	for _, kv := range kvs {
		if kv.value != "" {
			attrs.PutStr(kv.key, kv.value)
		}
	}
}

// Features returns the record's body as the feature map, turning the body
// into an empty map first when it is not one.
func Features(lr plog.LogRecord) pcommon.Map {
	if lr.Body().Type() != pcommon.ValueTypeMap {
		return lr.Body().SetEmptyMap()
	}
	return lr.Body().Map()
}

// FeatureNames returns the declared column order of a record, or nil.
func FeatureNames(lr plog.LogRecord) []string {
	v, ok := lr.Attributes().Get(AttrFeatureNames)
	if !ok || v.Type() != pcommon.ValueTypeSlice {
		return nil
	}
	s := v.Slice()
	names := make([]string, s.Len())
	for i := range names {
		names[i] = s.At(i).AsString()
	}
	return names
}

// AppendFeatureNames appends the declared column order of a record to dst.
func AppendFeatureNames(dst []string, lr plog.LogRecord) []string {
	v, ok := lr.Attributes().Get(AttrFeatureNames)
	if !ok || v.Type() != pcommon.ValueTypeSlice {
		return dst
	}
	s := v.Slice()
	for i := 0; i < s.Len(); i++ {
		dst = append(dst, s.At(i).AsString())
	}
	return dst
}

// SetFeatureNames sets the declared column order of a record.
func SetFeatureNames(lr plog.LogRecord, names []string) {
	s := lr.Attributes().PutEmptySlice(AttrFeatureNames)
	s.EnsureCapacity(len(names))
	for _, n := range names {
		s.AppendEmpty().SetStr(n)
	}
}

// ScoringTime is the record's timestamp, or its observed timestamp when the
// timestamp is unset or not a scoring time (IsScoringTime); 1970-01-01 when
// neither is one (FillTimestamp gives such a record its arrival time).
func ScoringTime(lr plog.LogRecord) time.Time {
	ts := lr.Timestamp()
	if !IsScoringTime(ts) {
		ts = lr.ObservedTimestamp()
	}
	if !IsScoringTime(ts) {
		ts = 0
	}
	return ts.AsTime().UTC()
}
