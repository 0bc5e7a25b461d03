// Package appinsightsexporter sends traces, logs and metrics to Azure
// Application Insights (the classic track API, /v2.1/track), through
// exporterhelper's queue, batching, retry and timeout.
package appinsightsexporter

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-modeldata/otelcol-modeldata/exporter/appinsightsexporter/internal/metadata"
)

// NewFactory returns the factory of the appinsights exporter.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(
		metadata.Type,
		func() component.Config { return createDefaultConfig() },
		exporter.WithTraces(createTraces, metadata.TracesStability),
		exporter.WithMetrics(createMetrics, metadata.MetricsStability),
		exporter.WithLogs(createLogs, metadata.LogsStability),
	)
}

func options(cfg *Config, e *aiExporter) []exporterhelper.Option {
	return []exporterhelper.Option{
		exporterhelper.WithStart(e.start),
		exporterhelper.WithShutdown(e.shutdown),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		exporterhelper.WithTimeout(exporterhelper.TimeoutConfig{Timeout: cfg.Timeout}),
		exporterhelper.WithRetry(cfg.RetryConfig),
		exporterhelper.WithQueue(cfg.QueueConfig),
	}
}

// disabledOptions are those of an exporter without a connection string: no
// queue and no retry, since nothing is sent; one line at start says so.
func disabledOptions(set exporter.Settings) []exporterhelper.Option {
	return []exporterhelper.Option{
		exporterhelper.WithStart(func(context.Context, component.Host) error {
			set.Logger.Warn("appinsights: no connection_string set; exporter disabled, telemetry is dropped")
			return nil
		}),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
	}
}

func createTraces(ctx context.Context, set exporter.Settings, c component.Config) (exporter.Traces, error) {
	cfg := c.(*Config)
	if cfg.disabled() {
		return exporterhelper.NewTraces(ctx, set, cfg, func(context.Context, ptrace.Traces) error { return nil }, disabledOptions(set)...)
	}
	e, err := newExporter(cfg, set)
	if err != nil {
		return nil, err
	}
	return exporterhelper.NewTraces(ctx, set, cfg, e.pushTraces, options(cfg, e)...)
}

func createMetrics(ctx context.Context, set exporter.Settings, c component.Config) (exporter.Metrics, error) {
	cfg := c.(*Config)
	if cfg.disabled() {
		return exporterhelper.NewMetrics(ctx, set, cfg, func(context.Context, pmetric.Metrics) error { return nil }, disabledOptions(set)...)
	}
	e, err := newExporter(cfg, set)
	if err != nil {
		return nil, err
	}
	exp, err := exporterhelper.NewMetrics(ctx, set, cfg, e.pushMetrics, options(cfg, e)...)
	if err != nil {
		return nil, err
	}
	return &deltaMetrics{Metrics: exp, conv: newDeltaConverter(cfg.MaxCumulativeSeries)}, nil
}

func createLogs(ctx context.Context, set exporter.Settings, c component.Config) (exporter.Logs, error) {
	cfg := c.(*Config)
	if cfg.disabled() {
		return exporterhelper.NewLogs(ctx, set, cfg, func(context.Context, plog.Logs) error { return nil }, disabledOptions(set)...)
	}
	e, err := newExporter(cfg, set)
	if err != nil {
		return nil, err
	}
	return exporterhelper.NewLogs(ctx, set, cfg, e.pushLogs, options(cfg, e)...)
}
