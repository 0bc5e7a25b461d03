package modeldatareceiver

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"golang.org/x/net/http/httpguts"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

const (
	// defaultEndpoint is the collect API; 4317 and 4318 are OTLP's.
	defaultEndpoint = "localhost:4320"
	// defaultV2Endpoint is where azureml-ai-monitoring posts by default
	// (AZUREML_MDC_HOST 127.0.0.1, AZUREML_MDC_PORT 50011).
	defaultV2Endpoint         = "localhost:50011"
	defaultMaxRows            = 10000
	defaultMaxColumns         = contract.DefaultMaxColumns
	defaultMaxValues          = 200000
	defaultMaxBytesInFlight   = 64 << 20
	defaultBodyStallTimeout   = 10 * time.Second
	defaultModelNameHeader    = "ce-model-name"
	defaultCollectDesignation = contract.DesignationInputs
)

// Config is the modeldata receiver's configuration.
type Config struct {
	// The collect API's HTTP server: endpoint, TLS, auth, CORS,
	// max_request_body_size, compression and timeouts.
	confighttp.ServerConfig `mapstructure:",squash"`

	// MaxRowsPerRequest refuses (413) a request with more rows.
	MaxRowsPerRequest int `mapstructure:"max_rows_per_request"`
	// MaxColumns refuses (413) a request whose rows have more columns.
	MaxColumns int `mapstructure:"max_columns"`
	// MaxValuesPerRequest refuses (413) a request with more values (cells,
	// and the elements of nested lists and objects), counted before they
	// are decoded: a request's memory is proportional to its values.
	MaxValuesPerRequest int `mapstructure:"max_values_per_request"`
	// MaxBytesInFlight bounds the bytes of request bodies the receiver
	// holds at once, on the collect and azureml_v2 routes together, each
	// byte from when it is read until the pipeline has the rows; a request
	// over it gets 503 + Retry-After. 0: no limit (a request_budget
	// middleware may bound them instead).
	MaxBytesInFlight int64 `mapstructure:"max_bytes_in_flight"`
	// BodyStallTimeout cuts a request whose body sends nothing for this
	// long (408), on both routes, so a stalled client does not hold its
	// connection and what it sent. 0: never.
	BodyStallTimeout time.Duration `mapstructure:"body_stall_timeout"`
	// DefaultDesignation applies to collect requests that name none.
	DefaultDesignation string `mapstructure:"default_designation"`

	// SamplingRate is the share (0..1) of requests kept for models not
	// listed under Models. Sampling is decided per request id, so the
	// inputs and predictions of one scoring request stay together.
	SamplingRate float64 `mapstructure:"sampling_rate"`
	// CollectUnlistedModels collects models not listed under Models; when
	// false only the listed models are collected.
	CollectUnlistedModels bool `mapstructure:"collect_unlisted_models"`
	// Models switches collection per model.
	Models map[string]ModelConfig `mapstructure:"models"`

	// AzureMLV2 serves the azureml-ai-monitoring sidecar protocol on its own
	// endpoint. Off unless the key is present.
	AzureMLV2 configoptional.Optional[AzureMLV2Config] `mapstructure:"azureml_v2"`

	// Idempotency answers a request sent again with the Idempotency-Key of
	// an accepted request without passing its rows on again.
	Idempotency IdempotencyConfig `mapstructure:"idempotency"`

	_ struct{}
}

// ModelConfig switches collection for one model.
type ModelConfig struct {
	// Enabled: false stops collecting the model (requests still get 200).
	// Default true.
	Enabled *bool `mapstructure:"enabled"`
	// SamplingRate (0..1) overrides the receiver's sampling_rate.
	SamplingRate *float64 `mapstructure:"sampling_rate"`
	// Designations, when set, are the only designations collected.
	Designations []string `mapstructure:"designations"`
}

// AzureMLV2Config is the azureml-ai-monitoring sidecar route.
type AzureMLV2Config struct {
	confighttp.ServerConfig `mapstructure:",squash"`

	// ModelName names the model of every request that does not carry the
	// ModelNameHeader header (the SDK sends no model name).
	ModelName string `mapstructure:"model_name"`
	// ModelNameHeader is a request header whose value, when present, is
	// the model name. The SDK sends each correlation-context header <k> as
	// ce-<k>, so the default "ce-model-name" is set by a context header
	// "model-name". Empty turns the header off.
	ModelNameHeader string `mapstructure:"model_name_header"`
	// ModelVersion is used when a request has no ce-model-version header.
	ModelVersion string `mapstructure:"model_version"`
	// Webservice, when set, is the <webservice> path part of these rows
	// (otherwise the exporter's webservice applies).
	Webservice string `mapstructure:"webservice"`
	// Collections configures collections by name (the SDK's
	// Collector(name=...)): designation, enabled, sampling_rate.
	Collections map[string]CollectionConfig `mapstructure:"collections"`
}

// CollectionConfig mirrors a deployment's data_collector.collections.<name>.
type CollectionConfig struct {
	// Designation of the rows; default: inputs for model_inputs,
	// predictions for model_outputs, else the collection name.
	Designation string `mapstructure:"designation"`
	// Enabled: false drops the collection's rows (the SDK still gets 200).
	Enabled *bool `mapstructure:"enabled"`
	// SamplingRate (0..1) of requests kept, decided per ce-x-request-id.
	SamplingRate *float64 `mapstructure:"sampling_rate"`
}

// defaultCollectionDesignations maps the SDK's conventional collection
// names to the modeldata designations.
var defaultCollectionDesignations = map[string]string{
	"model_inputs":  contract.DesignationInputs,
	"model_outputs": contract.DesignationPredictions,
}

func createDefaultConfig() *Config {
	server := confighttp.NewDefaultServerConfig()
	server.NetAddr.Endpoint = defaultEndpoint
	v2Server := confighttp.NewDefaultServerConfig()
	v2Server.NetAddr.Endpoint = defaultV2Endpoint
	return &Config{
		ServerConfig:          server,
		MaxRowsPerRequest:     defaultMaxRows,
		MaxColumns:            defaultMaxColumns,
		MaxValuesPerRequest:   defaultMaxValues,
		MaxBytesInFlight:      defaultMaxBytesInFlight,
		BodyStallTimeout:      defaultBodyStallTimeout,
		DefaultDesignation:    defaultCollectDesignation,
		SamplingRate:          1,
		CollectUnlistedModels: true,
		AzureMLV2: configoptional.Default(AzureMLV2Config{
			ServerConfig:    v2Server,
			ModelNameHeader: defaultModelNameHeader,
		}),
		Idempotency: IdempotencyConfig{TTL: contract.DefaultKeyTTL, MaxKeys: contract.DefaultMaxKeys},
	}
}

func validRate(what string, rate float64) error {
	if math.IsNaN(rate) || rate < 0 || rate > 1 {
		return fmt.Errorf("%s must be between 0 and 1, got %v", what, rate)
	}
	return nil
}

// Validate checks the configuration at start.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.NetAddr.Endpoint == "" {
		errs = append(errs, errors.New("endpoint must be set (default "+defaultEndpoint+")"))
	}
	if cfg.MaxRowsPerRequest <= 0 {
		errs = append(errs, fmt.Errorf("max_rows_per_request must be positive, got %d", cfg.MaxRowsPerRequest))
	}
	if cfg.MaxColumns <= 0 {
		errs = append(errs, fmt.Errorf("max_columns must be positive, got %d", cfg.MaxColumns))
	}
	if cfg.MaxValuesPerRequest <= 0 || cfg.MaxValuesPerRequest > math.MaxInt32 {
		errs = append(errs, fmt.Errorf("max_values_per_request must be between 1 and %d, got %d", math.MaxInt32, cfg.MaxValuesPerRequest))
	}
	errs = append(errs, cfg.validateBytesInFlight())
	if cfg.BodyStallTimeout < 0 {
		errs = append(errs, fmt.Errorf("body_stall_timeout must not be negative (default %s; 0: never), got %s", defaultBodyStallTimeout, cfg.BodyStallTimeout))
	}
	if err := contract.ValidateSegment("default_designation", cfg.DefaultDesignation); err != nil {
		errs = append(errs, err)
	}
	if err := validRate("sampling_rate", cfg.SamplingRate); err != nil {
		errs = append(errs, err)
	}
	for _, name := range sortedKeys(cfg.Models) {
		m := cfg.Models[name]
		if err := contract.ValidateSegment("models: model name", name); err != nil {
			errs = append(errs, err)
		}
		if m.SamplingRate != nil {
			if err := validRate(fmt.Sprintf("models::%s::sampling_rate", name), *m.SamplingRate); err != nil {
				errs = append(errs, err)
			}
		}
		for _, d := range m.Designations {
			if err := contract.ValidateSegment(fmt.Sprintf("models::%s::designations", name), d); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if v2 := cfg.AzureMLV2.Get(); v2 != nil {
		errs = append(errs, v2.validate(cfg.NetAddr.Endpoint))
	}
	errs = append(errs, cfg.Idempotency.validate())
	return errors.Join(errs...)
}

// validateBytesInFlight checks that a body of the largest size each route
// accepts fits in max_bytes_in_flight.
func (cfg *Config) validateBytesInFlight() error {
	if cfg.MaxBytesInFlight < 0 {
		return fmt.Errorf("max_bytes_in_flight must not be negative (0: no limit), got %d", cfg.MaxBytesInFlight)
	}
	if cfg.MaxBytesInFlight == 0 {
		return nil
	}
	sizes := map[string]int64{"max_request_body_size": cfg.MaxRequestBodySize}
	if v2 := cfg.AzureMLV2.Get(); v2 != nil {
		sizes["azureml_v2::max_request_body_size"] = v2.MaxRequestBodySize
	}
	var errs []error
	for _, key := range sortedKeys(sizes) {
		size := sizes[key]
		if size <= 0 {
			size = confighttpDefaultMaxBodySize
		}
		if size > cfg.MaxBytesInFlight {
			errs = append(errs, fmt.Errorf("max_bytes_in_flight (%d) is smaller than %s (%d): a body of that size could never be accepted", cfg.MaxBytesInFlight, key, size))
		}
	}
	return errors.Join(errs...)
}

// confighttpDefaultMaxBodySize is what confighttp reads of a body when
// max_request_body_size is 0.
const confighttpDefaultMaxBodySize = 20 << 20

func (v2 *AzureMLV2Config) validate(collectEndpoint string) error {
	var errs []error
	switch v2.NetAddr.Endpoint {
	case "":
		errs = append(errs, errors.New("azureml_v2::endpoint must be set (default "+defaultV2Endpoint+")"))
	case collectEndpoint:
		errs = append(errs, fmt.Errorf("azureml_v2::endpoint %q is the collect API's endpoint too: give it its own port (default %s)", v2.NetAddr.Endpoint, defaultV2Endpoint))
	}
	if v2.ModelName == "" && v2.ModelNameHeader == "" {
		errs = append(errs, errors.New("azureml_v2: set model_name or model_name_header: the azureml-ai-monitoring SDK sends no model name"))
	}
	if v2.ModelName != "" {
		if err := contract.ValidateSegment("azureml_v2::model_name", v2.ModelName); err != nil {
			errs = append(errs, err)
		}
	}
	if v2.ModelNameHeader != "" && !httpguts.ValidHeaderFieldName(v2.ModelNameHeader) {
		errs = append(errs, fmt.Errorf("azureml_v2::model_name_header %q is not a header name", v2.ModelNameHeader))
	}
	if v2.ModelVersion != "" {
		if err := contract.ValidateSegment("azureml_v2::model_version", v2.ModelVersion); err != nil {
			errs = append(errs, err)
		}
	}
	if v2.Webservice != "" {
		if err := contract.ValidateSegment("azureml_v2::webservice", v2.Webservice); err != nil {
			errs = append(errs, err)
		}
	}
	for _, name := range sortedKeys(v2.Collections) {
		c := v2.Collections[name]
		if name == "" || strings.TrimSpace(name) != name {
			errs = append(errs, fmt.Errorf("azureml_v2::collections: collection name %q is empty or has surrounding space", name))
		}
		if c.Designation != "" {
			if err := contract.ValidateSegment(fmt.Sprintf("azureml_v2::collections::%s::designation", name), c.Designation); err != nil {
				errs = append(errs, err)
			}
		}
		if c.SamplingRate != nil {
			if err := validRate(fmt.Sprintf("azureml_v2::collections::%s::sampling_rate", name), *c.SamplingRate); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// policy answers whether, and at what rate, a model's rows are collected.
type policy struct {
	defaultRate float64
	unlisted    bool
	models      map[string]ModelConfig
}

func newPolicy(cfg *Config) policy {
	return policy{defaultRate: cfg.SamplingRate, unlisted: cfg.CollectUnlistedModels, models: cfg.Models}
}

// rate is the share of requests kept for model and designation: 0 when
// collection is switched off for them.
func (p policy) rate(model, designation string) float64 {
	m, listed := p.models[model]
	if !listed {
		if !p.unlisted {
			return 0
		}
		return p.defaultRate
	}
	if m.Enabled != nil && !*m.Enabled {
		return 0
	}
	if len(m.Designations) > 0 {
		found := false
		for _, d := range m.Designations {
			found = found || d == designation
		}
		if !found {
			return 0
		}
	}
	if m.SamplingRate != nil {
		return *m.SamplingRate
	}
	return p.defaultRate
}
