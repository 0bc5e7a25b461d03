package modeldatablobexporter

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"go.opentelemetry.io/collector/consumer/consumererror"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// answerLostStore is a local store whose first append of rows fails as a
// network error would: after the rows landed (the answer was lost) or
// before (the request was).
type answerLostStore struct {
	*localStore
	landed bool
	failed bool
}

func (s *answerLostStore) appendAt(ctx context.Context, name string, pos int64, data []byte) error {
	if s.failed || pos == 0 { // position 0 is the header
		return s.localStore.appendAt(ctx, name, pos, data)
	}
	s.failed = true
	if s.landed {
		if err := s.localStore.appendAt(ctx, name, pos, data); err != nil {
			return err
		}
	}
	return errors.New("read tcp 127.0.0.1:10000: connection reset by peer")
}

// TestRetryOfAnAppendWithNoAnswer: a push whose append got no answer is
// retried, possibly after another push (another queue consumer) appended to
// the same file; its rows must end up in the file exactly once.
func TestRetryOfAnAppendWithNoAnswer(t *testing.T) {
	first := []testRow{
		{model: "m", version: "1", ts: day, requestID: "r1", features: [][2]any{{"a", 1}}},
		{model: "m", version: "1", ts: day, requestID: "r2", features: [][2]any{{"a", 2}}},
	}
	other := testRow{model: "m", version: "1", ts: day, requestID: "r3", features: [][2]any{{"a", 3}}}
	tests := []struct {
		name           string
		landed         bool
		otherFirst     bool
		wantOrder      []string
		wantDupAvoided int64
	}{
		{name: "landed, retried at once", landed: true, wantOrder: []string{"r1", "r2", "r3"}, wantDupAvoided: 1},
		{name: "landed, another push before the retry", landed: true, otherFirst: true, wantOrder: []string{"r1", "r2", "r3"}, wantDupAvoided: 1},
		{name: "lost, retried at once", wantOrder: []string{"r1", "r2", "r3"}},
		{name: "lost, another push before the retry", otherFirst: true, wantOrder: []string{"r3", "r1", "r2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := localConfig(t)
			e, tt := newTestExporterTel(t, cfg)
			e.st = &answerLostStore{localStore: e.st.(*localStore), landed: tc.landed}
			e.w = newWriter(e.st, cfg, e.tel)

			err := e.push(context.Background(), makeLogs(first...))
			var failed consumererror.Logs
			if !errors.As(err, &failed) || consumererror.IsPermanent(err) {
				t.Fatalf("first push: want a retryable error with the rows to retry, got %v", err)
			}
			if tc.otherFirst {
				push(t, e, other)
			}
			if err := e.push(context.Background(), failed.Data()); err != nil {
				t.Fatalf("retry: %v", err)
			}
			if !tc.otherFirst {
				push(t, e, other)
			}

			files := testutil.ReadCSVTree(t, cfg.Local.Directory)
			if len(files) != 1 {
				t.Fatalf("want one file, got %d: %v", len(files), files)
			}
			var order []string
			for _, records := range files {
				for _, r := range records[1:] {
					order = append(order, r[len(r)-1])
				}
			}
			if !reflect.DeepEqual(order, tc.wantOrder) {
				t.Errorf("request ids in the file: %v, want %v", order, tc.wantOrder)
			}
			if n := counter(t, tt, "otelcol_modeldatablob_duplicates_avoided"); n != tc.wantDupAvoided {
				t.Errorf("duplicates avoided: %d, want %d", n, tc.wantDupAvoided)
			}
		})
	}
}
