package contract

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
)

func TestStampIdempotency(t *testing.T) {
	ld := plog.NewLogs()
	for range 2 {
		sl := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
		for range 3 {
			lr := sl.LogRecords().AppendEmpty()
			lr.Attributes().PutStr(AttrModelName, "m")
		}
	}
	require.Equal(t, int64(11), StampIdempotency(ld, "k1", 5))
	var got []int64
	for _, rl := range ld.ResourceLogs().All() {
		for _, lr := range rl.ScopeLogs().At(0).LogRecords().All() {
			key, ord, ok := IdempotencyOf(lr)
			require.True(t, ok)
			assert.Equal(t, "k1", key)
			got = append(got, ord)
			row, ok := ReadRow(lr)
			require.True(t, ok)
			assert.Empty(t, row.FeatureNames, "the stamp is not a column")
		}
	}
	assert.Equal(t, []int64{5, 6, 7, 8, 9, 10}, got)
}

func TestIdempotencyOfUnstamped(t *testing.T) {
	for name, set := range map[string]func(lr plog.LogRecord){
		"none":         func(plog.LogRecord) {},
		"key only":     func(lr plog.LogRecord) { lr.Attributes().PutStr(AttrIdempotencyKey, "k") },
		"ordinal only": func(lr plog.LogRecord) { lr.Attributes().PutInt(AttrIdempotencyOrdinal, 1) },
		"ordinal str": func(lr plog.LogRecord) {
			lr.Attributes().PutStr(AttrIdempotencyKey, "k")
			lr.Attributes().PutStr(AttrIdempotencyOrdinal, "1")
		},
		"empty key": func(lr plog.LogRecord) {
			lr.Attributes().PutStr(AttrIdempotencyKey, "")
			lr.Attributes().PutInt(AttrIdempotencyOrdinal, 1)
		},
		"negative ord": func(lr plog.LogRecord) {
			lr.Attributes().PutStr(AttrIdempotencyKey, "k")
			lr.Attributes().PutInt(AttrIdempotencyOrdinal, -1)
		},
	} {
		t.Run(name, func(t *testing.T) {
			lr := plog.NewLogRecord()
			set(lr)
			_, _, ok := IdempotencyOf(lr)
			assert.False(t, ok)
		})
	}
}
