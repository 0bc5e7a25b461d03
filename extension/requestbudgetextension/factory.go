package requestbudgetextension

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"

	"github.com/otelcol-modeldata/otelcol-modeldata/extension/requestbudgetextension/internal/metadata"
)

// NewFactory returns the request_budget extension factory.
func NewFactory() extension.Factory {
	return extension.NewFactory(metadata.Type,
		func() component.Config { return createDefaultConfig() },
		createExtension, metadata.ExtensionStability)
}

func createExtension(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return newRequestBudget(cfg.(*Config), set)
}
