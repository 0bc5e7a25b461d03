package contract

import (
	"slices"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"
)

func TestColumns(t *testing.T) {
	tests := []struct {
		name     string
		declared []string
		keys     []string
		want     []string
		inOrder  bool // the body holds exactly the columns, in order
	}{
		{"declared, then the rest sorted", []string{"c"}, []string{"b", "c", "a"}, []string{"c", "a", "b"}, false},
		{"declared absent from the body", []string{"z", "a"}, []string{"a"}, []string{"z", "a"}, false},
		{"duplicates declared", []string{"a", "a", "b"}, []string{"b"}, []string{"a", "b"}, false},
		{"declared, body in that order", []string{"b", "a"}, []string{"b", "a"}, []string{"b", "a"}, true},
		{"none declared: the body's order", nil, []string{"b", "a", "c"}, []string{"b", "a", "c"}, true},
		{"none declared, empty body", nil, nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lr := plog.NewLogRecord()
			if tt.declared != nil {
				SetFeatureNames(lr, tt.declared)
			}
			body := lr.Body().SetEmptyMap()
			for _, k := range tt.keys {
				body.PutEmpty(k)
			}
			if got := Columns(lr); !slices.Equal(got, tt.want) {
				t.Errorf("Columns = %q, want %q", got, tt.want)
			}
			if got := BodyInOrder(FeatureNames(lr), lr.Body()); got != tt.inOrder {
				t.Errorf("BodyInOrder = %v, want %v", got, tt.inOrder)
			}
			if got := AppendKeys([]string{"keep"}, lr.Body()); !slices.Equal(got, append([]string{"keep"}, tt.keys...)) {
				t.Errorf("AppendKeys = %q", got)
			}
		})
	}
	// A body that is not a map has no columns of its own.
	lr := plog.NewLogRecord()
	lr.Body().SetStr("x")
	if got := Columns(lr); len(got) != 0 || BodyInOrder(nil, lr.Body()) {
		t.Errorf("string body: Columns = %q, BodyInOrder = %v", got, BodyInOrder(nil, lr.Body()))
	}
}

// A record's columns survive what carries it between components: the
// persistent queue and Kafka (OTLP protobuf), and OTLP JSON.
func TestColumnsSurviveEncoding(t *testing.T) {
	ld := plog.NewLogs()
	lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	WriteRow(lr, Row{ModelName: "m", ModelVersion: "1"})
	body := Features(lr)
	want := []string{"zeta", "alpha", "mid", "beta"}
	for _, k := range want {
		body.PutInt(k, 1)
	}
	for _, c := range []struct {
		name string
		m    plog.Marshaler
		u    plog.Unmarshaler
	}{
		{"protobuf", &plog.ProtoMarshaler{}, &plog.ProtoUnmarshaler{}},
		{"json", &plog.JSONMarshaler{}, &plog.JSONUnmarshaler{}},
	} {
		b, err := c.m.MarshalLogs(ld)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.u.UnmarshalLogs(b)
		if err != nil {
			t.Fatal(err)
		}
		if cols := Columns(got.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)); !slices.Equal(cols, want) {
			t.Errorf("%s: columns %q, want %q", c.name, cols, want)
		}
	}
}
