package modeldatastats

import (
	"math"

	"go.opentelemetry.io/collector/pdata/pmetric"
)

// expHist is an OpenTelemetry base-2 exponential histogram: bucket i at scale s
// holds the values in (base^i, base^(i+1)] with base = 2^(2^-s). It starts at
// maxScale and halves its resolution (scale-1 merges bucket pairs) whenever a
// value would make either sign's bucket range exceed maxBuckets, as the OTel
// SDK's aggregation does; count, sum, min and max stay exact.
type expHist struct {
	maxBuckets int
	scale      int32
	pos, neg   bucketRange
	zero       uint64
	count      uint64
	sum        float64
	min, max   float64
}

const maxScale = 20

type bucketRange struct {
	offset int32
	counts []uint64
}

func newExpHist(maxBuckets int) *expHist {
	return &expHist{maxBuckets: maxBuckets, scale: maxScale, min: math.Inf(1), max: math.Inf(-1)}
}

// bucketIndex is the index of the bucket holding |v| > 0 at scale:
// ceil(log_base(v)) - 1. Up to tableMaxScale it comes from v's binary
// exponent and a table of the bucket boundaries within one octave (exact
// against those boundaries, and several times cheaper than a logarithm);
// above, from logBucketIndex.
func bucketIndex(v float64, scale int32) int32 {
	bits := math.Float64bits(v)
	exp := int32(bits>>52) & 0x7ff
	if scale > tableMaxScale || exp == 0 { // exp 0: subnormal
		return logBucketIndex(v, scale)
	}
	// v = m * 2^e with m in [1, 2).
	e, mantissa := exp-1023, bits&(1<<52-1)
	if scale <= 0 { // bucket e at scale 0 is (2^e, 2^(e+1)]; a lower scale merges 2^-scale of them
		if mantissa == 0 {
			e--
		}
		return e >> -scale
	}
	if mantissa == 0 { // m = 1 is the upper bound of the previous octave's last bucket
		return e<<scale - 1
	}
	in := octaveTables[scale][mantissa>>(52-(scale+1))]
	k := in.below
	if in.bound < math.Float64frombits(mantissa|1023<<52) {
		k++
	}
	return e<<scale + k
}

// logBucketIndex is bucketIndex by logarithm: ceil(ln(v) * 2^scale / ln 2) - 1.
func logBucketIndex(v float64, scale int32) int32 {
	return int32(math.Ceil(math.Log(v)*scaleFactors[scale-minScale])) - 1
}

// tableMaxScale is the largest scale bucketIndex maps by table (the table
// of scale s has 2^(s+1) entries; all of them take 64 KiB).
const tableMaxScale = 10

// octaveInterval is one of the 2^(s+1) equal intervals that split [1, 2):
// the bucket boundaries 2^(k/2^s) are more than 2^-(s+1) apart, so each
// interval holds at most one.
type octaveInterval struct {
	below int32   // the boundaries 2^(k/2^s), k >= 1, before the interval
	bound float64 // the boundary in the interval, or +Inf
}

var octaveTables = func() (t [tableMaxScale + 1][]octaveInterval) {
	for s := 1; s <= tableMaxScale; s++ {
		n := 1 << (s + 1)
		t[s] = make([]octaveInterval, n)
		for j := range t[s] {
			t[s][j].bound = math.Inf(1)
		}
		for k := 1; k < 1<<s; k++ {
			b := math.Exp2(float64(k) / float64(int(1)<<s))
			t[s][int((b-1)*float64(n))].bound = b
		}
		var below int32
		for j := range t[s] {
			t[s][j].below = below
			if !math.IsInf(t[s][j].bound, 1) {
				below++
			}
		}
	}
	return t
}()

// minScale is where every float64 fits in two buckets; scales never go lower.
const minScale = -10

// scaleFactors[s-minScale] is 2^s / ln 2.
var scaleFactors = func() (f [maxScale - minScale + 1]float64) {
	for i := range f {
		f[i] = math.Ldexp(1/math.Ln2, i+minScale)
	}
	return f
}()

// bucketBounds are the lower (exclusive) and upper (inclusive) bounds of bucket i.
func bucketBounds(i, scale int32) (float64, float64) {
	return math.Exp2(float64(i) * math.Ldexp(1, -int(scale))), math.Exp2(float64(i+1) * math.Ldexp(1, -int(scale)))
}

func (h *expHist) record(v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	h.count++
	h.sum += v
	if v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	if v == 0 {
		h.zero++
		return
	}
	r := &h.pos
	if v < 0 {
		r, v = &h.neg, -v
	}
	idx := bucketIndex(v, h.scale)
	if i := idx - r.offset; i >= 0 && int(i) < len(r.counts) { // the usual case: within the range
		r.counts[i]++
		return
	}
	if d := r.downscaleNeeded(idx, h.maxBuckets, h.scale); d > 0 {
		h.scale -= d
		h.pos.downscale(d)
		h.neg.downscale(d)
		idx >>= d
	}
	r.increment(idx)
}

// downscaleNeeded is by how much the scale must drop for idx to fit.
func (r *bucketRange) downscaleNeeded(idx int32, maxBuckets int, scale int32) int32 {
	if len(r.counts) == 0 {
		return 0
	}
	lo, hi := min(r.offset, idx), max(r.offset+int32(len(r.counts))-1, idx)
	var d int32
	for int(hi-lo)+1 > maxBuckets && scale-d > minScale {
		lo >>= 1
		hi >>= 1
		d++
	}
	return d
}

func (r *bucketRange) downscale(d int32) {
	if d == 0 || len(r.counts) == 0 {
		return
	}
	newOffset := r.offset >> d
	newLast := (r.offset + int32(len(r.counts)) - 1) >> d
	merged := make([]uint64, newLast-newOffset+1)
	for i, c := range r.counts {
		merged[((r.offset+int32(i))>>d)-newOffset] += c
	}
	r.offset, r.counts = newOffset, merged
}

func (r *bucketRange) increment(idx int32) {
	switch {
	case len(r.counts) == 0:
		r.offset = idx
		r.counts = append(r.counts, 0)
	case idx < r.offset:
		grown := make([]uint64, int(r.offset-idx)+len(r.counts))
		copy(grown[r.offset-idx:], r.counts)
		r.offset, r.counts = idx, grown
	case int(idx-r.offset) >= len(r.counts):
		r.counts = append(r.counts, make([]uint64, int(idx-r.offset)+1-len(r.counts))...)
	}
	r.counts[idx-r.offset]++
}

// quantile returns the upper bound of the bucket holding the order statistic
// of rank ceil(q*count) (1-based), clamped to [min, max]: the exact order
// statistic lies in that bucket, so the relative error is at most base-1.
func (h *expHist) quantile(q float64) float64 {
	if h.count == 0 {
		return math.NaN()
	}
	rank := uint64(math.Ceil(q * float64(h.count)))
	rank = max(rank, 1)
	var seen uint64
	for i := len(h.neg.counts) - 1; i >= 0; i-- {
		seen += h.neg.counts[i]
		if seen >= rank {
			lo, _ := bucketBounds(h.neg.offset+int32(i), h.scale)
			return math.Max(-lo, h.min)
		}
	}
	if seen += h.zero; seen >= rank {
		return 0
	}
	for i, c := range h.pos.counts {
		seen += c
		if seen >= rank {
			_, hi := bucketBounds(h.pos.offset+int32(i), h.scale)
			return math.Min(hi, h.max)
		}
	}
	return h.max
}

func (h *expHist) copyTo(dp pmetric.ExponentialHistogramDataPoint) {
	dp.SetScale(h.scale)
	dp.SetCount(h.count)
	dp.SetSum(h.sum)
	dp.SetZeroCount(h.zero)
	if h.count > 0 {
		dp.SetMin(h.min)
		dp.SetMax(h.max)
	}
	dp.Positive().SetOffset(h.pos.offset)
	dp.Positive().BucketCounts().FromRaw(h.pos.counts)
	dp.Negative().SetOffset(h.neg.offset)
	dp.Negative().BucketCounts().FromRaw(h.neg.counts)
}
