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

// BenchmarkFormats pushes the same 10-feature rows (one row per request),
// 5,000 per push, through
// each format into the local backend (encoding and writing): rows per
// CPU-second and stored bytes per row, for the ratios to CSV in
// docs/benchmarks.md.
func BenchmarkFormats(b *testing.B) {
	benchFormats(b, benchRows(5000, 10))
}

// BenchmarkFormatsRequestsOf10 is BenchmarkFormats with 10 rows per request
// (one correlation and request id each), as the v2 SDK sends a DataFrame:
// MDC writes one record envelope per request.
func BenchmarkFormatsRequestsOf10(b *testing.B) {
	rows := benchRows(5000, 10)
	for i := range rows {
		rows[i].correlationID, rows[i].requestID = rows[i-i%10].correlationID, rows[i-i%10].requestID
	}
	benchFormats(b, rows)
}

func benchFormats(b *testing.B, rows []testRow) {
	batch := len(rows)
	ld := makeLogs(rows...)
	for _, format := range []string{FormatCSV, FormatMDCJSONL, FormatParquet} {
		b.Run("format="+format, func(b *testing.B) {
			cfg := localConfig(b)
			cfg.Format = format
			cfg.MDC.InstanceID = "bench"
			e := newTestExporter(b, cfg)
			// The size of one push's files (Parquet: its row groups,
			// staged in the open files; the footer comes at the commit).
			if err := e.push(context.Background(), ld); err != nil {
				b.Fatal(err)
			}
			pushBytes := dirSize(cfg.Local.Directory)
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
			b.ReportMetric(float64(pushBytes)/float64(batch), "bytes/row")
		})
	}
}

// BenchmarkFormatEncode is each format's encoding alone, no storage: the
// records of a push to the bytes of its files (CSV and MDC: the lines the
// writer appends; Parquet: the finished files), 5,000 rows of 10 features,
// with 1, 10 or 100 rows per request (one correlation and request id each).
func BenchmarkFormatEncode(b *testing.B) {
	for _, perRequest := range []int{1, 10, 100} {
		rows := benchRows(5000, 10)
		for i := range rows {
			rows[i].correlationID, rows[i].requestID = rows[i-i%perRequest].correlationID, rows[i-i%perRequest].requestID
		}
		ld := makeLogs(rows...)
		for _, format := range []string{FormatCSV, FormatMDCJSONL, FormatParquet} {
			b.Run(fmt.Sprintf("rows_per_request=%d/format=%s", perRequest, format), func(b *testing.B) {
				cfg := createDefaultConfig()
				cfg.Format = format
				cfg.MDC.InstanceID = "bench"
				encode := func() int {
					n := 0
					for _, fb := range newEncoder(cfg).encode(ld).batches {
						n += fb.body.Len()
					}
					return n
				}
				switch format {
				case FormatMDCJSONL:
					encode = func() int {
						n := 0
						for _, fb := range encodeMDC(cfg, "bench", "bench", ld).batches {
							n += fb.body.Len()
						}
						return n
					}
				case FormatParquet:
					w := newPQWriter(cfg, nil)
					encode = func() int {
						n := 0
						for _, fb := range w.encode(ld).batches {
							data, err := w.fileBytes(fb.pq)
							if err != nil {
								b.Fatal(err)
							}
							n += len(data)
						}
						return n
					}
				}
				size := encode()
				b.ReportAllocs()
				b.ResetTimer()
				cpu := cpuTime()
				for i := 0; i < b.N; i++ {
					encode()
				}
				cpuSec := (cpuTime() - cpu).Seconds()
				b.ReportMetric(float64(b.N*len(rows))/cpuSec, "rows/CPU-s")
				b.ReportMetric(float64(size)/float64(len(rows)), "bytes/row")
			})
		}
	}
}
