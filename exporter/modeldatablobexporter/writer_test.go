package modeldatablobexporter

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"reflect"
	"testing"

	"go.opentelemetry.io/collector/consumer/consumererror"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// answerLostStore is a local store whose first append of rows fails as a
// network error would: after the rows landed (the answer was lost) or
// before (the request was). With shared, the file is shared with another
// writer: the first conditional append of rows loses a race to it, so the
// failing append is one sent without a position.
type answerLostStore struct {
	*localStore
	landed, shared bool
	failed, raced  bool
}

func (s *answerLostStore) appendAt(ctx context.Context, name string, pos int64, data []byte) error {
	if pos > 0 && s.shared && !s.raced {
		s.raced = true
		return errRaceLost
	}
	if s.shared || s.failed || pos == 0 { // position 0 is the header
		return s.localStore.appendAt(ctx, name, pos, data)
	}
	s.failed = true
	return s.fail(func() error { return s.localStore.appendAt(ctx, name, pos, data) })
}

func (s *answerLostStore) appendAny(ctx context.Context, name string, data []byte) (appended, error) {
	if s.failed {
		return s.localStore.appendAny(ctx, name, data)
	}
	s.failed = true
	return appended{}, s.fail(func() error { _, err := s.localStore.appendAny(ctx, name, data); return err })
}

// fail lands the append first when the answer is the part lost.
func (s *answerLostStore) fail(land func() error) error {
	if s.landed {
		if err := land(); err != nil {
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
		landed, shared bool
		otherFirst     bool
		wantOrder      []string
		wantDupAvoided int64
	}{
		{name: "landed, retried at once", landed: true, wantOrder: []string{"r1", "r2", "r3"}, wantDupAvoided: 1},
		{name: "landed, another push before the retry", landed: true, otherFirst: true, wantOrder: []string{"r1", "r2", "r3"}, wantDupAvoided: 1},
		{name: "lost, retried at once", wantOrder: []string{"r1", "r2", "r3"}},
		{name: "lost, another push before the retry", otherFirst: true, wantOrder: []string{"r3", "r1", "r2"}},
		{name: "shared file, landed, retried at once", landed: true, shared: true, wantOrder: []string{"r1", "r2", "r3"}, wantDupAvoided: 1},
		{name: "shared file, landed, another push before the retry", landed: true, shared: true, otherFirst: true, wantOrder: []string{"r1", "r2", "r3"}, wantDupAvoided: 1},
		{name: "shared file, lost, retried at once", shared: true, wantOrder: []string{"r1", "r2", "r3"}},
		{name: "shared file, lost, another push before the retry", shared: true, otherFirst: true, wantOrder: []string{"r3", "r1", "r2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := localConfig(t)
			e, tt := newTestExporterTel(t, cfg)
			e.store = &answerLostStore{localStore: e.store.(*localStore), landed: tc.landed, shared: tc.shared}
			e.w = newWriter(e.store, cfg, e.tel)

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

// TestFindAppendSentWithoutPosition: an append sent without a position is
// found at whichever line start it landed after the position it was sent
// at, also past a read window, and only with its own bytes.
func TestFindAppendSentWithoutPosition(t *testing.T) {
	ours := []byte("r1,alpha\nr2,beta\n")
	lookalike := []byte("r1,alphA\nr2,beta\n") // same line ends, other bytes
	filler := bytes.Repeat([]byte("other writer's row, 32 bytes ..\n"), (scanWindow+scanWindow/2)/32)
	longLine := append(bytes.Repeat([]byte("x"), scanWindow+100), '\n')
	tests := []struct {
		name      string
		file      [][]byte
		wantFound bool
		wantAt    int
	}{
		{name: "at the position sent", file: [][]byte{ours, filler}, wantFound: true, wantAt: 0},
		{name: "after other writers' appends", file: [][]byte{lookalike, []byte("x\n"), ours}, wantFound: true, wantAt: len(lookalike) + 2},
		{name: "across a read window", file: [][]byte{filler, ours}, wantFound: true, wantAt: len(filler)},
		{name: "after a line longer than a window", file: [][]byte{longLine, ours}, wantFound: true, wantAt: len(longLine)},
		{name: "only a lookalike", file: [][]byte{filler, lookalike}},
		{name: "not landed", file: [][]byte{[]byte("x\n")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := localConfig(t)
			st := newLocalStore(cfg)
			if err := st.start(context.Background()); err != nil {
				t.Fatal(err)
			}
			w := newWriter(st, cfg, nil)
			header := []byte("id,name\n")
			if err := st.create(context.Background(), "f.csv"); err != nil {
				t.Fatal(err)
			}
			for _, part := range append([][]byte{header}, tc.file...) {
				if _, err := st.appendAny(context.Background(), "f.csv", part); err != nil {
					t.Fatal(err)
				}
			}
			got, at, found, err := w.find(context.Background(), "f.csv",
				spot{pos: int64(len(header)), anywhere: true, ends: lineEnds(ours), sum: sha256.Sum256(ours)})
			if err != nil || found != tc.wantFound {
				t.Fatalf("found %v (err %v), want %v", found, err, tc.wantFound)
			}
			if found && (at != int64(len(header)+tc.wantAt) || !bytes.Equal(got, ours)) {
				t.Errorf("found %q at %d, want at %d", got, at, len(header)+tc.wantAt)
			}
		})
	}
}
