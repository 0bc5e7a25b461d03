package deploy

import (
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
)

func checkNamespaced(t *testing.T, m manifest) {
	t.Helper()
	ns := only[*corev1.Namespace](t, m)
	if ns.Name != namespace {
		t.Errorf("namespace %q, want %q", ns.Name, namespace)
	}
	for _, o := range m.objects {
		if _, isNS := o.(*corev1.Namespace); isNS {
			continue
		}
		if meta := objectMeta(o); meta.Namespace != namespace {
			t.Errorf("%T %s: namespace %q, want %q", o, meta.Name, meta.Namespace, namespace)
		}
	}
}

// TestDaemonSetMode: node-local agents that scoring pods reach on their node's IP.
func TestDaemonSetMode(t *testing.T) {
	m := loadManifest(t, manifestPath(t, "daemonset.yaml"))
	checkNamespaced(t, m)
	ds := only[*appsv1.DaemonSet](t, m)
	selects(t, "DaemonSet", ds.Spec.Selector, ds.Spec.Template.Labels)
	c := collectorPod(t, m, "DaemonSet", ds.Spec.Template)

	// Scoring pods send to status.hostIP: the receivers need host ports.
	hostPorts := map[int32]int32{}
	for _, p := range c.Ports {
		if p.HostPort != 0 {
			hostPorts[p.ContainerPort] = p.HostPort
		}
	}
	for _, port := range []int32{4320, 4317, 4318} {
		if hostPorts[port] != port {
			t.Errorf("DaemonSet: port %d is not exposed on the node (hostPort)", port)
		}
	}
	if ds.Spec.UpdateStrategy.RollingUpdate != nil && ds.Spec.UpdateStrategy.RollingUpdate.MaxSurge != nil &&
		ds.Spec.UpdateStrategy.RollingUpdate.MaxSurge.IntValue() != 0 {
		t.Error("DaemonSet: maxSurge cannot be used with hostPorts")
	}

	// The queue is on the node's disk, so it outlives the pod.
	volumes := map[string]corev1.Volume{}
	for _, v := range ds.Spec.Template.Spec.Volumes {
		volumes[v.Name] = v
	}
	cm := only[*corev1.ConfigMap](t, m)
	cfg := collectorConfig(t, cm.Data[configKey])
	dir := lookup(cfg, "extensions", "file_storage", "directory").(string)
	if v := mountedVolume(t, "DaemonSet", c, volumes, dir); v.HostPath == nil {
		t.Errorf("DaemonSet: the queue %s is not on a hostPath volume", dir)
	}
	checkEnvCoversConfig(t, "DaemonSet", cm.Data[configKey], c.Env)
	validateWithBinary(t, cm.Data[configKey], podEnv(t, c.Env, true))
}

// TestGatewayMode: a Deployment behind a Service, scaled by an HPA.
func TestGatewayMode(t *testing.T) {
	m := loadManifest(t, manifestPath(t, "gateway.yaml"))
	checkNamespaced(t, m)
	dep := only[*appsv1.Deployment](t, m)
	podLabels := dep.Spec.Template.Labels
	selects(t, "Deployment", dep.Spec.Selector, podLabels)
	c := collectorPod(t, m, "Deployment", dep.Spec.Template)

	svc := only[*corev1.Service](t, m)
	if len(svc.Spec.Selector) == 0 {
		t.Fatal("Service: no selector")
	}
	for k, v := range svc.Spec.Selector {
		if podLabels[k] != v {
			t.Errorf("Service: selector %s=%s does not match the pods", k, v)
		}
	}
	served := map[int32]bool{}
	for _, p := range svc.Spec.Ports {
		target := portNumber(c, p.TargetPort)
		if target < 0 {
			t.Errorf("Service port %s: targetPort %s is not a container port", p.Name, p.TargetPort.String())
		}
		served[target] = true
	}
	for _, port := range []int32{4320, 4317, 4318} {
		if !served[port] {
			t.Errorf("Service: does not serve %s (%d)", collectorPorts[port], port)
		}
	}

	hpa := only[*autoscalingv2.HorizontalPodAutoscaler](t, m)
	ref := hpa.Spec.ScaleTargetRef
	if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != dep.Name {
		t.Errorf("HPA targets %s %s %s, not the Deployment %s", ref.APIVersion, ref.Kind, ref.Name, dep.Name)
	}
	if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 2 || hpa.Spec.MaxReplicas < *hpa.Spec.MinReplicas {
		t.Errorf("HPA: replicas min %v max %d", hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
	}
	if dep.Spec.Replicas != nil {
		t.Error("Deployment: replicas is set; the HPA owns it (kubectl apply would reset the scale)")
	}
	for _, metric := range hpa.Spec.Metrics {
		if metric.Type == autoscalingv2.ResourceMetricSourceType && metric.Resource.Target.Type == autoscalingv2.UtilizationMetricType {
			if _, ok := c.Resources.Requests[metric.Resource.Name]; !ok {
				t.Errorf("HPA scales on %s utilization but the container requests no %s", metric.Resource.Name, metric.Resource.Name)
			}
		}
	}

	pdb := only[*policyv1.PodDisruptionBudget](t, m)
	selects(t, "PodDisruptionBudget", pdb.Spec.Selector, podLabels)

	cm := only[*corev1.ConfigMap](t, m)
	checkEnvCoversConfig(t, "Deployment", cm.Data[configKey], c.Env)
	validateWithBinary(t, cm.Data[configKey], podEnv(t, c.Env, true))
}

// TestModesShareOneConfig: the DaemonSet and the gateway run the same collector config.
func TestModesShareOneConfig(t *testing.T) {
	ds := only[*corev1.ConfigMap](t, loadManifest(t, manifestPath(t, "daemonset.yaml")))
	gw := only[*corev1.ConfigMap](t, loadManifest(t, manifestPath(t, "gateway.yaml")))
	if a, b := yamlOnly(ds.Data[configKey]), yamlOnly(gw.Data[configKey]); a != b {
		t.Errorf("the two modes' configs differ:\n%s\n---\n%s", a, b)
	}
}

// yamlOnly drops comments and blank lines.
func yamlOnly(s string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if i := strings.Index(line, " #"); i >= 0 {
			line = line[:i]
		}
		if strings.TrimSpace(line) != "" && !strings.HasPrefix(strings.TrimSpace(line), "#") {
			out = append(out, strings.TrimRight(line, " "))
		}
	}
	return strings.Join(out, "\n")
}

// TestScoringExample: the scoring pod points the Python client and OTel SDKs at its node's collector.
func TestScoringExample(t *testing.T) {
	m := loadManifest(t, manifestPath(t, "scoring-example.yaml"))
	dep := only[*appsv1.Deployment](t, m)
	selects(t, "scoring Deployment", dep.Spec.Selector, dep.Spec.Template.Labels)
	c := dep.Spec.Template.Spec.Containers[0]
	checkContainer(t, "scoring", c, nil)
	env := map[string]corev1.EnvVar{}
	for i, e := range c.Env {
		// $(VAR) only expands variables defined earlier in the list.
		for _, ref := range []string{"HOST_IP"} {
			if strings.Contains(e.Value, "$("+ref+")") {
				if def, ok := env[ref]; !ok {
					t.Errorf("env %s (#%d) uses $(%s) before it is defined", e.Name, i, ref)
				} else if def.ValueFrom == nil || def.ValueFrom.FieldRef == nil || def.ValueFrom.FieldRef.FieldPath != "status.hostIP" {
					t.Errorf("%s is not the node's IP (fieldRef status.hostIP)", ref)
				}
			}
		}
		env[e.Name] = e
	}
	// The ports scoring code sends to are the ones the node's collector listens on.
	cfg := collectorConfig(t, only[*corev1.ConfigMap](t, loadManifest(t, manifestPath(t, "daemonset.yaml"))).Data[configKey])
	port := func(role string) int32 {
		_, p := endpointPort(t, role, lookup(cfg, receiverEndpoints[role]...))
		return p
	}
	for name, want := range map[string]string{
		"MODELDATA_COLLECTOR_ENDPOINT": fmt.Sprintf("http://$(HOST_IP):%d", port("collect API")),
		"OTEL_EXPORTER_OTLP_ENDPOINT":  fmt.Sprintf("http://$(HOST_IP):%d", port("OTLP HTTP")),
		"AZUREML_MDC_ENABLED":          "true",
		"AZUREML_MDC_HOST":             "$(HOST_IP)",
		"AZUREML_MDC_PORT":             fmt.Sprint(port("Azure ML v2 SDK")),
	} {
		if env[name].Value != want {
			t.Errorf("env %s = %q, want %q", name, env[name].Value, want)
		}
	}
}
