package harness

import (
	"fmt"
	"strings"
)

// Path parts the harness configurations give the exporter.
const (
	Subscription  = "00000000-0000-0000-0000-0000000000aa"
	ResourceGroup = "harness-rg"
	Workspace     = "harness-ws"
	Webservice    = "harness-svc"
)

// PathPrefix is the "<sub>/<rg>/<ws>/<svc>" part of every path the harness configs write.
const PathPrefix = Subscription + "/" + ResourceGroup + "/" + Workspace + "/" + Webservice

// CollectorConfig is an otelcol-modeldata configuration for the harness: the
// modeldata receiver and OTLP/HTTP into the modeldatablob exporter, all on 127.0.0.1.
type CollectorConfig struct {
	CollectAddr string // modeldata receiver endpoint, host:port
	V2Addr      string // the receiver's azureml_v2 route endpoint (empty: off)
	OTLPAddr    string // otlp http endpoint (empty: no otlp receiver)
	HealthAddr  string // health_check endpoint (empty: none)
	PprofAddr   string // pprof endpoint (empty: none)
	// Backend: LocalDir for the local backend, else ConnectionString for azblob.
	LocalDir         string
	ConnectionString string
	// QueueDir, when set, makes the sending queue persistent (file_storage
	// there) and keeps the receiver's idempotency keys there too.
	QueueDir           string
	FlushTimeout       string // sending_queue.batch.flush_timeout (default exporter's)
	MinBatch           int    // sending_queue.batch.min_size (0: exporter default)
	QueueSize          int    // sending_queue.queue_size (0: default)
	QueueConsumers     int    // sending_queue.num_consumers (0: default)
	BearerToken        string // when set, the receiver requires it (bearertokenauth)
	NeutralizeFormulas bool
	MaxElapsedRetry    string // retry_on_failure.max_elapsed_time (default exporter's: none, retry until storage is back)
	Timeout            string // exporter timeout per push (default exporter's)
	MetricsPort        int    // when set, the collector's own metrics (level basic) on 127.0.0.1:<port>/metrics
	Format             string // the exporter's format (empty: its default, csv)
	ParquetMaxAge      string // parquet.max_age (format parquet; empty: the exporter's default)
	InstanceID         string // mdc.instance_id (empty: the exporter's default, the host name)
	// FeatureFlattener puts the featureflattener (defaults, as examples/otel-config.yaml has it) in the pipeline.
	FeatureFlattener bool
	// SecondConsumer, when set, is a second consumer of the logs beside modeldatablob:
	// "modeldatastats" (the connector, its metrics to the debug exporter) or "debug".
	SecondConsumer string
}

// YAML renders the configuration.
func (c CollectorConfig) YAML() string {
	var b strings.Builder
	exts := c.writeExtensions(&b)
	receivers := c.writeReceivers(&b)
	var processors []string
	if c.FeatureFlattener {
		b.WriteString("processors:\n  featureflattener: {}\n")
		processors = append(processors, "featureflattener")
	}
	c.writeExporters(&b)
	if c.SecondConsumer == "modeldatastats" {
		b.WriteString("connectors:\n  modeldatastats: {}\n")
	}
	c.writeService(&b, exts, receivers, processors)
	return b.String()
}

// writeExtensions writes the extensions section, when there is one, and
// returns the extensions' names.
func (c CollectorConfig) writeExtensions(b *strings.Builder) []string {
	var section strings.Builder
	var exts []string
	if c.HealthAddr != "" {
		fmt.Fprintf(&section, "  health_check:\n    endpoint: %s\n", c.HealthAddr)
		exts = append(exts, "health_check")
	}
	if c.PprofAddr != "" {
		fmt.Fprintf(&section, "  pprof:\n    endpoint: %s\n", c.PprofAddr)
		exts = append(exts, "pprof")
	}
	if c.QueueDir != "" {
		fmt.Fprintf(&section, "  file_storage:\n    directory: %s\n    create_directory: true\n", c.QueueDir)
		exts = append(exts, "file_storage")
	}
	if c.BearerToken != "" {
		fmt.Fprintf(&section, "  bearertokenauth:\n    token: %q\n", c.BearerToken)
		exts = append(exts, "bearertokenauth")
	}
	if len(exts) > 0 {
		b.WriteString("extensions:\n")
		b.WriteString(section.String())
	}
	return exts
}

// writeReceivers writes the receivers section and returns their names.
func (c CollectorConfig) writeReceivers(b *strings.Builder) []string {
	receivers := []string{"modeldata"}
	fmt.Fprintf(b, "receivers:\n  modeldata:\n    endpoint: %s\n", c.CollectAddr)
	if c.BearerToken != "" {
		b.WriteString("    auth:\n      authenticator: bearertokenauth\n")
	}
	if c.QueueDir != "" {
		b.WriteString("    idempotency:\n      storage: file_storage\n")
	}
	if c.V2Addr != "" {
		fmt.Fprintf(b, "    azureml_v2:\n      endpoint: %s\n", c.V2Addr)
	}
	if c.OTLPAddr != "" {
		fmt.Fprintf(b, "  otlp:\n    protocols:\n      http:\n        endpoint: %s\n", c.OTLPAddr)
		if c.BearerToken != "" {
			b.WriteString("        auth:\n          authenticator: bearertokenauth\n")
		}
		receivers = append(receivers, "otlp")
	}
	return receivers
}

// writeExporters writes the exporters section: modeldatablob, and debug when
// a second consumer needs it.
func (c CollectorConfig) writeExporters(b *strings.Builder) {
	b.WriteString("exporters:\n  modeldatablob:\n")
	if c.LocalDir != "" {
		fmt.Fprintf(b, "    backend: local\n    local:\n      directory: %s\n", c.LocalDir)
	} else {
		fmt.Fprintf(b, "    backend: azblob\n    azblob:\n      connection_string: %q\n", c.ConnectionString)
	}
	fmt.Fprintf(b, "    subscription_id: %s\n    resource_group: %s\n    workspace: %s\n    webservice: %s\n",
		Subscription, ResourceGroup, Workspace, Webservice)
	if c.NeutralizeFormulas {
		b.WriteString("    neutralize_formulas: true\n")
	}
	if c.Format != "" {
		fmt.Fprintf(b, "    format: %s\n", c.Format)
	}
	if c.ParquetMaxAge != "" {
		fmt.Fprintf(b, "    parquet:\n      max_age: %s\n", c.ParquetMaxAge)
	}
	if c.InstanceID != "" {
		fmt.Fprintf(b, "    mdc:\n      instance_id: %s\n", c.InstanceID)
	}
	if c.Timeout != "" {
		fmt.Fprintf(b, "    timeout: %s\n", c.Timeout)
	}
	if c.MaxElapsedRetry != "" {
		fmt.Fprintf(b, "    retry_on_failure:\n      max_elapsed_time: %s\n", c.MaxElapsedRetry)
	}
	c.writeQueue(b)
	if c.SecondConsumer != "" {
		b.WriteString("  debug: {}\n")
	}
}

// writeQueue writes modeldatablob's sending_queue.
func (c CollectorConfig) writeQueue(b *strings.Builder) {
	b.WriteString("    sending_queue:\n")
	if c.QueueDir != "" {
		b.WriteString("      storage: file_storage\n")
	}
	if c.QueueSize > 0 {
		fmt.Fprintf(b, "      queue_size: %d\n", c.QueueSize)
	}
	if c.QueueConsumers > 0 {
		fmt.Fprintf(b, "      num_consumers: %d\n", c.QueueConsumers)
	}
	b.WriteString("      batch:\n")
	if c.FlushTimeout != "" {
		fmt.Fprintf(b, "        flush_timeout: %s\n", c.FlushTimeout)
	}
	if c.MinBatch > 0 {
		fmt.Fprintf(b, "        min_size: %d\n", c.MinBatch)
	}
}

// writeService writes the service section: the logs pipeline, the
// connector's metrics pipeline, and the collector's own telemetry.
func (c CollectorConfig) writeService(b *strings.Builder, exts, receivers, processors []string) {
	b.WriteString("service:\n")
	if len(exts) > 0 {
		fmt.Fprintf(b, "  extensions: [%s]\n", strings.Join(exts, ", "))
	}
	fmt.Fprintf(b, "  pipelines:\n    logs:\n      receivers: [%s]\n", strings.Join(receivers, ", "))
	if len(processors) > 0 {
		fmt.Fprintf(b, "      processors: [%s]\n", strings.Join(processors, ", "))
	}
	logsExporters := "modeldatablob"
	if c.SecondConsumer != "" {
		logsExporters += ", " + c.SecondConsumer
	}
	fmt.Fprintf(b, "      exporters: [%s]\n", logsExporters)
	if c.SecondConsumer == "modeldatastats" {
		b.WriteString("    metrics:\n      receivers: [modeldatastats]\n      exporters: [debug]\n")
	}
	b.WriteString(telemetryYAML(c.MetricsPort))
}

func telemetryYAML(metricsPort int) string {
	if metricsPort == 0 {
		return "  telemetry:\n    logs:\n      level: warn\n    metrics:\n      level: none\n"
	}
	return fmt.Sprintf(`  telemetry:
    logs:
      level: warn
    metrics:
      level: basic
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: %d
`, metricsPort)
}

// StockTransform is what a user of the stock collector would configure instead
// of featureflattener for SDK-shaped records: the transform processor's
// flatten() on the body, attribute moves to the contract names, a generated
// correlation id. (It cannot order the columns or drop media.)
const StockTransform = `  transform:
    error_mode: ignore
    log_statements:
      - context: log
        statements:
          - flatten(body) where IsMap(body)
          - set(attributes["modeldata.model.name"], attributes["model.name"]) where attributes["model.name"] != nil
          - set(attributes["modeldata.model.version"], attributes["model.version"]) where attributes["model.version"] != nil
          - set(attributes["modeldata.request_id"], attributes["request.id"]) where attributes["request.id"] != nil
          - set(attributes["modeldata.correlation_id"], UUID()) where attributes["modeldata.correlation_id"] == nil
          - delete_matching_keys(attributes, "^(model\\.name|model\\.version|request\\.id)$")
`

// StockConfig is the stock route's configuration: otlp (HTTP) -> batch -> file
// (OTLP JSON lines); with transform, the transform processor (StockTransform) before batch.
func StockConfig(otlpAddr, outFile, pprofAddr string, metricsPort int, transform bool) string {
	var b strings.Builder
	if pprofAddr != "" {
		fmt.Fprintf(&b, "extensions:\n  pprof:\n    endpoint: %s\n", pprofAddr)
	}
	fmt.Fprintf(&b, `receivers:
  otlp:
    protocols:
      http:
        endpoint: %s
processors:
  batch: {}
`, otlpAddr)
	processors := "[batch]"
	if transform {
		b.WriteString(StockTransform)
		processors = "[transform, batch]"
	}
	fmt.Fprintf(&b, `exporters:
  file:
    path: %s
    format: json
service:
`, outFile)
	if pprofAddr != "" {
		b.WriteString("  extensions: [pprof]\n")
	}
	fmt.Fprintf(&b, `  pipelines:
    logs:
      receivers: [otlp]
      processors: %s
      exporters: [file]
`, processors)
	b.WriteString(telemetryYAML(metricsPort))
	return b.String()
}
