package featureflattener

import (
	"reflect"
	"strings"
	"testing"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
	"github.com/otelcol-modeldata/otelcol-modeldata/processor/featureflattener/internal/metadata"
)

func loadConfig(t *testing.T, name string) (*Config, error) {
	t.Helper()
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	return cfg, testutil.LoadConfig(t, metadata.Type, name, cfg)
}

func TestLoadConfig(t *testing.T) {
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
	want := &Config{
		ModelNameAttributes:     []string{"modeldata.model.name", "ml.model"},
		ModelVersionAttributes:  []string{"modeldata.model.version", "ml.model_version"},
		DesignationAttributes:   []string{"modeldata.designation", "ml.kind"},
		RequestIDAttributes:     []string{"modeldata.request_id", "http.request_id"},
		CorrelationIDAttributes: []string{"modeldata.correlation_id"},
		FeatureNamesAttributes:  []string{"modeldata.feature_names", "ml.columns"},
		FromBody:                true,
		BodyKey:                 "input",
		AttributePrefix:         "feature.",
		Attributes:              []string{"country"},
		Separator:               "_",
		Arrays:                  ArraysIndex,
		BatchColumns:            []string{"f0", "f1"},
		Columns:                 []string{"age", "income"},
		MaxColumns:              200,
		Rules: []Rule{{Model: "churn", Designation: "inputs", Rename: map[string]string{"address_zip": "zip"},
			Exclude: []string{"debug"}, Columns: []string{"zip", "age"}}},
		Media: MediaConfig{MaxValueSize: 1024, NamePatterns: []string{"^photo$"},
			ContentTypeKeys: []string{"content_type"}, ContentTypes: []string{"image/"}},
		GenAI: GenAIConfig{Models: map[string]GenAIModel{"gpt-4o": {Name: "chat", Version: "2024-08-06"}}, DefaultModelVersion: "2"},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("custom config\n got %+v\nwant %+v", cfg, want)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, msg := range map[string]string{
		"bad_arrays":      `arrays: "columns" is neither "json" nor "index"`,
		"no_source":       "there is no feature source",
		"bad_rule":        "rules[0]: set include or exclude, not both",
		"bad_pattern":     "media.name_patterns[0]",
		"bad_prefix":      "attribute_prefix",
		"empty_separator": "separator: must not be empty",
		"negative_size":   "media.max_value_size: -1 is negative",
		"zero_columns":    "max_columns: must be positive, got 0",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := loadConfig(t, name)
			if err == nil || !strings.Contains(err.Error(), msg) {
				t.Fatalf("error %v, want one containing %q", err, msg)
			}
		})
	}
}
