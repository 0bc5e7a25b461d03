package featureflattener

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/pieces"
	"github.com/otelcol-modeldata/otelcol-modeldata/processor/featureflattener/internal/metadata"
)

// NewFactory returns the featureflattener processor factory (logs only).
func NewFactory() processor.Factory {
	return processor.NewFactory(metadata.Type,
		func() component.Config { return createDefaultConfig() },
		processor.WithLogs(createLogs, metadata.LogsStability))
}

func createLogs(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Logs) (processor.Logs, error) {
	tel, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	f, err := newFlattener(cfg.(*Config), tel.FeatureflattenerDroppedValues)
	if err != nil {
		return nil, err
	}
	f.logger = set.Logger
	// A large request from another receiver (OTLP) goes on in pieces,
	// as the modeldata receiver's do.
	return processorhelper.NewLogs(ctx, set, cfg, pieces.Splitter{Next: next}, f.processLogs,
		processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: true}))
}
