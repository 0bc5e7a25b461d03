package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"sigs.k8s.io/yaml"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// The three-tier layout of docs/aks.md ("One writer per blob"): a node agent
// keys each row by its blob and produces to Kafka; gateways in one consumer
// group write the blobs. The agent and gateway configs below have the
// processors and Kafka settings of deploy/kubernetes/kafka-{agent,writer}.yaml,
// with local endpoints, Event Hubs' SASL PLAIN login, and no TLS.

const (
	kafkaTopic = "modeldata"
	// Event Hubs' Kafka endpoint takes the user "$ConnectionString" and the
	// namespace's connection string as the password.
	eventHubsConnectionString = "Endpoint=sb://mynamespace.servicebus.windows.net/;SharedAccessKeyName=send-listen;SharedAccessKey=c2VjcmV0"
	kafkaAuthYAML             = `
    auth:
      sasl:
        mechanism: PLAIN
        username: $$ConnectionString
        password: "` + eventHubsConnectionString + `"`
)

// kafkaAgentConfig is the node agent: OTLP in, the blob key lifted into the
// resource, Kafka out partitioned by the resource (so by the blob key).
func kafkaAgentConfig(healthAddr, otlpAddr, broker string) string {
	return fmt.Sprintf(`
extensions:
  health_check:
    endpoint: %s
receivers:
  otlp:
    protocols:
      http:
        endpoint: %s
processors:
  featureflattener: {}
  transform/blob_key:
    error_mode: propagate
    log_statements:
      - context: log
        statements:
          - set(attributes["modeldata.blob_key"], Concat([attributes["modeldata.model.name"], attributes["modeldata.model.version"], attributes["modeldata.designation"]], "/")) where attributes["modeldata.model.name"] != nil
  groupbyattrs/blob_key:
    keys: [modeldata.blob_key]
  transform/resource_key:
    error_mode: propagate
    log_statements:
      - context: resource
        statements:
          - keep_keys(attributes, ["modeldata.blob_key", "modeldata.subscription_id", "modeldata.resource_group", "modeldata.workspace", "modeldata.webservice", "modeldata.endpoint", "modeldata.deployment"])
exporters:
  kafka:
    brokers: [%s]
    logs:
      topic: %s
      encoding: otlp_proto
    partition_logs_by_resource_attributes: true
    producer:
      required_acks: -1%s
    sending_queue:
      batch:
        flush_timeout: 500ms
        sizer: bytes
        min_size: 900000
        max_size: 900000
service:
  extensions: [health_check]
  pipelines:
    logs:
      receivers: [otlp]
      processors: [featureflattener, transform/blob_key, groupbyattrs/blob_key, transform/resource_key]
      exporters: [kafka]
  telemetry:
    metrics:
      level: none
`, healthAddr, otlpAddr, broker, kafkaTopic, kafkaAuthYAML)
}

// kafkaGatewayConfig consumes the topic in one consumer group and writes with
// modeldatablob. With no sending queue the export runs inside the consume, an
// offset is marked only after its rows landed, and the marks are committed
// right after each fetch's rows landed: Kafka is the queue.
func kafkaGatewayConfig(healthAddr, broker, dataDir string) string {
	return kafkaWriterConfig(healthAddr, broker, dataDir, "enable: false")
}

// kafkaWriterConfig is kafkaGatewayConfig with another autocommit setting.
func kafkaWriterConfig(healthAddr, broker, dataDir, autocommit string) string {
	return localPipeline{healthAddr: healthAddr, dataDir: dataDir, queue: "enabled: false",
		receiver: component{"kafka", fmt.Sprintf(`
brokers: [%s]
group_id: otelcol-modeldata-gateway
initial_offset: earliest
logs:
  topics: [%s]
  encoding: otlp_proto
message_marking:
  after: true
  on_error: false
autocommit:
  %s
error_backoff:
  enabled: true%s`, broker, kafkaTopic, autocommit, strings.ReplaceAll(kafkaAuthYAML, "\n    ", "\n"))}}.config()
}

// startKafkaBroker starts an in-process Kafka broker (kfake) with the topic in
// that many partitions and Event Hubs' login, until the test ends.
func startKafkaBroker(t *testing.T, partitions int32) string {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, kafkaTopic),
		kfake.EnableSASL(), kfake.Superuser("PLAIN", "$ConnectionString", eventHubsConnectionString))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	return cluster.ListenAddrs()[0]
}

// TestKafkaGatewayOneWriterPerBlob sends rows of several models through an
// agent, an in-process Kafka broker (kfake) and two gateways, stops and restarts
// one gateway while rows flow (its partitions move to the other and back), and
// checks every row landed exactly once, each file with one header.
func TestKafkaGatewayOneWriterPerBlob(t *testing.T) {
	testutil.CollectorBinary(t)
	broker := startKafkaBroker(t, 8)

	dataDir := t.TempDir()
	addr := func() string { return fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t)) }
	gwHealth := []string{addr(), addr()}
	gateways := []*testutil.Collector{
		testutil.StartCollector(t, kafkaGatewayConfig(gwHealth[0], broker, dataDir), gwHealth[0]),
		testutil.StartCollector(t, kafkaGatewayConfig(gwHealth[1], broker, dataDir), gwHealth[1]),
	}
	otlpAddr, agentHealth := addr(), addr()
	testutil.StartCollector(t, kafkaAgentConfig(agentHealth, otlpAddr, broker), otlpAddr, agentHealth)

	models := []string{"churn", "fraud", "price", "rank"}
	designations := []string{"inputs", "predictions"}
	const batches, perBatch = 40, 25
	day := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	want := map[string]string{} // correlation id -> file path it must land in
	var got map[string][][]string
	landed := func() int {
		got = testutil.ReadCSVTree(t, dataDir)
		n := 0
		for _, recs := range got {
			n += max(len(recs)-1, 0)
		}
		return n
	}
	for b := 0; b < batches; b++ {
		switch b {
		case batches / 4:
			// Both gateways have been writing; a graceful stop commits what it
			// marked and leaves the group, the other takes its partitions.
			if !testutil.Poll(30*time.Second, func() bool { return landed() >= len(want) }) {
				t.Fatalf("%d of %d rows landed before the stop", landed(), len(want))
			}
			gateways[1].Stop()
		case batches / 2:
			gateways[1].Restart(gwHealth[1])
		}
		var rows []contractRow
		for i := 0; i < perBatch; i++ {
			n := b*perBatch + i
			model, designation := models[n%len(models)], designations[(n/len(models))%len(designations)]
			id := fmt.Sprintf("c%05d", n)
			rows = append(rows, contractRow{model: model, version: "3", designation: designation, correlationID: id,
				requestID: "r1", ts: day, features: [][2]any{{"x", int64(n)}}})
			want[id] = fmt.Sprintf("modeldata/%s/svc-%d/%s/3/%s/2026/11/29/data.csv", localWorkspace, b%2, model, designation)
		}
		postOTLPLogs(t, otlpAddr, contractLogs(fmt.Sprintf("svc-%d", b%2), rows))
	}

	if !testutil.Poll(60*time.Second, func() bool { return landed() >= len(want) }) {
		t.Fatalf("%d of %d rows landed", landed(), len(want))
	}
	// Stop everything so a late duplicate would be on disk before the count.
	for _, g := range gateways {
		g.Stop()
	}
	landed()

	seen := countLanded(t, got, want)
	if lost, doubled := lostAndDoubled(want, seen); lost != 0 || doubled != 0 || len(seen) != len(want) {
		t.Fatalf("%d rows sent, %d distinct landed: %d lost, %d doubled", len(want), len(seen), lost, doubled)
	}
	if len(got) != len(models)*len(designations)*2 {
		t.Errorf("%d files, want %d: %v", len(got), len(models)*len(designations)*2, strings.Join(keys(got), "\n"))
	}
}

// TestKafkaWriterKill9: the one writer of a blob is killed (SIGKILL) while
// rows flow and started again: no row is lost. What it landed after its last
// offset commit is consumed again and lands twice. The writers commit right
// after each fetch's rows landed (autocommit off, as deploy/kubernetes/kafka-writer.yaml),
// so a kill doubles at most the messages of the fetch it interrupts; with the
// receiver's default autocommit every 1 s, up to a second of them. The test
// reports the rows doubled with each.
func TestKafkaWriterKill9(t *testing.T) {
	testutil.CollectorBinary(t)
	for _, tc := range []struct{ name, autocommit string }{
		{"commit after each fetch", "enable: false"},
		{"autocommit every 1s", "enable: true\n  interval: 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			broker := startKafkaBroker(t, 1)
			dataDir := t.TempDir()
			addr := func() string { return fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t)) }
			writerHealth, otlpAddr, agentHealth := addr(), addr(), addr()
			writer := testutil.StartCollector(t, kafkaWriterConfig(writerHealth, broker, dataDir, tc.autocommit), writerHealth)
			testutil.StartCollector(t, kafkaAgentConfig(agentHealth, otlpAddr, broker), otlpAddr, agentHealth)

			const batches, perBatch = 120, 25 // 25 rows every 20 ms: 1,250 rows/s
			day := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
			path := "modeldata/1a2b3c4d-0000-0000-0000-000000000000/myresourcegrp/myworkspace/svc/churn/3/inputs/2026/11/29/data.csv"
			want := map[string]string{}
			landed := func() int { return len(testutil.ReadCSVTree(t, dataDir)[path]) - 1 }
			next := time.Now()
			for b := 0; b < batches; b++ {
				if b == batches/2 {
					if !testutil.Poll(30*time.Second, func() bool { return landed() > 0 }) {
						t.Fatal("no row landed before the kill")
					}
					writer.Kill()
					writer.Restart(writerHealth)
				}
				var rows []contractRow
				for i := 0; i < perBatch; i++ {
					id := fmt.Sprintf("c%05d", b*perBatch+i)
					rows = append(rows, contractRow{model: "churn", version: "3", designation: "inputs", correlationID: id,
						requestID: "r1", ts: day, features: [][2]any{{"x", int64(i)}}})
					want[id] = path
				}
				postOTLPLogs(t, otlpAddr, contractLogs("svc", rows))
				next = next.Add(20 * time.Millisecond)
				time.Sleep(time.Until(next))
			}
			if !testutil.Poll(60*time.Second, func() bool { return landed() >= len(want) }) {
				t.Fatalf("%d of %d rows landed", landed(), len(want))
			}
			writer.Stop() // a late duplicate is on disk before the count
			seen := countLanded(t, testutil.ReadCSVTree(t, dataDir), want)
			lost, doubled := lostAndDoubled(want, seen)
			t.Logf("KAFKA-WRITER-KILL9 %s: %d rows sent, %d lost, %d landed twice", tc.name, len(want), lost, doubled)
			if lost != 0 {
				t.Fatalf("%d rows lost", lost)
			}
		})
	}
}

// countLanded counts each correlation id's rows in the files, checking each
// file has one header, first, and each row is in the file want names.
func countLanded(t *testing.T, files map[string][][]string, want map[string]string) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for path, recs := range files {
		if len(recs) == 0 || recs[0][0] != "x" {
			t.Fatalf("%s: no header first: %v", path, recs)
		}
		idCol := -1
		for i, h := range recs[0] {
			if h == "$aml_dc_correlation_id" {
				idCol = i
			}
		}
		for _, rec := range recs[1:] {
			if rec[0] == "x" {
				t.Errorf("%s: a second header", path)
				continue
			}
			id := rec[idCol]
			seen[id]++
			if want[id] != path {
				t.Errorf("row %s in %s, want %s", id, path, want[id])
			}
		}
	}
	return seen
}

// lostAndDoubled counts the rows of want found no time, and the extra copies
// of those found more than once.
func lostAndDoubled(want map[string]string, seen map[string]int) (lost, doubled int) {
	for id := range want {
		switch n := seen[id]; {
		case n == 0:
			lost++
		case n > 1:
			doubled += n - 1
		}
	}
	return lost, doubled
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestKafkaManifestsValidate runs `validate` on the collector configs of
// deploy/kubernetes/kafka-{agent,writer}.yaml with the pods' env, and checks
// the Helm values carry the same configs.
func TestKafkaManifestsValidate(t *testing.T) {
	bin := testutil.CollectorBinary(t)
	root := testutil.RepoRoot(t)
	for _, tier := range []string{"agent", "writer"} {
		t.Run(tier, func(t *testing.T) {
			var manifestCfg string
			manifest := testutil.ReadFile(t, filepath.Join(root, "deploy", "kubernetes", "kafka-"+tier+".yaml"))
			for _, doc := range strings.Split(string(manifest), "\n---\n") {
				var cm struct {
					Kind string            `json:"kind"`
					Data map[string]string `json:"data"`
				}
				if err := yaml.Unmarshal([]byte(doc), &cm); err != nil {
					t.Fatal(err)
				}
				if cm.Kind == "ConfigMap" {
					manifestCfg = cm.Data["config.yaml"]
				}
			}
			var values struct {
				Config map[string]any `json:"config"`
			}
			if err := yaml.Unmarshal(testutil.ReadFile(t, filepath.Join(root, "deploy", "helm", "values-kafka-"+tier+".yaml")), &values); err != nil {
				t.Fatal(err)
			}
			var want map[string]any
			if err := yaml.Unmarshal([]byte(manifestCfg), &want); err != nil {
				t.Fatal(err)
			}
			// The values' nulls remove the chart's defaults; the rest is the manifest's config.
			if got := withoutNulls(values.Config); !reflect.DeepEqual(got, want) {
				t.Errorf("values-kafka-%s.yaml config differs from kafka-%s.yaml", tier, tier)
			}

			path := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(path, []byte(manifestCfg), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, "validate", "--config", path)
			cmd.Env = append(os.Environ(), "MY_POD_IP=10.0.0.4", "MEMORY_LIMITER_LIMIT_MIB=400", "MEMORY_LIMITER_SPIKE_MIB=100",
				"KAFKA_BROKERS=mynamespace.servicebus.windows.net:9093", "KAFKA_TOPIC=modeldata",
				"EVENTHUBS_CONNECTION_STRING=Endpoint=sb://mynamespace.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=s",
				"AZURE_STORAGE_ACCOUNT=mystorageaccount", "MODELDATA_SUBSCRIPTION_ID=00000000-0000-0000-0000-000000000000",
				"MODELDATA_RESOURCE_GROUP=rg", "MODELDATA_WORKSPACE=ws", "MODELDATA_WEBSERVICE=svc",
				"AZURE_CLIENT_ID=00000000-0000-0000-0000-000000000000", "AZURE_TENANT_ID=00000000-0000-0000-0000-000000000000",
				"AZURE_FEDERATED_TOKEN_FILE=/var/run/secrets/azure/tokens/azure-identity-token")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("validate: %v\n%s", err, out)
			}
		})
	}
}

func withoutNulls(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		switch v := v.(type) {
		case nil:
		case map[string]any:
			if sub := withoutNulls(v); len(sub) > 0 || len(v) == 0 { // a map of only nulls is left out whole
				out[k] = sub
			}
		default:
			out[k] = v
		}
	}
	return out
}
