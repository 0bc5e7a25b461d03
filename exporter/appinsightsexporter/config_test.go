package appinsightsexporter

import (
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/config/configcompression"
	"go.opentelemetry.io/collector/config/configopaque"

	"github.com/otelcol-modeldata/otelcol-modeldata/exporter/appinsightsexporter/internal/metadata"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

func loadConfig(t *testing.T, name string) *Config {
	t.Helper()
	cfg := createDefaultConfig()
	if err := testutil.LoadConfig(t, metadata.Type, name, cfg); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return cfg
}

func mustTarget(t *testing.T, c *Config) target {
	t.Helper()
	tg, err := c.target()
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func TestLoadConfig(t *testing.T) {
	def := loadConfig(t, "")
	if def.Timeout != 30*time.Second || def.Compression != configcompression.TypeGzip || !def.RetryConfig.Enabled ||
		def.RetryConfig.InitialInterval != 5*time.Second || def.RetryConfig.MaxElapsedTime != 300*time.Second ||
		def.MaxCumulativeSeries != 100_000 {
		t.Fatalf("defaults: %+v", def)
	}
	q := def.QueueConfig.Get()
	if q == nil || !q.Batch.HasValue() || q.Batch.Get().MinSize != 512 || q.Batch.Get().MaxSize != 1024 ||
		q.Batch.Get().FlushTimeout != time.Second || q.QueueSize != 1000 || q.NumConsumers != 10 {
		t.Fatalf("default queue: %+v", q)
	}
	if got := mustTarget(t, def); got.iKey != "00000000-0000-0000-0000-000000000000" ||
		got.url != "https://westeurope-5.in.applicationinsights.azure.com/v2.1/track" {
		t.Fatalf("default target: %+v", got)
	}

	if got := mustTarget(t, loadConfig(t, "ikey")); got.iKey != "11111111-2222-3333-4444-555555555555" ||
		got.url != "https://dc.services.visualstudio.com/v2.1/track" {
		t.Fatalf("ikey target: %+v", got)
	}
	if got := mustTarget(t, loadConfig(t, "sovereign")); got.url != "https://chinaeast2.dc.applicationinsights.azure.cn/v2.1/track" {
		t.Fatalf("sovereign target: %+v", got)
	}

	full := loadConfig(t, "full")
	if got := mustTarget(t, full); got.url != "http://127.0.0.1:4319/v2.1/track" || got.iKey != "11111111-2222-3333-4444-555555555555" ||
		got.appID != "app-1" || full.MaxCumulativeSeries != 5000 {
		t.Fatalf("full target: %+v", got)
	}
	fq := full.QueueConfig.Get()
	if full.Timeout != 5*time.Second || full.Compression != "none" || full.RetryConfig.InitialInterval != time.Second ||
		full.RetryConfig.MaxElapsedTime != time.Minute || fq.StorageID.String() != "file_storage" || fq.QueueSize != 5000 ||
		fq.Batch.Get().MinSize != 100 || fq.Batch.Get().MaxSize != 500 || fq.Batch.Get().FlushTimeout != 200*time.Millisecond {
		t.Fatalf("full: %+v", full)
	}
	if v, ok := full.Headers.Get("x-test"); !ok || v != "1" {
		t.Fatalf("headers: %+v", full.Headers)
	}
}

func TestParseConnectionString(t *testing.T) {
	const ikey = "11111111-2222-3333-4444-555555555555"
	tests := []struct {
		name, cs, endpoint string
	}{
		{"ingestion endpoint", "InstrumentationKey=" + ikey + ";IngestionEndpoint=https://westus2-1.in.applicationinsights.azure.com/", "https://westus2-1.in.applicationinsights.azure.com"},
		{"keys any case, spaces, trailing semicolon", " instrumentationKEY = " + ikey + " ; INGESTIONENDPOINT=http://127.0.0.1:8080 ;", "http://127.0.0.1:8080"},
		{"default endpoint", "InstrumentationKey=" + ikey, DefaultIngestionEndpoint},
		{"endpoint suffix", "InstrumentationKey=" + ikey + ";EndpointSuffix=applicationinsights.us", "https://dc.applicationinsights.us"},
		{"suffix and location", "InstrumentationKey=" + ikey + ";EndpointSuffix=ai.contoso.com;Location=westus2", "https://westus2.dc.ai.contoso.com"},
		{"explicit endpoint wins over suffix", "InstrumentationKey=" + ikey + ";EndpointSuffix=ai.contoso.com;IngestionEndpoint=https://custom.example.com", "https://custom.example.com"},
		{"authorization ikey and other keys ignored", "Authorization=ikey;InstrumentationKey=" + ikey + ";LiveEndpoint=https://live.example.com;ApplicationId=abc", DefaultIngestionEndpoint},
		{"path kept", "InstrumentationKey=" + ikey + ";IngestionEndpoint=https://proxy.example.com/ai/", "https://proxy.example.com/ai"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, err := parseConnectionString(tt.cs)
			if err != nil {
				t.Fatal(err)
			}
			if cs.InstrumentationKey != ikey || cs.IngestionEndpoint != tt.endpoint {
				t.Fatalf("got %+v, want endpoint %q", cs, tt.endpoint)
			}
		})
	}
}

func TestValidateMessages(t *testing.T) {
	const ikey = "11111111-2222-3333-4444-555555555555"
	tests := []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"blank classic key", func(c *Config) { c.InstrumentationKey = " " }, "instrumentation_key is not a GUID"},
		{"blank", func(c *Config) { c.ConnectionString = "  " }, "connection_string is empty"},
		{"not key=value", func(c *Config) { c.ConnectionString = ikey }, "segment 1 is not Key=Value"},
		{"empty key", func(c *Config) { c.ConnectionString = "InstrumentationKey=" + ikey + ";=x" }, "segment 2 is not Key=Value"},
		{"no ikey", func(c *Config) { c.ConnectionString = "IngestionEndpoint=https://x.example.com" }, "has no InstrumentationKey"},
		{"empty ikey", func(c *Config) { c.ConnectionString = "InstrumentationKey=;IngestionEndpoint=https://x.example.com" }, "has no InstrumentationKey"},
		{"ikey not guid", func(c *Config) { c.ConnectionString = "InstrumentationKey=not-a-key" }, "InstrumentationKey is not a GUID"},
		{"duplicate", func(c *Config) { c.ConnectionString = "InstrumentationKey=" + ikey + ";instrumentationkey=" + ikey }, `key "instrumentationkey" appears more than once`},
		{"bad ingestion endpoint", func(c *Config) {
			c.ConnectionString = "InstrumentationKey=" + ikey + ";IngestionEndpoint=dc.example.com"
		}, "IngestionEndpoint is not an absolute http(s) URL"},
		{"ftp endpoint", func(c *Config) {
			c.ConnectionString = "InstrumentationKey=" + ikey + ";IngestionEndpoint=ftp://x.example.com"
		}, "IngestionEndpoint is not an absolute http(s) URL"},
		{"entra", func(c *Config) { c.ConnectionString = "InstrumentationKey=" + ikey + ";Authorization=aad" }, "only Authorization=ikey is supported"},
		{"too long", func(c *Config) {
			c.ConnectionString = configopaque.String("InstrumentationKey=" + ikey + ";X=" + strings.Repeat("a", 4100))
		}, "more than the maximum 4096"},
		{"classic key not guid", func(c *Config) { c.InstrumentationKey = "abc" }, "instrumentation_key is not a GUID"},
		{"endpoint override", func(c *Config) { c.InstrumentationKey = ikey; c.Endpoint = "127.0.0.1:4319" }, "endpoint is not an absolute http(s) URL"},
		{"compression", func(c *Config) { c.InstrumentationKey = ikey; c.Compression = configcompression.TypeZstd }, `compression "zstd" is not supported`},
		{"timeout", func(c *Config) { c.InstrumentationKey = ikey; c.Timeout = -time.Second }, "timeout -1s must not be negative"},
		{"series", func(c *Config) { c.InstrumentationKey = ikey; c.MaxCumulativeSeries = 0 }, "max_cumulative_series 0 must be at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := createDefaultConfig()
			tt.modify(cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
			// The connection string is a secret: never in a message.
			if cfg.ConnectionString != "" && strings.Contains(err.Error(), string(cfg.ConnectionString)) {
				t.Fatalf("message shows the connection string: %v", err)
			}
			if strings.Contains(err.Error(), "not-a-key") || strings.Contains(err.Error(), "aad") {
				t.Fatalf("message shows a value: %v", err)
			}
		})
	}
	ok := createDefaultConfig()
	ok.ConnectionString = "InstrumentationKey=" + ikey
	ok.InstrumentationKey = "ignored-when-connection-string-is-set"
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
}
