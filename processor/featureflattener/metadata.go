package featureflattener // import "github.com/otelcol-modeldata/otelcol-modeldata/processor/featureflattener"

import "go.opentelemetry.io/collector/component"

// Hand-written in place of mdatagen output (see the repository's helper brief).
var (
	componentType = component.MustNewType("featureflattener")
	scopeName     = "github.com/otelcol-modeldata/otelcol-modeldata/processor/featureflattener"
)

const logsStability = component.StabilityLevelAlpha
