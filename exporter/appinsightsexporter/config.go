package appinsightsexporter

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/collector/config/configcompression"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
)

// trackPath is appended to the ingestion endpoint.
const trackPath = "/v2.1/track"

// Config is the configuration of the appinsights exporter.
type Config struct {
	// ClientConfig is the HTTP client: endpoint (overrides the connection
	// string's ingestion endpoint), timeout, tls, proxy_url, headers,
	// compression (gzip or none), ...
	confighttp.ClientConfig `mapstructure:",squash"`
	QueueConfig             configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	RetryConfig             configretry.BackOffConfig                                `mapstructure:"retry_on_failure"`

	// ConnectionString is the resource's connection string,
	// "InstrumentationKey=<guid>;IngestionEndpoint=https://...".
	ConnectionString configopaque.String `mapstructure:"connection_string"`
	// InstrumentationKey is the classic key, used only when
	// connection_string is empty (with the global ingestion endpoint unless
	// endpoint is set).
	InstrumentationKey configopaque.String `mapstructure:"instrumentation_key"`
	// MaxCumulativeSeries bounds the per-series state kept to turn
	// cumulative metrics into deltas.
	MaxCumulativeSeries int `mapstructure:"max_cumulative_series"`
}

func createDefaultConfig() *Config {
	queue := exporterhelper.NewDefaultQueueConfig()
	queue.Batch = configoptional.Some(exporterhelper.BatchConfig{
		FlushTimeout: time.Second,
		Sizer:        exporterhelper.RequestSizerTypeItems,
		MinSize:      512,
		MaxSize:      1024,
		Partition:    exporterhelper.NewDefaultPartitionConfig(),
	})
	client := confighttp.NewDefaultClientConfig()
	client.Timeout = 30 * time.Second
	client.Compression = configcompression.TypeGzip
	return &Config{
		ClientConfig: client,
		QueueConfig:  configoptional.Some(queue),
		RetryConfig:  configretry.NewDefaultBackOffConfig(),

		MaxCumulativeSeries: 100_000,
	}
}

// Validate checks the configuration; its messages name the key to fix and
// never show the connection string or the key.
func (c *Config) Validate() error {
	var errs []error
	if !c.disabled() {
		if _, err := c.target(); err != nil {
			errs = append(errs, err)
		}
	}
	switch c.Compression {
	case configcompression.TypeGzip, "", "none":
	default:
		errs = append(errs, fmt.Errorf("compression %q is not supported by the ingestion service; use gzip or none", c.Compression))
	}
	if c.MaxCumulativeSeries < 1 {
		errs = append(errs, fmt.Errorf("max_cumulative_series %d must be at least 1", c.MaxCumulativeSeries))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %s must not be negative", c.Timeout))
	}
	return errors.Join(errs...)
}

// disabled is true when neither connection_string nor instrumentation_key
// is set (as with ${env:APPLICATIONINSIGHTS_CONNECTION_STRING} and the
// variable unset): the exporter then starts, says so once, and drops what it
// is given, so the secret can be optional in a deployment.
func (c *Config) disabled() bool {
	return c.ConnectionString == "" && c.InstrumentationKey == ""
}

// target is where and as whom telemetry is sent.
type target struct {
	iKey  string // as configured, with dashes
	url   string // full track URL
	appID string // ApplicationId of the connection string, if any
}

func (c *Config) target() (target, error) {
	var cs connectionString
	switch {
	case c.ConnectionString != "":
		var err error
		if cs, err = parseConnectionString(string(c.ConnectionString)); err != nil {
			return target{}, err
		}
	case c.InstrumentationKey != "":
		if !isGUID(strings.TrimSpace(string(c.InstrumentationKey))) {
			return target{}, errors.New("instrumentation_key is not a GUID (00000000-0000-0000-0000-000000000000 form)")
		}
		cs = connectionString{InstrumentationKey: strings.TrimSpace(string(c.InstrumentationKey)), IngestionEndpoint: DefaultIngestionEndpoint}
	default:
		return target{}, errors.New("connection_string or instrumentation_key must be set")
	}
	endpoint := cs.IngestionEndpoint
	if c.Endpoint != "" {
		ep, err := normalizeEndpoint(c.Endpoint)
		if err != nil {
			return target{}, fmt.Errorf("endpoint %w", err)
		}
		endpoint = ep
	}
	u := endpoint
	if !strings.HasSuffix(u, "/track") {
		u += trackPath
	}
	return target{iKey: cs.InstrumentationKey, url: u, appID: cs.ApplicationID}, nil
}
