package harness

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func testManifest() *Manifest {
	m := &Manifest{Rows: Rows{Run: "runX", Features: 7, RowsPerRequest: 3}, Requests: 4, NotAcked: []int{3}}
	m.Defaults()
	return m
}

// csvOf writes the rows (req, i) as the exporter would.
func csvOf(m *Manifest, header []string, rows [][2]int, edit func(rec []string) []string) string {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(header)
	for _, ri := range rows {
		rec := []string{m.RowID(ri[0], ri[1])}
		for k := 1; k < m.Features; k++ {
			rec = append(rec, m.Cell(ri[0], ri[1], k))
		}
		rec = append(rec, "c", "2026-11-24T19:40:01.123456", "1440", "a/b/c", "svc", m.Model, m.Version, m.RequestID(ri[0]))
		if edit != nil {
			rec = edit(rec)
		}
		_ = w.Write(rec)
	}
	w.Flush()
	return b.String()
}

func TestVerifierCounts(t *testing.T) {
	m := testManifest()
	all := [][2]int{{0, 0}, {0, 1}, {0, 2}, {1, 0}, {1, 1}, {1, 2}, {2, 0}, {2, 1}, {2, 2}}
	tests := []struct {
		name  string
		files []string
		want  Report
	}{
		{"all once", []string{csvOf(m, m.Header(), all, nil)},
			Report{Expected: 9, Found: 9}},
		{"one missing, one doubled across files", []string{csvOf(m, m.Header(), all[:8], nil), csvOf(m, m.Header(), all[7:8], nil)},
			Report{Expected: 9, Found: 8, Missing: 1, Duplicated: 1, DuplicateRequests: []int{2}}},
		{"unacked request landed", []string{csvOf(m, m.Header(), append(all, [2]int{3, 0}), nil)},
			Report{Expected: 9, Found: 9, Unexpected: 1}},
		{"a wrong cell", []string{csvOf(m, m.Header(), all, func(rec []string) []string {
			if rec[0] == "runX.1.1" {
				rec[2] = "0.5"
			}
			return rec
		})}, Report{Expected: 9, Found: 8, Missing: 1, Malformed: 1}},
		{"wrong request id", []string{csvOf(m, m.Header(), all, func(rec []string) []string {
			if rec[0] == "runX.2.2" {
				rec[len(rec)-1] = "other"
			}
			return rec
		})}, Report{Expected: 9, Found: 8, Missing: 1, Malformed: 1}},
		{"rows in a file with another header", []string{csvOf(m, append([]string{"x"}, m.Header()[1:]...), all[:1], nil),
			csvOf(m, m.Header(), all[1:], nil)}, Report{Expected: 9, Found: 8, Missing: 1, Foreign: 1}},
		{"quarantine-like extra column", []string{csvOf(m, append(m.Header(), "$aml_quarantine_reason"), all[:1], func(rec []string) []string {
			return append(rec, "why")
		}), csvOf(m, m.Header(), all[1:], nil)}, Report{Expected: 9, Found: 8, Missing: 1, Malformed: 1}},
		{"other run", []string{csvOf(&Manifest{Rows: Rows{Run: "runY", Features: 7, RowsPerRequest: 3}}, m.Header(), all, nil),
			csvOf(m, m.Header(), all, nil)}, Report{Expected: 9, Found: 9, Foreign: 9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := NewVerifier(m)
			for i, f := range tt.files {
				v.AddCSV(string(rune('a'+i)), strings.NewReader(f))
			}
			got := v.Report()
			tt.want.Run, tt.want.Files = "runX", len(tt.files)
			got.MissingSample, got.MalformedSample, got.DuplicateSample = nil, nil, nil
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", *got, tt.want)
			}
			if got.OK() != (tt.want.Missing == 0 && tt.want.Duplicated == 0 && tt.want.Malformed == 0) {
				t.Errorf("OK() = %v", got.OK())
			}
		})
	}
}

func TestCollectBodyIsJSON(t *testing.T) {
	m := testManifest()
	var body struct {
		RequestID    string   `json:"request_id"`
		FeatureNames []string `json:"feature_names"`
		Data         [][]any  `json:"data"`
	}
	if err := json.Unmarshal(m.CollectBody(2), &body); err != nil {
		t.Fatal(err)
	}
	if body.RequestID != "runX-q2" || len(body.Data) != 3 || len(body.Data[0]) != 7 || body.Data[1][0] != "runX.2.1" {
		t.Fatalf("body %+v", body)
	}
}

func TestOTLPJSONVerifier(t *testing.T) {
	sdk := &Manifest{Rows: Rows{Run: "runS", Features: 50, RowsPerRequest: 3, Shape: ShapeSDK}, Requests: 3}
	sdk.Defaults()
	for _, m := range []*Manifest{testManifest(), sdk} {
		var b bytes.Buffer
		for req := 0; req < 3; req++ {
			line, err := m.OTLPJSONBody(req, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			b.Write(line)
			b.WriteByte('\n')
		}
		v := NewVerifier(m)
		if err := v.AddOTLPJSON("x", &b); err != nil {
			t.Fatal(err)
		}
		if rep := v.Report(); !rep.OK() || rep.Found != 9 {
			t.Fatalf("shape %q: %s", m.Shape, rep)
		}
	}
}

func TestConfigYAMLMentionsEverything(t *testing.T) {
	y := CollectorConfig{CollectAddr: "127.0.0.1:1", OTLPAddr: "127.0.0.1:2", LocalDir: "/d", QueueDir: "/q",
		BearerToken: "tok", PprofAddr: "127.0.0.1:3", FlushTimeout: "1s"}.YAML()
	for _, want := range []string{"file_storage", "bearertokenauth", "authenticator: bearertokenauth", "pprof", "storage: file_storage", "idempotency:", "flush_timeout: 1s"} {
		if !strings.Contains(y, want) {
			t.Errorf("config lacks %q:\n%s", want, y)
		}
	}
}

func TestSDKShapeColumns(t *testing.T) {
	for _, features := range []int{10, 50} {
		r := Rows{Run: "runS", Features: features, RowsPerRequest: 2, Shape: ShapeSDK}
		r.Defaults()
		l := r.layout()
		if len(l.names) != features || !slices.IsSorted(l.names) || !slices.Contains(l.names, RowIDColumn) {
			t.Errorf("%d features: columns %v", features, l.names)
		}
		depth := 0
		for _, c := range l.sdk {
			depth = max(depth, len(c.path))
		}
		if want := map[int]int{10: 2, 50: 3}[features]; depth != want {
			t.Errorf("%d features: nesting depth %d, want %d", features, depth, want)
		}
		rec := r.Logs(1, time.Now()).ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(1)
		if v, _ := rec.Attributes().Get("request.id"); v.Str() != "runS-q1" {
			t.Errorf("request.id %q", v.Str())
		}
		for c, name := range l.names {
			v, ok := lookupPath(rec.Body().Map(), name, l.sdk[c].path)
			if !ok || formatCell(v.AsRaw()) != r.cell(&l, 1, 1, c) {
				t.Errorf("%d features: column %s = %v, want %s", features, name, v.AsRaw(), r.cell(&l, 1, 1, c))
			}
		}
	}
}

// TestLoadIdempotencyKeys: with IdempotencyKeys every send of a request
// carries the same key (here: a 503 and then a 200), and no two requests
// share one.
func TestLoadIdempotencyKeys(t *testing.T) {
	for _, keys := range []bool{false, true} {
		var mu sync.Mutex
		sends := map[string]int{}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			mu.Lock()
			key := r.Header.Get("Idempotency-Key")
			sends[key]++
			first := sends[key] == 1
			mu.Unlock()
			if first && key != "" {
				w.WriteHeader(http.StatusServiceUnavailable) // the first send of each request
			}
		}))
		m, err := Load(context.Background(), LoadConfig{Rows: Rows{Run: "runK", Features: 3, RowsPerRequest: 2},
			Targets: map[Door]string{DoorCollect: srv.URL}, Requests: 6, IdempotencyKeys: keys})
		srv.Close()
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int{"": 6}
		if keys {
			want = map[string]int{}
			for req := range 6 {
				want[m.RequestID(req)] = 2
			}
		}
		if len(m.NotAcked) != 0 || !reflect.DeepEqual(sends, want) {
			t.Errorf("keys %v: sends per key %v, want %v (not acked %v)", keys, sends, want, m.NotAcked)
		}
	}
}
