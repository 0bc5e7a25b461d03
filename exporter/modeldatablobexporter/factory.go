// Package modeldatablobexporter writes model data rows (log records under
// the data contract, internal/contract) as CSV in the Azure ML modeldata
// layout, to Azure Blob Storage append blobs or to a local folder.
package modeldatablobexporter

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-modeldata/otelcol-modeldata/exporter/modeldatablobexporter/internal/metadata"
)

// NewFactory returns the factory of the modeldatablob exporter.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(
		metadata.Type,
		func() component.Config { return createDefaultConfig() },
		exporter.WithLogs(createLogs, metadata.LogsStability),
	)
}

func createLogs(ctx context.Context, set exporter.Settings, c component.Config) (exporter.Logs, error) {
	cfg := c.(*Config)
	e, err := newExporter(cfg, set)
	if err != nil {
		return nil, err
	}
	q := cfg.QueueConfig.Get()
	persistent := q != nil && q.StorageID != nil
	helperSet := set
	if persistent {
		helperSet.MeterProvider = stallSafeMeterProvider{MeterProvider: set.MeterProvider, gate: &e.gate}
	}
	exp, err := exporterhelper.NewLogs(ctx, helperSet, cfg, e.push,
		exporterhelper.WithStart(e.start),
		exporterhelper.WithShutdown(e.shutdown),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		exporterhelper.WithTimeout(cfg.TimeoutConfig),
		exporterhelper.WithRetry(helperRetryConfig(cfg.RetryConfig)),
		exporterhelper.WithQueue(cfg.QueueConfig),
	)
	if err != nil {
		return nil, err
	}
	if persistent {
		return persistentLogs{Logs: exp, e: e}, nil
	}
	return exp, nil
}

// persistentLogs is the exporter with a persistent sending queue. It
// refuses new requests at once while the queue waits for disk space
// (queue_gate.go). It only reads the logs it is given: the queue encodes each
// request before ConsumeLogs returns and the batcher merges the decoded
// copies. exporterhelper declares MutatesData whenever batching is on, which
// would make a pipeline with a second consumer (e.g. the modeldatastats
// connector) deep-copy every request for this exporter. With the in-memory
// queue the batcher does merge the given logs, so that declaration stays.
type persistentLogs struct {
	exporter.Logs
	e *blobExporter
}

func (r persistentLogs) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	return r.e.consumeGated(ctx, ld, r.Logs.ConsumeLogs)
}

// Start starts the exporterhelper with a queue whose hand-outs wait for
// disk space instead of skipping requests (queue_stall.go).
func (r persistentLogs) Start(ctx context.Context, host component.Host) error {
	return r.Logs.Start(ctx, queueHost{Host: host, e: r.e})
}

// Shutdown ends the queue's waits for disk space first: the queue stops
// only once they return.
func (r persistentLogs) Shutdown(ctx context.Context) error {
	r.e.stopStalls()
	return r.Logs.Shutdown(ctx)
}

func (persistentLogs) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

// ExporterHelperBatchingEnabled passes on exporterhelper's answer: the
// collector asks it to warn of a batch processor before a batching exporter.
func (e persistentLogs) ExporterHelperBatchingEnabled() bool {
	b, ok := e.Logs.(interface{ ExporterHelperBatchingEnabled() bool })
	return ok && b.ExporterHelperBatchingEnabled()
}
