package modeldatastats

import (
	"math"
	"slices"
)

// The drift formulas follow Azure ML model monitoring's batch job
// (Azure/azureml-assets, assets/model_monitoring/components/src/
// data_drift_compute_metrics/{numerical,categorical}_data_drift_metrics.py and
// shared_utilities/histogram_utils.py); README.md gives each formula.

// psi is the population stability index over matching bins: with every count
// raised by one so no bin is empty, p = (base+1)/nBase and q = (cur+1)/nCur,
// PSI = Σ (q−p)·ln(q/p).
func psi(base, cur []float64, nBase, nCur float64) float64 {
	var sum float64
	for i := range base {
		p := (base[i] + 1) / nBase
		q := (cur[i] + 1) / nCur
		sum += (q - p) * math.Log(q/p)
	}
	return sum
}

// jensenShannon is the Jensen–Shannon distance in base 2 (in [0, 1]) of two
// count vectors, normalized to distributions first, as
// scipy.spatial.distance.jensenshannon(p, q, base=2):
// sqrt((KL(p‖m) + KL(q‖m)) / 2), m = (p+q)/2.
func jensenShannon(base, cur []float64) float64 {
	var sp, sq float64
	for i := range base {
		sp += base[i]
		sq += cur[i]
	}
	if sp == 0 || sq == 0 {
		return math.NaN()
	}
	var kl float64
	for i := range base {
		p, q := base[i]/sp, cur[i]/sq
		m := (p + q) / 2
		if p > 0 {
			kl += p * math.Log(p/m)
		}
		if q > 0 {
			kl += q * math.Log(q/m)
		}
	}
	return math.Sqrt(math.Max(kl/2, 0) / math.Ln2)
}

// wasserstein1 is the first Wasserstein distance of two empirical
// distributions given as sorted samples, ∫|U(x) − V(x)| dx over their
// cumulative distribution functions (scipy.stats.wasserstein_distance).
func wasserstein1(u, v []float64) float64 {
	if len(u) == 0 || len(v) == 0 {
		return math.NaN()
	}
	nu, nv := float64(len(u)), float64(len(v))
	var i, j int
	var sum float64
	prev := math.Min(u[0], v[0])
	for i < len(u) || j < len(v) {
		var x float64
		switch {
		case j == len(v) || (i < len(u) && u[i] <= v[j]):
			x = u[i]
		default:
			x = v[j]
		}
		sum += math.Abs(float64(i)/nu-float64(j)/nv) * (x - prev)
		for i < len(u) && u[i] == x {
			i++
		}
		for j < len(v) && v[j] == x {
			j++
		}
		prev = x
	}
	return sum
}

// numericBaseline is a numeric feature's reference distribution.
type numericBaseline struct {
	sorted   []float64
	min, max float64
	// std is the sample standard deviation (n−1), Spark's stddev.
	std float64
	// width of the equal-width bins over [min, max]; counts has one more bin
	// below min and one above max.
	bins   int
	width  float64
	counts []float64
}

func newNumericBaseline(values []float64) *numericBaseline {
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	b := &numericBaseline{sorted: sorted, min: sorted[0], max: sorted[len(sorted)-1]}
	var mean float64
	for _, v := range sorted {
		mean += v
	}
	mean /= float64(len(sorted))
	var ss float64
	for _, v := range sorted {
		ss += (v - mean) * (v - mean)
	}
	if len(sorted) > 1 {
		b.std = math.Sqrt(ss / float64(len(sorted)-1))
	}
	// Sturges' rule, as Azure ML: ceil(log2(n) + 1) bins.
	b.bins = int(math.Ceil(math.Log2(float64(len(sorted))) + 1))
	b.width = (b.max - b.min) / float64(b.bins)
	b.counts = make([]float64, b.bins+2)
	for _, v := range sorted {
		b.counts[b.bin(v)]++
	}
	return b
}

// bin is the histogram bin of v: 0 below min, bins+1 above max, else
// 1 + floor((v−min)/width), the last bin closed at max.
func (b *numericBaseline) bin(v float64) int {
	switch {
	case v < b.min:
		return 0
	case v > b.max:
		return b.bins + 1
	case b.width == 0:
		return 1
	}
	i := int(math.Floor((v - b.min) / b.width))
	return 1 + min(i, b.bins-1)
}

// normalizedWasserstein divides the Wasserstein distance by the baseline's
// standard deviation (at least 0.001), as Azure ML does.
func (b *numericBaseline) normalizedWasserstein(sortedCurrent []float64) float64 {
	return wasserstein1(b.sorted, sortedCurrent) / math.Max(b.std, 0.001)
}

// categoricalBaseline is a categorical (string or bool) feature's reference
// distribution.
type categoricalBaseline struct {
	counts map[string]uint64
	n      uint64
}

// categoricalDrift returns PSI and the Jensen–Shannon distance between the
// baseline and the current counts, over the union of their categories.
func (b *categoricalBaseline) drift(cur map[string]uint64, other uint64) (psiValue, js float64) {
	keys := make([]string, 0, len(b.counts)+len(cur)+1)
	for k := range b.counts {
		keys = append(keys, k)
	}
	var nCur uint64
	for k, c := range cur {
		nCur += c
		if _, ok := b.counts[k]; !ok {
			keys = append(keys, k)
		}
	}
	base := make([]float64, 0, len(keys)+1)
	now := make([]float64, 0, len(keys)+1)
	slices.Sort(keys)
	for _, k := range keys {
		base = append(base, float64(b.counts[k]))
		now = append(now, float64(cur[k]))
	}
	if other > 0 {
		nCur += other
		base = append(base, 0)
		now = append(now, float64(other))
	}
	return psi(base, now, float64(b.n), float64(nCur)), jensenShannon(base, now)
}
