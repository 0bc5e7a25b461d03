package modeldatastats

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"

	"github.com/otelcol-modeldata/otelcol-modeldata/connector/modeldatastats/internal/metadata"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

func loadConfig(t *testing.T, name string) (*Config, error) {
	t.Helper()
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	return cfg, testutil.LoadConfig(t, metadata.Type, name, cfg)
}

func TestLoadConfig(t *testing.T) {
	if err := componenttest.CheckConfigStruct(createDefaultConfig()); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, createDefaultConfig()) {
		t.Fatalf("empty section is not the default config: %+v", cfg)
	}
	cfg, err = loadConfig(t, "custom")
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{Window: 30 * time.Second, TopK: 5, MaxTrackedValues: 500, MaxModels: 20, MaxFeatures: 50,
		HistogramMaxBuckets: 80, SampleSize: 1000, ProfileDir: "/var/lib/otelcol/profiles",
		Baselines: []BaselineConfig{
			{Model: "wine", Version: "1", Designation: "inputs", CSV: "testdata/wine/baseline.csv"},
			{Model: "churn", Profile: "/var/lib/otelcol/profiles/churn_3_inputs.json"},
		}}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("custom config\n got %+v\nwant %+v", cfg, want)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, msgs := range map[string][]string{
		"short_window": {"window: 500ms is below the minimum of 1s"},
		"bad_top_k":    {"top_k: 0 must be at least 1"},
		"bad_tracked":  {"max_tracked_values: 10 must be at least top_k (20)"},
		"bad_limits":   {"max_models: 0", "max_features: 0", "histogram_max_buckets: 1", "sample_size: 0"},
		"bad_baseline": {"baselines[0]: model is required", "baselines[0]: set exactly one of csv and profile"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := loadConfig(t, name)
			if err == nil {
				t.Fatal("no error")
			}
			for _, msg := range msgs {
				if !strings.Contains(err.Error(), msg) {
					t.Errorf("error %q lacks %q", err, msg)
				}
			}
		})
	}
}
