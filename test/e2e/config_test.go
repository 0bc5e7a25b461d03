// Package e2e runs the ocb-built otelcol-modeldata binary (built once by
// `make test`, path in OTELCOL_MODELDATA_BIN) against real inputs and checks
// the files it writes.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// localCSVConfig is a collector whose logs pipeline takes one receiver
// (receiverYAML: its settings, one per line, without indentation) to the blob
// exporter writing a local folder, flushing quickly so tests need not wait.
func localCSVConfig(healthAddr, dataDir, receiver, receiverYAML string) string {
	indented := "    " + strings.ReplaceAll(strings.TrimSpace(receiverYAML), "\n", "\n    ")
	return fmt.Sprintf(`
extensions:
  health_check:
    endpoint: %s
receivers:
  %s:
%s
exporters:
  modeldatablob:
    backend: local
    local:
      directory: %s
    subscription_id: 1A2B3C4D-0000-0000-0000-000000000000
    resource_group: MyResourceGrp
    workspace: MyWorkspace
    webservice: default-service
    sending_queue:
      batch:
        flush_timeout: 100ms
service:
  extensions: [health_check]
  pipelines:
    logs:
      receivers: [%s]
      exporters: [modeldatablob]
  telemetry:
    metrics:
      level: none
`, healthAddr, receiver, indented, dataDir, receiver)
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
