package contract

import (
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

func TestDatePathAndQuarantineDir(t *testing.T) {
	ts := time.Date(2018, 12, 31, 23, 5, 0, 0, time.FixedZone("plus1", 3600)) // 22:05 UTC
	for _, tt := range []struct {
		hourly bool
		want   string
	}{{false, "2018/12/31"}, {true, "2018/12/31/22"}} {
		if got := DatePath(ts, tt.hourly); got != tt.want {
			t.Errorf("DatePath(hourly=%v) = %q, want %q", tt.hourly, got, tt.want)
		}
		if got := QuarantineDir("quarantine", ts, tt.hourly); got != "quarantine/"+tt.want {
			t.Errorf("QuarantineDir(hourly=%v) = %q", tt.hourly, got)
		}
		// Dir and the quarantine folder share the date folders.
		if got := (PathParts{"s", "r", "w", "svc", "m", "1", "inputs"}).Dir(ts, tt.hourly); !strings.HasSuffix(got, "/inputs/"+tt.want) {
			t.Errorf("Dir(hourly=%v) = %q", tt.hourly, got)
		}
	}
}

func TestQuarantineReason(t *testing.T) {
	ok := PathParts{"s", "r", "w", "svc", "m", "1", "inputs"}
	for _, tt := range []struct {
		name   string
		edit   func(*PathParts)
		reason string // a substring; "" means placed
	}{
		{"placed", func(*PathParts) {}, ""},
		{"no version", func(p *PathParts) { p.ModelVersion = "" }, "model version is missing"},
		{"bad model name", func(p *PathParts) { p.ModelName = "../x" }, "model name"},
		{"bad designation", func(p *PathParts) { p.Designation = "a/b" }, "designation"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := ok
			tt.edit(&p)
			got := QuarantineReason(p)
			if (tt.reason == "") != (got == "") || !strings.Contains(got, tt.reason) {
				t.Errorf("QuarantineReason = %q, want %q", got, tt.reason)
			}
		})
	}
}

func TestWithResource(t *testing.T) {
	cfg := PathParts{SubscriptionID: "sub", ResourceGroup: "rg", Workspace: "ws", Webservice: "svc"}
	attrs := pcommon.NewMap()
	attrs.PutStr(AttrWorkspace, "other-ws")
	attrs.PutStr(AttrWebservice, "") // empty: keeps the configured value
	attrs.PutInt(AttrResourceGroup, 7)
	got := cfg.WithResource(attrs)
	want := PathParts{SubscriptionID: "sub", ResourceGroup: "7", Workspace: "other-ws", Webservice: "svc"}
	if got != want {
		t.Errorf("WithResource = %+v, want %+v", got, want)
	}
}

func TestRequestIDOrNil(t *testing.T) {
	if got := RequestIDOrNil(""); got != NilRequestID {
		t.Errorf("RequestIDOrNil(\"\") = %q", got)
	}
	if got := RequestIDOrNil("r1"); got != "r1" {
		t.Errorf("RequestIDOrNil(r1) = %q", got)
	}
}

func TestColumnOrder(t *testing.T) {
	body := func(keys ...string) pcommon.Value {
		v := pcommon.NewValueMap()
		for _, k := range keys {
			v.Map().PutStr(k, "x")
		}
		return v
	}
	for _, tt := range []struct {
		name     string
		declared []string
		body     pcommon.Value
		inOrder  bool
		columns  []string
	}{
		{"as declared", []string{"a", "b"}, body("a", "b"), true, []string{"a", "b"}},
		{"body out of order", []string{"a", "b"}, body("b", "a"), false, []string{"a", "b"}},
		{"undeclared keys follow, sorted", []string{"b"}, body("b", "z", "c"), false, []string{"b", "c", "z"}},
		{"declared without a value", []string{"a", "b"}, body("a"), false, []string{"a", "b"}},
		{"duplicates dropped", []string{"a", "b", "a"}, body("a", "b"), false, []string{"a", "b"}},
		{"not a map", []string{"a"}, pcommon.NewValueStr("x"), false, []string{"a"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := BodyInOrder(tt.declared, tt.body); got != tt.inOrder {
				t.Errorf("BodyInOrder = %v, want %v", got, tt.inOrder)
			}
			if got := ColumnOrder(tt.declared, tt.body); !slices.Equal(got, tt.columns) {
				t.Errorf("ColumnOrder = %v, want %v", got, tt.columns)
			}
		})
	}
}
