package deploy

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// chartValues are the keys of the upstream opentelemetry-collector chart's
// values.yaml that our values files use, with the Kubernetes types the chart
// passes through to the pod spec. Strict decoding refuses any other key, so a
// typo cannot be silently ignored by Helm.
type chartValues struct {
	FullnameOverride string `json:"fullnameOverride,omitempty"`
	NameOverride     string `json:"nameOverride,omitempty"`
	Mode             string `json:"mode"`
	Image            struct {
		Repository string `json:"repository"`
		Tag        string `json:"tag"`
		PullPolicy string `json:"pullPolicy"`
	} `json:"image"`
	Command struct {
		Name      string   `json:"name"`
		ExtraArgs []string `json:"extraArgs,omitempty"`
	} `json:"command"`
	ServiceAccount struct {
		Create      bool              `json:"create"`
		Annotations map[string]string `json:"annotations"`
		Name        string            `json:"name,omitempty"`
	} `json:"serviceAccount"`
	PodLabels                     map[string]string           `json:"podLabels"`
	PodAnnotations                map[string]string           `json:"podAnnotations,omitempty"`
	TerminationGracePeriodSeconds *int64                      `json:"terminationGracePeriodSeconds,omitempty"`
	UseGOMEMLIMIT                 *bool                       `json:"useGOMEMLIMIT,omitempty"`
	PodSecurityContext            *corev1.PodSecurityContext  `json:"podSecurityContext"`
	SecurityContext               *corev1.SecurityContext     `json:"securityContext"`
	Resources                     corev1.ResourceRequirements `json:"resources"`
	ExtraEnvs                     []corev1.EnvVar             `json:"extraEnvs"`
	ExtraVolumes                  []corev1.Volume             `json:"extraVolumes"`
	ExtraVolumeMounts             []corev1.VolumeMount        `json:"extraVolumeMounts"`
	InitContainers                []corev1.Container          `json:"initContainers,omitempty"`
	Ports                         map[string]chartPort        `json:"ports"`
	LivenessProbe                 *corev1.Probe               `json:"livenessProbe"`
	ReadinessProbe                *corev1.Probe               `json:"readinessProbe"`
	Autoscaling                   *struct {
		Enabled                           bool                                           `json:"enabled"`
		MinReplicas                       int32                                          `json:"minReplicas"`
		MaxReplicas                       int32                                          `json:"maxReplicas"`
		TargetCPUUtilizationPercentage    int32                                          `json:"targetCPUUtilizationPercentage"`
		TargetMemoryUtilizationPercentage int32                                          `json:"targetMemoryUtilizationPercentage"`
		Behavior                          *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior"`
	} `json:"autoscaling,omitempty"`
	PodDisruptionBudget *struct {
		Enabled      bool `json:"enabled"`
		MinAvailable int  `json:"minAvailable"`
	} `json:"podDisruptionBudget,omitempty"`
	Service *struct {
		Enabled *bool              `json:"enabled,omitempty"`
		Type    corev1.ServiceType `json:"type"`
	} `json:"service,omitempty"`
	Config map[string]any `json:"config"`
}

// withoutNulls drops keys whose value is null: in a Helm values merge, null
// removes the chart's default of that key (and a map of only nulls is left
// out whole).
func withoutNulls(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	out := map[string]any{}
	for k, val := range m {
		if val == nil {
			continue
		}
		sub := withoutNulls(val)
		if sm, ok := sub.(map[string]any); ok && len(sm) == 0 && len(val.(map[string]any)) > 0 {
			continue
		}
		out[k] = sub
	}
	return out
}

func TestHelmValues(t *testing.T) {
	root := testutil.RepoRoot(t)
	dockerfile := string(testutil.ReadFile(t, filepath.Join(root, "Dockerfile")))
	for _, tc := range []struct {
		file, mode, manifest string
	}{
		{"values-daemonset.yaml", "daemonset", "daemonset.yaml"},
		{"values-gateway.yaml", "deployment", "gateway.yaml"},
		{"values-kafka-agent.yaml", "daemonset", "kafka-agent.yaml"},
		{"values-kafka-writer.yaml", "deployment", "kafka-writer.yaml"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			l := layouts[tc.manifest]
			var v chartValues
			if err := yaml.UnmarshalStrict(testutil.ReadFile(t, filepath.Join(root, "deploy", "helm", tc.file)), &v); err != nil {
				t.Fatalf("values: %v", err)
			}
			if v.Mode != tc.mode {
				t.Errorf("mode %q, want %q", v.Mode, tc.mode)
			}
			if !strings.HasSuffix(v.Image.Repository, "/otelcol-modeldata") || v.Image.Tag == "" {
				t.Errorf("image %s:%s is not our image", v.Image.Repository, v.Image.Tag)
			}
			// The chart runs /<command.name>; our image has the binary there.
			if !strings.Contains(dockerfile, `ENTRYPOINT ["/`+v.Command.Name+`"]`) {
				t.Errorf("command.name %q is not the binary of our Dockerfile", v.Command.Name)
			}
			if id := v.ServiceAccount.Annotations[wiClientIDAnnotation]; !v.ServiceAccount.Create || l.identity != uuidRE.MatchString(id) {
				t.Errorf("serviceAccount: create %v, %s %q (workload identity: %v)", v.ServiceAccount.Create, wiClientIDAnnotation, id, l.identity)
			}
			if (v.PodLabels[wiUseLabel] == "true") != l.identity {
				t.Errorf("podLabels %v: %s must be \"true\" exactly when the pods write blobs", v.PodLabels, wiUseLabel)
			}
			volumes := map[string]corev1.Volume{}
			for _, vol := range v.ExtraVolumes {
				volumes[vol.Name] = vol
			}
			checkContainer(t, "values", corev1.Container{Name: "collector", Resources: v.Resources, Env: v.ExtraEnvs,
				VolumeMounts: v.ExtraVolumeMounts}, volumes)
			for _, c := range v.InitContainers {
				for _, m := range c.VolumeMounts {
					if _, ok := volumes[m.Name]; !ok {
						t.Errorf("init container %s mounts undeclared volume %s", c.Name, m.Name)
					}
				}
			}
			for name, probe := range map[string]*corev1.Probe{"liveness": v.LivenessProbe, "readiness": v.ReadinessProbe} {
				if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Port.IntValue() != healthPort {
					t.Errorf("%s probe is not on health_check %d", name, healthPort)
				}
			}
			if tc.mode == "deployment" && (v.Autoscaling == nil || !v.Autoscaling.Enabled || v.Autoscaling.MinReplicas < 2) {
				t.Error("gateway: autoscaling must be enabled with at least 2 replicas")
			}

			// The config, once the chart's defaults are removed, is the manifest's
			// config: one configuration, two ways to install it.
			cfg := withoutNulls(v.Config).(map[string]any)
			checkPipelines(t, cfg)
			cm := only[*corev1.ConfigMap](t, loadManifest(t, manifestPath(t, tc.manifest)))
			manifestCfg := collectorConfig(t, cm.Data[configKey])
			if !reflect.DeepEqual(cfg, manifestCfg) {
				got, _ := yaml.Marshal(cfg)
				want, _ := yaml.Marshal(manifestCfg)
				t.Errorf("values config differs from %s:\n%s\n--- manifest ---\n%s", tc.manifest, got, want)
			}

			// What `helm install` as docs/aks.md writes it makes of these values.
			docs := readDocFacts(t)
			r, err := renderChart(docs.helmRelease, docs.helmNamespace, v)
			if err != nil {
				t.Fatal(err)
			}
			rendered, err := yaml.Marshal(r.config)
			if err != nil {
				t.Fatal(err)
			}
			checkPipelines(t, r.config)
			checkEnvCoversConfig(t, "rendered chart", string(rendered), r.container.Env)
			validateWithBinary(t, string(rendered), podEnv(t, r.container.Env, l.identity))
			if l.identity {
				checkServiceAccount(t, "chart", r.serviceAccount, docs)
			}
			checkSecretRefs(t, "chart", r.container.Env, r.config, docs)
			checkListeners(t, "chart", r.config, r.container, r.podAnnotations, l)
			manifest := loadManifest(t, manifestPath(t, tc.manifest))
			if got, want := *r.pod.TerminationGracePeriodSeconds, *podSpec(t, manifest).TerminationGracePeriodSeconds; got != want {
				t.Errorf("terminationGracePeriodSeconds %d, the manifest's is %d", got, want)
			}
			// The chart derives GOMEMLIMIT from the memory limit; the manifest sets it by hand.
			envValue := func(env []corev1.EnvVar, name string) string {
				for _, e := range env {
					if e.Name == name {
						return e.Value
					}
				}
				return ""
			}
			if got, want := envValue(r.container.Env, "GOMEMLIMIT"), envValue(podSpec(t, manifest).Containers[0].Env, "GOMEMLIMIT"); got != want {
				t.Errorf("GOMEMLIMIT %q from the chart, the manifest sets %q", got, want)
			}
			switch {
			case l.gateway && r.service == nil:
				t.Fatal("gateway: the chart creates no Service")
			case l.gateway:
				checkGatewayAddresses(t, "chart", r.service, docs)
			case tc.mode == "daemonset" && r.service != nil:
				t.Errorf("daemonset: the chart creates Service %s, which nothing uses", r.service.Name)
			}
		})
	}
}
