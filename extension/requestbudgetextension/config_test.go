package requestbudgetextension

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/otelcol-modeldata/otelcol-modeldata/extension/requestbudgetextension/internal/metadata"
)

func TestConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		want    *Config
		wantErr string
	}{
		{"", &Config{MaxBytesInFlight: 64 << 20, RetryAfter: time.Second, GRPCBytesPerCall: 4 << 20, BodyStallTimeout: 10 * time.Second, GRPCMessageTimeout: 20 * time.Second}, ""},
		{"custom", &Config{MaxBytesInFlight: 128 << 20, RetryAfter: 5 * time.Second, GRPCBytesPerCall: 8 << 20, BodyStallTimeout: 30 * time.Second, GRPCMessageTimeout: time.Minute, GRPCMaxBytesInFlight: 96 << 20}, ""},
		{"no_stall_timeout", &Config{MaxBytesInFlight: 64 << 20, RetryAfter: time.Second, GRPCBytesPerCall: 4 << 20}, ""},
		{"negative_stall", nil, "body_stall_timeout must not be negative (default 10s; 0: never), got -1s"},
		{"negative_grpc_timeout", nil, "grpc_message_timeout must not be negative (default 20s; 0: never), got -1s"},
		{"zero", nil, "max_bytes_in_flight must be positive"},
		{"fraction", nil, "retry_after must be a whole number of seconds, at least 1s (Retry-After is in seconds), got 1.5s"},
		{"grpc_share_under_call", nil, "grpc_max_bytes_in_flight must be at least grpc_bytes_per_call (4194304) and at most max_bytes_in_flight (67108864) (default 0: half of max_bytes_in_flight), got 1048576"},
		{"grpc_share_over", nil, "grpc_max_bytes_in_flight must be at least grpc_bytes_per_call (4194304) and at most max_bytes_in_flight (67108864)"},
		{"grpc_share_negative", nil, "grpc_max_bytes_in_flight must be at least grpc_bytes_per_call"},
		{"grpc_over", nil, "grpc_bytes_per_call must be positive and at most max_bytes_in_flight (1048576)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sub, err := cm.Sub(component.NewIDWithName(metadata.Type, tt.name).String())
			if err != nil {
				t.Fatal(err)
			}
			cfg := NewFactory().CreateDefaultConfig()
			if err := sub.Unmarshal(cfg); err != nil {
				t.Fatal(err)
			}
			err = confmap.Validate(cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *cfg.(*Config) != *tt.want {
				t.Errorf("config %+v, want %+v", cfg, tt.want)
			}
		})
	}
}
