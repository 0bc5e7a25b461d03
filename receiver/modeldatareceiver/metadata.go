package modeldatareceiver

import "go.opentelemetry.io/collector/component"

// The component's identity, written by hand instead of by mdatagen.
var componentType = component.MustNewType("modeldata")

const (
	logsStability = component.StabilityLevelAlpha
	// scopeName is the instrumentation scope of the records we emit.
	scopeName = "github.com/otelcol-modeldata/otelcol-modeldata/receiver/modeldatareceiver"
)
