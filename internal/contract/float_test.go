package contract

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// referenceFloat is the formatting rule of FormatFloat done by strconv
// alone: what appendShortDecimal must equal.
func referenceFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	if abs := math.Abs(f); abs == 0 || (abs >= 1e-6 && abs < 1e21) {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func checkFloat(t *testing.T, f float64) {
	t.Helper()
	if got, want := FormatFloat(f), referenceFloat(f); got != want {
		t.Fatalf("%v (bits %#x): FormatFloat %q, strconv %q", f, math.Float64bits(f), got, want)
	}
}

// The short-decimal path writes exactly what strconv writes, on the
// values it takes (decimals of up to 9 places, dyadic fractions, values
// near its bounds) and on those it leaves to strconv.
func TestFormatFloatEqualsStrconv(t *testing.T) {
	for _, f := range []float64{0, math.Copysign(0, -1), 0.1, 0.2, 0.1 + 0.2, 0.3, 1.005, 2.675, 1e-6, 1.5e-6, 9.99e-7,
		999999999999999, 999999999999999.9, 99999999999999.99, 1e15, 1e15 + 0.5, 123456.789012345, 0.000123, 3.5e7,
		1.1386826, -0.47382187, 12345.001953125, 4503599627370495.5, 4503599627370496, 1 << 53, 0.999999999, 0.9999999999} {
		checkFloat(t, f)
		checkFloat(t, -f)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200_000 {
		// A decimal of p places and up to 16 digits, as clients write them.
		p := rng.IntN(13)
		n := rng.Int64N(int64(math.Pow10(1 + rng.IntN(16))))
		f, _ := strconv.ParseFloat(strconv.FormatInt(n, 10)+"e-"+strconv.Itoa(p), 64)
		checkFloat(t, f)
		checkFloat(t, -f)
		// Dyadic fractions, arbitrary doubles, and the neighbours of a decimal.
		checkFloat(t, float64(rng.Int64N(1<<40))+float64(rng.IntN(4096))/4096)
		checkFloat(t, math.Float64frombits(rng.Uint64()))
		checkFloat(t, math.Nextafter(f, math.Inf(1)))
		checkFloat(t, math.Nextafter(f, 0))
	}
}

func FuzzFormatFloat(f *testing.F) {
	f.Add(0.1)
	f.Add(12345.001953125)
	f.Add(999999999999999.9)
	f.Fuzz(func(t *testing.T, v float64) { checkFloat(t, v) })
}

func BenchmarkFormatFloat(b *testing.B) {
	values := []float64{12345.001953125, 0.5, 1.1386826, -0.47382187, 3.5e7, 0.000123, 987654.3210987}
	buf := make([]byte, 0, 32)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = AppendFloat(buf[:0], values[i%len(values)])
	}
}
