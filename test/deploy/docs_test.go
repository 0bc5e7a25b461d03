package deploy

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// yamlBlock is one ```yaml block of a Markdown file.
type yamlBlock struct {
	file string
	line int
	text string
}

var fenceRE = regexp.MustCompile("(?ms)^[ \t]*```ya?ml[ \t]*\n(.*?)^[ \t]*```")

// docYAMLBlocks returns every YAML block of the repository's Markdown files.
func docYAMLBlocks(t *testing.T, root string) []yamlBlock {
	t.Helper()
	var blocks []yamlBlock
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "node_modules" || name == "data") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".md") {
			return nil
		}
		text, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		for _, m := range fenceRE.FindAllSubmatchIndex(text, -1) {
			blocks = append(blocks, yamlBlock{file: filepath.ToSlash(rel), line: 1 + bytes.Count(text[:m[2]], []byte("\n")),
				text: string(text[m[2]:m[3]])})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return blocks
}

// dedent removes the indentation common to all non-blank lines.
func dedent(s string) string {
	lines := strings.Split(s, "\n")
	indent := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		n := len(l) - len(strings.TrimLeft(l, " "))
		if indent < 0 || n < indent {
			indent = n
		}
	}
	for i, l := range lines {
		if len(l) >= indent && indent > 0 {
			lines[i] = l[indent:]
		}
	}
	return strings.Join(lines, "\n")
}

// builtComponents is `otelcol-modeldata components`: kind -> type -> signals it supports.
type builtComponents map[string]map[string]map[string]bool

func listComponents(t *testing.T) builtComponents {
	t.Helper()
	bin := testutil.CollectorBinary(t)
	out, err := exec.Command(bin, "components").Output()
	if err != nil {
		t.Fatalf("components: %v", err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(out, &raw); err != nil {
		t.Fatalf("components output: %v", err)
	}
	bc := builtComponents{}
	for _, kind := range []string{"receivers", "processors", "exporters", "connectors", "extensions"} {
		bc[kind] = map[string]map[string]bool{}
		list, _ := raw[kind].([]any)
		for _, c := range list {
			cm, _ := c.(map[string]any)
			name, _ := cm["name"].(string)
			signals := map[string]bool{}
			stab, _ := cm["stability"].(map[string]any)
			for sig, level := range stab {
				if level != "Undefined" {
					signals[sig] = true
				}
			}
			bc[kind][name] = signals
		}
	}
	return bc
}

// kindOf is the kind of a component type (exporters, receivers, ...), "" when not built.
func (bc builtComponents) kindOf(typ string) string {
	for kind, types := range bc {
		if _, ok := types[typ]; ok {
			return kind
		}
	}
	return ""
}

var componentKinds = []string{"receivers", "processors", "exporters", "connectors", "extensions"}

// componentOfReadme is the kind and type a component README documents (its
// folder and the Type row of its status table), or "" for other files.
func componentOfReadme(t *testing.T, root, file string) (kind, typ string) {
	t.Helper()
	dir := strings.SplitN(file, "/", 2)[0]
	if !strings.HasSuffix(file, "/README.md") || !slices.Contains([]string{"receiver", "processor", "exporter", "connector", "extension"}, dir) {
		return "", ""
	}
	text := string(testutil.ReadFile(t, filepath.Join(root, file)))
	m := regexp.MustCompile("(?m)^\\|\\s*(?:Component )?[Tt]ype\\s*\\|\\s*`([a-z0-9_]+)`").FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("%s: no Type row in the status table", file)
	}
	return dir + "s", m[1]
}

// collectorConfigOf turns a doc block into a whole collector config: a full
// config stays as it is; a fragment (components without service, one
// component's settings, or settings of the README's own component) gets the
// missing parts: a receiver or exporter to make a pipeline, and the pipeline.
// ok is false for blocks that are not collector configuration.
// Components a block uses without defining them take their definition from
// base (examples/otel-config.yaml), else the component's defaults.
func collectorConfigOf(t *testing.T, bc builtComponents, base map[string]any, readmeKind, readmeType, text string) (cfgs []map[string]any, ok bool) {
	t.Helper()
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(dedent(text)), &doc); err != nil {
		t.Errorf("not YAML: %v", err)
		return nil, true
	}
	isKind := func(k string) bool {
		for _, kind := range componentKinds {
			if k == kind {
				return true
			}
		}
		return k == "service"
	}
	cfg := map[string]any{}
	for k, v := range doc {
		switch {
		case isKind(k):
			cfg[k] = v
		case bc.kindOf(strings.SplitN(k, "/", 2)[0]) != "":
			kind := bc.kindOf(strings.SplitN(k, "/", 2)[0])
			m, _ := cfg[kind].(map[string]any)
			if m == nil {
				m = map[string]any{}
				cfg[kind] = m
			}
			m[k] = v
		}
	}
	if len(cfg) == 0 {
		if readmeType == "" {
			return nil, false
		}
		// Settings of the README's own component.
		cfg[readmeKind] = map[string]any{readmeType: doc}
	} else if len(cfg) != len(doc) {
		var other []string
		for k := range doc {
			if !isKind(k) && bc.kindOf(strings.SplitN(k, "/", 2)[0]) == "" {
				other = append(other, k)
			}
		}
		sort.Strings(other)
		t.Errorf("keys %v are neither component kinds nor built component types", other)
	}
	define := func(cfg map[string]any, kind, id string) {
		m, _ := cfg[kind].(map[string]any)
		if m == nil {
			m = map[string]any{}
			cfg[kind] = m
		}
		if _, ok := m[id]; ok {
			return
		}
		if def, ok := lookup(base, kind, id).(map[string]any); ok {
			m[id] = def
		} else {
			m[id] = map[string]any{}
		}
	}
	if _, full := cfg["service"]; full {
		pipelines, _ := lookup(cfg, "service", "pipelines").(map[string]any)
		for _, p := range pipelines {
			for _, kind := range []string{"receivers", "processors", "exporters"} {
				ids, _ := lookup(p, kind).([]any)
				for _, id := range ids {
					if bc.kindOf(strings.SplitN(fmt.Sprint(id), "/", 2)[0]) != "connectors" {
						define(cfg, kind, fmt.Sprint(id))
					}
				}
			}
		}
		exts, _ := lookup(cfg, "service", "extensions").([]any)
		for _, id := range exts {
			define(cfg, "extensions", fmt.Sprint(id))
		}
		return []map[string]any{cfg}, true
	}
	if _, has := cfg["connectors"]; has {
		t.Logf("a connector fragment without service: give the whole config to have it validated")
		return nil, true
	}
	// One pipeline per signal that every component of the fragment supports.
	for _, signal := range []string{"logs", "metrics", "traces"} {
		whole := map[string]any{}
		pipeline := map[string]any{}
		fits := true
		for _, kind := range []string{"receivers", "processors", "exporters"} {
			m, _ := cfg[kind].(map[string]any)
			var ids []any
			for id := range m {
				if !bc[kind][strings.SplitN(id, "/", 2)[0]][signal] {
					fits = false
				}
				ids = append(ids, id)
			}
			sort.Slice(ids, func(i, j int) bool { return ids[i].(string) < ids[j].(string) })
			if len(ids) == 0 && kind != "processors" {
				filler := map[string]string{"receivers": "otlp", "exporters": "debug"}[kind]
				define(whole, kind, filler)
				m = whole[kind].(map[string]any)
				ids = []any{filler}
			}
			if m != nil {
				whole[kind] = m
				pipeline[kind] = ids
			}
		}
		if !fits {
			continue
		}
		service := map[string]any{"pipelines": map[string]any{signal: pipeline}}
		if ext, _ := cfg["extensions"].(map[string]any); len(ext) > 0 {
			whole["extensions"] = ext
			var ids []any
			for id := range ext {
				ids = append(ids, id)
			}
			service["extensions"] = ids
		}
		whole["service"] = service
		cfgs = append(cfgs, whole)
	}
	if len(cfgs) == 0 {
		t.Errorf("no signal is supported by every component of the block")
	}
	return cfgs, true
}

// docEnv gives each ${env:X} a block reads a plausible value, except the
// App Insights connection string, which the docs call optional; and what the
// AKS workload identity webhook sets, for the workload identity examples.
func docEnv(t *testing.T, config string) []string {
	values := map[string]string{
		"AZURE_STORAGE_CONNECTION_STRING": "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net",
		"AZURE_STORAGE_SAS":               "sv=2024-11-04&sp=racw&sig=c2ln",
		"MY_POD_IP":                       "127.0.0.1",
		"AZURE_STORAGE_KEY":               "a2V5",
	}
	env := podEnv(t, nil, true)
	for _, name := range envReferences(config) {
		if name == "APPLICATIONINSIGHTS_CONNECTION_STRING" {
			continue
		}
		v, ok := values[name]
		if !ok {
			v = "placeholder"
		}
		env = append(env, name+"="+v)
	}
	return env
}

// checkBlobBackend: an exporter config with azblob settings writes to azblob
// (the default backend is local: without it the settings are silently unused).
func checkBlobBackend(t *testing.T, cfg map[string]any) {
	t.Helper()
	exporters, _ := cfg["exporters"].(map[string]any)
	for id, c := range exporters {
		cm, _ := c.(map[string]any)
		if _, hasAzblob := cm["azblob"]; hasAzblob && cm["backend"] != "azblob" {
			t.Errorf("exporter %s has azblob settings without backend: azblob (it would write to a local folder)", id)
		}
	}
}

// TestDocYAMLBlocksValidate: every collector configuration a reader can copy
// from a Markdown file, whole or a fragment, passes `validate` of the built
// binary; Kubernetes snippets match the manifests they quote.
func TestDocYAMLBlocksValidate(t *testing.T) {
	if os.Getenv(testutil.BinaryEnv) == "" && os.Getenv("CI") == "" {
		t.Skipf("%s not set: run `make test`", testutil.BinaryEnv)
	}
	root := testutil.RepoRoot(t)
	bc := listComponents(t)
	var base map[string]any
	if err := yaml.Unmarshal(testutil.ReadFile(t, filepath.Join(root, "examples", "otel-config.yaml")), &base); err != nil {
		t.Fatal(err)
	}
	blocks := docYAMLBlocks(t, root)
	if len(blocks) < 10 {
		t.Fatalf("found only %d YAML blocks", len(blocks))
	}
	for _, b := range blocks {
		t.Run(fmt.Sprintf("%s:%d", b.file, b.line), func(t *testing.T) {
			if strings.Contains(b.text, "apiVersion:") || regexp.MustCompile(`(?m)^env:`).MatchString(b.text) {
				checkKubernetesSnippet(t, root, b)
				return
			}
			if regexp.MustCompile(`(?m)^groups:`).MatchString(b.text) {
				checkRuleFile(t, []byte(b.text))
				return
			}
			if regexp.MustCompile(`(?m)^create_monitor:`).MatchString(b.text) {
				checkMonitorSchedule(t, b.text)
				return
			}
			kind, typ := componentOfReadme(t, root, b.file)
			cfgs, ok := collectorConfigOf(t, bc, base, kind, typ, b.text)
			if !ok {
				t.Fatalf("not a collector config, a component's settings, a Kubernetes snippet or alert rules: teach this test what it is")
			}
			for _, cfg := range cfgs {
				checkBlobBackend(t, cfg)
				text, err := yaml.Marshal(cfg)
				if err != nil {
					t.Fatal(err)
				}
				out, err := runValidate(t, string(text), docEnv(t, string(text)))
				if err != nil && namesMissingFile(b.text, string(out)) {
					t.Logf("the block reads a file of the reader's own (%s): validated up to that point", strings.TrimSpace(string(out)))
				} else if err != nil {
					t.Errorf("otelcol-modeldata validate: %v\n%s", err, out)
				}
			}
		})
	}
}

// checkMonitorSchedule: an Azure ML v2 monitor schedule (not ours to
// validate) must at least parse and point its production data at the MDC
// folder layout the exporter writes (modelDataCollector/<endpoint>/<deployment>/<collection>).
func checkMonitorSchedule(t *testing.T, text string) {
	t.Helper()
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatalf("monitor schedule: %v", err)
	}
	paths := regexp.MustCompile(`(?m)^\s*path: (azureml://datastores/[^/\s]+/paths/\S+)$`).FindAllStringSubmatch(text, -1)
	mdc := regexp.MustCompile(`/paths/modelDataCollector/[^/]+/[^/]+/[^/]+$`)
	found := false
	for _, p := range paths {
		found = found || mdc.MatchString(p[1])
	}
	if !found {
		t.Errorf("monitor schedule reads no modelDataCollector/<endpoint>/<deployment>/<collection> folder: %q", paths)
	}
}

// namesMissingFile: validate failed only because a file the block names (a
// baseline, a certificate: the reader's own) is not on this machine.
func namesMissingFile(block, output string) bool {
	m := regexp.MustCompile(`open (\S+): no such file or directory`).FindStringSubmatch(output)
	return m != nil && strings.Contains(block, m[1])
}

// checkKubernetesSnippet: an env block quoted in the docs is the scoring
// example's, entry for entry; a whole object decodes strictly.
func checkKubernetesSnippet(t *testing.T, root string, b yamlBlock) {
	t.Helper()
	if strings.Contains(b.text, "apiVersion:") {
		if _, err := decodeStrict([]byte(b.text)); err != nil {
			t.Error(err)
		}
		return
	}
	var snippet struct {
		Env []corev1.EnvVar `json:"env"`
	}
	if err := yaml.UnmarshalStrict([]byte(b.text), &snippet); err != nil {
		t.Fatal(err)
	}
	m := loadManifest(t, filepath.Join(root, "deploy", "kubernetes", "scoring-example.yaml"))
	example := map[string]corev1.EnvVar{}
	for _, e := range podSpec(t, m).Containers[0].Env {
		example[e.Name] = e
	}
	for _, e := range snippet.Env {
		want, ok := example[e.Name]
		if !ok {
			t.Errorf("env %s is not in deploy/kubernetes/scoring-example.yaml", e.Name)
			continue
		}
		got, _ := yaml.Marshal(e)
		exp, _ := yaml.Marshal(want)
		if !bytes.Equal(got, exp) {
			t.Errorf("env %s differs from scoring-example.yaml:\n%s---\n%s", e.Name, got, exp)
		}
	}
}

// TestExampleConfigsValidate: the example configs start as shipped, with no
// environment at all (App Insights disabled, local folder).
func TestExampleConfigsValidate(t *testing.T) {
	root := testutil.RepoRoot(t)
	files, err := filepath.Glob(filepath.Join(root, "examples", "*", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	top, _ := filepath.Glob(filepath.Join(root, "examples", "*.yaml"))
	files = append(files, top...)
	if len(files) < 2 {
		t.Fatalf("found %d example configs", len(files))
	}
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		t.Run(rel, func(t *testing.T) {
			text := string(testutil.ReadFile(t, f))
			cfg := collectorConfig(t, text)
			checkBlobBackend(t, cfg)
			validateWithBinary(t, text, nil)
		})
	}
}

func TestNamesMissingFile(t *testing.T) {
	block := "csv: /etc/otelcol/baselines/best_model_inputs.csv\n"
	for out, want := range map[string]bool{
		"Error: baselines[0]: open /etc/otelcol/baselines/best_model_inputs.csv: no such file or directory": true,
		"Error: baselines[0]: open /tmp/other.csv: no such file or directory":                               false,
		"Error: receivers::otlp::protocols: must specify at least one protocol":                             false,
	} {
		if got := namesMissingFile(block, out); got != want {
			t.Errorf("%q: %v, want %v", out, got, want)
		}
	}
}
