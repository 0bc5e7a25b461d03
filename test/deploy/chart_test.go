package deploy

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// What the upstream opentelemetry-collector chart (0.170) makes of our values,
// reproduced from its documented naming rules and values.yaml: the chart
// itself is not vendored, so these functions are the model the checks run on.

const chartName = "opentelemetry-collector"

// chartDefaultConfig is the chart's default `config` value, the base our
// `config` is merged into (a null in ours removes a key of it).
const chartDefaultConfig = `
exporters:
  debug: {}
extensions:
  health_check:
    endpoint: ${env:MY_POD_IP}:13133
processors:
  batch: {}
  memory_limiter:
    check_interval: 5s
    limit_percentage: 80
    spike_limit_percentage: 25
receivers:
  jaeger:
    protocols:
      grpc: {endpoint: "${env:MY_POD_IP}:14250"}
      thrift_http: {endpoint: "${env:MY_POD_IP}:14268"}
      thrift_compact: {endpoint: "${env:MY_POD_IP}:6831"}
  otlp:
    protocols:
      grpc: {endpoint: "${env:MY_POD_IP}:4317"}
      http: {endpoint: "${env:MY_POD_IP}:4318"}
  prometheus:
    config:
      scrape_configs:
        - job_name: opentelemetry-collector
          scrape_interval: 10s
          static_configs: [{targets: ["${env:MY_POD_IP}:8888"]}]
  zipkin:
    endpoint: ${env:MY_POD_IP}:9411
service:
  telemetry:
    resource:
      k8s.namespace.name: "${env:OTEL_K8S_NAMESPACE}"
      k8s.node.name: "${env:OTEL_K8S_NODE_NAME}"
      k8s.node.ip: "${env:OTEL_K8S_NODE_IP}"
      k8s.pod.name: "${env:OTEL_K8S_POD_NAME}"
      k8s.pod.ip: "${env:OTEL_K8S_POD_IP}"
      host.name: "${env:OTEL_K8S_NODE_NAME}"
    metrics:
      readers:
        - pull: {exporter: {prometheus: {host: "${env:MY_POD_IP}", port: 8888}}}
  extensions: [health_check]
  pipelines:
    logs: {exporters: [debug], processors: [memory_limiter, batch], receivers: [otlp]}
    metrics: {exporters: [debug], processors: [memory_limiter, batch], receivers: [otlp, prometheus]}
    traces: {exporters: [debug], processors: [memory_limiter, batch], receivers: [otlp, jaeger, zipkin]}
`

// chartDefaultPorts are the chart's default `ports`, merged with ours.
var chartDefaultPorts = map[string]chartPort{
	"otlp":           {Enabled: true, ContainerPort: 4317, ServicePort: 4317, HostPort: 4317, Protocol: corev1.ProtocolTCP, AppProtocol: "grpc"},
	"otlp-http":      {Enabled: true, ContainerPort: 4318, ServicePort: 4318, HostPort: 4318, Protocol: corev1.ProtocolTCP},
	"jaeger-compact": {Enabled: true, ContainerPort: 6831, ServicePort: 6831, HostPort: 6831, Protocol: corev1.ProtocolUDP},
	"jaeger-thrift":  {Enabled: true, ContainerPort: 14268, ServicePort: 14268, HostPort: 14268, Protocol: corev1.ProtocolTCP},
	"jaeger-grpc":    {Enabled: true, ContainerPort: 14250, ServicePort: 14250, HostPort: 14250, Protocol: corev1.ProtocolTCP},
	"zipkin":         {Enabled: true, ContainerPort: 9411, ServicePort: 9411, HostPort: 9411, Protocol: corev1.ProtocolTCP},
	"metrics":        {Enabled: false, ContainerPort: 8888, ServicePort: 8888, Protocol: corev1.ProtocolTCP},
}

// chartDefaultGracePeriod is the chart's terminationGracePeriodSeconds.
const chartDefaultGracePeriod = 30

type chartPort struct {
	Enabled       bool            `json:"enabled"`
	ContainerPort int32           `json:"containerPort,omitempty"`
	ServicePort   int32           `json:"servicePort,omitempty"`
	HostPort      int32           `json:"hostPort,omitempty"`
	Protocol      corev1.Protocol `json:"protocol,omitempty"`
	AppProtocol   string          `json:"appProtocol,omitempty"`
}

// chartRelease is what `helm install <release> -n <namespace> -f values` creates, as far as names go.
type chartRelease struct {
	serviceAccount *corev1.ServiceAccount
	service        *corev1.Service // nil in daemonset mode
	container      corev1.Container
	pod            corev1.PodSpec
	podAnnotations map[string]string
	config         map[string]any
}

func trunc63(s string) string {
	if len(s) > 63 {
		s = s[:63]
	}
	return strings.TrimSuffix(s, "-")
}

// chartFullname is the chart's "opentelemetry-collector.fullname".
func chartFullname(release string, v chartValues) string {
	if v.FullnameOverride != "" {
		return trunc63(v.FullnameOverride)
	}
	name := chartName
	if v.NameOverride != "" {
		name = v.NameOverride
	}
	if strings.Contains(release, name) {
		return trunc63(release)
	}
	return trunc63(release + "-" + name)
}

// chartServiceAccountName is the chart's "opentelemetry-collector.serviceAccountName".
func chartServiceAccountName(release string, v chartValues) string {
	if v.ServiceAccount.Create {
		if v.ServiceAccount.Name != "" {
			return v.ServiceAccount.Name
		}
		return chartFullname(release, v)
	}
	if v.ServiceAccount.Name != "" {
		return v.ServiceAccount.Name
	}
	return "default"
}

// mergeValues is Helm's coalescing of a default value with the user's: maps
// merge key by key, null deletes, anything else replaces.
func mergeValues(base, over any) any {
	bm, bok := base.(map[string]any)
	om, ook := over.(map[string]any)
	if !bok || !ook {
		return over
	}
	out := map[string]any{}
	for k, v := range bm {
		out[k] = v
	}
	for k, v := range om {
		if v == nil {
			delete(out, k)
			continue
		}
		if b, ok := out[k]; ok {
			out[k] = mergeValues(b, v)
		} else {
			out[k] = v
		}
	}
	return out
}

// renderChart applies the chart's rules to our values.
func renderChart(release, namespace string, v chartValues) (chartRelease, error) {
	var r chartRelease
	fullname := chartFullname(release, v)
	r.serviceAccount = &corev1.ServiceAccount{}
	r.serviceAccount.Name = chartServiceAccountName(release, v)
	r.serviceAccount.Namespace = namespace
	r.serviceAccount.Annotations = v.ServiceAccount.Annotations

	var defaults map[string]any
	if err := yaml.Unmarshal([]byte(chartDefaultConfig), &defaults); err != nil {
		return r, err
	}
	r.config, _ = mergeValues(defaults, v.Config).(map[string]any)

	ports := map[string]chartPort{}
	for name, p := range chartDefaultPorts {
		ports[name] = p
	}
	for name, p := range v.Ports {
		base, known := ports[name]
		if !known {
			ports[name] = p
			continue
		}
		// Only the fields our values set override the default.
		base.Enabled = p.Enabled
		if p.ContainerPort != 0 {
			base.ContainerPort = p.ContainerPort
		}
		if p.ServicePort != 0 {
			base.ServicePort = p.ServicePort
		}
		if p.HostPort != 0 {
			base.HostPort = p.HostPort
		}
		if p.Protocol != "" {
			base.Protocol = p.Protocol
		}
		if p.AppProtocol != "" {
			base.AppProtocol = p.AppProtocol
		}
		ports[name] = base
	}
	agent := v.Mode == "daemonset"

	c := corev1.Container{Name: chartName, Resources: v.Resources, VolumeMounts: v.ExtraVolumeMounts,
		LivenessProbe: v.LivenessProbe, ReadinessProbe: v.ReadinessProbe}
	if v.Command.Name != "" {
		c.Command = []string{"/" + v.Command.Name}
	}
	for name, p := range ports {
		if !p.Enabled {
			continue
		}
		cp := corev1.ContainerPort{Name: name, ContainerPort: p.ContainerPort, Protocol: p.Protocol}
		if agent {
			cp.HostPort = p.HostPort
		}
		c.Ports = append(c.Ports, cp)
	}
	fieldRef := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	c.Env = []corev1.EnvVar{fieldRef("MY_POD_IP", "status.podIP"), fieldRef("OTEL_K8S_NODE_NAME", "spec.nodeName"),
		fieldRef("OTEL_K8S_NODE_IP", "status.hostIP"), fieldRef("OTEL_K8S_NAMESPACE", "metadata.namespace"),
		fieldRef("OTEL_K8S_POD_NAME", "metadata.name"), fieldRef("OTEL_K8S_POD_IP", "status.podIP")}
	if limit, ok := v.Resources.Limits[corev1.ResourceMemory]; ok && (v.UseGOMEMLIMIT == nil || *v.UseGOMEMLIMIT) {
		// The chart sets GOMEMLIMIT to 80% of the memory limit, in MiB.
		c.Env = append(c.Env, corev1.EnvVar{Name: "GOMEMLIMIT", Value: fmt.Sprintf("%dMiB", limit.Value()*8/10>>20)})
	}
	c.Env = append(c.Env, v.ExtraEnvs...)
	r.container = c

	grace := int64(chartDefaultGracePeriod)
	if v.TerminationGracePeriodSeconds != nil {
		grace = *v.TerminationGracePeriodSeconds
	}
	r.pod = corev1.PodSpec{ServiceAccountName: r.serviceAccount.Name, TerminationGracePeriodSeconds: &grace,
		Volumes: v.ExtraVolumes, InitContainers: v.InitContainers, Containers: []corev1.Container{c}}
	r.podAnnotations = v.PodAnnotations

	serviceEnabled := !agent
	if v.Service != nil && v.Service.Enabled != nil {
		serviceEnabled = *v.Service.Enabled
	}
	if serviceEnabled {
		svc := &corev1.Service{}
		svc.Name, svc.Namespace = fullname, namespace
		for name, p := range ports {
			if p.Enabled {
				svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: name, Port: p.ServicePort, Protocol: p.Protocol})
			}
		}
		r.service = svc
	}
	return r, nil
}
