package e2e

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// throughputFormats are the exporter's formats, compared on one route.
var throughputFormats = []string{"csv", "mdc_jsonl", "parquet"}

// formatRounds is how many times each format runs (MODELDATA_HARNESS_FORMAT_ROUNDS).
func formatRounds() int {
	if v, err := strconv.Atoi(os.Getenv("MODELDATA_HARNESS_FORMAT_ROUNDS")); err == nil && v > 0 {
		return v
	}
	if !harnessFull() {
		return 1
	}
	return 3
}

// formatRoute is the route the formats are compared on (MODELDATA_HARNESS_FORMAT_ROUTE, default ours-collect).
func formatRoute() string {
	if r := os.Getenv("MODELDATA_HARNESS_FORMAT_ROUTE"); r != "" {
		return r
	}
	return "ours-collect"
}

// TestHarnessFormatsThroughput runs the collect route into Azurite once per
// format per round, the formats' order rotating each round, and reports each
// format's rows per collector CPU-second as a ratio to CSV's in the same
// round: median (min–max) over the rounds (docs/benchmarks.md, "Output
// formats"). `make bench-formats` runs it full; MODELDATA_HARNESS_FORMAT_ROUTE
// picks another route of ours (e.g. ours-otlp).
func TestHarnessFormatsThroughput(t *testing.T) {
	testutil.CollectorBinary(t)
	const features = 10
	rounds := formatRounds()
	byFormat := map[string][]throughputResult{}
	for round := range rounds {
		order := append(slices.Clone(throughputFormats[round%len(throughputFormats):]), throughputFormats[:round%len(throughputFormats)]...)
		for _, format := range order {
			t.Run(fmt.Sprintf("round%d/%s", round+1, format), func(t *testing.T) {
				r := runThroughput(t, formatRoute()+":"+format, features, throughputRows(features), 0)
				byFormat[format] = append(byFormat[format], r)
			})
		}
	}
	t.Log("| format | rows per CPU-s, median (min–max) | ratio to CSV, same round, median (min–max) | CPU s / 1M rows | VmHWM MiB | storage CPU s | rounds |")
	csv := byFormat["csv"]
	for _, format := range throughputFormats {
		rs := byFormat[format]
		if len(rs) == 0 || len(rs) != len(csv) {
			continue
		}
		var perCPU, ratio, cpuPerM, hwm, storage []float64
		for i, r := range rs {
			perCPU = append(perCPU, r.RowsPerCPUSec)
			ratio = append(ratio, r.RowsPerCPUSec/csv[i].RowsPerCPUSec)
			cpuPerM = append(cpuPerM, r.CPUPerMillion)
			hwm = append(hwm, r.HWMMiB)
			storage = append(storage, r.StorageCPU)
		}
		t.Logf("| %s | %s | %s | %s | %s | %s | %d |", format, medianRange(perCPU, "%.0f"), medianRange(ratio, "%.2f×"),
			medianRange(cpuPerM, "%.1f"), medianRange(hwm, "%.0f"), medianRange(storage, "%.1f"), len(rs))
	}
}
