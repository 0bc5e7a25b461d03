package contract

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// Transport attributes of a record that came in a request with an
// Idempotency-Key: the key and the record's place in that request. A resend
// of the request carries the same pair for the same row, so a writer that
// remembers the pairs it wrote writes each row once. They are never written
// as columns or fields: every format reads only the attributes it names.
const (
	AttrIdempotencyKey     = "modeldata.idempotency_key"
	AttrIdempotencyOrdinal = "modeldata.idempotency_ordinal"
)

// StampIdempotency marks the records of ld with key and their ordinals in
// the request, starting at first; it returns the next ordinal (a request may
// hand its rows to the pipeline in several parts).
func StampIdempotency(ld plog.Logs, key string, first int64) int64 {
	ord := first
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				attrs := lr.Attributes()
				attrs.PutStr(AttrIdempotencyKey, key)
				attrs.PutInt(AttrIdempotencyOrdinal, ord)
				ord++
			}
		}
	}
	return ord
}

// IdempotencyOf is the key and ordinal a record was stamped with.
func IdempotencyOf(lr plog.LogRecord) (key string, ordinal int64, ok bool) {
	k, okKey := lr.Attributes().Get(AttrIdempotencyKey)
	o, okOrd := lr.Attributes().Get(AttrIdempotencyOrdinal)
	if !okKey || !okOrd || k.Type() != pcommon.ValueTypeStr || o.Type() != pcommon.ValueTypeInt || k.Str() == "" || o.Int() < 0 {
		return "", 0, false
	}
	return k.Str(), o.Int(), true
}

// The window of Idempotency-Keys a component remembers: the receiver's
// accepted keys and the exporter's written rows use the same defaults, so a
// resend the receiver no longer knows is still one the exporter does.
const (
	DefaultKeyTTL  = 10 * time.Minute
	DefaultMaxKeys = 50000
	maxKeys        = 10_000_000
)

// ValidateKeyWindow checks a component's idempotency::ttl and max_keys.
func ValidateKeyWindow(ttl time.Duration, maxKeysSet int) error {
	var errs []error
	if maxKeysSet < 0 || maxKeysSet > maxKeys {
		errs = append(errs, fmt.Errorf("idempotency::max_keys must be between 0 (off) and %d, got %d", maxKeys, maxKeysSet))
	}
	if maxKeysSet > 0 && ttl <= 0 {
		errs = append(errs, fmt.Errorf("idempotency::ttl must be positive, got %s", ttl))
	}
	return errors.Join(errs...)
}
