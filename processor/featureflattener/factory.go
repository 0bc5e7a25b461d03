package featureflattener

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"
)

// NewFactory returns the featureflattener processor factory (logs only).
func NewFactory() processor.Factory {
	return processor.NewFactory(componentType,
		func() component.Config { return createDefaultConfig() },
		processor.WithLogs(createLogs, logsStability))
}

func createLogs(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Logs) (processor.Logs, error) {
	f, err := newFlattener(cfg.(*Config), set.MeterProvider.Meter(scopeName))
	if err != nil {
		return nil, err
	}
	return processorhelper.NewLogs(ctx, set, cfg, next, f.processLogs,
		processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: true}))
}
