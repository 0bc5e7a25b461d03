package modeldatablobexporter

import "go.opentelemetry.io/collector/component"

// The component's identity, written by hand instead of by mdatagen.
var componentType = component.MustNewType("modeldatablob")

const (
	logsStability = component.StabilityLevelAlpha
	// scopeName names the meter of the exporter's own telemetry.
	scopeName = "github.com/otelcol-modeldata/otelcol-modeldata/exporter/modeldatablobexporter"
)
