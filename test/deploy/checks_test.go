package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

const (
	namespace       = "modeldata"
	healthPort      = 13133
	configKey       = "config.yaml"
	configMountPath = "/etc/otelcol-modeldata"
	// Workload identity: the annotation on the ServiceAccount and the label on the pod.
	wiClientIDAnnotation = "azure.workload.identity/client-id"
	wiUseLabel           = "azure.workload.identity/use"
)

// The ports the collector config listens on, and what they serve.
var collectorPorts = map[int32]string{4320: "collect API", 4317: "OTLP gRPC", 4318: "OTLP HTTP", healthPort: "health_check"}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func objectMeta(o any) metav1.ObjectMeta {
	v := reflect.ValueOf(o).Elem().FieldByName("ObjectMeta")
	return v.Interface().(metav1.ObjectMeta)
}

func checkMeta(t *testing.T, what string, meta metav1.ObjectMeta) {
	t.Helper()
	for _, msg := range validation.IsDNS1123Subdomain(meta.Name) {
		t.Errorf("%s: name %q: %s", what, meta.Name, msg)
	}
	checkLabels(t, what, meta.Labels)
	for k := range meta.Annotations {
		for _, msg := range validation.IsQualifiedName(k) {
			t.Errorf("%s: annotation %q: %s", what, k, msg)
		}
	}
}

func checkLabels(t *testing.T, what string, l map[string]string) {
	t.Helper()
	for k, v := range l {
		for _, msg := range validation.IsQualifiedName(k) {
			t.Errorf("%s: label key %q: %s", what, k, msg)
		}
		for _, msg := range validation.IsValidLabelValue(v) {
			t.Errorf("%s: label %q value %q: %s", what, k, v, msg)
		}
	}
}

func selects(t *testing.T, what string, sel *metav1.LabelSelector, podLabels map[string]string) {
	t.Helper()
	if sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0) {
		t.Errorf("%s: empty selector", what)
		return
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Errorf("%s: selector: %v", what, err)
		return
	}
	if !s.Matches(labels.Set(podLabels)) {
		t.Errorf("%s: selector %s does not match the pod labels %v", what, s, podLabels)
	}
}

// checkContainer checks resources, env names and, for the collector, its ports and probes.
func checkContainer(t *testing.T, what string, c corev1.Container, volumes map[string]corev1.Volume) {
	t.Helper()
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := c.Resources.Requests[r]
		lim, hasLim := c.Resources.Limits[r]
		if !hasReq || !hasLim {
			t.Errorf("%s: container %s needs a %s request and limit", what, c.Name, r)
			continue
		}
		if req.Cmp(lim) > 0 {
			t.Errorf("%s: container %s: %s request %s above limit %s", what, c.Name, r, req.String(), lim.String())
		}
	}
	for _, e := range c.Env {
		for _, msg := range validation.IsEnvVarName(e.Name) {
			t.Errorf("%s: env %q: %s", what, e.Name, msg)
		}
	}
	seen := map[string]bool{}
	for _, p := range c.Ports {
		for _, msg := range validation.IsValidPortName(p.Name) {
			t.Errorf("%s: port name %q: %s", what, p.Name, msg)
		}
		if seen[p.Name] {
			t.Errorf("%s: port name %q twice", what, p.Name)
		}
		seen[p.Name] = true
	}
	for _, m := range c.VolumeMounts {
		if _, ok := volumes[m.Name]; !ok {
			t.Errorf("%s: container %s mounts volume %q, which the pod does not declare", what, c.Name, m.Name)
		}
	}
}

// portNumber resolves a probe or Service port (name or number) against a container.
func portNumber(c corev1.Container, p intstr.IntOrString) int32 {
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	return -1
}

// collectorPod checks the pod of a collector workload and returns its collector container.
func collectorPod(t *testing.T, m manifest, what string, tmpl corev1.PodTemplateSpec) corev1.Container {
	t.Helper()
	spec := tmpl.Spec
	checkLabels(t, what+" pod", tmpl.Labels)
	if tmpl.Labels[wiUseLabel] != "true" {
		t.Errorf("%s: pod lacks the label %s: \"true\" (AKS workload identity)", what, wiUseLabel)
	}

	sa := only[*corev1.ServiceAccount](t, m)
	if spec.ServiceAccountName != sa.Name {
		t.Errorf("%s: serviceAccountName %q, the ServiceAccount is %q", what, spec.ServiceAccountName, sa.Name)
	}
	if id := sa.Annotations[wiClientIDAnnotation]; !uuidRE.MatchString(id) {
		t.Errorf("ServiceAccount: annotation %s = %q is not a client id (UUID)", wiClientIDAnnotation, id)
	}
	if spec.SecurityContext == nil || spec.SecurityContext.RunAsNonRoot == nil || !*spec.SecurityContext.RunAsNonRoot {
		t.Errorf("%s: the collector must run as non-root", what)
	}

	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
	}
	for _, c := range spec.InitContainers {
		checkContainer(t, what+" init", c, volumes)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%s: want one container, got %d", what, len(spec.Containers))
	}
	c := spec.Containers[0]
	checkContainer(t, what, c, volumes)

	// The config comes from the ConfigMap, under the key the args name.
	cm := only[*corev1.ConfigMap](t, m)
	if _, ok := cm.Data[configKey]; !ok {
		t.Fatalf("ConfigMap %s has no %s", cm.Name, configKey)
	}
	if want := []string{"--config", configMountPath + "/" + configKey}; !reflect.DeepEqual(c.Args, want) {
		t.Errorf("%s: args %q, want %q", what, c.Args, want)
	}
	configVolume := mountedVolume(t, what, c, volumes, configMountPath)
	if configVolume.ConfigMap == nil || configVolume.ConfigMap.Name != cm.Name {
		t.Errorf("%s: %s is not mounted from ConfigMap %s", what, configMountPath, cm.Name)
	} else {
		for _, item := range configVolume.ConfigMap.Items {
			if _, ok := cm.Data[item.Key]; !ok {
				t.Errorf("%s: the config volume names key %q, absent from the ConfigMap", what, item.Key)
			}
		}
	}

	// Probes hit health_check.
	for name, probe := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if probe == nil || probe.HTTPGet == nil {
			t.Errorf("%s: no HTTP %s probe", what, name)
			continue
		}
		if got := portNumber(c, probe.HTTPGet.Port); got != healthPort {
			t.Errorf("%s: %s probe on port %d, want health_check %d", what, name, got, healthPort)
		}
	}

	// Every port the config listens on is a container port, and the reverse.
	cfg := collectorConfig(t, cm.Data[configKey])
	declared := map[int32]bool{}
	for _, p := range c.Ports {
		declared[p.ContainerPort] = true
	}
	for port, role := range collectorPorts {
		if !declared[port] {
			t.Errorf("%s: %s port %d is not a container port", what, role, port)
		}
		if !strings.Contains(cm.Data[configKey], fmt.Sprintf(":%d", port)) {
			t.Errorf("ConfigMap: the config does not listen on %d (%s)", port, role)
		}
	}

	// The persistent queue directory lies on the queue volume, and the exporter uses it.
	dir, _ := lookup(cfg, "extensions", "file_storage", "directory").(string)
	if dir == "" {
		t.Fatalf("ConfigMap: no extensions::file_storage::directory")
	}
	if lookup(cfg, "exporters", "modeldatablob", "sending_queue", "storage") != "file_storage" {
		t.Errorf("ConfigMap: modeldatablob's sending_queue does not use file_storage")
	}
	queue := mountedVolume(t, what, c, volumes, dir)
	if queue.HostPath == nil && queue.EmptyDir == nil && queue.PersistentVolumeClaim == nil {
		t.Errorf("%s: the queue directory %s is not on a hostPath, emptyDir or PVC volume", what, dir)
	}
	return c
}

// mountedVolume returns the volume mounted at or above path in the container.
func mountedVolume(t *testing.T, what string, c corev1.Container, volumes map[string]corev1.Volume, path string) corev1.Volume {
	t.Helper()
	best := corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		if (path == m.MountPath || strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/")) &&
			len(m.MountPath) > len(best.MountPath) {
			best = m
		}
	}
	if best.Name == "" {
		t.Fatalf("%s: nothing is mounted at %s", what, path)
	}
	return volumes[best.Name]
}

// collectorConfig parses the collector YAML.
func collectorConfig(t *testing.T, text string) map[string]any {
	t.Helper()
	var cfg map[string]any
	if err := yaml.UnmarshalStrict([]byte(text), &cfg); err != nil {
		t.Fatalf("collector config: %v", err)
	}
	checkPipelines(t, cfg)
	return cfg
}

// checkPipelines checks that every component a pipeline names is defined, and
// every defined one is used: what `validate` checks too, here without the binary.
func checkPipelines(t *testing.T, cfg map[string]any) {
	t.Helper()
	used := map[string]bool{}
	pipelines, _ := lookup(cfg, "service", "pipelines").(map[string]any)
	if len(pipelines) == 0 {
		t.Fatal("collector config: no pipelines")
	}
	for name, p := range pipelines {
		pm, _ := p.(map[string]any)
		for _, kind := range []string{"receivers", "processors", "exporters"} {
			list, _ := pm[kind].([]any)
			if kind != "processors" && len(list) == 0 {
				t.Errorf("pipeline %s: no %s", name, kind)
			}
			for _, id := range list {
				key := kind + "/" + fmt.Sprint(id)
				used[key] = true
				_, ok := lookup(cfg, kind).(map[string]any)[fmt.Sprint(id)]
				connectors, _ := lookup(cfg, "connectors").(map[string]any)
				if _, connector := connectors[fmt.Sprint(id)]; connector && kind != "processors" {
					ok = true // a connector is the exporter of one pipeline and the receiver of another
				}
				if !ok {
					t.Errorf("pipeline %s uses %s %q, which is not defined", name, kind, id)
				}
			}
		}
	}
	for _, kind := range []string{"receivers", "processors", "exporters"} {
		defined, _ := lookup(cfg, kind).(map[string]any)
		for id := range defined {
			if !used[kind+"/"+id] {
				t.Errorf("%s %q is defined but no pipeline uses it", kind, id)
			}
		}
	}
	exts, _ := lookup(cfg, "service", "extensions").([]any)
	for _, id := range exts {
		if _, ok := lookup(cfg, "extensions").(map[string]any)[fmt.Sprint(id)]; !ok {
			t.Errorf("service uses extension %q, which is not defined", id)
		}
	}
}

func lookup(m any, path ...string) any {
	for _, p := range path {
		mm, ok := m.(map[string]any)
		if !ok {
			return nil
		}
		m = mm[p]
	}
	return m
}

// podEnv is the environment Kubernetes gives a container with this env
// list, and nothing else: literal values ($(VAR) expanded), field references
// as a node would resolve them, a secret marked optional left out (the case
// the docs call optional), a required one as a placeholder, and with
// workload identity the variables the AKS webhook injects.
func podEnv(t *testing.T, env []corev1.EnvVar, workloadIdentity bool) []string {
	t.Helper()
	fields := map[string]string{"status.podIP": "127.0.0.1", "status.hostIP": "127.0.0.1", "spec.nodeName": "aks-node-0",
		"metadata.namespace": namespace, "metadata.name": "otelcol-modeldata-0"}
	vars := map[string]string{}
	var out []string
	set := func(name, value string) {
		vars[name] = value
		out = append(out, name+"="+value)
	}
	for _, e := range env {
		switch {
		case e.ValueFrom == nil:
			set(e.Name, regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`).ReplaceAllStringFunc(e.Value, func(ref string) string {
				if v, ok := vars[ref[2:len(ref)-1]]; ok {
					return v
				}
				return ref // Kubernetes leaves an unknown reference as written
			}))
		case e.ValueFrom.FieldRef != nil:
			v, ok := fields[e.ValueFrom.FieldRef.FieldPath]
			if !ok {
				t.Errorf("env %s: field %s is not modelled", e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
			set(e.Name, v)
		case e.ValueFrom.SecretKeyRef != nil:
			if ref := e.ValueFrom.SecretKeyRef; ref.Optional == nil || !*ref.Optional {
				set(e.Name, "secret-"+ref.Key)
			}
		default:
			t.Errorf("env %s: this kind of valueFrom is not modelled", e.Name)
		}
	}
	if workloadIdentity {
		out = append(out, "AZURE_CLIENT_ID=00000000-0000-0000-0000-000000000000", "AZURE_TENANT_ID=00000000-0000-0000-0000-000000000000",
			"AZURE_FEDERATED_TOKEN_FILE=/var/run/secrets/azure/tokens/azure-identity-token",
			"AZURE_AUTHORITY_HOST=https://login.microsoftonline.com/")
	}
	return out
}

// validateWithBinary runs `otelcol-modeldata validate` on a collector config
// with exactly the given environment (PATH aside). Skipped without the binary.
func validateWithBinary(t *testing.T, configYAML string, env []string) {
	t.Helper()
	if out, err := runValidate(t, configYAML, env); err != nil {
		t.Errorf("otelcol-modeldata validate: %v\n%s", err, out)
	}
}

// runValidate returns validate's output and error; nothing when the binary is not there (outside CI).
func runValidate(t *testing.T, configYAML string, env []string) ([]byte, error) {
	t.Helper()
	if os.Getenv(testutil.BinaryEnv) == "" && os.Getenv("CI") == "" {
		t.Logf("%s not set: config checked structurally only", testutil.BinaryEnv)
		return nil, nil
	}
	bin := testutil.CollectorBinary(t)
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(configYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "validate", "--config", path)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	return cmd.CombinedOutput()
}

func envNames(env []corev1.EnvVar) []string {
	var names []string
	for _, e := range env {
		names = append(names, e.Name)
	}
	sort.Strings(names)
	return names
}

// envReferences lists the ${env:NAME} references of a config.
func envReferences(config string) []string {
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`\$\{env:([A-Za-z_][A-Za-z0-9_]*)`).FindAllStringSubmatch(config, -1) {
		seen[m[1]] = true
	}
	var names []string
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// checkEnvCoversConfig: every ${env:X} of the config is set on the container.
func checkEnvCoversConfig(t *testing.T, what, config string, env []corev1.EnvVar) {
	t.Helper()
	set := map[string]bool{}
	for _, n := range envNames(env) {
		set[n] = true
	}
	for _, n := range envReferences(config) {
		if !set[n] {
			t.Errorf("%s: the config reads ${env:%s}, which the container does not set", what, n)
		}
	}
}
