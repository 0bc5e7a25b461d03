package modeldatareceiver

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// TestIdempotencyStamp checks that the rows of a keyed request carry the key
// and their ordinals in the request, across the parts of a batch request.
func TestIdempotencyStamp(t *testing.T) {
	for _, tc := range []struct {
		name, path, contentType, key, body string
		want                               []int64 // ordinals; nil: unstamped
	}{
		{name: "collect", contentType: "application/json", key: "k1", body: idemBody, want: []int64{0, 1, 2}},
		{name: "batch in two parts", path: "/batch", contentType: ndjsonContentType, key: "b1", body: idemBatch, want: []int64{0, 1, 2}},
		{name: "no key", contentType: "application/json", body: idemBody},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := new(consumertest.LogsSink)
			r := startReceiverWith(t, receiverOptions{next: sink})
			headers := map[string]string{}
			if tc.key != "" {
				headers[idempotencyKeyHeader] = tc.key
			}
			require.Equal(t, 200, post(t, r.url+tc.path, tc.contentType, tc.body, headers).status)
			var got []int64
			rows := 0
			for _, ld := range sink.AllLogs() {
				for _, rl := range ld.ResourceLogs().All() {
					for _, sl := range rl.ScopeLogs().All() {
						for _, lr := range sl.LogRecords().All() {
							rows++
							if key, ord, ok := contract.IdempotencyOf(lr); ok {
								assert.Equal(t, tc.key, key)
								got = append(got, ord)
							}
						}
					}
				}
			}
			assert.Equal(t, 3, rows)
			assert.Equal(t, tc.want, got)
		})
	}
}
