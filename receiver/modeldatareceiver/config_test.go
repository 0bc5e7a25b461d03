package modeldatareceiver

import (
	"reflect"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/confmap"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
	"github.com/otelcol-modeldata/otelcol-modeldata/receiver/modeldatareceiver/internal/metadata"
)

func loadConfig(t *testing.T, name string) *Config {
	t.Helper()
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	_ = testutil.LoadConfig(t, metadata.Type, name, cfg) // validated by each test, which expects success or an error
	return cfg
}

func TestLoadConfig(t *testing.T) {
	def := loadConfig(t, "")
	if err := def.Validate(); err != nil {
		t.Fatal(err)
	}
	if def.NetAddr.Endpoint != "localhost:4320" || def.MaxRowsPerRequest != 10000 || def.MaxColumns != 1000 || def.MaxValuesPerRequest != 200000 ||
		def.DefaultDesignation != "inputs" || def.SamplingRate != 1 || !def.CollectUnlistedModels || def.AzureMLV2.HasValue() {
		t.Errorf("defaults: %+v", def)
	}

	cfg := loadConfig(t, "custom")
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.NetAddr.Endpoint != "0.0.0.0:4330" || cfg.MaxRequestBodySize != 1<<20 || cfg.MaxRowsPerRequest != 500 || cfg.MaxColumns != 50 || cfg.MaxValuesPerRequest != 25000 ||
		cfg.DefaultDesignation != "general" || cfg.SamplingRate != 0.5 || cfg.CollectUnlistedModels {
		t.Errorf("custom: %+v", cfg)
	}
	wantModels := map[string]ModelConfig{
		"best_model": {SamplingRate: ptr(0.1), Designations: []string{"inputs", "predictions"}},
		"old_model":  {Enabled: ptr(false)},
	}
	if !reflect.DeepEqual(cfg.Models, wantModels) {
		t.Errorf("models %+v", cfg.Models)
	}
	v2 := cfg.AzureMLV2.Get()
	if v2 == nil {
		t.Fatal("azureml_v2 is off")
	}
	if v2.NetAddr.Endpoint != "0.0.0.0:50011" || v2.ModelName != "best_model" || v2.ModelNameHeader != "ce-model-name" ||
		v2.ModelVersion != "7" || v2.Webservice != "aks-w-collv9" {
		t.Errorf("azureml_v2: %+v", v2)
	}
	wantCollections := map[string]CollectionConfig{
		"model_inputs":  {SamplingRate: ptr(0.25)},
		"model_outputs": {Designation: "predictions"},
		"debug_info":    {Enabled: ptr(false)},
	}
	if !reflect.DeepEqual(v2.Collections, wantCollections) {
		t.Errorf("collections %+v", v2.Collections)
	}
	p := newPolicy(cfg)
	for _, tt := range []struct {
		model, designation string
		rate               float64
	}{{"best_model", "inputs", 0.1}, {"best_model", "labels", 0}, {"old_model", "inputs", 0}, {"other", "inputs", 0}} {
		if got := p.rate(tt.model, tt.designation); got != tt.rate {
			t.Errorf("rate(%s, %s) = %v, want %v", tt.model, tt.designation, got, tt.rate)
		}
	}

	if v2 := loadConfig(t, "v2defaults").AzureMLV2.Get(); v2 == nil || v2.NetAddr.Endpoint != "localhost:50011" || v2.ModelNameHeader != "ce-model-name" {
		t.Errorf("azureml_v2 with defaults: %+v", v2)
	}
	if loadConfig(t, "v2off").AzureMLV2.HasValue() {
		t.Error("azureml_v2 enabled: false is on")
	}
}

func TestValidateMessages(t *testing.T) {
	err := loadConfig(t, "invalid").Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"endpoint must be set",
		"max_rows_per_request must be positive, got 0",
		"max_columns must be positive, got -1",
		"max_values_per_request must be between 1 and 2147483647, got 0",
		"default_designation",
		"sampling_rate must be between 0 and 1, got 1.5",
		"models: model name",
		"models::..::sampling_rate must be between 0 and 1, got -1",
		"models::..::designations is empty",
		"azureml_v2: set model_name or model_name_header",
		"azureml_v2::model_version",
		"azureml_v2::collections::model_inputs::designation",
		"azureml_v2::collections::model_inputs::sampling_rate must be between 0 and 1, got 2",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}

	cfg := createDefaultConfig()
	v2 := cfg.AzureMLV2.GetOrInsertDefault()
	v2.ModelName = "m"
	v2.NetAddr.Endpoint = cfg.NetAddr.Endpoint
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "is the collect API's endpoint too") {
		t.Errorf("shared endpoint: %v", err)
	}
	v2.NetAddr.Endpoint = "localhost:50011"
	v2.ModelNameHeader = "bad header"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "is not a header name") {
		t.Errorf("bad header: %v", err)
	}
}

// TestConfigUnknownKey makes sure a typo fails at start.
func TestConfigUnknownKey(t *testing.T) {
	cfg := createDefaultConfig()
	err := confmap.NewFromStringMap(map[string]any{"max_row_per_request": 5}).Unmarshal(cfg)
	if err == nil || !strings.Contains(err.Error(), "max_row_per_request") {
		t.Errorf("unknown key: %v", err)
	}
}
