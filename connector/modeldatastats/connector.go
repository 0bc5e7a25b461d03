package modeldatastats

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

type modelKey struct{ model, version, designation string }

type statsConnector struct {
	cfg    *Config
	next   consumer.Metrics
	logger *zap.Logger

	baselines []resolvedBaseline

	mu          sync.Mutex
	models      map[modelKey]*modelStats
	windowStart time.Time
	rowSeq      uint64
	limits      limits
	names       []string

	stop chan struct{}
	done chan struct{}
}

type resolvedBaseline struct {
	cfg BaselineConfig
	b   *baseline
}

// Limit names of modeldata.stats.cut.
const (
	cutModels   = "models"
	cutFeatures = "features"
	cutValues   = "values"
)

func newConnector(set connector.Settings, cfg *Config, next consumer.Metrics) (*statsConnector, error) {
	c := &statsConnector{cfg: cfg, next: next, logger: set.Logger}
	c.limits = limits{maxFeatures: cfg.MaxFeatures, maxTracked: cfg.MaxTrackedValues, histBuckets: cfg.HistogramMaxBuckets,
		sampleSize: cfg.SampleSize, keepSample: cfg.ProfileDir != "", rng: rand.New(rand.NewPCG(1, 2))}
	c.reset(time.Now())
	return c, nil
}

// loadBaselines reads the baseline files (at start, as files are read in
// contrib components, so `validate` checks the configuration only).
func (c *statsConnector) loadBaselines() error {
	c.baselines = c.baselines[:0]
	for i, bc := range c.cfg.Baselines {
		var p *Profile
		var err error
		if bc.CSV != "" {
			p, err = readCSVProfile(bc.CSV)
		} else {
			p, err = readProfileFile(bc.Profile)
		}
		if err == nil {
			var b *baseline
			if b, err = newBaseline(p); err == nil {
				c.baselines = append(c.baselines, resolvedBaseline{cfg: bc, b: b})
				continue
			}
		}
		return fmt.Errorf("baselines[%d]: %w", i, err)
	}
	return nil
}

func (c *statsConnector) reset(now time.Time) {
	c.models = map[modelKey]*modelStats{}
	c.limits.cutModels, c.limits.cutFeatures, c.limits.cutValues = 0, 0, 0
	c.windowStart = now
}

func (c *statsConnector) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (c *statsConnector) Start(context.Context, component.Host) error {
	if err := c.loadBaselines(); err != nil {
		return err
	}
	c.stop, c.done = make(chan struct{}), make(chan struct{})
	go c.run()
	return nil
}

func (c *statsConnector) run() {
	defer close(c.done)
	ticker := time.NewTicker(c.cfg.Window)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
			c.flush(context.Background())
		case <-c.stop:
			return
		}
	}
}

// Shutdown stops the window timer and emits the open window.
func (c *statsConnector) Shutdown(ctx context.Context) error {
	if c.stop == nil {
		return nil
	}
	close(c.stop)
	<-c.done
	c.stop = nil
	c.flush(ctx)
	return nil
}

func (c *statsConnector) ConsumeLogs(_ context.Context, logs plog.Logs) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := 0; i < logs.ResourceLogs().Len(); i++ {
		sls := logs.ResourceLogs().At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				c.addRow(lrs.At(k))
			}
		}
	}
	return nil
}

func (c *statsConnector) addRow(lr plog.LogRecord) {
	row, ok := contract.ReadRowReuse(lr, c.names)
	if !ok {
		return
	}
	c.names = row.FeatureNames
	ms := c.model(modelKey{row.ModelName, row.ModelVersion, row.Designation})
	if ms == nil {
		c.limits.cutModels++
		return
	}
	c.rowSeq++
	seq := c.rowSeq
	if lr.Body().Type() == pcommon.ValueTypeMap {
		i := -1
		lr.Body().Map().Range(func(name string, v pcommon.Value) bool {
			i++
			if fs := ms.featureAt(&ms.bodyAt, i, name, &c.limits); fs != nil {
				fs.lastRow = seq
				fs.add(&v, &c.limits)
			} else {
				c.limits.cutFeatures++
			}
			return true
		})
	}
	for i, name := range row.FeatureNames {
		if fs := ms.featureAt(&ms.declaredAt, i, name, &c.limits); fs != nil && fs.lastRow != seq {
			fs.lastRow = seq
			fs.add(nil, &c.limits)
		}
	}
}

func (c *statsConnector) model(k modelKey) *modelStats {
	if ms, ok := c.models[k]; ok {
		return ms
	}
	if len(c.models) >= c.cfg.MaxModels {
		return nil
	}
	ms := &modelStats{model: k.model, version: k.version, designation: k.designation, features: map[string]*featureStats{}}
	for _, rb := range c.baselines {
		if rb.cfg.Model == k.model && (rb.cfg.Version == "" || rb.cfg.Version == k.version) &&
			(rb.cfg.Designation == "" || rb.cfg.Designation == k.designation) {
			ms.baseline = rb.b
			break
		}
	}
	c.models[k] = ms
	return ms
}

// flush emits the window's metrics and starts the next window.
func (c *statsConnector) flush(ctx context.Context) {
	c.mu.Lock()
	models, start, end := c.models, c.windowStart, time.Now()
	cut := map[string]uint64{cutModels: c.limits.cutModels, cutFeatures: c.limits.cutFeatures, cutValues: c.limits.cutValues}
	c.reset(end)
	c.mu.Unlock()

	if len(models) == 0 && cut[cutModels]+cut[cutFeatures]+cut[cutValues] == 0 {
		return
	}
	md := buildMetrics(models, cut, c.cfg.TopK, start, end)
	if err := c.next.ConsumeMetrics(ctx, md); err != nil {
		c.logger.Warn("modeldatastats: the next consumer refused the window's metrics", zap.Error(err))
	}
	if c.cfg.ProfileDir != "" {
		for _, ms := range models {
			if err := writeProfile(c.cfg.ProfileDir, ms); err != nil {
				c.logger.Warn("modeldatastats: cannot write the window's profile", zap.Error(err))
			}
		}
	}
}

// writeProfile saves a window's profile as <model>_<version>_<designation>.json
// (each part URL-escaped, so no client value can leave the folder).
func writeProfile(dir string, ms *modelStats) error {
	p := Profile{Model: ms.model, Version: ms.version, Designation: ms.designation}
	for _, fs := range ms.order {
		p.Rows = max(p.Rows, fs.rows)
		fp := FeatureProfile{Name: fs.name}
		switch numeric := fs.types[valueInt] + fs.types[valueDouble]; {
		case numeric > 0 && numeric >= fs.types[valueBool]+fs.types[valueString]:
			fp.Type = typeNumeric
			fp.Values = fs.sample
		case fs.types[valueBool] > fs.types[valueString]:
			fp.Type, fp.Counts = typeBool, fs.values
		default:
			fp.Type, fp.Counts = typeString, fs.values
		}
		p.Features = append(p.Features, fp)
	}
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	name := url.PathEscape(ms.model) + "_" + url.PathEscape(ms.version) + "_" + url.PathEscape(ms.designation) + ".json"
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, data, 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, name))
}
