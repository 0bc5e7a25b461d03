package modeldatablobexporter

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// cpuTime is this process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// dirSize is the bytes of every file under dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// BenchmarkFormats pushes the same 10-feature rows, 5,000 per push, through
// each format into the local backend (encoding and writing): rows per
// CPU-second and stored bytes per row, for the ratios to CSV in
// docs/benchmarks.md.
func BenchmarkFormats(b *testing.B) {
	const batch = 5000
	ld := makeLogs(benchRows(batch, 10)...)
	for _, format := range []string{FormatCSV, FormatMDCJSONL} {
		b.Run("format="+format, func(b *testing.B) {
			cfg := localConfig(b)
			cfg.Format = format
			cfg.MDC.InstanceID = "bench"
			e := newTestExporter(b, cfg)
			b.ReportAllocs()
			b.ResetTimer()
			cpu := cpuTime()
			for i := 0; i < b.N; i++ {
				if err := e.push(context.Background(), ld); err != nil {
					b.Fatal(err)
				}
			}
			cpuSec := (cpuTime() - cpu).Seconds()
			b.StopTimer()
			b.ReportMetric(float64(b.N*batch)/cpuSec, "rows/CPU-s")
			b.ReportMetric(float64(dirSize(cfg.Local.Directory))/float64(b.N*batch), "bytes/row")
		})
	}
}

var _ = fmt.Sprint
