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
// run, as rows per CPU-second (docs/benchmarks.md, "Feature statistics"). Each
// queue kind is measured: "-pq", the sending queue on disk as
// examples/otel-config.yaml has it (the exporter then only reads the logs and
// shares them with the connector), and the in-memory queue (the exporter's
// batcher merges the logs it is given, so the pipeline copies every request
// for it once a second consumer is there). It also runs both at a steady pace
// for 10 s and 30 s: the peak RSS (and its anonymous part, without the queue's
// mapped file) with the connector should not grow with the row count. CI runs
// one small round of the -pq route (the verifier must find every row with the
// connector in the pipeline); `make bench-stats` runs
// MODELDATA_HARNESS_STATS_ROUNDS rounds (default 3) at 10 and 50 features,
// with a no-op second consumer (debug) beside.
func TestHarnessStatsOverhead(t *testing.T) {
	testutil.CollectorBinary(t)
	rounds, featureSets, queues := 1, []int{10}, []string{"ours-collect-pq"}
	if harnessFull() {
		rounds, featureSets, queues = 3, []int{10, 50}, []string{"ours-collect-pq", "ours-collect"}
		if v, err := strconv.Atoi(os.Getenv("MODELDATA_HARNESS_STATS_ROUNDS")); err == nil && v > 0 {
			rounds = v
		}
	}
	for _, features := range featureSets {
		rows := throughputRows(features)
		type series struct{ without, fanout, stats, fanoutRatio, statsRatio []float64 }
		results := map[string]*series{}
		for round := 0; round < rounds; round++ {
			for _, base := range queues {
				var without, with, fanout throughputResult
				t.Run(fmt.Sprintf("f%d/round%d/%s", features, round, base), func(t *testing.T) {
					without = runThroughput(t, base, features, rows, 0)
				})
				if harnessFull() { // the collector's own cost of a second consumer
					t.Run(fmt.Sprintf("f%d/round%d/%s+debug", features, round, base), func(t *testing.T) {
						fanout = runThroughput(t, base+"+debug", features, rows, 0)
					})
				}
				t.Run(fmt.Sprintf("f%d/round%d/%s+modeldatastats", features, round, base), func(t *testing.T) {
					with = runThroughput(t, base+"+modeldatastats", features, rows, 0)
				})
				if without.RowsPerCPUSec == 0 || with.RowsPerCPUSec == 0 {
					continue
				}
				s := results[base]
				if s == nil {
					s = &series{}
					results[base] = s
				}
				s.without = append(s.without, without.RowsPerCPUSec)
				s.stats = append(s.stats, with.RowsPerCPUSec)
				s.statsRatio = append(s.statsRatio, with.RowsPerCPUSec/without.RowsPerCPUSec)
				if fanout.RowsPerCPUSec > 0 {
					s.fanout = append(s.fanout, fanout.RowsPerCPUSec)
					s.fanoutRatio = append(s.fanoutRatio, fanout.RowsPerCPUSec/without.RowsPerCPUSec)
				}
				t.Logf("| %s | %d | %d | %d | %.0f | %.0f | %.0f | %.3f | %.3f | %.0f / %.0f |", base, features, round, rows, without.RowsPerCPUSec,
					fanout.RowsPerCPUSec, with.RowsPerCPUSec, fanout.RowsPerCPUSec/without.RowsPerCPUSec, with.RowsPerCPUSec/without.RowsPerCPUSec,
					without.MaxRSSMiB, with.MaxRSSMiB)
			}
		}
		for _, base := range queues {
			s := results[base]
			if s == nil {
				continue
			}
			t.Logf("%s, %d features, %d rounds: rows per CPU-s without %s, with modeldatastats %s; with/without %s", base, features,
				len(s.statsRatio), medianRange(s.without, "%.0f"), medianRange(s.stats, "%.0f"), medianRange(s.statsRatio, "%.3f"))
			if len(s.fanoutRatio) > 0 {
				t.Logf("%s, %d features: a no-op second consumer (debug) %s rows per CPU-s, with/without %s", base, features,
					medianRange(s.fanout, "%.0f"), medianRange(s.fanoutRatio, "%.3f"))
			}
		}
		if harnessFull() { // paced, so the queue does not grow with a backlog: what remains is the steady state
			rate := steadyRate(features)
			for _, seconds := range []int{10, 30} {
				for _, base := range queues {
					for _, route := range []string{base, base + "+modeldatastats"} {
						n := int(rate) * seconds
						t.Run(fmt.Sprintf("f%d/rss-%ds/%s", features, seconds, route), func(t *testing.T) {
							r := runThroughput(t, route, features, n, rate)
							t.Logf("| %s | %d | %.0f rows/s | %d | %.0f | %.0f | %.0f |", route, features, rate, n, r.MaxRSSMiB, r.HWMMiB, r.MaxAnonMiB)
						})
					}
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
