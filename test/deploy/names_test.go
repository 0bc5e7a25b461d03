package deploy

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// docFacts are the names docs/aks.md tells a user to type, which the
// manifests and the chart's output must match.
type docFacts struct {
	subjectNamespace, subjectServiceAccount string            // az identity federated-credential create --subject
	secretName, secretKey                   string            // kubectl create secret generic: the App Insights one (the first)
	secrets                                 map[string]string // every secret created, by name: its key
	helmRelease, helmNamespace              string            // helm install
	gatewayAddresses                        []gatewayAddress
}

// gatewayAddress is a <service>.<namespace>.svc.cluster.local:<port> written in a file.
type gatewayAddress struct {
	file, service, namespace string
	port                     int32
}

// filesNamingTheGateway are the files that tell scoring pods the gateway's address.
var filesNamingTheGateway = []string{"docs/aks.md", "docs/operate.md", "docs/migrating.md", "README.md",
	"deploy/kubernetes/gateway.yaml", "deploy/kubernetes/scoring-example.yaml", "deploy/helm/values-gateway.yaml",
	"receiver/modeldatareceiver/README.md", "clients/python/README.md"}

func readDocFacts(t *testing.T) docFacts {
	t.Helper()
	root := testutil.RepoRoot(t)
	aks := string(testutil.ReadFile(t, filepath.Join(root, "docs", "aks.md")))
	var f docFacts
	must := func(what string, re *regexp.Regexp) []string {
		m := re.FindStringSubmatch(aks)
		if m == nil {
			t.Fatalf("docs/aks.md: no %s (%s)", what, re)
		}
		return m
	}
	m := must("federated credential subject", regexp.MustCompile(`--subject system:serviceaccount:([a-z0-9-]+):([a-z0-9-]+)`))
	f.subjectNamespace, f.subjectServiceAccount = m[1], m[2]
	secretRE := regexp.MustCompile(`create secret generic ([a-z0-9-]+)\s+(?:\\\s*)?--from-literal=([A-Za-z0-9._-]+)=`)
	m = must("App Insights secret", secretRE)
	f.secretName, f.secretKey = m[1], m[2]
	f.secrets = map[string]string{}
	for _, m := range secretRE.FindAllStringSubmatch(aks, -1) {
		f.secrets[m[1]] = m[2]
	}
	m = must("helm install", regexp.MustCompile(`helm install ([a-z0-9-]+) open-telemetry/opentelemetry-collector -n ([a-z0-9-]+)`))
	f.helmRelease, f.helmNamespace = m[1], m[2]
	addrRE := regexp.MustCompile(`([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local:(\d+)`)
	for _, file := range filesNamingTheGateway {
		text := string(testutil.ReadFile(t, filepath.Join(root, file)))
		for _, m := range addrRE.FindAllStringSubmatch(text, -1) {
			port, _ := strconv.Atoi(m[3])
			f.gatewayAddresses = append(f.gatewayAddresses, gatewayAddress{file: file, service: m[1], namespace: m[2], port: int32(port)})
		}
	}
	if len(f.gatewayAddresses) == 0 {
		t.Fatal("no file names the gateway's address")
	}
	return f
}

// checkServiceAccount: the ServiceAccount is the federated credential's subject.
func checkServiceAccount(t *testing.T, what string, sa *corev1.ServiceAccount, docs docFacts) {
	t.Helper()
	if sa.Name != docs.subjectServiceAccount || sa.Namespace != docs.subjectNamespace {
		t.Errorf("%s: ServiceAccount %s/%s, but docs/aks.md federates system:serviceaccount:%s:%s (workload identity would be refused)",
			what, sa.Namespace, sa.Name, docs.subjectNamespace, docs.subjectServiceAccount)
	}
	if id := sa.Annotations[wiClientIDAnnotation]; !uuidRE.MatchString(id) {
		t.Errorf("%s: ServiceAccount annotation %s = %q is not a client id", what, wiClientIDAnnotation, id)
	}
}

// checkSecretRefs: every secret the container reads is one docs/aks.md
// creates, under its key; the App Insights one is read when the config
// exports to App Insights, and optional (the docs call App Insights optional).
func checkSecretRefs(t *testing.T, what string, env []corev1.EnvVar, cfg map[string]any, docs docFacts) {
	t.Helper()
	n := 0
	for _, e := range env {
		if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			continue
		}
		ref := e.ValueFrom.SecretKeyRef
		if key, ok := docs.secrets[ref.Name]; !ok || ref.Key != key {
			t.Errorf("%s: env %s reads secret %s key %s; docs/aks.md creates %v (name: key)", what, e.Name, ref.Name, ref.Key, docs.secrets)
		}
		if ref.Name != docs.secretName {
			continue
		}
		n++
		if ref.Optional == nil || !*ref.Optional {
			t.Errorf("%s: env %s: secret %s is not optional, though the docs make it optional", what, e.Name, ref.Name)
		}
	}
	if n == 0 && lookup(cfg, "exporters", "appinsights") != nil {
		t.Errorf("%s: no env reads the App Insights secret", what)
	}
}

// checkGatewayAddresses: every address of the gateway written in the docs and
// examples is this Service, on a port it serves.
func checkGatewayAddresses(t *testing.T, what string, svc *corev1.Service, docs docFacts) {
	t.Helper()
	ports := map[int32]bool{}
	for _, p := range svc.Spec.Ports {
		ports[p.Port] = true
	}
	for _, a := range docs.gatewayAddresses {
		if a.service != svc.Name || a.namespace != svc.Namespace {
			t.Errorf("%s: %s sends to %s.%s.svc.cluster.local, but the Service is %s/%s", what, a.file, a.service, a.namespace, svc.Namespace, svc.Name)
		}
		if !ports[a.port] {
			t.Errorf("%s: %s sends to port %d, which Service %s does not serve", what, a.file, a.port, svc.Name)
		}
	}
}

// endpointPort splits host:port of a collector endpoint.
func endpointPort(t *testing.T, what string, endpoint any) (string, int32) {
	t.Helper()
	s, _ := endpoint.(string)
	i := strings.LastIndex(s, ":")
	if i < 0 {
		t.Errorf("%s: endpoint %q has no port", what, s)
		return "", -1
	}
	host, port := s[:i], s[i+1:]
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Errorf("%s: endpoint %q: port %v", what, s, err)
	}
	return host, int32(n)
}

// receiverEndpoints are the addresses scoring pods send to, by what they serve.
var receiverEndpoints = map[string][]string{
	"collect API":     {"receivers", "modeldata", "endpoint"},
	"Azure ML v2 SDK": {"receivers", "modeldata", "azureml_v2", "endpoint"},
	"OTLP gRPC":       {"receivers", "otlp", "protocols", "grpc", "endpoint"},
	"OTLP HTTP":       {"receivers", "otlp", "protocols", "http", "endpoint"},
}

// checkListeners: each port the config listens on is a container port (and a
// host port for the DaemonSet); health_check and the metrics endpoint listen
// on every interface, so kubectl port-forward reaches them; probes and the
// Prometheus annotations name their ports.
func checkListeners(t *testing.T, what string, cfg map[string]any, c corev1.Container, annotations map[string]string, l layout) {
	t.Helper()
	byPort := map[int32]corev1.ContainerPort{}
	for _, p := range c.Ports {
		byPort[p.ContainerPort] = p
	}
	for role, path := range receiverEndpoints {
		if !l.scoring {
			if lookup(cfg, path...) != nil {
				t.Errorf("%s: listens for %s, though scoring pods do not send to it", what, role)
			}
			continue
		}
		_, port := endpointPort(t, what+" "+role, lookup(cfg, path...))
		p, ok := byPort[port]
		switch {
		case !ok:
			t.Errorf("%s: %s port %d is not a container port", what, role, port)
		case l.hostPorts && p.HostPort != port:
			t.Errorf("%s: %s port %d is not exposed on the node (hostPort)", what, role, port)
		}
	}
	host, health := endpointPort(t, what+" health_check", lookup(cfg, "extensions", "health_check", "endpoint"))
	if host != "0.0.0.0" {
		t.Errorf("%s: health_check listens on %q: kubectl port-forward (localhost in the pod) cannot reach it; use 0.0.0.0", what, host)
	}
	for name, probe := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if probe == nil || probe.HTTPGet == nil || portNumber(c, probe.HTTPGet.Port) != health {
			t.Errorf("%s: %s probe is not on health_check's port %d", what, name, health)
		}
	}
	readers, _ := lookup(cfg, "service", "telemetry", "metrics", "readers").([]any)
	if len(readers) != 1 {
		t.Fatalf("%s: want one metrics reader (the Prometheus pull endpoint), got %d", what, len(readers))
	}
	prom, _ := lookup(readers[0], "pull", "exporter", "prometheus").(map[string]any)
	metricsPort := int32(-1)
	switch p := prom["port"].(type) {
	case float64:
		metricsPort = int32(p)
	case int:
		metricsPort = int32(p)
	}
	if prom["host"] != "0.0.0.0" {
		t.Errorf("%s: the metrics endpoint listens on %v; use 0.0.0.0 so port-forward reaches it", what, prom["host"])
	}
	if _, ok := byPort[metricsPort]; !ok {
		t.Errorf("%s: metrics port %d is not a container port", what, metricsPort)
	}
	if annotations["prometheus.io/scrape"] != "true" || annotations["prometheus.io/port"] != strconv.Itoa(int(metricsPort)) {
		t.Errorf("%s: pod annotations %v do not point Prometheus at port %d", what, annotations, metricsPort)
	}
}

// podSpec is the pod template of a manifest's collector workload.
func podSpec(t *testing.T, m manifest) *corev1.PodSpec {
	t.Helper()
	if ds := find[*appsv1.DaemonSet](m); len(ds) == 1 {
		return &ds[0].Spec.Template.Spec
	}
	return &only[*appsv1.Deployment](t, m).Spec.Template.Spec
}

// layout is what a manifest's collectors do, so which checks apply to it.
type layout struct {
	identity  bool // writes blobs, with workload identity
	scoring   bool // scoring pods send to it (collect API, OTLP, Azure ML v2)
	hostPorts bool // on every node, at the node's address
	gateway   bool // its Service is the gateway address the docs name
}

// layouts are the manifests of deploy/kubernetes that run a collector.
var layouts = map[string]layout{
	"daemonset.yaml":    {identity: true, scoring: true, hostPorts: true},
	"gateway.yaml":      {identity: true, scoring: true, gateway: true},
	"kafka-agent.yaml":  {scoring: true, hostPorts: true},
	"kafka-writer.yaml": {identity: true},
}

// TestDocsNamesMatchManifests: the names docs/aks.md has the user type are
// the manifests' names.
func TestDocsNamesMatchManifests(t *testing.T) {
	docs := readDocFacts(t)
	if docs.helmNamespace != docs.subjectNamespace {
		t.Errorf("docs/aks.md installs the chart in %s but federates namespace %s", docs.helmNamespace, docs.subjectNamespace)
	}
	for name, l := range layouts {
		t.Run(name, func(t *testing.T) {
			m := loadManifest(t, manifestPath(t, name))
			if l.identity {
				checkServiceAccount(t, name, only[*corev1.ServiceAccount](t, m), docs)
			}
			var tmpl corev1.PodTemplateSpec
			if ds := find[*appsv1.DaemonSet](m); len(ds) == 1 {
				tmpl = ds[0].Spec.Template
			} else {
				tmpl = only[*appsv1.Deployment](t, m).Spec.Template
			}
			c := tmpl.Spec.Containers[0]
			cfg := collectorConfig(t, only[*corev1.ConfigMap](t, m).Data[configKey])
			checkSecretRefs(t, name, c.Env, cfg, docs)
			checkListeners(t, name, cfg, c, tmpl.Annotations, l)
			if svc := find[*corev1.Service](m); len(svc) == 1 && l.gateway {
				checkGatewayAddresses(t, name, svc[0], docs)
			}
		})
	}
}
