package contract

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

func TestRowRoundTrip(t *testing.T) {
	ts := time.Date(2020, 8, 13, 15, 54, 16, 691697000, time.UTC)
	lr := plog.NewLogRecord()
	in := Row{ModelName: "best_model", ModelVersion: "10", Designation: "inputs",
		CorrelationID: "c-1", RequestID: "r-1", FeatureNames: []string{"a", "b"}, Timestamp: ts}
	WriteRow(lr, in)
	got, ok := ReadRow(lr)
	if !ok {
		t.Fatal("record written by WriteRow is not model data")
	}
	if got.ModelName != in.ModelName || got.ModelVersion != in.ModelVersion || got.Designation != in.Designation ||
		got.CorrelationID != in.CorrelationID || got.RequestID != in.RequestID || !got.Timestamp.Equal(ts) ||
		len(got.FeatureNames) != 2 || got.FeatureNames[1] != "b" {
		t.Fatalf("round trip: got %+v, want %+v", got, in)
	}
	if lr.EventName() != EventName {
		t.Fatalf("event name %q", lr.EventName())
	}
}

func TestReadRowDefaults(t *testing.T) {
	lr := plog.NewLogRecord()
	if _, ok := ReadRow(lr); ok {
		t.Fatal("record without model name read as model data")
	}
	lr.Attributes().PutStr(AttrModelName, "m")
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(time.Unix(100, 0)))
	row, ok := ReadRow(lr)
	if !ok || row.Designation != DefaultDesignation || row.Timestamp.Unix() != 100 {
		t.Fatalf("defaults: %+v", row)
	}
}

func TestFormatValue(t *testing.T) {
	tests := []struct {
		name string
		set  func(v pcommon.Value)
		want string
	}{
		{"string", func(v pcommon.Value) { v.SetStr("a,b") }, "a,b"},
		{"true", func(v pcommon.Value) { v.SetBool(true) }, "True"},
		{"false", func(v pcommon.Value) { v.SetBool(false) }, "False"},
		{"int", func(v pcommon.Value) { v.SetInt(-42) }, "-42"},
		{"double", func(v pcommon.Value) { v.SetDouble(1.1386826) }, "1.1386826"},
		{"integral double", func(v pcommon.Value) { v.SetDouble(1234567) }, "1234567"},
		{"large integral double", func(v pcommon.Value) { v.SetDouble(1e20) }, "100000000000000000000"},
		{"tiny double", func(v pcommon.Value) { v.SetDouble(1.5e-9) }, "1.5e-09"},
		{"nan", func(v pcommon.Value) { v.SetDouble(math.NaN()) }, "nan"},
		{"empty", func(pcommon.Value) {}, ""},
		{"slice", func(v pcommon.Value) { s := v.SetEmptySlice(); s.AppendEmpty().SetInt(1); s.AppendEmpty().SetStr("x") }, `[1,"x"]`},
		{"bytes", func(v pcommon.Value) { v.SetEmptyBytes().FromRaw([]byte("hi")) }, "aGk="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := pcommon.NewValueEmpty()
			tt.set(v)
			if got := FormatValue(v); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestValidateSegment(t *testing.T) {
	good := []string{"best_model", "10", "inputs", "aks-w-collv9", "model.v2", "ünïcode"}
	bad := []string{"", ".", "..", "a/b", `a\b`, "a\x00b", "a\nb", " lead", "trail ", "end.", "a\u200bb", string([]byte{0xff}),
		string(make([]byte, MaxSegmentLen+1))}
	for _, s := range good {
		if err := ValidateSegment("x", s); err != nil {
			t.Errorf("%q: unexpected error %v", s, err)
		}
	}
	for _, s := range bad {
		if err := ValidateSegment("x", s); !errors.Is(err, ErrInvalidSegment) {
			t.Errorf("%q: want ErrInvalidSegment, got %v", s, err)
		}
	}
}

func TestPathDir(t *testing.T) {
	p := PathParts{SubscriptionID: "1A2B", ResourceGroup: "MyRG", Workspace: "WS", Webservice: "svc",
		ModelName: "best_model", ModelVersion: "10", Designation: "inputs"}
	ts := time.Date(2018, 12, 31, 23, 59, 0, 0, time.FixedZone("x", 3600))
	if got, want := p.Dir(ts, false), "1a2b/myrg/ws/svc/best_model/10/inputs/2018/12/31"; got != want {
		t.Fatalf("daily: got %q, want %q", got, want)
	}
	if got, want := p.Dir(ts, true), "1a2b/myrg/ws/svc/best_model/10/inputs/2018/12/31/22"; got != want {
		t.Fatalf("hourly: got %q, want %q", got, want)
	}
	if got := p.WorkspaceColumn(); got != "1a2b/myrg/ws" {
		t.Fatalf("workspace column %q", got)
	}
}

func TestTimestamps(t *testing.T) {
	ts := time.Date(2020, 8, 13, 15, 54, 16, 691697000, time.UTC)
	if got := FormatTimestamp(ts); got != "2020-08-13T15:54:16.691697" {
		t.Fatalf("format: %q", got)
	}
	for _, s := range []string{"2020-08-13T15:54:16.691697", "2020-08-13T15:54:16.691697Z", "2020-08-13T17:54:16.691697+02:00"} {
		got, err := ParseTimestamp(s)
		if err != nil || !got.Equal(ts) {
			t.Fatalf("parse %q: %v %v", s, got, err)
		}
	}
	if _, err := ParseTimestamp("yesterday"); err == nil {
		t.Fatal("parsed garbage")
	}
}

// TestTimestampRange: a scoring timestamp is a time a log record carries as
// itself (OTLP's nanoseconds since 1970, not 0, below 2^63 as pdata reads
// them); every other time is refused, never wrapped into another.
func TestTimestampRange(t *testing.T) {
	if got := MinTimestamp.Format(time.RFC3339Nano); got != "1970-01-01T00:00:00.000000001Z" {
		t.Errorf("MinTimestamp %s", got)
	}
	if got := MaxTimestamp.Format(time.RFC3339Nano); got != "2262-04-11T23:47:16.854775807Z" {
		t.Errorf("MaxTimestamp %s", got)
	}
	tests := []struct {
		time time.Time
		ok   bool
	}{
		{MinTimestamp, true},
		{MaxTimestamp, true},
		{time.Unix(0, 1), true},
		{time.Unix(0, -1), false},
		{time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{time.Unix(0, math.MinInt64), false}, // 1677-09-21: what 2^63 ns reads as
		{MinTimestamp.Add(-1), false},
		{MaxTimestamp.Add(1), false},
		{time.Time{}, false}, // 0001-01-01: the zero time.Time
		{time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), false},
		{time.Unix(0, 0), false},
	}
	for _, tt := range tests {
		err := CheckTimestamp(tt.time)
		if (err == nil) != tt.ok {
			t.Errorf("%s: %v, want ok %v", tt.time.Format(time.RFC3339Nano), err, tt.ok)
		}
		if !tt.ok {
			continue
		}
		// In range, the time survives the log record's timestamp.
		lr := plog.NewLogRecord()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(tt.time))
		if got := ScoringTime(lr); !got.Equal(tt.time) {
			t.Errorf("%s: the record carries %s", tt.time.Format(time.RFC3339Nano), got.Format(time.RFC3339Nano))
		}
	}
	for _, s := range []string{"2262-04-12T00:00:00", "0001-01-01T00:00:00", "1970-01-01T00:00:00Z"} {
		if _, err := ParseTimestamp(s); err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("ParseTimestamp(%q): %v", s, err)
		}
	}
	for _, tt := range []struct {
		secs float64
		want string // "" for refused
	}{
		{1597333456.5, "2020-08-13T15:44:16.5Z"},
		{0.000001, "1970-01-01T00:00:00.000001Z"},
		{-1, ""},
		{9223372036, "2262-04-11T23:47:16Z"},
		{9223372037, ""},
		{-9223372037, ""},
		{0, ""},
		{1e30, ""},
		{math.Inf(1), ""},
		{math.Inf(-1), ""},
		{math.NaN(), ""},
	} {
		got, err := TimeFromEpochSeconds(tt.secs)
		if tt.want == "" {
			if err == nil {
				t.Errorf("TimeFromEpochSeconds(%v) = %v, want an error", tt.secs, got)
			}
		} else if err != nil || got.Format(time.RFC3339Nano) != tt.want {
			t.Errorf("TimeFromEpochSeconds(%v) = %v, %v; want %s", tt.secs, got, err, tt.want)
		}
	}
}
