package modeldatablobexporter

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// mdcPushes are requests of several rows, interleaved, over two hours, with
// endpoint and deployment from the resource for some: every row of them
// must come back from the MDC files.
func mdcPushes(rng *rand.Rand) [][]testRow {
	other := map[string]string{contract.AttrEndpoint: "fraud-ep", contract.AttrDeployment: "blue"}
	var pushes [][]testRow
	for p := 0; p < 3; p++ {
		var rows []testRow
		for r := 0; r < 20; r++ {
			req := fmt.Sprintf("req-%d-%d", p, r)
			ts := day.Add(time.Duration(rng.IntN(7200)) * time.Second)
			res := map[string]string(nil)
			if r%3 == 0 {
				res = other
			}
			for i := 0; i < 1+rng.IntN(4); i++ {
				rows = append(rows, testRow{resource: res, model: "m", version: "3", designation: "inputs",
					correlationID: "corr-" + req, requestID: req, ts: ts,
					features: [][2]any{{"age", rng.Int64N(100) - 50}, {"income", rng.Float64() * 1e5}, {"ok", rng.IntN(2) == 0},
						{"city", randomString(rng)}, {"note", nil}, {"whole", float64(rng.IntN(10))}}})
			}
			rows = append(rows, testRow{resource: res, model: "m", version: "3", designation: "predictions",
				correlationID: "corr-" + req, requestID: req, ts: ts, features: [][2]any{{"score", rng.Float64()}}})
			if r%5 == 4 { // a custom collection
				rows = append(rows, testRow{resource: res, model: "m", designation: "labels",
					correlationID: "corr-" + req, requestID: req, ts: ts, features: [][2]any{{"label", "yes"}}})
			}
		}
		// Interleave: rows of one request need not be consecutive.
		rng.Shuffle(len(rows), func(i, j int) {
			if rows[i].requestID[:5] == rows[j].requestID[:5] && rng.IntN(3) == 0 {
				rows[i], rows[j] = rows[j], rows[i]
			}
		})
		pushes = append(pushes, rows)
	}
	return pushes
}

// monitoredRow is one row as v2 model monitoring's preprocessor sees it.
type monitoredRow struct {
	collection string // the folder the monitor is pointed at: <endpoint>/<deployment>/<collection>
	partition  time.Time
	rowID      string // <correlationid>_<index>
	request    string
	version    string
	values     string // the row object, canonical
}

var mdcPartition = regexp.MustCompile(`^(\d{4})/(\d{2})/(\d{2})/(\d{2})/[^/]+\.jsonl$`)

// readLikeMonitoring reads files as the v2 preprocessor does: for each
// collection folder, every **/*.jsonl, the partition date from
// yyyy/MM/dd/HH in the path, `data` exploded by position, row id
// <correlationid>_<index>.
func readLikeMonitoring(t *testing.T, files map[string]string, root string) []monitoredRow {
	t.Helper()
	var out []monitoredRow
	for name, content := range files {
		if !strings.HasPrefix(name, root+"/") || !strings.HasSuffix(name, ".jsonl") {
			continue
		}
		parts := strings.SplitN(strings.TrimPrefix(name, root+"/"), "/", 4)
		if len(parts) != 4 {
			t.Fatalf("%s: not under <endpoint>/<deployment>/<collection>/", name)
		}
		m := mdcPartition.FindStringSubmatch(parts[3])
		if m == nil {
			t.Fatalf("%s: does not match the monitor's folder pattern <root>/YYYY/MM/DD/HH/<your_log>.jsonl", name)
		}
		partition, err := time.Parse("2006/01/02/15", m[1]+"/"+m[2]+"/"+m[3]+"/"+m[4])
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(strings.NewReader(content))
		sc.Buffer(nil, 1<<24)
		for sc.Scan() {
			var rec struct {
				SpecVersion     string            `json:"specversion"`
				ID              string            `json:"id"`
				Source          string            `json:"source"`
				Type            string            `json:"type"`
				DataContentType string            `json:"datacontenttype"`
				Time            time.Time         `json:"time"`
				Data            []json.RawMessage `json:"data"`
				CorrelationID   string            `json:"correlationid"`
				XRequestID      string            `json:"xrequestid"`
				ModelVersion    string            `json:"modelversion"`
				CollectDataType string            `json:"collectdatatype"`
				Agent           string            `json:"agent"`
				ContentRange    string            `json:"contentrange"`
			}
			dec := json.NewDecoder(strings.NewReader(sc.Text()))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&rec); err != nil {
				t.Fatalf("%s: %v in %s", name, err, sc.Text())
			}
			if rec.SpecVersion != "1.0" || rec.Type != "azureml.inference."+parts[2] || rec.DataContentType != "application/json" ||
				rec.CollectDataType != "pandas.core.frame.DataFrame" || !strings.HasPrefix(rec.Agent, "otelcol-modeldata/") ||
				!strings.HasSuffix(rec.Source, "/onlineEndpoints/"+parts[0]+"/deployments/"+parts[1]) || len(rec.ID) != 36 {
				t.Fatalf("%s: record fields: %+v", name, rec)
			}
			if !rec.Time.UTC().Truncate(time.Hour).Equal(partition) {
				t.Fatalf("%s: time %v outside its partition", name, rec.Time)
			}
			var raw struct {
				Data json.RawMessage `json:"data"`
			}
			_ = json.Unmarshal(sc.Bytes(), &raw)
			if want := fmt.Sprintf("bytes 0-%d/%d", len(raw.Data)-1, len(raw.Data)); rec.ContentRange != want {
				t.Fatalf("contentrange %q, want %q", rec.ContentRange, want)
			}
			for i, d := range rec.Data {
				out = append(out, monitoredRow{collection: strings.Join(parts[:3], "/"), partition: partition,
					rowID: fmt.Sprintf("%s_%d", rec.CorrelationID, i), request: rec.XRequestID, version: rec.ModelVersion,
					values: canonicalJSON(t, d)})
			}
		}
	}
	return out
}

// canonicalJSON re-encodes a row object with numbers kept as written.
func canonicalJSON(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	for k, v := range m {
		if n, ok := v.(json.Number); ok { // type and value, not spelling
			if strings.ContainsAny(string(n), ".eE") {
				f, _ := n.Float64()
				m[k] = fmt.Sprintf("double:%v", f)
			} else {
				i, _ := n.Int64()
				m[k] = fmt.Sprintf("int:%d", i)
			}
		}
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// expectedMonitored is what the monitor must see for the rows sent.
func expectedMonitored(t *testing.T, cfg *Config, pushes [][]testRow) []monitoredRow {
	var out []monitoredRow
	for _, rows := range pushes {
		index := map[string]int{} // position of a row in its record
		for _, r := range rows {
			ep, dep := cfg.MDC.Endpoint, cfg.MDC.Deployment
			if r.resource != nil {
				ep, dep = r.resource[contract.AttrEndpoint], r.resource[contract.AttrDeployment]
			}
			coll := cfg.MDC.collection(r.designation)
			m := map[string]any{}
			for _, f := range r.features {
				switch v := f[1].(type) {
				case int64:
					m[f[0].(string)] = fmt.Sprintf("int:%d", v)
				case float64:
					m[f[0].(string)] = fmt.Sprintf("double:%v", v)
				case string: // invalid UTF-8 arrives as U+FFFD per byte, as encoding/json writes it
					b, _ := json.Marshal(v)
					var valid string
					_ = json.Unmarshal(b, &valid)
					m[f[0].(string)] = valid
				default:
					m[f[0].(string)] = v
				}
			}
			b, _ := json.Marshal(m)
			version := r.version
			if version == "" {
				version = "default"
			}
			hour := r.ts.UTC().Truncate(time.Hour)
			key := fmt.Sprintf("%s/%s/%s/%v/%s", ep, dep, coll, hour, r.correlationID)
			out = append(out, monitoredRow{collection: ep + "/" + dep + "/" + coll, partition: hour,
				rowID: fmt.Sprintf("%s_%d", r.correlationID, index[key]), request: r.requestID, version: version, values: string(b)})
			index[key]++
		}
	}
	return out
}

func sortMonitored(rows []monitoredRow) {
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		return a.collection+a.rowID+a.values < b.collection+b.rowID+b.values
	})
}

func TestMDCReadLikeMonitoring(t *testing.T) {
	for _, backend := range []string{BackendLocal, BackendAzBlob} {
		t.Run(backend, func(t *testing.T) {
			var cfg *Config
			var files func() map[string]string
			if backend == BackendLocal {
				cfg = localConfig(t)
				files = func() map[string]string {
					out := map[string]string{}
					for _, f := range localFiles(t, cfg) {
						out[f] = readLocal(t, cfg, f)
					}
					return out
				}
			} else {
				az := testutil.StartAzurite(t)
				cfg = azuriteConfig(az)
				files = func() map[string]string { return readBlobs(t, az, cfg.Container) }
			}
			cfg.Format = FormatMDCJSONL
			cfg.MDC.InstanceID = "pod-a"
			cfg.MaxAppendSize = 4 << 10 // several appends per file
			e := newTestExporter(t, cfg)
			pushes := mdcPushes(rand.New(rand.NewPCG(1, 2)))
			for _, rows := range pushes {
				push(t, e, rows...)
			}
			got := readLikeMonitoring(t, files(), "modelDataCollector")
			want := expectedMonitored(t, cfg, pushes)
			sortMonitored(got)
			sortMonitored(want)
			if len(got) != len(want) {
				t.Fatalf("monitor read %d rows, sent %d", len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("row %d:\n got %+v\nwant %+v", i, got[i], want[i])
				}
			}
			for name := range files() {
				if !strings.HasSuffix(name, "/pod-a.jsonl") {
					t.Errorf("unexpected file %s", name)
				}
			}
		})
	}
}

func TestMDCRecordShape(t *testing.T) {
	cfg := refConfig(t)
	cfg.Format = FormatMDCJSONL
	cfg.MDC.InstanceID = "pod-a"
	cfg.MDC.Endpoint, cfg.MDC.Deployment = "ep", "blue"
	e := newTestExporter(t, cfg)
	row := testRow{model: "m", version: "7", designation: "inputs", correlationID: "c1", requestID: "r1", ts: day,
		features: [][2]any{{"b", "x\"y\n\u2028"}, {"a", int64(2)}, {"f", 1.0}, {"n", nil}}}
	push(t, e, row, row)
	got := readLocal(t, cfg, "modelDataCollector/ep/blue/model_inputs/2018/12/31/23/pod-a.jsonl")
	data := `[{"b":"x\"y\n\u2028","a":2,"f":1.0,"n":null},{"b":"x\"y\n\u2028","a":2,"f":1.0,"n":null}]`
	want := `{"specversion":"1.0","id":"ID","source":"/subscriptions/1A2B3C4D-0000-0000-0000-000000000000/resourceGroups/MyResourceGrp/providers/Microsoft.MachineLearningServices/workspaces/MyWorkspace/onlineEndpoints/ep/deployments/blue",` +
		`"type":"azureml.inference.model_inputs","datacontenttype":"application/json","time":"2018-12-31T23:59:59.123456Z","data":` + data +
		`,"correlationid":"c1","xrequestid":"r1","modelversion":"7","collectdatatype":"pandas.core.frame.DataFrame","agent":"otelcol-modeldata/latest",` +
		fmt.Sprintf(`"contentrange":"bytes 0-%d/%d"}`, len(data)-1, len(data)) + "\n"
	id := regexp.MustCompile(`"id":"([0-9a-f-]{36})"`).FindStringSubmatch(got)
	if id == nil {
		t.Fatalf("no id in %s", got)
	}
	if got = strings.Replace(got, id[1], "ID", 1); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	var v any
	if err := json.Unmarshal([]byte(got), &v); err != nil {
		t.Fatal(err)
	}
}

func TestMDCRollingRateAndCollections(t *testing.T) {
	for _, tc := range []struct {
		rate, dir string
	}{
		{RollingHour, "2018/12/31/23"},
		{RollingDay, "2018/12/31"},
		{RollingMinute, "2018/12/31/23/59"},
	} {
		t.Run(tc.rate, func(t *testing.T) {
			cfg := localConfig(t)
			cfg.Format = FormatMDCJSONL
			cfg.MDC.InstanceID = "i"
			cfg.MDC.RollingRate = tc.rate
			cfg.MDC.Collections = map[string]string{"inputs": "features_in"}
			e := newTestExporter(t, cfg)
			push(t, e, testRow{model: "m", version: "1", designation: "inputs", correlationID: "c", ts: day, features: [][2]any{{"a", int64(1)}}},
				testRow{model: "m", version: "1", designation: "predictions", correlationID: "c", ts: day, features: [][2]any{{"a", int64(1)}}})
			want := []string{"modelDataCollector/local/local/features_in/" + tc.dir + "/i.jsonl",
				"modelDataCollector/local/local/predictions/" + tc.dir + "/i.jsonl"}
			if got := localFiles(t, cfg); !reflect.DeepEqual(got, want) {
				t.Fatalf("files %v, want %v", got, want)
			}
		})
	}
}

// A retried MDC append whose first answer was lost is recognized, not doubled.
func TestMDCRetryOfAnAppendWithNoAnswer(t *testing.T) {
	cfg := localConfig(t)
	cfg.Format = FormatMDCJSONL
	cfg.MDC.InstanceID = "i"
	e := newTestExporter(t, cfg)
	st := &answerLostStore{localStore: e.store.(*localStore), landed: true}
	e.store, e.w.store = st, st
	row := func(c string) testRow {
		return testRow{model: "m", version: "1", designation: "inputs", correlationID: c, ts: day, features: [][2]any{{"a", int64(1)}}}
	}
	push(t, e, row("first")) // position 0 passes through answerLostStore
	ld := makeLogs(row("c"), row("c"))
	if err := e.push(context.Background(), ld); err == nil {
		t.Fatal("the lost answer must fail the push")
	}
	if err := e.push(context.Background(), ld); err != nil {
		t.Fatal(err)
	}
	got := readLocal(t, cfg, "modelDataCollector/local/local/model_inputs/2018/12/31/23/i.jsonl")
	if n := strings.Count(got, "\n"); n != 2 {
		t.Fatalf("%d lines after a retry, want 2:\n%s", n, got)
	}
}

func TestMDCConfigValidation(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.Format = FormatMDCJSONL
	cfg.MDC.RollingRate = "Week"
	cfg.MDC.Collections = map[string]string{"inputs": "a/b"}
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "mdc.rolling_rate") || !strings.Contains(err.Error(), "mdc.collections[inputs]") {
		t.Fatalf("got %v", err)
	}
	cfg = createDefaultConfig()
	cfg.Format = "avro"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), `format "avro"`) {
		t.Fatalf("got %v", err)
	}
}
