package modeldatastats

import (
	"errors"
	"fmt"
	"time"
)

// Config of the modeldatastats connector. README.md documents every key.
type Config struct {
	// Window is the aggregation period: each window's statistics are emitted
	// once, as delta sums and histograms and as gauges, then reset.
	Window time.Duration `mapstructure:"window"`
	// TopK is how many of a categorical feature's most frequent values are
	// emitted each window; the rest are summed as OtherValue.
	TopK int `mapstructure:"top_k"`
	// MaxTrackedValues bounds the distinct values counted per feature and
	// window; values first seen beyond it count as OtherValue.
	MaxTrackedValues int `mapstructure:"max_tracked_values"`
	// MaxModels bounds the model/version/designation series per window.
	MaxModels int `mapstructure:"max_models"`
	// MaxFeatures bounds the features per model/version/designation.
	MaxFeatures int `mapstructure:"max_features"`
	// HistogramMaxBuckets bounds each exponential histogram (per sign).
	HistogramMaxBuckets int `mapstructure:"histogram_max_buckets"`
	// SampleSize is the numeric values kept per feature and window for the
	// Wasserstein distance: all of them up to this size, a uniform sample beyond.
	SampleSize int `mapstructure:"sample_size"`
	// Baselines are the reference distributions drift is measured against.
	Baselines []BaselineConfig `mapstructure:"baselines"`
	// ProfileDir, when set, receives each window's profile as JSON, usable
	// later as a baseline.
	ProfileDir string `mapstructure:"profile_dir"`
}

// BaselineConfig names the reference data of one model (version and
// designation optional: empty matches any).
type BaselineConfig struct {
	Model       string `mapstructure:"model"`
	Version     string `mapstructure:"version"`
	Designation string `mapstructure:"designation"`
	// CSV is a file in the modeldata layout (feature columns, then the
	// $aml_* columns, which are ignored), e.g. the training data.
	CSV string `mapstructure:"csv"`
	// Profile is a profile file written by this connector (profile_dir).
	Profile string `mapstructure:"profile"`
}

// OtherValue stands for the values of a categorical feature beyond the top K
// (and beyond max_tracked_values).
const OtherValue = "__other__"

func createDefaultConfig() *Config {
	return &Config{
		Window:              60 * time.Second,
		TopK:                10,
		MaxTrackedValues:    1000,
		MaxModels:           100,
		MaxFeatures:         200,
		HistogramMaxBuckets: 160,
		SampleSize:          2048,
	}
}

// Validate reports configuration errors at start.
func (c *Config) Validate() error {
	var errs []error
	if c.Window < time.Second {
		errs = append(errs, fmt.Errorf("window: %s is below the minimum of 1s", c.Window))
	}
	if c.TopK < 1 {
		errs = append(errs, fmt.Errorf("top_k: %d must be at least 1", c.TopK))
	}
	if c.MaxTrackedValues < c.TopK {
		errs = append(errs, fmt.Errorf("max_tracked_values: %d must be at least top_k (%d)", c.MaxTrackedValues, c.TopK))
	}
	if c.MaxModels < 1 {
		errs = append(errs, fmt.Errorf("max_models: %d must be at least 1", c.MaxModels))
	}
	if c.MaxFeatures < 1 {
		errs = append(errs, fmt.Errorf("max_features: %d must be at least 1", c.MaxFeatures))
	}
	if c.HistogramMaxBuckets < 2 {
		errs = append(errs, fmt.Errorf("histogram_max_buckets: %d must be at least 2", c.HistogramMaxBuckets))
	}
	if c.SampleSize < 1 {
		errs = append(errs, fmt.Errorf("sample_size: %d must be at least 1", c.SampleSize))
	}
	for i, b := range c.Baselines {
		if b.Model == "" {
			errs = append(errs, fmt.Errorf("baselines[%d]: model is required", i))
		}
		if (b.CSV == "") == (b.Profile == "") {
			errs = append(errs, fmt.Errorf("baselines[%d]: set exactly one of csv and profile", i))
		}
	}
	return errors.Join(errs...)
}
