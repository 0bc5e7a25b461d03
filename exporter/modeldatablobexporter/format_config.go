package modeldatablobexporter

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// Output formats (format).
const (
	FormatCSV      = "csv"
	FormatMDCJSONL = "mdc_jsonl"
	FormatParquet  = "parquet"
)

// MDC rolling rates: the finest folder level under <collection>/.
const (
	RollingMinute = "Minute"
	RollingHour   = "Hour"
	RollingDay    = "Day"
)

// Parquet folder layouts.
const (
	LayoutV1 = "v1" // the modeldata CSV layout, .parquet files
	LayoutV2 = "v2" // the MDC layout, .parquet files
)

// Parquet compression codecs.
const (
	CompressionSnappy = "snappy"
	CompressionZstd   = "zstd"
)

// MDCConfig configures the Azure ML v2 data collector layout, used by
// format mdc_jsonl and by parquet with layout v2.
type MDCConfig struct {
	// RootDir is the folder under the container: modelDataCollector, as the v2 collector writes.
	RootDir string `mapstructure:"root_dir"`
	// Endpoint and Deployment name the online endpoint and deployment when
	// the resource attributes modeldata.endpoint / modeldata.deployment are absent.
	Endpoint   string `mapstructure:"endpoint"`
	Deployment string `mapstructure:"deployment"`
	// Subscription, resource group and workspace of the record's source ARM
	// path are the exporter's subscription_id, resource_group and workspace.

	// RollingRate is Hour (yyyy/MM/dd/HH), Day (yyyy/MM/dd) or Minute (yyyy/MM/dd/HH/mm).
	RollingRate string `mapstructure:"rolling_rate"`
	// Collections maps designations to collection names; unlisted designations are their own collection.
	Collections map[string]string `mapstructure:"collections"`
	// InstanceID names this writer's files; empty: the host name (a pod's name on Kubernetes),
	// so replicas never write the same file.
	InstanceID string `mapstructure:"instance_id"`
}

// ParquetConfig configures format parquet.
type ParquetConfig struct {
	// Layout is v1 (the modeldata folders) or v2 (the MDC folders).
	Layout string `mapstructure:"layout"`
	// Compression is snappy or zstd.
	Compression string `mapstructure:"compression"`
	// MaxRows and MaxBytes bound one file (MaxBytes counts the values before compression).
	MaxRows  int   `mapstructure:"max_rows"`
	MaxBytes int64 `mapstructure:"max_bytes"`
	// MaxAge is how long a file stays open for the row groups of later
	// pushes before it is committed; 0 commits each push's file at once.
	MaxAge time.Duration `mapstructure:"max_age"`
	// MaxOpenFiles caps the files open at once; opening one more commits
	// the least recently written.
	MaxOpenFiles int `mapstructure:"max_open_files"`
}

func defaultMDCConfig() MDCConfig {
	return MDCConfig{RootDir: "modelDataCollector", Endpoint: "local", Deployment: "local",
		RollingRate: RollingHour, Collections: contract.DefaultCollections()}
}

func defaultParquetConfig() ParquetConfig {
	return ParquetConfig{Layout: LayoutV1, Compression: CompressionSnappy, MaxRows: 1_000_000, MaxBytes: 256 << 20,
		MaxAge: 5 * time.Minute, MaxOpenFiles: 100}
}

func (c *Config) validateFormat() error {
	var errs []error
	switch c.Format {
	case FormatCSV:
	case FormatMDCJSONL:
		errs = append(errs, c.MDC.validate())
	case FormatParquet:
		if c.Parquet.Layout == LayoutV2 {
			errs = append(errs, c.MDC.validate())
		}
		errs = append(errs, c.Parquet.validate())
	default:
		errs = append(errs, fmt.Errorf("format %q is not one of %q, %q, %q", c.Format, FormatCSV, FormatMDCJSONL, FormatParquet))
	}
	return errors.Join(errs...)
}

func (m *MDCConfig) validate() error {
	var errs []error
	for _, p := range []struct{ key, v string }{
		{"mdc.endpoint", m.Endpoint}, {"mdc.deployment", m.Deployment},
	} {
		errs = append(errs, contract.ValidateSegment(p.key, p.v))
	}
	for _, seg := range strings.Split(m.RootDir, "/") {
		errs = append(errs, contract.ValidateSegment("mdc.root_dir", seg))
	}
	if m.InstanceID != "" {
		errs = append(errs, contract.ValidateSegment("mdc.instance_id", m.InstanceID))
	}
	switch m.RollingRate {
	case RollingMinute, RollingHour, RollingDay:
	default:
		errs = append(errs, fmt.Errorf("mdc.rolling_rate %q is not one of %s, %s, %s", m.RollingRate, RollingMinute, RollingHour, RollingDay))
	}
	for d, c := range m.Collections {
		errs = append(errs, contract.ValidateSegment("mdc.collections designation", d), contract.ValidateSegment("mdc.collections["+d+"]", c))
	}
	return errors.Join(errs...)
}

func (p *ParquetConfig) validate() error {
	var errs []error
	if p.Layout != LayoutV1 && p.Layout != LayoutV2 {
		errs = append(errs, fmt.Errorf("parquet.layout %q is not one of %q, %q", p.Layout, LayoutV1, LayoutV2))
	}
	if p.Compression != CompressionSnappy && p.Compression != CompressionZstd {
		errs = append(errs, fmt.Errorf("parquet.compression %q is not one of %q, %q", p.Compression, CompressionSnappy, CompressionZstd))
	}
	if p.MaxRows <= 0 {
		errs = append(errs, fmt.Errorf("parquet.max_rows %d must be positive", p.MaxRows))
	}
	if p.MaxBytes <= 0 {
		errs = append(errs, fmt.Errorf("parquet.max_bytes %d must be positive", p.MaxBytes))
	}
	if p.MaxAge < 0 {
		errs = append(errs, fmt.Errorf("parquet.max_age %s must not be negative (0 commits each push's file at once)", p.MaxAge))
	}
	if p.MaxOpenFiles < 1 {
		errs = append(errs, fmt.Errorf("parquet.max_open_files %d must be at least 1", p.MaxOpenFiles))
	}
	return errors.Join(errs...)
}

// instanceID is the configured instance id, or the host name made a valid
// path segment.
func (m *MDCConfig) instanceID() string {
	if m.InstanceID != "" {
		return m.InstanceID
	}
	return hostSegment()
}

// hostSegment is the host name made a valid path segment.
func hostSegment() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "collector"
	}
	host = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, host)
	if len(host) > contract.MaxSegmentLen-16 {
		host = host[:contract.MaxSegmentLen-16]
	}
	return strings.TrimRight(host, ".")
}

// appendDir appends the MDC folder of a row: root, endpoint, deployment and
// collection, then the time partition of t.
func (m *MDCConfig) appendDir(dst []byte, endpoint, deployment, collection string, t time.Time) []byte {
	for _, s := range []string{m.RootDir, endpoint, deployment, collection} {
		dst = append(append(dst, s...), '/')
	}
	return m.timePath(dst, t)
}

// timePath is the MDC partition folders of a UTC time at the rolling rate.
func (m *MDCConfig) timePath(dst []byte, t time.Time) []byte {
	t = t.UTC()
	switch m.RollingRate {
	case RollingDay:
		return t.AppendFormat(dst, "2006/01/02")
	case RollingMinute:
		return t.AppendFormat(dst, "2006/01/02/15/04")
	}
	return t.AppendFormat(dst, "2006/01/02/15")
}

// period is the time span of the finest folder level.
func (m *MDCConfig) period() time.Duration {
	switch m.RollingRate {
	case RollingDay:
		return 24 * time.Hour
	case RollingMinute:
		return time.Minute
	}
	return time.Hour
}

// collection is the v2 collection name of a designation.
func (m *MDCConfig) collection(designation string) string {
	if c, ok := m.Collections[designation]; ok {
		return c
	}
	return designation
}

// contentType is the blob content type of a file name.
func contentType(name string) string {
	switch {
	case strings.HasSuffix(name, ".jsonl"):
		return "application/x-ndjson"
	case strings.HasSuffix(name, ".parquet"):
		return "application/vnd.apache.parquet"
	}
	return "text/csv; charset=utf-8"
}
