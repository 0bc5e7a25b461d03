package modeldatastats

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestBucketIndex: each bucket holds (lower, upper] of bucketBounds, at every
// boundary of every scale the table maps (and the scales at or below 0), over
// many octaves; elsewhere the table and the logarithm agree.
func TestBucketIndex(t *testing.T) {
	for scale := int32(minScale); scale <= tableMaxScale; scale++ {
		for _, e := range []int32{-1000, -40, -3, 0, 1, 7, 60, 1000} {
			for k := int32(0); k < 1<<max(scale, 0); k++ {
				i := e<<max(scale, 0) + k
				if scale < 0 {
					i = e >> -scale
				}
				lo, hi := bucketBounds(i, scale)
				if got := bucketIndex(hi, scale); got != i {
					t.Fatalf("scale %d: upper bound %g of bucket %d maps to %d", scale, hi, i, got)
				}
				if got := bucketIndex(math.Nextafter(lo, math.Inf(1)), scale); got != i {
					t.Fatalf("scale %d: just above the lower bound %g of bucket %d maps to %d", scale, lo, i, got)
				}
			}
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for n := 0; n < 200000; n++ {
		v := math.Exp(rng.NormFloat64() * 20)
		scale := int32(rng.IntN(maxScale-minScale+1)) + minScale
		got, want := bucketIndex(v, scale), logBucketIndex(v, scale)
		if got != want {
			// Only where the logarithm's rounding meets a boundary.
			lo, hi := bucketBounds(got, scale)
			if !(v > lo && v <= hi) || (math.Abs(v-lo) > 1e-12*v && math.Abs(v-hi) > 1e-12*v) {
				t.Fatalf("scale %d, %g: table %d, logarithm %d", scale, v, got, want)
			}
		}
	}
}
