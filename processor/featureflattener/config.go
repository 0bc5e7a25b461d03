package featureflattener

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// Array modes: how an array of values inside a record becomes columns.
const (
	// ArraysJSON writes the whole array as one JSON-encoded cell.
	ArraysJSON = "json"
	// ArraysIndex writes one column per element, named <name><separator><index>.
	ArraysIndex = "index"
)

// Config is the featureflattener configuration. Every key has a default that
// suits an OTel SDK user who only sets model attributes.
type Config struct {
	// Attribute mapping: the first attribute present (record, then resource)
	// fills the contract attribute when the record does not already carry it.
	ModelNameAttributes     []string `mapstructure:"model_name_attributes"`
	ModelVersionAttributes  []string `mapstructure:"model_version_attributes"`
	DesignationAttributes   []string `mapstructure:"designation_attributes"`
	RequestIDAttributes     []string `mapstructure:"request_id_attributes"`
	CorrelationIDAttributes []string `mapstructure:"correlation_id_attributes"`
	FeatureNamesAttributes  []string `mapstructure:"feature_names_attributes"`
	// ServiceNameToWebservice copies the resource's service.name to
	// modeldata.webservice when that is absent.
	ServiceNameToWebservice bool `mapstructure:"service_name_to_webservice"`

	// Feature sources.
	FromBody        bool     `mapstructure:"from_body"`
	BodyKey         string   `mapstructure:"body_key"`
	AttributePrefix string   `mapstructure:"attribute_prefix"`
	Attributes      []string `mapstructure:"attributes"`

	// Shape.
	Separator    string   `mapstructure:"separator"`
	Arrays       string   `mapstructure:"arrays"`
	BatchColumns []string `mapstructure:"batch_columns"`

	// Column order and per model/designation rules.
	Columns         []string `mapstructure:"columns"`
	AllowNewColumns bool     `mapstructure:"allow_new_columns"`
	Rules           []Rule   `mapstructure:"rules"`
	// MaxColumns caps a record's feature columns: those past the first
	// MaxColumns in column order are dropped (reason max_columns).
	MaxColumns int `mapstructure:"max_columns"`

	// NormalizeTimestamps rewrites string values that are RFC 3339 timestamps
	// with an offset to RFC 3339 UTC.
	NormalizeTimestamps bool `mapstructure:"normalize_timestamps"`

	Media MediaConfig `mapstructure:"media"`

	// GenAI turns OpenTelemetry GenAI events (LLM calls) into rows (genai.go).
	GenAI GenAIConfig `mapstructure:"genai"`
}

// Rule renames, includes or excludes columns of the records of one model
// and/or designation. The first matching rule applies.
type Rule struct {
	// Model and Designation select records; empty matches any.
	Model       string `mapstructure:"model"`
	Designation string `mapstructure:"designation"`
	// Rename maps a flattened column name to the name written.
	Rename map[string]string `mapstructure:"rename"`
	// Include, when set, keeps only these columns (names after rename).
	Include []string `mapstructure:"include"`
	// Exclude removes these columns (names after rename).
	Exclude []string `mapstructure:"exclude"`
	// Columns replaces the top-level columns order for matching records.
	Columns []string `mapstructure:"columns"`
}

// MediaConfig controls media detection. Byte values, data: URIs and base64
// media are always dropped; these keys tune the rest.
type MediaConfig struct {
	// MaxValueSize drops string values longer than this many bytes (0: no limit).
	MaxValueSize int `mapstructure:"max_value_size"`
	// NamePatterns are case-insensitive regular expressions matched against
	// the flattened column name of string values.
	NamePatterns []string `mapstructure:"name_patterns"`
	// ContentTypeKeys name the keys that declare a content type inside a map.
	ContentTypeKeys []string `mapstructure:"content_type_keys"`
	// ContentTypes are media type prefixes ("image/") that make a map media.
	ContentTypes []string `mapstructure:"content_types"`
}

// DefaultNamePattern matches column names whose last word says the value is
// an image, audio or video payload: image, photo_base64, user.voice, video_data.
const DefaultNamePattern = `(^|[._-])(image|img|photo|picture|audio|voice|video)s?([._-]?(data|bytes|base64|b64|content|payload))?$`

func createDefaultConfig() *Config {
	return &Config{
		ModelNameAttributes:     []string{contract.AttrModelName, "model.name"},
		ModelVersionAttributes:  []string{contract.AttrModelVersion, "model.version"},
		DesignationAttributes:   []string{contract.AttrDesignation},
		RequestIDAttributes:     []string{contract.AttrRequestID, "request.id"},
		CorrelationIDAttributes: []string{contract.AttrCorrelationID, "correlation.id"},
		FeatureNamesAttributes:  []string{contract.AttrFeatureNames},
		ServiceNameToWebservice: true,
		FromBody:                true,
		Separator:               ".",
		Arrays:                  ArraysJSON,
		AllowNewColumns:         true,
		MaxColumns:              contract.DefaultMaxColumns,
		NormalizeTimestamps:     true,
		Media: MediaConfig{
			MaxValueSize:    64 << 10,
			NamePatterns:    []string{DefaultNamePattern},
			ContentTypeKeys: []string{"content_type", "contentType", "mime_type", "mimeType", "media_type", "mediaType"},
			ContentTypes:    []string{"image/", "audio/", "video/"},
		},
		GenAI: defaultGenAIConfig(),
	}
}

// Validate checks the configuration at start.
func (c *Config) Validate() error {
	var errs []error
	if len(c.ModelNameAttributes) == 0 {
		errs = append(errs, errors.New("model_name_attributes: at least one attribute must name the model"))
	}
	for _, l := range []struct {
		key   string
		names []string
	}{
		{"model_name_attributes", c.ModelNameAttributes},
		{"model_version_attributes", c.ModelVersionAttributes},
		{"designation_attributes", c.DesignationAttributes},
		{"request_id_attributes", c.RequestIDAttributes},
		{"correlation_id_attributes", c.CorrelationIDAttributes},
		{"feature_names_attributes", c.FeatureNamesAttributes},
		{"attributes", c.Attributes},
		{"columns", c.Columns},
		{"batch_columns", c.BatchColumns},
	} {
		for i, n := range l.names {
			if n == "" {
				errs = append(errs, fmt.Errorf("%s[%d]: empty name", l.key, i))
			}
		}
	}
	if c.Separator == "" {
		errs = append(errs, errors.New("separator: must not be empty (nested names would run together)"))
	}
	if c.Arrays != ArraysJSON && c.Arrays != ArraysIndex {
		errs = append(errs, fmt.Errorf("arrays: %q is neither %q nor %q", c.Arrays, ArraysJSON, ArraysIndex))
	}
	if strings.HasPrefix(c.AttributePrefix, "modeldata.") || c.AttributePrefix == "modeldata" {
		errs = append(errs, fmt.Errorf("attribute_prefix: %q would take the contract's own modeldata.* attributes as features", c.AttributePrefix))
	}
	if !c.FromBody && c.AttributePrefix == "" && len(c.Attributes) == 0 {
		errs = append(errs, errors.New("from_body is false and neither attribute_prefix nor attributes is set: there is no feature source"))
	}
	for i, r := range c.Rules {
		for from, to := range r.Rename {
			if from == "" || to == "" {
				errs = append(errs, fmt.Errorf("rules[%d].rename: empty column name in %q: %q", i, from, to))
			}
		}
		if len(r.Include) > 0 && len(r.Exclude) > 0 {
			errs = append(errs, fmt.Errorf("rules[%d]: set include or exclude, not both", i))
		}
	}
	if c.MaxColumns <= 0 {
		errs = append(errs, fmt.Errorf("max_columns: must be positive, got %d", c.MaxColumns))
	}
	if c.Media.MaxValueSize < 0 {
		errs = append(errs, fmt.Errorf("media.max_value_size: %d is negative (0 disables the limit)", c.Media.MaxValueSize))
	}
	for i, p := range c.Media.NamePatterns {
		if _, err := regexp.Compile("(?i)" + p); err != nil {
			errs = append(errs, fmt.Errorf("media.name_patterns[%d]: %w", i, err))
		}
	}
	for i, ct := range c.Media.ContentTypes {
		if ct == "" {
			errs = append(errs, fmt.Errorf("media.content_types[%d]: empty prefix would match every content type", i))
		}
	}
	errs = append(errs, c.GenAI.validate())
	return errors.Join(errs...)
}
