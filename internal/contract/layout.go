package contract

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// DataFile is the file each folder of the layout holds; a file that reached
// its size limits is followed by data_1.csv, data_2.csv, ...
const DataFile = "data.csv"

// The eight correlation columns that follow the feature columns in every
// data.csv, in the reference collector's order.
const (
	ColCorrelationID    = "$aml_dc_correlation_id"
	ColScoringTimestamp = "$aml_dc_scoring_timestamp"
	ColBoundary         = "$aml_dc_boundary"
	ColWorkspace        = "$aml_workspace"
	ColServiceName      = "$aml_service_name"
	ColModelName        = "$aml_model_name"
	ColModelVersion     = "$aml_model_version"
	ColRequestID        = "$aml_request_id"
)

// CorrelationColumns lists the correlation columns in file order.
var CorrelationColumns = []string{
	ColCorrelationID, ColScoringTimestamp, ColBoundary, ColWorkspace,
	ColServiceName, ColModelName, ColModelVersion, ColRequestID,
}

// Boundary values of $aml_dc_boundary: the partition span in minutes.
const (
	BoundaryDay  = "1440"
	BoundaryHour = "60"
)

// TimestampLayout is the reference format of $aml_dc_scoring_timestamp:
// UTC, no offset, microseconds.
const TimestampLayout = "2006-01-02T15:04:05.000000"

// FormatTimestamp renders a scoring timestamp as the reference did.
func FormatTimestamp(t time.Time) string {
	return t.UTC().Format(TimestampLayout)
}

// AppendTimestamp appends FormatTimestamp(t) to dst.
func AppendTimestamp(dst []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(dst, TimestampLayout)
}

// ParseTimestamp accepts the reference format and RFC 3339 (with or without
// fractional seconds or offset); a time without offset is UTC. The time must
// be one a row can carry (CheckTimestamp).
func ParseTimestamp(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			if err := CheckTimestamp(t); err != nil {
				return time.Time{}, fmt.Errorf("timestamp %q %w", s, err)
			}
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("timestamp %q is neither RFC 3339 nor %s", s, TimestampLayout)
}

// The scoring timestamps a row can carry. A log record's timestamp is OTLP's
// unsigned nanoseconds since 1970, which pdata reads as a signed int64: a
// time before 1970 has no OTLP form, and one of 2^63 ns or more reads as a
// time before 1970. So a row carries a time after 1970-01-01T00:00:00Z (0
// means "not set") up to int64's last nanosecond, and any other time would
// be written as another, wrapped time.
var (
	MinTimestamp = time.Unix(0, 1).UTC()             // 1970-01-01T00:00:00.000000001Z
	MaxTimestamp = time.Unix(0, math.MaxInt64).UTC() // 2262-04-11T23:47:16.854775807Z
)

// unixEpoch is the time a log record timestamp of 0, "not set", reads as.
var unixEpoch = time.Unix(0, 0)

// CheckTimestamp reports an error for a time a row cannot carry as its
// scoring timestamp: outside MinTimestamp..MaxTimestamp. The error reads on
// from the value it follows ("timestamp X <err>").
func CheckTimestamp(t time.Time) error {
	switch {
	case t.Equal(unixEpoch):
		return errors.New("is 1970-01-01T00:00:00Z exactly, which a log record reads as no timestamp: leave it out to take the arrival time")
	case t.Before(MinTimestamp), t.After(MaxTimestamp):
		return errTimestampRange
	}
	return nil
}

var errTimestampRange = fmt.Errorf("is out of range: a scoring timestamp is from %s to %s",
	MinTimestamp.Format(time.RFC3339Nano), MaxTimestamp.Format(time.RFC3339Nano))

// IsScoringTime reports whether a log record timestamp is a time a row can
// carry (CheckTimestamp's range): not 0 ("not set") and below 2^63 ns, past
// which pdata would read it as a time before 1970.
func IsScoringTime(ts pcommon.Timestamp) bool {
	return ts != 0 && ts <= math.MaxInt64
}

// TimeFromEpochSeconds is the time of a count of seconds since 1970 (with a
// fraction, rounded to the microsecond), checked as CheckTimestamp does.
func TimeFromEpochSeconds(secs float64) (time.Time, error) {
	// Compared as floats first: a float64 past int64's range has no
	// defined conversion.
	if math.IsNaN(secs) || secs < 0 || secs > float64(MaxTimestamp.Unix()+1) {
		return time.Time{}, errTimestampRange
	}
	whole, frac := math.Modf(secs)
	t := time.Unix(int64(whole), int64(math.Round(frac*1e6))*1e3).UTC()
	if err := CheckTimestamp(t); err != nil {
		return time.Time{}, err
	}
	return t, nil
}

// NewCorrelationID returns a new UUID, or "<userID>-<uuid>" when the caller
// gave its own id, as the reference collect() did.
func NewCorrelationID(userID string) string { return CorrelationIDFor(userID, "") }

// CorrelationIDFor is NewCorrelationID whose UUID derives from seed (a
// client's Idempotency-Key) when one is given: a resend of a request, whose
// first send may have left part of its rows queued, names its rows as the
// first send did. Name-based (SHA-1, RFC 9562 version 5).
func CorrelationIDFor(userID, seed string) string {
	id := derivedUUID("correlation", seed)
	if userID == "" {
		return id
	}
	return userID + "-" + id
}

// RequestIDFor is a new UUID for a request id, derived from seed as
// CorrelationIDFor's is (a different UUID for the same seed).
func RequestIDFor(seed string) string { return derivedUUID("request", seed) }

func derivedUUID(kind, seed string) string {
	if seed == "" {
		return uuid.NewString()
	}
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("urn:otelcol-modeldata:"+kind+":"+seed)).String()
}

// FormatValue renders a feature value as one CSV cell: strings as they are,
// booleans as True/False (as the reference's Python writer did), integers in
// decimal, doubles without exponent for ordinary magnitudes (an integer
// stored as a double stays "1234567"), empty for an empty value, maps and
// slices as JSON, bytes as base64.
func FormatValue(v pcommon.Value) string {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return v.Str()
	case pcommon.ValueTypeBool:
		if v.Bool() {
			return "True"
		}
		return "False"
	case pcommon.ValueTypeInt:
		return strconv.FormatInt(v.Int(), 10)
	case pcommon.ValueTypeDouble:
		return FormatFloat(v.Double())
	case pcommon.ValueTypeEmpty:
		return ""
	case pcommon.ValueTypeBytes:
		return base64.StdEncoding.EncodeToString(v.Bytes().AsRaw())
	default: // map, slice
		return string(appendJSON(nil, v))
	}
}

// appendJSON appends a map or slice as encoding/json writes its raw value
// (v.AsString when it cannot). An array of numbers, booleans and nulls
// (scores, embeddings) is written directly, without encoding/json's allocations.
func appendJSON(dst []byte, v pcommon.Value) []byte {
	if b, ok := appendScalarArray(dst, v); ok {
		return b
	}
	raw, err := json.Marshal(v.AsRaw())
	if err != nil {
		return append(dst, v.AsString()...)
	}
	return append(dst, raw...)
}

// appendScalarArray is appendJSON for a slice of integers, finite doubles,
// booleans and empty values; ok is false (dst unchanged) for anything else.
func appendScalarArray(dst []byte, v pcommon.Value) (out []byte, ok bool) {
	if v.Type() != pcommon.ValueTypeSlice {
		return dst, false
	}
	b := append(dst, '[')
	for i, e := range v.Slice().All() {
		if i > 0 {
			b = append(b, ',')
		}
		switch e.Type() {
		case pcommon.ValueTypeInt:
			b = strconv.AppendInt(b, e.Int(), 10)
		case pcommon.ValueTypeDouble:
			d := e.Double()
			if math.IsNaN(d) || math.IsInf(d, 0) {
				return dst, false
			}
			b = appendJSONFloat(b, d)
		case pcommon.ValueTypeBool:
			b = strconv.AppendBool(b, e.Bool())
		case pcommon.ValueTypeEmpty:
			b = append(b, "null"...)
		default:
			return dst, false
		}
	}
	return append(b, ']'), true
}

// appendJSONFloat formats a double as encoding/json does (ES6 number formatting).
func appendJSONFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// Clean up e-09 to e-9, as encoding/json does.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// AppendValue appends FormatValue(v) to dst, without an intermediate
// string for booleans, integers, doubles, empty values and arrays of those.
func AppendValue(dst []byte, v pcommon.Value) []byte {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return append(dst, v.Str()...)
	case pcommon.ValueTypeBool:
		if v.Bool() {
			return append(dst, "True"...)
		}
		return append(dst, "False"...)
	case pcommon.ValueTypeInt:
		return strconv.AppendInt(dst, v.Int(), 10)
	case pcommon.ValueTypeDouble:
		return AppendFloat(dst, v.Double())
	case pcommon.ValueTypeEmpty:
		return dst
	case pcommon.ValueTypeMap, pcommon.ValueTypeSlice:
		return appendJSON(dst, v)
	default:
		return append(dst, FormatValue(v)...)
	}
}

// FormatFloat renders a double without exponent between 1e-6 and 1e21 and
// in shortest exponent form outside; NaN and infinities as Python writes them.
func FormatFloat(f float64) string {
	return string(AppendFloat(make([]byte, 0, 32), f))
}

// AppendFloat appends FormatFloat(f) to dst.
func AppendFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "nan"...)
	case math.IsInf(f, 1):
		return append(dst, "inf"...)
	case math.IsInf(f, -1):
		return append(dst, "-inf"...)
	}
	if abs := math.Abs(f); abs == 0 || (abs >= 1e-6 && abs < 1e21) {
		if b, ok := appendShortDecimal(dst, f, abs); ok {
			return b
		}
		return strconv.AppendFloat(dst, f, 'f', -1, 64)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9}

// appendShortDecimal writes a double below 1e15 with at most 9 decimals
// (most feature values: prices, scores, measures) as strconv's shortest 'f'
// form would, without its general algorithm. With p the most decimals that
// keep f*10^p under 1e15, n = round(f*10^p) is the only p-decimal number
// that can convert back to f (below 1e15 doubles are at most 1/8 apart,
// p-decimal numbers 1 apart), and n/10^p, a correctly rounded division of
// two exact doubles, is what parsing its digits gives. If it is f, n
// without its trailing zeros is the shortest string. ok is false for
// anything else (and for -0), which strconv formats.
func appendShortDecimal(dst []byte, f, abs float64) ([]byte, bool) {
	if abs == 0 || abs >= 1e15 {
		return dst, false
	}
	p := len(pow10) - 1
	for abs*pow10[p] >= 1e15 {
		p--
	}
	n := math.Round(abs * pow10[p])
	if n/pow10[p] != abs {
		return dst, false
	}
	u := uint64(n)
	for p > 0 && u%10 == 0 {
		u /= 10
		p--
	}
	if f < 0 {
		dst = append(dst, '-')
	}
	if p == 0 {
		return strconv.AppendUint(dst, u, 10), true
	}
	unit := uint64(pow10[p])
	dst = append(strconv.AppendUint(dst, u/unit, 10), '.')
	frac := u % unit
	for d := unit / 10; d > frac; d /= 10 { // the decimals' leading zeros
		dst = append(dst, '0')
	}
	return strconv.AppendUint(dst, frac, 10), true
}

// MaxSegmentLen bounds one path segment (Azure allows 1,024 characters for a
// whole blob name; eleven segments of 128 stay well inside).
const MaxSegmentLen = 128

// ErrInvalidSegment is wrapped by every ValidateSegment error.
var ErrInvalidSegment = errors.New("invalid path segment")

// ValidateSegment checks that a client-supplied value (model name, version,
// designation, service name, ...) can be one blob path segment: valid UTF-8,
// 1 to MaxSegmentLen bytes, not "." or "..", no "/" or "\", no control or
// invisible format characters, no leading or trailing space, and not ending
// in "." (Azure refuses blob names whose segments end in a dot). what names
// the field in the error.
func ValidateSegment(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: %s is empty", ErrInvalidSegment, what)
	case len(s) > MaxSegmentLen:
		return fmt.Errorf("%w: %s is %d bytes long, over %d", ErrInvalidSegment, what, len(s), MaxSegmentLen)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalidSegment, what)
	case s == "." || s == "..":
		return fmt.Errorf("%w: %s %q is a relative path", ErrInvalidSegment, what, s)
	case strings.HasSuffix(s, "."):
		return fmt.Errorf("%w: %s %q ends with a dot", ErrInvalidSegment, what, s)
	case strings.TrimSpace(s) != s:
		return fmt.Errorf("%w: %s %q has leading or trailing space", ErrInvalidSegment, what, s)
	}
	for _, r := range s {
		if r == '/' || r == '\\' || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return fmt.Errorf("%w: %s %q contains %U", ErrInvalidSegment, what, s, r)
		}
	}
	return nil
}

// PathParts are the scope segments of a modeldata blob path.
type PathParts struct {
	SubscriptionID string
	ResourceGroup  string
	Workspace      string
	Webservice     string
	ModelName      string
	ModelVersion   string
	Designation    string
}

// WorkspaceColumn is the $aml_workspace value: subscription/resourcegroup/workspace,
// lower-cased as in the path.
func (p PathParts) WorkspaceColumn() string {
	return strings.ToLower(p.SubscriptionID + "/" + p.ResourceGroup + "/" + p.Workspace)
}

// Validate checks every part with ValidateSegment.
func (p PathParts) Validate() error {
	for _, f := range []struct{ what, v string }{
		{"subscription id", p.SubscriptionID},
		{"resource group", p.ResourceGroup},
		{"workspace", p.Workspace},
		{"webservice", p.Webservice},
		{"model name", p.ModelName},
		{"model version", p.ModelVersion},
		{"designation", p.Designation},
	} {
		if err := ValidateSegment(f.what, f.v); err != nil {
			return err
		}
	}
	return nil
}

// Dir is the folder of a row's file, relative to the container:
// <subscriptionid>/<resourcegroup>/<workspace>/<webservice>/<model>/<version>/<designation>/<yyyy>/<mm>/<dd>[/<hh>].
// The subscription, resource group and workspace are lower-cased, as the
// reference collector did. Validate the parts first.
func (p PathParts) Dir(t time.Time, hourly bool) string {
	var b strings.Builder
	for _, s := range []string{strings.ToLower(p.SubscriptionID), strings.ToLower(p.ResourceGroup), strings.ToLower(p.Workspace),
		p.Webservice, p.ModelName, p.ModelVersion, p.Designation} {
		b.WriteString(s)
		b.WriteByte('/')
	}
	b.WriteString(DatePath(t, hourly))
	return b.String()
}
