package appinsightsexporter

import "go.opentelemetry.io/collector/component"

// The component's identity, written by hand instead of by mdatagen.
var componentType = component.MustNewType("appinsights")

const (
	tracesStability  = component.StabilityLevelAlpha
	metricsStability = component.StabilityLevelAlpha
	logsStability    = component.StabilityLevelAlpha
)
