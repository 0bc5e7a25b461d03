// Package deploy validates the Kubernetes manifests and Helm values in deploy/
// offline, on a fresh clone: every document is strictly decoded into the typed
// k8s.io/api structs (an unknown field, a misspelt key or a wrong type is an
// error, as the API server's strict field validation would make it), then the
// references between objects that a schema cannot see are checked (selectors,
// volumes, ports, probes, the ConfigMap key, the ServiceAccount, the HPA
// target), and the collector configuration they carry is validated by the
// built binary's `validate` subcommand when OTELCOL_MODELDATA_BIN is set.
package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// newObject maps apiVersion/kind to the typed struct documents are decoded into.
// A kind missing here fails the test: add it with its real type, never as a map.
var newObject = map[string]func() any{
	"v1/Namespace":                           func() any { return &corev1.Namespace{} },
	"v1/ServiceAccount":                      func() any { return &corev1.ServiceAccount{} },
	"v1/ConfigMap":                           func() any { return &corev1.ConfigMap{} },
	"v1/Service":                             func() any { return &corev1.Service{} },
	"v1/PersistentVolumeClaim":               func() any { return &corev1.PersistentVolumeClaim{} },
	"apps/v1/DaemonSet":                      func() any { return &appsv1.DaemonSet{} },
	"apps/v1/Deployment":                     func() any { return &appsv1.Deployment{} },
	"apps/v1/StatefulSet":                    func() any { return &appsv1.StatefulSet{} },
	"autoscaling/v2/HorizontalPodAutoscaler": func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"policy/v1/PodDisruptionBudget":          func() any { return &policyv1.PodDisruptionBudget{} },
}

// manifest is one file of deploy/kubernetes, decoded.
type manifest struct {
	path    string
	objects []any
}

func loadManifest(t *testing.T, path string) manifest {
	t.Helper()
	data := testutil.ReadFile(t, path)
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	m := manifest{path: path}
	for i := 0; ; i++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", path, i, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		obj, err := decodeStrict(doc)
		if err != nil {
			t.Fatalf("%s: document %d: %v", path, i, err)
		}
		m.objects = append(m.objects, obj)
	}
	if len(m.objects) == 0 {
		t.Fatalf("%s: no objects", path)
	}
	return m
}

// decodeStrict decodes one YAML document into its typed struct, refusing
// unknown and duplicate fields.
func decodeStrict(doc []byte) (any, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, err
	}
	key := tm.APIVersion + "/" + tm.Kind
	newObj, ok := newObject[key]
	if !ok {
		return nil, fmt.Errorf("apiVersion/kind %q is not a known type", key)
	}
	obj := newObj()
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return obj, nil
}

func stripComments(doc []byte) []byte {
	var out bytes.Buffer
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			out.Write(line)
			out.WriteByte('\n')
		}
	}
	return out.Bytes()
}

func manifestPath(t *testing.T, name string) string {
	return filepath.Join(testutil.RepoRoot(t), "deploy", "kubernetes", name)
}

func find[T any](m manifest) []T {
	var out []T
	for _, o := range m.objects {
		if v, ok := o.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

func only[T any](t *testing.T, m manifest) T {
	t.Helper()
	all := find[T](m)
	if len(all) != 1 {
		var zero T
		t.Fatalf("%s: want exactly one %T, found %d", m.path, zero, len(all))
	}
	return all[0]
}

// TestEveryManifestDecodesStrictly decodes every file under deploy/kubernetes,
// and checks the names and labels the API server would refuse.
func TestEveryManifestDecodesStrictly(t *testing.T) {
	files, err := filepath.Glob(manifestPath(t, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			m := loadManifest(t, path)
			for _, o := range m.objects {
				meta := objectMeta(o)
				checkMeta(t, fmt.Sprintf("%T %s", o, meta.Name), meta)
			}
		})
	}
}

// TestDecodeRejectsMistakes proves the strict decoding catches what a schema
// validator would: unknown fields, wrong types, unknown kinds.
func TestDecodeRejectsMistakes(t *testing.T) {
	bad := map[string]string{
		"misspelt field": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndatas: {a: b}\n",
		"wrong type":     "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: two}\n",
		"nested unknown": "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n" +
			"      containers: [{name: c, image: i, livenessProbe: {httpGet: {port: 1, pth: /}}}]\n",
		"unknown kind":    "apiVersion: v1\nkind: Secrets\nmetadata: {name: x}\n",
		"duplicate field": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\ndata: {c: d}\n",
	}
	for name, doc := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := decodeStrict([]byte(doc)); err == nil {
				t.Fatal("decoded without error")
			}
		})
	}
}
