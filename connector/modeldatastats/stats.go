package modeldatastats

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/axiomhq/hyperloglog"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// Value types counted per feature (attribute modeldata.value.type).
const (
	valueInt = iota
	valueDouble
	valueBool
	valueString
	valueTypes
)

var valueTypeNames = [valueTypes]string{"int", "double", "bool", "string"}

// featureStats is one feature's statistics over one window.
type featureStats struct {
	name    string
	lastRow uint64 // the row that last carried this feature, to find declared features a row lacks

	rows  uint64
	nulls uint64
	types [valueTypes]uint64
	hist  *expHist

	// values counts categorical values, up to max_tracked_values distinct
	// ones; the rest are counted in other.
	values   map[string]uint64
	other    uint64
	distinct *hyperloglog.Sketch

	// Against the baseline, when there is one for this feature.
	numBase    *numericBaseline
	catBase    *categoricalBaseline
	baseType   string
	compared   uint64 // non-null values
	typeErrors uint64
	outOfRange uint64
	binCounts  []float64
	sample     []float64 // numeric values for the Wasserstein distance (reservoir)
	sampleSeen uint64
}

// modelStats holds what one model/version/designation sent in the current window.
type modelStats struct {
	model, version, designation string
	features                    map[string]*featureStats
	order                       []*featureStats
	// bodyAt and declaredAt remember which feature the i-th body key and the
	// i-th declared feature name were in the last row: rows of one model
	// repeat their order, so most lookups are a string comparison instead of
	// a map access.
	bodyAt, declaredAt []*featureStats
	baseline           *baseline
}

// limits are the per-window bounds of the configuration.
type limits struct {
	maxFeatures, maxTracked, histBuckets, sampleSize int
	keepSample                                       bool // for profile_dir: numeric samples without a baseline too
	rng                                              *rand.Rand
	// cut counts what the bounds left out this window.
	cutModels, cutFeatures, cutValues uint64
}

// featureAt is feature for the i-th name of a row, remembered in cache
// (bodyAt or declaredAt).
func (m *modelStats) featureAt(cache *[]*featureStats, i int, name string, l *limits) *featureStats {
	if i < len(*cache) && (*cache)[i] != nil && (*cache)[i].name == name {
		return (*cache)[i]
	}
	fs := m.feature(name, l)
	if fs != nil && i < l.maxFeatures {
		for len(*cache) <= i {
			*cache = append(*cache, nil)
		}
		(*cache)[i] = fs
	}
	return fs
}

func (m *modelStats) feature(name string, l *limits) *featureStats {
	if fs, ok := m.features[name]; ok {
		return fs
	}
	if len(m.features) >= l.maxFeatures {
		return nil
	}
	fs := &featureStats{name: name}
	if m.baseline != nil {
		fs.baseType = m.baseline.types[name]
		fs.numBase = m.baseline.numeric[name]
		fs.catBase = m.baseline.categorical[name]
		if fs.numBase != nil {
			fs.binCounts = make([]float64, fs.numBase.bins+2)
		}
	}
	m.features[name] = fs
	m.order = append(m.order, fs)
	return fs
}

// add counts one cell. v is nil for a declared feature the row lacks.
func (fs *featureStats) add(v *pcommon.Value, l *limits) {
	fs.rows++
	if v == nil {
		fs.nulls++
		return
	}
	switch v.Type() {
	case pcommon.ValueTypeEmpty:
		fs.nulls++
	case pcommon.ValueTypeInt:
		fs.types[valueInt]++
		fs.addNumber(float64(v.Int()), v, l)
	case pcommon.ValueTypeDouble:
		d := v.Double()
		if math.IsNaN(d) {
			fs.nulls++
			return
		}
		fs.types[valueDouble]++
		fs.addNumber(d, v, l)
	case pcommon.ValueTypeBool:
		fs.types[valueBool]++
		s := boolString(v.Bool())
		fs.addCategory(s, l)
		fs.compareCategory(s, v.Bool(), true, l)
	case pcommon.ValueTypeStr:
		s := v.Str()
		if s == "" {
			fs.nulls++
			return
		}
		fs.types[valueString]++
		fs.addCategory(s, l)
		if fs.numBase != nil || fs.catBase != nil {
			b, isBool := parseBool(s)
			fs.compareCategory(s, b, isBool, l)
		}
	default: // maps, slices, bytes: their CSV text
		fs.types[valueString]++
		s := contract.FormatValue(*v)
		fs.addCategory(s, l)
		fs.compareCategory(s, false, false, l)
	}
}

func (fs *featureStats) addNumber(x float64, v *pcommon.Value, l *limits) {
	if fs.hist == nil {
		fs.hist = newExpHist(l.histBuckets)
	}
	fs.hist.record(x)
	if fs.numBase == nil && l.keepSample {
		fs.addSample(x, l)
	}
	switch {
	case fs.numBase != nil:
		fs.compareNumber(x, l)
	case fs.catBase != nil: // a number where the baseline has categories: its CSV text
		s := contract.FormatValue(*v)
		fs.addCategory(s, l)
		fs.compareCategory(s, false, false, l)
	}
}

// addCategory counts a categorical value. While the distinct values fit in
// max_tracked_values their count is exact (the tracked map's size); the
// HyperLogLog sketch starts when a value first overflows, seeded with the
// tracked values, and from then on receives only untracked ones.
func (fs *featureStats) addCategory(s string, l *limits) {
	if fs.values == nil {
		fs.values = map[string]uint64{}
	}
	if n, ok := fs.values[s]; ok || len(fs.values) < l.maxTracked {
		fs.values[s] = n + 1
		return
	}
	if fs.distinct == nil {
		fs.distinct = hyperloglog.New14()
		for v := range fs.values {
			fs.distinct.Insert([]byte(v))
		}
	}
	fs.distinct.Insert([]byte(s))
	fs.other++
	l.cutValues++
}

// distinctEstimate is the number of distinct categorical values: exact
// while they fit in max_tracked_values, else the HyperLogLog estimate.
func (fs *featureStats) distinctEstimate() float64 {
	if fs.distinct == nil {
		return float64(len(fs.values))
	}
	return float64(fs.distinct.Estimate())
}

// compareNumber places a numeric value against a numeric baseline.
func (fs *featureStats) compareNumber(x float64, l *limits) {
	b := fs.numBase
	fs.compared++
	fs.binCounts[b.bin(x)]++
	if x < b.min || x > b.max {
		fs.outOfRange++
	}
	fs.addSample(x, l)
}

// addSample keeps every value up to sample_size, then a uniform sample
// (reservoir sampling, Vitter's algorithm R).
func (fs *featureStats) addSample(x float64, l *limits) {
	fs.sampleSeen++
	if len(fs.sample) < l.sampleSize {
		fs.sample = append(fs.sample, x)
	} else if i := l.rng.Uint64N(fs.sampleSeen); i < uint64(l.sampleSize) {
		fs.sample[i] = x
	}
}

// compareCategory checks a non-numeric value against the baseline: for a
// numeric baseline it is a number written as text or a type error; for a
// categorical one it is out of range when the baseline never saw it.
func (fs *featureStats) compareCategory(s string, b, isBool bool, l *limits) {
	switch {
	case fs.numBase != nil:
		if x, err := strconv.ParseFloat(s, 64); err == nil && !isBool {
			fs.compareNumber(x, l)
			return
		}
		fs.compared++
		fs.typeErrors++
	case fs.catBase != nil:
		fs.compared++
		if fs.baseType == typeBool {
			if !isBool {
				fs.typeErrors++
				return
			}
			s = boolString(b)
		}
		if _, ok := fs.catBase.counts[s]; !ok {
			fs.outOfRange++
		}
	}
}

// topValues returns the k most frequent values (ties by value) and the
// count of all the others.
func (fs *featureStats) topValues(k int) ([]string, uint64) {
	keys := make([]string, 0, len(fs.values))
	for v := range fs.values {
		keys = append(keys, v)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if ca, cb := fs.values[a], fs.values[b]; ca != cb {
			if ca > cb {
				return -1
			}
			return 1
		}
		if a < b {
			return -1
		}
		if a > b {
			return 1
		}
		return 0
	})
	other := fs.other
	if len(keys) > k {
		for _, v := range keys[k:] {
			other += fs.values[v]
		}
		keys = keys[:k]
	}
	return keys, other
}

// drift is the window's drift against the baseline: ok is false without a
// baseline for the feature or without a value to compare.
type drift struct {
	psi, js, wasserstein   float64
	outOfRange, typeErrors float64
	hasWasserstein         bool
}

func (fs *featureStats) drift() (drift, bool) {
	if fs.compared == 0 || (fs.numBase == nil && fs.catBase == nil) {
		return drift{}, false
	}
	d := drift{outOfRange: float64(fs.outOfRange) / float64(fs.compared), typeErrors: float64(fs.typeErrors) / float64(fs.compared)}
	switch {
	case fs.numBase != nil:
		n := fs.compared - fs.typeErrors
		if n == 0 {
			return d, true
		}
		b := fs.numBase
		d.psi = psi(b.counts, fs.binCounts, float64(len(b.sorted)), float64(n))
		d.js = jensenShannon(b.counts, fs.binCounts)
		sorted := slices.Clone(fs.sample)
		slices.Sort(sorted)
		d.wasserstein, d.hasWasserstein = b.normalizedWasserstein(sorted), true
	default:
		var tracked map[string]uint64
		other := fs.other
		if fs.baseType == typeBool {
			tracked = map[string]uint64{}
			for v, c := range fs.values {
				if b, ok := parseBool(v); ok {
					tracked[boolString(b)] += c
				}
			}
			other = 0
		} else {
			tracked = fs.values
		}
		d.psi, d.js = fs.catBase.drift(tracked, other)
	}
	return d, true
}
