// Package e2e runs the ocb-built otelcol-modeldata binary (built once by
// `make test`, path in OTELCOL_MODELDATA_BIN) against real inputs and checks
// the files it writes.
package e2e

import (
	"cmp"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// localWorkspace is the folder, below the container, of what localPipeline's
// exporter writes: its subscription, resource group and workspace, lowercased
// as the exporter writes path parts.
const localWorkspace = "1a2b3c4d-0000-0000-0000-000000000000/myresourcegrp/myworkspace"

// component is a receiver or processor of localPipeline: its id and its
// settings in YAML, without indentation (empty: none).
type component struct{ id, yaml string }

// localPipeline is a test collector: one receiver, then the processors in
// order, into the blob exporter writing a local folder (path parts
// localWorkspace, webservice default-service), with a health_check and the
// collector's own metrics off.
type localPipeline struct {
	healthAddr, dataDir string
	receiver            component
	processors          []component
	// queue is the exporter's sending_queue settings; the default flushes
	// every 100 ms, so tests need not wait.
	queue string
}

// config renders the pipeline as collector YAML.
func (p localPipeline) config() string {
	var b strings.Builder
	fmt.Fprintf(&b, "extensions:\n  health_check:\n    endpoint: %s\n", p.healthAddr)
	b.WriteString("receivers:\n")
	writeComponent(&b, p.receiver)
	var ids []string
	if len(p.processors) > 0 {
		b.WriteString("processors:\n")
		for _, c := range p.processors {
			writeComponent(&b, c)
			ids = append(ids, c.id)
		}
	}
	queue := cmp.Or(p.queue, "batch:\n  flush_timeout: 100ms")
	fmt.Fprintf(&b, `exporters:
  modeldatablob:
    backend: local
    local:
      directory: %s
    subscription_id: 1A2B3C4D-0000-0000-0000-000000000000
    resource_group: MyResourceGrp
    workspace: MyWorkspace
    webservice: default-service
    sending_queue:
%s
service:
  extensions: [health_check]
  pipelines:
    logs:
      receivers: [%s]
`, p.dataDir, indent(queue, "      "), p.receiver.id)
	if len(ids) > 0 {
		fmt.Fprintf(&b, "      processors: [%s]\n", strings.Join(ids, ", "))
	}
	b.WriteString("      exporters: [modeldatablob]\n  telemetry:\n    metrics:\n      level: none\n")
	return b.String()
}

// writeComponent writes c as an entry of a receivers: or processors: section.
func writeComponent(b *strings.Builder, c component) {
	if strings.TrimSpace(c.yaml) == "" {
		fmt.Fprintf(b, "  %s: {}\n", c.id)
		return
	}
	fmt.Fprintf(b, "  %s:\n%s\n", c.id, indent(c.yaml, "    "))
}

// indent prefixes every line of yaml, trimmed, with prefix.
func indent(yaml, prefix string) string {
	return prefix + strings.ReplaceAll(strings.TrimSpace(yaml), "\n", "\n"+prefix)
}

// localCSVConfig is a localPipeline of one receiver (receiverYAML: its
// settings) and no processor.
func localCSVConfig(healthAddr, dataDir, receiver, receiverYAML string) string {
	return localPipeline{healthAddr: healthAddr, dataDir: dataDir, receiver: component{receiver, receiverYAML}}.config()
}

// python3 is the system Python: required in CI, a skip elsewhere.
func python3(t *testing.T) string {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("python3 not found")
		}
		t.Skip("python3 not found")
	}
	return python
}
