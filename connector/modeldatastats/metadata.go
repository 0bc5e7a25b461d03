package modeldatastats // import "github.com/otelcol-modeldata/otelcol-modeldata/connector/modeldatastats"

import "go.opentelemetry.io/collector/component"

var (
	componentType = component.MustNewType("modeldatastats")
	scopeName     = "github.com/otelcol-modeldata/otelcol-modeldata/connector/modeldatastats"
)

const logsToMetricsStability = component.StabilityLevelAlpha
