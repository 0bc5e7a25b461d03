package modeldatareceiver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/pieces"
)

// pieceConsumer keeps each piece it takes; refuse decides, by the piece's
// place among the calls (0-based), whether to refuse it instead.
type pieceConsumer struct {
	mu     sync.Mutex
	calls  int
	pieces []plog.Logs
	refuse func(call int) error
}

func (c *pieceConsumer) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }
func (c *pieceConsumer) ConsumeLogs(_ context.Context, ld plog.Logs) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	call := c.calls
	c.calls++
	if c.refuse != nil {
		if err := c.refuse(call); err != nil {
			return err
		}
	}
	c.pieces = append(c.pieces, ld)
	return nil
}

// rows is every record taken, in order, with the size of each piece.
func (c *pieceConsumer) rows() (rows []plog.LogRecord, sizes []int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ld := range c.pieces {
		size := 0
		for _, rl := range ld.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					rows = append(rows, lr)
					for _, v := range lr.Body().Map().All() {
						size += len(v.Str())
					}
				}
			}
		}
		sizes = append(sizes, size)
	}
	return rows, sizes
}

// cellsOf is a row's number of cells and its first cell.
func cellsOf(lr plog.LogRecord) (int, string) {
	m := lr.Body().Map()
	for _, v := range m.All() {
		return m.Len(), v.Str()
	}
	return 0, ""
}

// largeBodies are requests of rows × features cells of cell bytes, with
// each cell naming its row, on every route.
func largeBodies(rows, features, cell int) map[string]struct{ path, contentType, body string } {
	value := func(r int) string {
		v := fmt.Sprintf("r%d-", r)
		return v + strings.Repeat("x", cell-len(v))
	}
	names := make([]string, features)
	for k := range names {
		names[k] = fmt.Sprintf("f%d", k)
	}
	var js, csv, v2, batch strings.Builder
	csv.WriteString(strings.Join(names, ",") + "\n")
	js.WriteString(`{"model_name":"m","model_version":"1","data":[`)
	v2.WriteString("[")
	for r := 0; r < rows; r++ {
		cells := make([]string, features)
		members := make([]string, features)
		for k := range cells {
			cells[k] = `"` + value(r) + `"`
			members[k] = fmt.Sprintf(`"%s":"%s"`, names[k], value(r))
		}
		sep := ","
		if r == 0 {
			sep = ""
		}
		js.WriteString(sep + "[" + strings.Join(cells, ",") + "]")
		v2.WriteString(sep + "{" + strings.Join(members, ",") + "}")
		csv.WriteString(strings.Repeat(value(r)+",", features-1) + value(r) + "\n")
		batch.WriteString(`{"model_name":"m","model_version":"1","data":[[` + strings.Join(cells, ",") + "]]}\n")
	}
	js.WriteString("]}")
	v2.WriteString("]")
	return map[string]struct{ path, contentType, body string }{
		"collect JSON": {"", "application/json", js.String()},
		"collect CSV":  {"?model_name=m&model_version=1", "text/csv", csv.String()},
		"batch":        {"/batch", ndjsonContentType, batch.String()},
		"v2":           {"v2", "application/json", v2.String()},
	}
}

func startPieceReceiver(t *testing.T, next consumer.Logs, retry time.Duration) *testReceiver {
	t.Helper()
	r := startReceiver(t, func(cfg *Config) {
		v2 := cfg.AzureMLV2.GetOrInsertDefault()
		v2.ModelName, v2.ModelVersion = "m", "1"
	}, next, nil)
	r.rcv.pieceRetry = retry
	return r
}

func (r *testReceiver) postTo(t *testing.T, path, contentType, body string, headers map[string]string) response {
	t.Helper()
	if path == "v2" {
		headers["ce-type"] = "azureml.inference.model_inputs"
		return post(t, r.v2url, contentType, body, headers)
	}
	return post(t, r.url+path, contentType, body, headers)
}

// TestLargeRequestInPieces: a request larger than a piece reaches the
// pipeline in pieces of about pieces.Bytes, every row once and in order, and
// a keyed request's ordinals run on across its pieces.
func TestLargeRequestInPieces(t *testing.T) {
	const rows, features, cell = 1200, 20, 200 // about 4.6 MiB of values
	for route, b := range largeBodies(rows, features, cell) {
		t.Run(route, func(t *testing.T) {
			next := &pieceConsumer{}
			r := startPieceReceiver(t, next, time.Second)
			resp := r.postTo(t, b.path, b.contentType, b.body, map[string]string{idempotencyKeyHeader: "k-" + strings.ReplaceAll(route, " ", "-")})
			if resp.status != http.StatusOK {
				t.Fatalf("status %d: %s", resp.status, resp.body)
			}
			got, sizes := next.rows()
			if len(got) != rows {
				t.Fatalf("%d rows reached the pipeline, want %d", len(got), rows)
			}
			if len(sizes) < 4 {
				t.Errorf("%d pieces, want the request split (piece values %v)", len(sizes), sizes)
			}
			for i, size := range sizes {
				if size > pieces.Bytes {
					t.Errorf("piece %d holds %d bytes of values, over %d", i, size, pieces.Bytes)
				}
			}
			for i, lr := range got {
				if n, first := cellsOf(lr); n != features || !strings.HasPrefix(first, fmt.Sprintf("r%d-", i)) {
					t.Fatalf("row %d has %d cells, the first %.12q, want row %d's %d", i, n, first, i, features)
				}
				if _, ord, ok := contract.IdempotencyOf(lr); !ok || ord != int64(i) {
					t.Fatalf("row %d has ordinal %d (%v), want %d", i, ord, ok, i)
				}
			}
		})
	}
}

// TestPieceRefused: a refusal of the first piece refuses the request with
// nothing queued; a later piece refused for a while is offered again (each
// time as the request built it) until taken, or until pieceRetry ends and
// the request gets the refusal.
func TestPieceRefused(t *testing.T) {
	full := errors.New("sending queue is full")
	const rows, features, cell = 600, 20, 200
	b := largeBodies(rows, features, cell)["collect JSON"]
	for _, tc := range []struct {
		name   string
		refuse func(call int) error
		retry  time.Duration
		status int
		rows   int // taken
	}{
		{"first piece refused", func(call int) error { return full }, time.Minute, http.StatusServiceUnavailable, 0},
		{"second piece refused twice, then taken", func(call int) error {
			if call == 1 || call == 2 {
				return full
			}
			return nil
		}, time.Minute, http.StatusOK, rows},
		{"later pieces refused for longer than pieceRetry", func(call int) error {
			if call > 0 {
				return full
			}
			return nil
		}, 200 * time.Millisecond, http.StatusServiceUnavailable, -1},
		{"a permanent refusal is not offered again", func(call int) error {
			if call > 0 {
				return consumererror.NewPermanent(errors.New("bad rows"))
			}
			return nil
		}, time.Minute, http.StatusInternalServerError, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			next := &pieceConsumer{refuse: func(call int) error { calls.Add(1); return tc.refuse(call) }}
			r := startPieceReceiver(t, next, tc.retry)
			resp := r.postTo(t, b.path, b.contentType, b.body, map[string]string{})
			if resp.status != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.status, tc.status, resp.body)
			}
			got, sizes := next.rows()
			switch {
			case tc.rows >= 0 && len(got) != tc.rows:
				t.Errorf("%d rows taken, want %d", len(got), tc.rows)
			case tc.rows < 0 && len(sizes) != 1:
				t.Errorf("%d pieces taken, want the first only", len(sizes))
			}
			for i, lr := range got {
				if _, first := cellsOf(lr); !strings.HasPrefix(first, fmt.Sprintf("r%d-", i)) {
					t.Fatalf("row %d is not the request's row %d", i, i)
				}
			}
		})
	}
}

// TestKeyedResendKeepsIDs: a keyed request refused part way leaves its first
// pieces queued; its resend with the same key gets the ids the first send
// gave its rows (derived from the key), on every route that generates them,
// so one request's rows never carry two ids.
func TestKeyedResendKeepsIDs(t *testing.T) {
	full := errors.New("sending queue is full")
	bodies := largeBodies(600, 20, 200)
	for _, route := range []string{"collect JSON", "collect CSV", "batch", "v2"} {
		t.Run(route, func(t *testing.T) {
			b := bodies[route]
			var down atomic.Bool
			down.Store(true)
			next := &pieceConsumer{refuse: func(call int) error {
				if call > 0 && down.Load() {
					return full
				}
				return nil
			}}
			r := startPieceReceiver(t, next, 100*time.Millisecond)
			key := map[string]string{idempotencyKeyHeader: "resend-" + strings.ReplaceAll(route, " ", "-")}
			if resp := r.postTo(t, b.path, b.contentType, b.body, key); resp.status != http.StatusServiceUnavailable {
				t.Fatalf("first send: status %d, want 503: %s", resp.status, resp.body)
			}
			first, _ := next.rows()
			down.Store(false)
			resp := r.postTo(t, b.path, b.contentType, b.body, key)
			if resp.status != http.StatusOK {
				t.Fatalf("resend: status %d: %s", resp.status, resp.body)
			}
			all, _ := next.rows()
			if len(first) == 0 || len(all) != len(first)+600 {
				t.Fatalf("%d rows queued by the first send, %d in all, want some and 600 more", len(first), len(all))
			}
			ids := map[string]bool{}
			for _, lr := range all {
				row, _ := contract.ReadRow(lr)
				ids[row.CorrelationID+" "+row.RequestID] = true
			}
			if route == "batch" {
				if len(ids) != 600 { // one group a line, each its own ids
					t.Fatalf("%d distinct ids over 600 batch lines sent twice, want 600", len(ids))
				}
				return
			}
			if len(ids) != 1 {
				t.Fatalf("the request's rows carry %d distinct (correlation, request) ids, want 1: %v", len(ids), ids)
			}
			if answered, ok := resp.json(t)["correlation_id"]; ok {
				for id := range ids {
					if !strings.HasPrefix(id, answered.(string)+" ") {
						t.Errorf("answered correlation id %v, rows carry %s", answered, id)
					}
				}
			}
		})
	}
}

// TestKeyedResendSamplesAlike: with a sampling rate, the rows a keyed
// request keeps are the same on every send (the request ids the sampling
// decides by derive from the key), so the ordinals its pieces carry name the
// same rows and the exporter's skipping of rows written already is right.
// Each send goes to a receiver of its own, as a resend after a restart does.
func TestKeyedResendSamplesAlike(t *testing.T) {
	b := largeBodies(400, 20, 200)["batch"]
	key := map[string]string{idempotencyKeyHeader: "sampled-batch"}
	var kept [2][]string
	for send := range kept {
		next := &pieceConsumer{}
		r := startReceiver(t, func(cfg *Config) { cfg.SamplingRate = 0.5 }, next, nil)
		if resp := post(t, r.url+"/batch", ndjsonContentType, b.body, key); resp.status != http.StatusOK {
			t.Fatalf("send %d: status %d: %s", send, resp.status, resp.body)
		}
		rows, _ := next.rows()
		for _, lr := range rows {
			_, first := cellsOf(lr)
			_, ord, _ := contract.IdempotencyOf(lr)
			kept[send] = append(kept[send], fmt.Sprintf("%d %.8s", ord, first))
		}
	}
	if len(kept[0]) == 0 || len(kept[0]) == 400 || !slices.Equal(kept[0], kept[1]) {
		t.Fatalf("sends kept %d and %d rows, want the same rows under the same ordinals, some sampled out", len(kept[0]), len(kept[1]))
	}
}
