package modeldatablobexporter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/collector/consumer/consumererror"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// TestAzuriteConcurrentPushes has goroutines push rows of one model, so to
// one blob, at once: through one exporter (as the sending queue's consumers
// do), through two exporters (two collector replicas), and both. Every row
// lands exactly once under one header, with no torn line; a push that gives
// rows back (an append race lost every time) is retried with what it gave
// back, as exporterhelper does.
func TestAzuriteConcurrentPushes(t *testing.T) {
	az := testutil.StartAzurite(t)
	const pushes, rowsPerPush = 10, 40
	tests := []struct {
		name                  string
		exporters, goroutines int // goroutines per exporter
	}{
		{"one exporter, eight goroutines", 1, 8},
		{"two exporters, one goroutine each", 2, 1},
		{"two exporters, four goroutines each", 2, 4},
	}
	for n, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := azuriteConfig(az)
			cfg.Container = fmt.Sprintf("concurrent%d", n)
			var wg sync.WaitGroup
			errs := make(chan error, tt.exporters*tt.goroutines)
			for x := 0; x < tt.exporters; x++ {
				e := newTestExporter(t, cfg)
				for g := 0; g < tt.goroutines; g++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for p := 0; p < pushes; p++ {
							if err := pushRetried(e, concurrentRows(fmt.Sprintf("x%d-g%d-p%d", x, g, p), rowsPerPush)); err != nil {
								errs <- err
								return
							}
						}
					}()
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			blobs := readBlobs(t, az, cfg.Container)
			if len(blobs) != 1 {
				t.Fatalf("want one blob, got %d", len(blobs))
			}
			for _, data := range blobs {
				assertRowsOnce(t, data, tt.exporters*tt.goroutines*pushes*rowsPerPush)
			}
		})
	}
}

// concurrentRows are n rows of model m version 1 on one day, request ids
// <prefix>-r<i>, with a multi-line text of growing length (a torn or
// interleaved append shows as a broken CSV record).
func concurrentRows(prefix string, n int) []testRow {
	rows := make([]testRow, n)
	for i := range rows {
		rows[i] = testRow{model: "m", version: "1", ts: day, requestID: fmt.Sprintf("%s-r%d", prefix, i),
			features: [][2]any{{"text", strings.Repeat("x", 100*i) + "\nend"}}}
	}
	return rows
}

// pushRetried pushes rows, and again what a failed push gives back, up to 20
// attempts.
func pushRetried(e *blobExporter, rows []testRow) error {
	ld := makeLogs(rows...)
	for attempt := 0; ; attempt++ {
		err := e.push(context.Background(), ld)
		if err == nil {
			return nil
		}
		var partial consumererror.Logs
		if attempt == 20 || !errors.As(err, &partial) {
			return err
		}
		ld = partial.Data()
	}
}
