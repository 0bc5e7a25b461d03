package contract

import (
	"math"
	"testing"
	"time"

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

// TestFillTimestamp: a record's scoring time is its own timestamp, else its
// observed one, else the arrival time; a timestamp of 2^63 ns or more (OTLP
// times after 2262-04-11, which pdata reads as before 1970) counts as none
// and is reported.
func TestFillTimestamp(t *testing.T) {
	const ts, observed, arrival = pcommon.Timestamp(3e18), pcommon.Timestamp(2e18), pcommon.Timestamp(1e18)
	const (
		max      = pcommon.Timestamp(math.MaxInt64)
		twoTo63  = pcommon.Timestamp(1 << 63)
		year2300 = pcommon.Timestamp(10413792000000000000)
		maxU64   = pcommon.Timestamp(math.MaxUint64)
	)
	tests := []struct {
		name             string
		ts, observed     pcommon.Timestamp
		want, outOfRange pcommon.Timestamp
	}{
		{"own timestamp", ts, observed, ts, 0},
		{"int64 max: the last time", max, observed, max, 0},
		{"observed timestamp", 0, observed, observed, 0},
		{"neither: arrival", 0, 0, arrival, 0},
		{"2^63: observed", twoTo63, observed, observed, twoTo63},
		{"year 2300: observed", year2300, observed, observed, year2300},
		{"2^64-1: observed", maxU64, observed, observed, maxU64},
		{"2^63, no observed: arrival", twoTo63, 0, arrival, twoTo63},
		{"both out of range: arrival", maxU64, twoTo63, arrival, maxU64},
		{"observed out of range: arrival", 0, year2300, arrival, year2300},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lr := plog.NewLogRecord()
			lr.SetTimestamp(tt.ts)
			lr.SetObservedTimestamp(tt.observed)
			before := ScoringTime(lr)
			if got := FillTimestamp(lr, arrival); got != tt.outOfRange {
				t.Errorf("reported %d out of range, want %d", got, tt.outOfRange)
			}
			if lr.Timestamp() != tt.want {
				t.Fatalf("timestamp %d, want %d", lr.Timestamp(), tt.want)
			}
			// Without the arrival time, the exporter reads the same time,
			// or 1970 for none.
			want := tt.want.AsTime()
			if tt.want == arrival {
				want = time.Unix(0, 0)
			}
			if !before.Equal(want) {
				t.Errorf("ScoringTime before filling %s", before.Format(time.RFC3339Nano))
			}
		})
	}
}
