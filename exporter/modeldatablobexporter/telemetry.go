package modeldatablobexporter

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/metric"
)

// telemetry is the exporter's own metrics (through the collector's
// MeterProvider); the exporterhelper adds sent/failed/queue metrics.
type telemetry struct {
	rows, quarantined, dropped, bytes, appends, failedWrites, duplicatesAvoided, rolls metric.Int64Counter
	racesLost, racesGivenUp, appendRetries                                             metric.Int64Counter
}

func newTelemetry(set component.TelemetrySettings) (*telemetry, error) {
	m := set.MeterProvider.Meter(scopeName)
	t := &telemetry{}
	for _, c := range []struct {
		dst        *metric.Int64Counter
		name, desc string
		unit       string
	}{
		{&t.rows, "otelcol_modeldatablob_rows_written", "CSV rows written (quarantined rows included).", "{row}"},
		{&t.quarantined, "otelcol_modeldatablob_rows_quarantined", "Rows written under the quarantine folder because they could not be placed.", "{row}"},
		{&t.dropped, "otelcol_modeldatablob_rows_dropped", "Rows that will never be written: refused permanently by storage, or still failing after retry_on_failure.max_elapsed_time (when set) or with retries disabled.", "{row}"},
		{&t.bytes, "otelcol_modeldatablob_bytes_written", "CSV bytes appended (headers excluded).", "By"},
		{&t.appends, "otelcol_modeldatablob_appends", "Successful appends of row data.", "{append}"},
		{&t.failedWrites, "otelcol_modeldatablob_write_failures", "Failed file writes; their rows are retried by the exporterhelper unless permanent.", "{write}"},
		{&t.duplicatesAvoided, "otelcol_modeldatablob_duplicates_avoided", "Retried appends found already landed (not written twice).", "{append}"},
		{&t.rolls, "otelcol_modeldatablob_files_rolled", "Moves to the next data_N.csv because a file reached its limits.", "{file}"},
		{&t.racesLost, "otelcol_modeldatablob_append_races_lost", "Appends refused because another writer appended to the file first (HTTP 412 AppendPositionConditionNotMet); each is tried again at the new end after a jittered pause.", "{append}"},
		{&t.racesGivenUp, "otelcol_modeldatablob_append_races_given_up", "Appends that lost every position race of one attempt; their rows go back to retry_on_failure.", "{append}"},
		{&t.appendRetries, "otelcol_modeldatablob_append_retries", "Append requests the storage client sent again after a timeout or a 5xx answer.", "{request}"},
	} {
		var err error
		if *c.dst, err = m.Int64Counter(c.name, metric.WithDescription(c.desc), metric.WithUnit(c.unit)); err != nil {
			return nil, err
		}
	}
	return t, nil
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
