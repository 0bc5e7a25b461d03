package e2e

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/harness"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// hostile is one request of the hostile corpus.
type hostile struct {
	name        string
	method      string // default POST
	path        string // default /v1/collect
	contentType string // default application/json
	header      map[string]string
	body        func() []byte
	want        int
}

func hostileJSON(s string) func() []byte { return func() []byte { return []byte(s) } }

// bigBody is n bytes of a JSON request with one huge cell.
func hostileBig(n int) func() []byte {
	return func() []byte {
		head, tail := `{"model_name":"big","model_version":"1","data":[["`, `"]]}`
		b := make([]byte, 0, n)
		b = append(b, head...)
		b = append(b, bytes.Repeat([]byte("a"), n-len(head)-len(tail))...)
		return append(b, tail...)
	}
}

func hostileGzip(body func() []byte) func() []byte {
	return func() []byte {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = zw.Write(body())
		_ = zw.Close()
		return buf.Bytes()
	}
}

func hostileOTLP(model, webservice string) func() []byte {
	return func() []byte {
		logs := plog.NewLogs()
		rl := logs.ResourceLogs().AppendEmpty()
		if webservice != "" {
			rl.Resource().Attributes().PutStr(contract.AttrWebservice, webservice)
		}
		lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		contract.Features(lr).PutStr("x", "1")
		contract.WriteRow(lr, contract.Row{ModelName: model, ModelVersion: "1", Designation: "inputs", FeatureNames: []string{"x"},
			Timestamp: time.Now()})
		b, _ := (&plog.ProtoMarshaler{}).MarshalLogs(logs)
		return b
	}
}

// hostileV2Header is the azureml-ai-monitoring SDK's headers for model inputs of model, version 1, at ceTime.
func hostileV2Header(model, ceTime string) map[string]string {
	return map[string]string{"ce-type": "azureml.inference.model_inputs", "ce-model-name": model, "ce-model-version": "1", "ce-time": ceTime}
}

func hostileCorpus() []hostile {
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	wide := make([]string, 1001)
	for i := range wide {
		wide[i] = "1"
	}
	manyRows := strings.TrimSuffix(strings.Repeat("[1],", 10001), ",")
	tinyRows := strings.TrimSuffix(strings.Repeat("[0,0,0],", 20<<20/8), ",")
	tinyCSV := "a,b,c\n" + strings.Repeat("0,0,0\n", 20<<20/6-1)
	distinctKeys := make([]string, 1000)
	for i := range distinctKeys {
		distinctKeys[i] = fmt.Sprintf(`{"k%d":0}`, i)
	}
	return []hostile{
		// Path traversal and bad path segments, in every place a path part can come from.
		{name: "model name ../..", body: hostileJSON(`{"model_name":"../../../../../../../../escape","model_version":"1","data":[[1]]}`), want: 400},
		{name: "model name ..", body: hostileJSON(`{"model_name":"..","model_version":"1","data":[[1]]}`), want: 400},
		{name: "model name with slash", body: hostileJSON(`{"model_name":"a/../../b","model_version":"1","data":[[1]]}`), want: 400},
		{name: "model name with backslash", body: hostileJSON(`{"model_name":"a\\..\\b","model_version":"1","data":[[1]]}`), want: 400},
		{name: "model name absolute", body: hostileJSON(`{"model_name":"/etc/passwd","model_version":"1","data":[[1]]}`), want: 400},
		{name: "model version ..", body: hostileJSON(`{"model_name":"m","model_version":"..","data":[[1]]}`), want: 400},
		{name: "designation traversal", body: hostileJSON(`{"model_name":"m","model_version":"1","designation":"../../x","data":[[1]]}`), want: 400},
		{name: "webservice traversal", body: hostileJSON(`{"model_name":"m","model_version":"1","webservice":"../../../x","data":[[1]]}`), want: 400},
		{name: "subscription dot", body: hostileJSON(`{"model_name":"m","model_version":"1","subscription_id":".","data":[[1]]}`), want: 400},
		{name: "workspace NUL", body: hostileJSON(`{"model_name":"m","model_version":"1","workspace":"a\u0000b","data":[[1]]}`), want: 400},
		{name: "model name bidi override", body: hostileJSON(`{"model_name":"a\u202eb","model_version":"1","data":[[1]]}`), want: 400},
		{name: "model name trailing dot", body: hostileJSON(`{"model_name":"m.","model_version":"1","data":[[1]]}`), want: 400},
		{name: "model name 129 bytes", body: hostileJSON(`{"model_name":"` + strings.Repeat("m", 129) + `","model_version":"1","data":[[1]]}`), want: 400},
		{name: "query traversal", path: "/v1/collect?model_name=..%2F..%2Fescape&model_version=1", body: hostileJSON(`{"data":[[1]]}`), want: 400},
		{name: "header traversal", header: map[string]string{"X-Modeldata-Model-Name": "../escape", "X-Modeldata-Model-Version": "1"},
			body: hostileJSON(`{"data":[[1]]}`), want: 400},
		{name: "URL path traversal", path: "/v1/../../v1/collect/../../etc", body: hostileJSON(`{"model_name":"m","model_version":"1","data":[[1]]}`), want: 404},
		// Encoding and structure.
		{name: "invalid UTF-8 model name", body: func() []byte { return []byte("{\"model_name\":\"m\xff\",\"model_version\":\"1\",\"data\":[[1]]}") }, want: 400},
		{name: "invalid UTF-8 cell", body: func() []byte {
			return []byte("{\"model_name\":\"m\",\"model_version\":\"1\",\"data\":[[\"\xc3\x28\"]]}")
		}, want: 400},
		{name: "invalid UTF-8 CSV", contentType: "text/csv", path: "/v1/collect?model_name=m&model_version=1",
			body: func() []byte { return []byte("a,b\n1,\xff\n") }, want: 400},
		{name: "deep nesting", body: hostileJSON(`{"model_name":"m","model_version":"1","data":[[` + deep + `]]}`), want: 400},
		{name: "wrong width", body: hostileJSON(`{"model_name":"m","model_version":"1","feature_names":["a","b","c"],"data":[[1,2]]}`), want: 400},
		{name: "ragged rows", body: hostileJSON(`{"model_name":"m","model_version":"1","data":[[1,2],[1,2,3]]}`), want: 400},
		{name: "ragged CSV", contentType: "text/csv", path: "/v1/collect?model_name=m&model_version=1", body: hostileJSON("a,b\n1,2,3\n"), want: 400},
		{name: "ragged CSV with mixed line ends", contentType: "text/csv", path: "/v1/collect?model_name=m&model_version=1", body: hostileJSON("a,b\r1,2\n1,2,3\r\n"), want: 400},
		{name: "CSV header only", contentType: "text/csv", path: "/v1/collect?model_name=m&model_version=1", body: hostileJSON("a,b\r\n"), want: 400},
		{name: "CSV header and blank lines only", contentType: "text/csv", path: "/v1/collect?model_name=m&model_version=1", body: hostileJSON("a,b\r\r\n\n"), want: 400},
		{name: "CSV quote inside an unquoted cell", contentType: "text/csv", path: "/v1/collect?model_name=m&model_version=1", body: hostileJSON("a\rx\"y\r"), want: 400},
		{name: "duplicate feature names", body: hostileJSON(`{"model_name":"m","model_version":"1","feature_names":["a","a"],"data":[[1,2]]}`), want: 400},
		{name: "unknown field", body: hostileJSON(`{"model_name":"m","model_version":"1","data":[[1]],"evil":1}`), want: 400},
		{name: "NaN literal", body: hostileJSON(`{"model_name":"m","model_version":"1","data":[[NaN]]}`), want: 400},
		{name: "number out of range", body: hostileJSON(`{"model_name":"m","model_version":"1","data":[[1e400]]}`), want: 400},
		// Scoring timestamps a log record cannot carry (int64 nanoseconds since 1970, not the epoch itself):
		// refused, never written as another, wrapped time.
		{name: "scoring_timestamp after 2262-04-11", body: hostileJSON(`{"model_name":"m","model_version":"1","scoring_timestamp":"2262-04-12T00:00:00","data":[[1]]}`), want: 400},
		{name: "scoring_timestamp 9999-12-31", body: hostileJSON(`{"model_name":"m","model_version":"1","scoring_timestamp":"9999-12-31T23:59:59.999999","data":[[1]]}`), want: 400},
		{name: "scoring_timestamp 0001-01-01 (the zero time)", body: hostileJSON(`{"model_name":"m","model_version":"1","scoring_timestamp":"0001-01-01T00:00:00","data":[[1]]}`), want: 400},
		{name: "scoring_timestamp the Unix epoch", body: hostileJSON(`{"model_name":"m","model_version":"1","scoring_timestamp":"1970-01-01T00:00:00","data":[[1]]}`), want: 400},
		{name: "scoring_timestamp query parameter before 1677-09-21", path: "/v1/collect?scoring_timestamp=1677-09-21T00:00:00",
			body: hostileJSON(`{"model_name":"m","model_version":"1","data":[[1]]}`), want: 400},
		{name: "row $aml_dc_scoring_timestamp in 2554", body: hostileJSON(`{"model_name":"m","model_version":"1","data":[{"a":1,"$aml_dc_scoring_timestamp":"2554-07-21T23:34:33"}]}`), want: 400},
		{name: "CSV row timestamp 9999-12-31", contentType: "text/csv", path: "/v1/collect?model_name=m&model_version=1",
			body: hostileJSON("a,$aml_dc_scoring_timestamp\n1,9999-12-31T23:59:59\n"), want: 400},
		{name: "v2 ce-time in 5138", path: "/modeldata/log", header: hostileV2Header("m", "99999999999"), body: hostileJSON(`[{"a":1}]`), want: 400},
		{name: "v2 ce-time 0 (the Unix epoch)", path: "/modeldata/log", header: hostileV2Header("m", "0"), body: hostileJSON(`[{"a":1}]`), want: 400},
		// The last day a scoring timestamp can name: written as sent, in that day's folder.
		{name: "scoring_timestamp 2262-04-11", body: hostileJSON(`{"model_name":"tsedge","model_version":"1","scoring_timestamp":"2262-04-11T23:47:16.854775","data":[[1]]}`), want: 200},
		// Integers past int64 keep their digits; a lone surrogate escape is U+FFFD (as encoding/json and Python read it).
		{name: "integers past int64, lone surrogate", body: hostileJSON(`{"model_name":"bignum","model_version":"1","feature_names":["big","int64p1","under","lone"],` +
			`"data":[[123456789012345678901234567890,9223372036854775808,-9223372036854775809,"\ud800"]]}`), want: 200},
		{name: "v2 integer past int64", path: "/modeldata/log", header: hostileV2Header("v2bignum", "1597333456"), body: hostileJSON(`[{"id":18446744073709551616}]`), want: 200},
		{name: "id over 512 bytes", body: hostileJSON(`{"model_name":"m","model_version":"1","request_id":"` + strings.Repeat("r", 513) + `","data":[[1]]}`), want: 400},
		{name: "truncated JSON", body: hostileJSON(`{"model_name":"m","model_version":"1","data":[[1`), want: 400},
		{name: "empty body", body: hostileJSON(``), want: 400},
		{name: "missing data", body: hostileJSON(`{"model_name":"m","model_version":"1"}`), want: 400},
		{name: "1001 columns", body: hostileJSON(`{"model_name":"m","model_version":"1","data":[[` + strings.Join(wide, ",") + `]]}`), want: 413},
		{name: "10001 rows", body: hostileJSON(`{"model_name":"m","model_version":"1","data":[` + manyRows + `]}`), want: 413},
		{name: "100 MB body", body: hostileBig(100 << 20), want: 413},
		{name: "20 MiB of tiny rows [0,0,0],... (refused before decoding)", body: hostileJSON(`{"model_name":"m","model_version":"1","data":[` + tinyRows + `]}`), want: 413},
		{name: "20 MiB CSV of tiny rows", contentType: "text/csv", path: "/v1/collect?model_name=m&model_version=1", body: hostileJSON(tinyCSV), want: 413},
		{name: "1000 rows naming 1000 distinct keys (a million values)", body: hostileJSON(`{"model_name":"m","model_version":"1","data":[` + strings.Join(distinctKeys, ",") + `]}`), want: 413},
		{name: "100 MB gzip bomb (100 KB on the wire)", header: map[string]string{"Content-Encoding": "gzip"}, body: hostileGzip(hostileBig(100 << 20)), want: 413},
		{name: "wrong content type", contentType: "text/plain", body: hostileJSON(`{"model_name":"m","model_version":"1","data":[[1]]}`), want: 415},
		{name: "charset latin1", contentType: "application/json; charset=iso-8859-1", body: hostileJSON(`{"model_name":"m","model_version":"1","data":[[1]]}`), want: 415},
		{name: "GET", method: http.MethodGet, body: hostileJSON(``), want: 405},
		// OTLP door: garbage is refused; a contract record with a bad path part is accepted and quarantined.
		{name: "OTLP garbage protobuf", path: "/v1/logs", contentType: "application/x-protobuf", body: hostileJSON("\xff\xff\xff\xff"), want: 400},
		{name: "OTLP model name traversal (quarantined)", path: "/v1/logs", contentType: "application/x-protobuf",
			body: hostileOTLP("../../../../escape", ""), want: 200},
		{name: "OTLP webservice traversal (quarantined)", path: "/v1/logs", contentType: "application/x-protobuf",
			body: hostileOTLP("m", "../../../../escape"), want: 200},
		// CSV with lone "\r" line ends and a quoted "\r\n": accepted, rows and cell kept exactly.
		{name: "CSV with \\r line ends", contentType: "text/csv", path: "/v1/collect?model_name=crlines&model_version=1",
			body: hostileJSON("a,b\r1,\"x\r\ny\"\r3,4\r"), want: 200},
		// Formula injection: accepted, neutralized in the file (neutralize_formulas: true).
		{name: "formula injection", body: hostileJSON(`{"model_name":"formula","model_version":"1","feature_names":["a","b","c","d"],` +
			`"data":[["=HYPERLINK(\"http://evil\",\"x\")","@SUM(A1:A9)","-12.5","+cmd|' /C calc'!A0"]]}`), want: 200},
	}
}

// TestHarnessBadInput sends the hostile corpus to the built collector (local
// backend, formulas neutralized; collect, v2 and OTLP routes) and checks each
// answer, then the whole folder tree: only the files of the accepted cases
// exist, in their dates' folders, and nothing was written outside the data
// folder; the accepted cases' cells are written as sent.
func TestHarnessBadInput(t *testing.T) {
	collect, otlp, health, v2 := harnessAddr(t), harnessAddr(t), harnessAddr(t), harnessAddr(t)
	base := t.TempDir()
	dataDir := filepath.Join(base, "a", "b", "c", "d", "data")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := harness.CollectorConfig{CollectAddr: collect, V2Addr: v2, OTLPAddr: otlp, HealthAddr: health, LocalDir: dataDir,
		FlushTimeout: "100ms", NeutralizeFormulas: true}
	c := testutil.StartCollector(t, cfg.YAML(), collect, otlp, health)
	client := &http.Client{Timeout: 60 * time.Second}
	for _, h := range hostileCorpus() {
		t.Run(h.name, func(t *testing.T) {
			host := collect
			path := h.path
			if path == "" {
				path = "/v1/collect"
			}
			switch {
			case strings.HasPrefix(path, "/v1/logs"):
				host = otlp
			case strings.HasPrefix(path, "/modeldata/"):
				host = v2
			}
			method := h.method
			if method == "" {
				method = http.MethodPost
			}
			ct := h.contentType
			if ct == "" {
				ct = "application/json"
			}
			req, err := http.NewRequest(method, "http://"+host+path, bytes.NewReader(h.body()))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", ct)
			for k, v := range h.header {
				req.Header.Set(k, v)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode != h.want {
				t.Errorf("status %d, want %d: %s", resp.StatusCode, h.want, answer)
			}
		})
	}
	today := time.Now().UTC().Format("2006/01/02")
	models := "a/b/c/d/data/modeldata/" + harness.PathPrefix + "/"
	want := []string{
		models + "bignum/1/inputs/" + today + "/data.csv",
		models + "crlines/1/inputs/" + today + "/data.csv",
		models + "formula/1/inputs/" + today + "/data.csv",
		models + "tsedge/1/inputs/2262/04/11/data.csv",
		models + "v2bignum/1/inputs/2020/08/13/data.csv",
		"a/b/c/d/data/modeldata/quarantine/" + today + "/data.csv",
	}
	var got []string
	testutil.Poll(20*time.Second, func() bool {
		got = harnessListFiles(t, base)
		return slices.Equal(got, want)
	})
	c.Stop() // a graceful stop drains the queue: late writes have landed now
	if got = harnessListFiles(t, base); !slices.Equal(got, want) {
		t.Fatalf("files below the test folder:\n got %q\nwant %q", got, want)
	}
	files := testutil.ReadCSVTree(t, dataDir)
	rows := func(file string) [][]string { return files[strings.TrimPrefix(file, "a/b/c/d/data/")] }
	// The quoted "\r\n" is written back quoted, byte for byte.
	crlines := rows(want[1])
	raw := string(testutil.ReadFile(t, filepath.Join(base, want[1])))
	if len(crlines) != 3 || crlines[1][0] != "1" || crlines[2][0] != "3" || crlines[2][1] != "4" || !strings.Contains(raw, ",\"x\r\ny\",") {
		t.Errorf("CSV with \\r line ends: rows %q, file %q", crlines, raw)
	}
	formula := rows(want[2])
	if len(formula) != 2 || !slices.Equal(formula[1][:4], []string{`'=HYPERLINK("http://evil","x")`, "'@SUM(A1:A9)", "-12.5", "'+cmd|' /C calc'!A0"}) {
		t.Errorf("formula row not neutralized: %q", formula)
	}
	quarantine := rows(want[5])
	if len(quarantine) != 3 {
		t.Errorf("quarantine file: want header + 2 rows, got %q", quarantine)
	}
	// written is the cell of column name in a file's one row.
	written := func(file [][]string, name string) string {
		if len(file) != 2 || !slices.Contains(file[0], name) {
			return fmt.Sprintf("no %s in %q", name, file)
		}
		return file[1][slices.Index(file[0], name)]
	}
	if got := written(rows(want[3]), contract.ColScoringTimestamp); got != "2262-04-11T23:47:16.854775" {
		t.Errorf("2262-04-11: written %q", got)
	}
	for name, digits := range map[string]string{"big": "123456789012345678901234567890", "int64p1": "9223372036854775808", "under": "-9223372036854775809", "lone": "\ufffd"} {
		if got := written(rows(want[0]), name); got != digits {
			t.Errorf("%s: written %q, want %q", name, got, digits)
		}
	}
	if id, ts := written(rows(want[4]), "id"), written(rows(want[4]), contract.ColScoringTimestamp); id != "18446744073709551616" || ts != "2020-08-13T15:44:16.000000" {
		t.Errorf("v2 integer past int64: id %q, scoring timestamp %q", id, ts)
	}
}

// listFiles lists the regular files below dir, slash-separated and sorted.
func harnessListFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(files)
	return files
}

// TestHarnessAuthRefusesUnauthenticated: with bearer-token auth on both doors,
// every request without the right token gets 401 and writes nothing; the
// right token gets 200 and its rows land.
func TestHarnessAuthRefusesUnauthenticated(t *testing.T) {
	const token = "s3cret-harness-token"
	collect, otlp, health := harnessAddr(t), harnessAddr(t), harnessAddr(t)
	dataDir := t.TempDir()
	cfg := harness.CollectorConfig{CollectAddr: collect, OTLPAddr: otlp, HealthAddr: health, LocalDir: dataDir,
		FlushTimeout: "100ms", BearerToken: token}
	col := testutil.StartCollector(t, cfg.YAML(), collect, otlp, health)
	rows := harness.Rows{Run: harness.NewRunID(), Features: 3, RowsPerRequest: 2}
	rows.Defaults()
	otlpReq, err := rows.OTLPBody(0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	doors := []struct {
		name, url, contentType string
		body                   []byte
	}{
		{"collect", "http://" + collect + "/v1/collect", "application/json", rows.CollectBody(0)},
		{"otlp", "http://" + otlp + "/v1/logs", "application/x-protobuf", otlpReq},
	}
	auths := []struct {
		name   string
		header map[string]string
	}{
		{"no header", nil},
		{"wrong token", map[string]string{"Authorization": "Bearer wrong"}},
		{"token prefix", map[string]string{"Authorization": "Bearer " + token[:len(token)-1]}},
		{"token with suffix", map[string]string{"Authorization": "Bearer " + token + "x"}},
		{"empty bearer", map[string]string{"Authorization": "Bearer "}},
		{"no scheme", map[string]string{"Authorization": token}},
		{"basic", map[string]string{"Authorization": "Basic c3VzZXI6" + token}},
		{"token in another header", map[string]string{"X-Api-Key": token}},
		{"token in the query", nil},
	}
	client := &http.Client{Timeout: 30 * time.Second}
	send := func(url, ct string, body []byte, header map[string]string) int {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, d := range doors {
		for _, a := range auths {
			url := d.url
			if a.name == "token in the query" {
				url += "?access_token=" + token
			}
			if code := send(url, d.contentType, d.body, a.header); code != http.StatusUnauthorized {
				t.Errorf("%s, %s: status %d, want 401", d.name, a.name, code)
			}
		}
		// 100 MB without a token: refused before the body matters.
		if code := send(d.url, d.contentType, hostileBig(100<<20)(), nil); code != http.StatusUnauthorized {
			t.Errorf("%s, 100 MB unauthenticated: status %d, want 401", d.name, code)
		}
	}
	col.Stop() // a graceful stop drains the queue: anything accepted has been written now
	if files := harnessListFiles(t, dataDir); len(files) != 0 {
		t.Fatalf("unauthenticated requests wrote %q", files)
	}
	col.Restart(collect, otlp, health)
	// The right token: both doors accepted and the rows land.
	m, rep := loadAndVerify(t, harness.LoadConfig{Rows: rows,
		Targets:  map[harness.Door]string{harness.DoorCollect: "http://" + collect, harness.DoorOTLP: "http://" + otlp},
		Requests: 4, Concurrency: 1, NoRetry: true, MaxDuration: time.Minute,
		Header: http.Header{"Authorization": {"Bearer " + token}}}, dirVerifier(dataDir), 30*time.Second, col.Stop)
	assertZeroLoss(t, m, rep)
}
