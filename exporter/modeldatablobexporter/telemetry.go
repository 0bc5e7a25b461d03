package modeldatablobexporter

import (
	"context"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/metric"

	"github.com/otelcol-modeldata/otelcol-modeldata/exporter/modeldatablobexporter/internal/metadata"
)

// telemetry is the exporter's own metrics (defined in metadata.yaml, built by
// mdatagen); the exporterhelper adds sent/failed/queue metrics.
type telemetry struct {
	rows, quarantined, dropped, bytes, appends, failedWrites, duplicatesAvoided, rolls, replayed, resent metric.Int64Counter
	racesLost, racesGivenUp, appendRetries, diskFull, refusedDiskFull                                    metric.Int64Counter

	mu sync.Mutex
	// reserves are the reserves the gauge reports.
	reserves []interface{ reserveHeld() int64 }
}

func newTelemetry(set component.TelemetrySettings) (*telemetry, error) {
	b, err := metadata.NewTelemetryBuilder(set)
	if err != nil {
		return nil, err
	}
	t := &telemetry{
		rows:              b.ModeldatablobRowsWritten,
		quarantined:       b.ModeldatablobRowsQuarantined,
		dropped:           b.ModeldatablobRowsDropped,
		bytes:             b.ModeldatablobBytesWritten,
		appends:           b.ModeldatablobAppends,
		failedWrites:      b.ModeldatablobWriteFailures,
		duplicatesAvoided: b.ModeldatablobDuplicatesAvoided,
		rolls:             b.ModeldatablobFilesRolled,
		replayed:          b.ModeldatablobRowsReplayed,
		resent:            b.ModeldatablobRowsResent,
		racesLost:         b.ModeldatablobAppendRacesLost,
		racesGivenUp:      b.ModeldatablobAppendRacesGivenUp,
		appendRetries:     b.ModeldatablobAppendRetries,
		diskFull:          b.ModeldatablobQueueDiskFull,
		refusedDiskFull:   b.ModeldatablobRowsRefusedQueueDiskFull,
	}
	err = b.RegisterModeldatablobQueueDiskReserveCallback(func(_ context.Context, o metric.Int64Observer) error {
		t.mu.Lock()
		defer t.mu.Unlock()
		var held int64
		for _, r := range t.reserves {
			held += r.reserveHeld()
		}
		o.Observe(held)
		return nil
	})
	return t, err
}

func (t *telemetry) addReserve(r interface{ reserveHeld() int64 }) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.reserves = append(t.reserves, r)
}

func (t *telemetry) appended(ctx context.Context, rows, bytes int) {
	t.rows.Add(ctx, int64(rows))
	t.bytes.Add(ctx, int64(bytes))
	t.appends.Add(ctx, 1)
}

func (t *telemetry) duplicateAvoided(ctx context.Context) { t.duplicatesAvoided.Add(ctx, 1) }
func (t *telemetry) rolled(ctx context.Context)           { t.rolls.Add(ctx, 1) }

func (t *telemetry) raceLost(ctx context.Context)      { t.racesLost.Add(ctx, 1) }
func (t *telemetry) racesGaveUp(ctx context.Context)   { t.racesGivenUp.Add(ctx, 1) }
func (t *telemetry) appendRetried(ctx context.Context) { t.appendRetries.Add(ctx, 1) }
