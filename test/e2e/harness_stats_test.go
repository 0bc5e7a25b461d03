package e2e

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// TestHarnessStatsOverhead measures what the modeldatastats connector costs
// the collect route: the same rows with and without it, alternating, in one
// run, as rows per CPU-second (docs/benchmarks.md, "Feature statistics").
// It also runs both at a steady pace for 10 s and 30 s: the peak RSS with
// the connector should not grow with the row count. CI runs one small round (the
// verifier must find every row with the connector in the pipeline); `make
// bench-stats` runs MODELDATA_HARNESS_STATS_ROUNDS rounds (default 3) at 10
// and 50 features.
func TestHarnessStatsOverhead(t *testing.T) {
	testutil.CollectorBinary(t)
	rounds, featureSets := 1, []int{10}
	if harnessFull() {
		rounds, featureSets = 3, []int{10, 50}
		if v, err := strconv.Atoi(os.Getenv("MODELDATA_HARNESS_STATS_ROUNDS")); err == nil && v > 0 {
			rounds = v
		}
	}
	for _, features := range featureSets {
		rows := throughputRows(features)
		var ratios, fanoutRatios, plain, stats []float64
		for round := 0; round < rounds; round++ {
			var without, with, fanout throughputResult
			t.Run(fmt.Sprintf("f%d/round%d/without", features, round), func(t *testing.T) {
				without = runThroughput(t, "ours-collect", features, rows, 0)
			})
			if harnessFull() { // the collector's own cost of a second consumer: a copy of every batch for the batching exporter
				t.Run(fmt.Sprintf("f%d/round%d/debug", features, round), func(t *testing.T) {
					fanout = runThroughput(t, "ours-collect+debug", features, rows, 0)
				})
			}
			t.Run(fmt.Sprintf("f%d/round%d/with", features, round), func(t *testing.T) {
				with = runThroughput(t, "ours-collect+modeldatastats", features, rows, 0)
			})
			if without.RowsPerCPUSec == 0 || with.RowsPerCPUSec == 0 {
				continue
			}
			plain = append(plain, without.RowsPerCPUSec)
			stats = append(stats, with.RowsPerCPUSec)
			ratios = append(ratios, with.RowsPerCPUSec/without.RowsPerCPUSec)
			if fanout.RowsPerCPUSec > 0 {
				fanoutRatios = append(fanoutRatios, fanout.RowsPerCPUSec/without.RowsPerCPUSec)
			}
			t.Logf("| %d | %d | %d | %.0f | %.0f | %.0f | %.3f | %.3f | %.0f / %.0f |", features, round, rows, without.RowsPerCPUSec, fanout.RowsPerCPUSec,
				with.RowsPerCPUSec, fanout.RowsPerCPUSec/without.RowsPerCPUSec, with.RowsPerCPUSec/without.RowsPerCPUSec, without.MaxRSSMiB, with.MaxRSSMiB)
		}
		if len(ratios) > 0 {
			t.Logf("%d features, %d rounds: rows per CPU-s without %s, with %s; with/without %s", features, len(ratios),
				medianRange(plain, "%.0f"), medianRange(stats, "%.0f"), medianRange(ratios, "%.3f"))
		}
		if len(fanoutRatios) > 0 {
			t.Logf("%d features: a second no-op consumer (debug) alone, with/without %s", features, medianRange(fanoutRatios, "%.3f"))
		}
		if harnessFull() { // paced, so the queue does not grow with a backlog: what remains is the steady state
			rate := steadyRate(features)
			for _, seconds := range []int{10, 30} {
				for _, route := range []string{"ours-collect", "ours-collect+modeldatastats"} {
					n := int(rate) * seconds
					t.Run(fmt.Sprintf("f%d/rss-%ds/%s", features, seconds, route), func(t *testing.T) {
						r := runThroughput(t, route, features, n, rate)
						t.Logf("| %s | %d | %.0f rows/s | %d | %.0f | %.0f |", route, features, rate, n, r.MaxRSSMiB, r.HWMMiB)
					})
				}
			}
		}
	}
}

// medianRange formats "median (min–max)" of values.
func medianRange(values []float64, format string) string {
	s := slices.Clone(values)
	slices.Sort(s)
	return fmt.Sprintf(format+" ("+format+"–"+format+")", s[len(s)/2], s[0], s[len(s)-1])
}
