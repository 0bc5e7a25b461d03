// Package modeldatareceiver receives model data rows over HTTP (the collect
// API, and the azureml-ai-monitoring sidecar protocol) and emits them as log
// records under the data contract (internal/contract).
package modeldatareceiver

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/otelcol-modeldata/otelcol-modeldata/receiver/modeldatareceiver/internal/metadata"
)

// NewFactory returns the factory of the modeldata receiver.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		metadata.Type,
		func() component.Config { return createDefaultConfig() },
		receiver.WithLogs(createLogs, metadata.LogsStability),
	)
}

func createLogs(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	return newReceiver(cfg.(*Config), set, next)
}
