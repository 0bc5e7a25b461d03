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
// ceil(log_base(v)) - 1 = ceil(ln(v) * 2^scale / ln 2) - 1.
func bucketIndex(v float64, scale int32) int32 {
	return int32(math.Ceil(math.Log(v)*scaleFactors[scale-minScale])) - 1
}

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
	h.min = math.Min(h.min, v)
	h.max = math.Max(h.max, v)
	if v == 0 {
		h.zero++
		return
	}
	r := &h.pos
	if v < 0 {
		r, v = &h.neg, -v
	}
	idx := bucketIndex(v, h.scale)
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
