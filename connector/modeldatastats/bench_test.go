package modeldatastats

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"
)

// benchLogs is one batch of 100 rows with n features shaped like the load
// harness's rows: a unique row id, then ints, doubles and strings from a
// 50-value vocabulary.
func benchLogs(n int, rng *rand.Rand) plog.Logs {
	rows := make([]map[string]any, 100)
	names := make([]string, n)
	for j := range names {
		names[j] = "f" + strconv.Itoa(j)
	}
	for i := range rows {
		rows[i] = map[string]any{}
		for j, name := range names {
			switch j % 4 {
			case 0:
				if j == 0 {
					rows[i][name] = "row-" + strconv.FormatUint(rng.Uint64(), 36)
					continue
				}
				rows[i][name] = rng.NormFloat64()*10 + 50
			case 1:
				rows[i][name] = rng.NormFloat64()*10 + 50
			case 2:
				rows[i][name] = rng.Int64N(1000)
			default:
				rows[i][name] = "v" + strconv.Itoa(rng.IntN(50))
			}
		}
	}
	return rowsLogs("m", names, rows...)
}

// benchBaseline writes a baseline CSV for the n features of benchLogs.
func benchBaseline(b *testing.B, n int, rng *rand.Rand) string {
	path := filepath.Join(b.TempDir(), "baseline.csv")
	file, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer file.Close()
	f := bufio.NewWriter(file)
	defer f.Flush()
	for j := 0; j < n; j++ {
		if j > 0 {
			fmt.Fprint(f, ",")
		}
		fmt.Fprintf(f, "f%d", j)
	}
	fmt.Fprintln(f)
	for i := 0; i < 1000; i++ {
		for j := 0; j < n; j++ {
			if j > 0 {
				fmt.Fprint(f, ",")
			}
			switch j % 4 {
			case 0:
				if j == 0 {
					fmt.Fprint(f, "row-"+strconv.FormatUint(rng.Uint64(), 36))
					continue
				}
				fmt.Fprint(f, rng.NormFloat64()*10+50)
			case 1:
				fmt.Fprint(f, rng.NormFloat64()*10+50)
			case 2:
				fmt.Fprint(f, rng.Int64N(1000))
			default:
				fmt.Fprint(f, "v"+strconv.Itoa(rng.IntN(50)))
			}
		}
		fmt.Fprintln(f)
	}
	return path
}

// BenchmarkConsumeLogs is the connector's cost per row (ns/row), with and
// without a baseline, at 10 and 50 features. Windows are emitted every
// 10,000 rows so the figure includes building the metrics.
func BenchmarkConsumeLogs(b *testing.B) {
	for _, n := range []int{10, 50} {
		for _, withBaseline := range []bool{false, true} {
			b.Run(fmt.Sprintf("features=%d/baseline=%t", n, withBaseline), func(b *testing.B) {
				rng := rand.New(rand.NewPCG(1, uint64(n)))
				cfg := createDefaultConfig()
				if withBaseline {
					cfg.Baselines = []BaselineConfig{{Model: "m", CSV: benchBaseline(b, n, rng)}}
				}
				c := newTestConnector(b, cfg)
				batches := make([]plog.Logs, 10)
				for i := range batches {
					batches[i] = benchLogs(n, rng)
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := c.ConsumeLogs(b.Context(), batches[i%len(batches)]); err != nil {
						b.Fatal(err)
					}
					if i%100 == 99 {
						c.flush(b.Context())
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/row")
			})
		}
	}
}
