package contract

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// Rules for records that enter the contract without an id or a time (an OTel
// SDK's log records): every row gets a correlation id and a real scoring time.

// CorrelationIDs hands out the correlation ids of the records of one request
// that carry none. The reference collector made one per collect() call; a
// request here is one delivery to the component where records enter the
// contract (one OTLP export call, one ConsumeLogs), and within it the records
// sharing a request id (or all lacking one) share one generated id, so an
// SDK export that batches several scoring requests does not merge them.
// The zero value is ready; Reset before each delivery.
type CorrelationIDs struct {
	byRequest map[string]string
}

// For returns the generated correlation id of the delivery's records whose
// request id is requestID ("" for none).
func (c *CorrelationIDs) For(requestID string) string {
	if id, ok := c.byRequest[requestID]; ok {
		return id
	}
	if c.byRequest == nil {
		c.byRequest = map[string]string{}
	}
	id := NewCorrelationID("")
	c.byRequest[requestID] = id
	return id
}

// Reset forgets the ids of the previous delivery.
func (c *CorrelationIDs) Reset() { clear(c.byRequest) }

// FillTimestamp gives a record its scoring time: its timestamp; when unset
// or not a scoring time (IsScoringTime: OTLP's 2^63 ns or more, a time after
// 2262-04-11 that would be written as one before 1970), its observed
// timestamp; when that is unset or not a scoring time either, arrival (the
// time the delivery reached the component where records enter the
// contract), never 1970 nor a wrapped time. It returns the first timestamp
// it passed over for being out of range, 0 when none, for the caller to
// report the substitution.
func FillTimestamp(lr plog.LogRecord, arrival pcommon.Timestamp) (outOfRange pcommon.Timestamp) {
	for _, ts := range [...]pcommon.Timestamp{lr.Timestamp(), lr.ObservedTimestamp()} {
		if IsScoringTime(ts) {
			lr.SetTimestamp(ts)
			return outOfRange
		}
		if ts != 0 && outOfRange == 0 {
			outOfRange = ts
		}
	}
	lr.SetTimestamp(arrival)
	return outOfRange
}
