package contract

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

func TestCorrelationIDsOnePerRequest(t *testing.T) {
	var c CorrelationIDs
	a, b, none := c.For("req-a"), c.For("req-b"), c.For("")
	if a == "" || a == b || a == none || b == none {
		t.Fatalf("ids %q %q %q: want three distinct ids", a, b, none)
	}
	if c.For("req-a") != a || c.For("") != none {
		t.Fatal("a request's records must share one id within a delivery")
	}
	c.Reset()
	if c.For("req-a") == a {
		t.Fatal("a new delivery must get a new id")
	}
}

func TestFillTimestamp(t *testing.T) {
	const ts, observed, arrival = pcommon.Timestamp(3e18), pcommon.Timestamp(2e18), pcommon.Timestamp(1e18)
	tests := []struct {
		name         string
		ts, observed pcommon.Timestamp
		want         pcommon.Timestamp
	}{
		{"own timestamp", ts, observed, ts},
		{"observed timestamp", 0, observed, observed},
		{"neither: arrival", 0, 0, arrival},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lr := plog.NewLogRecord()
			lr.SetTimestamp(tt.ts)
			lr.SetObservedTimestamp(tt.observed)
			FillTimestamp(lr, arrival)
			if lr.Timestamp() != tt.want {
				t.Fatalf("timestamp %d, want %d", lr.Timestamp(), tt.want)
			}
		})
	}
}
