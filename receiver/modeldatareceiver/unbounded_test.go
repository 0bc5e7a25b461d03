package modeldatareceiver

import (
	"testing"

	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcol-modeldata/otelcol-modeldata/receiver/modeldatareceiver/internal/metadata"
)

// TestUnboundedAddressWarned: max_bytes_in_flight 0 is for addresses that
// share a request_budget; each address left without one is named in a
// warning at start, so adding the v2 route to a config that turned the
// receiver's own budget off does not leave it unbounded unnoticed.
func TestUnboundedAddressWarned(t *testing.T) {
	for _, tt := range []struct {
		name         string
		maxBytes     int64
		wantWarnings int
	}{
		{"own budget: no warning", defaultMaxBytesInFlight, 0},
		{"no budget, no middlewares: both addresses named", 0, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			core, logs := observer.New(zapcore.WarnLevel)
			set := receivertest.NewNopSettings(metadata.Type)
			set.Logger = zap.New(core)
			startReceiverWith(t, receiverOptions{set: &set, edit: func(c *Config) {
				c.MaxBytesInFlight = tt.maxBytes
				c.AzureMLV2.GetOrInsertDefault().ModelName = "m"
			}})
			got := logs.FilterMessageSnippet("not bounded").All()
			if len(got) != tt.wantWarnings {
				t.Fatalf("%d warnings, want %d: %v", len(got), tt.wantWarnings, got)
			}
		})
	}
}
