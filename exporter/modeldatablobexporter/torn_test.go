package modeldatablobexporter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// lineEndStore is a store on which something happens to the first append of
// a lone line end: another writer ends the torn line just before ours
// (raced), or ours lands and its answer is lost (lost).
type lineEndStore struct {
	store
	raced, lost bool
	done        bool
}

func (s *lineEndStore) appendAt(ctx context.Context, name string, pos int64, data []byte) error {
	if s.done || pos == 0 || len(data) > 2 || !strings.HasSuffix(string(data), "\n") {
		return s.store.appendAt(ctx, name, pos, data)
	}
	s.done = true
	if s.raced {
		if err := s.store.appendAt(ctx, name, pos, data); err != nil {
			return err
		}
		return s.store.appendAt(ctx, name, pos, data)
	}
	if err := s.store.appendAt(ctx, name, pos, data); err != nil || !s.lost {
		return err
	}
	return errors.New("read tcp 127.0.0.1:10000: connection reset by peer")
}

func TestTornLastLine(t *testing.T) {
	testTornLastLine(t, func(*testing.T) *Config { return createDefaultConfig() })
}

func TestAzuriteTornLastLine(t *testing.T) {
	az := testutil.StartAzurite(t)
	testTornLastLine(t, func(*testing.T) *Config { return azuriteConfig(az) })
}

// testTornLastLine: a file another writer left with its last line torn (no
// line end) gets one line end before our rows, exactly once, so that its
// torn line stays alone and every row of ours is whole. Files are checked
// byte for byte against what the same pushes write to a new file.
func testTornLastLine(t *testing.T, backend func(*testing.T) *Config) {
	const csvFile, jsonlFile = dayDir + "inputs/2018/12/31/data.csv", "modelDataCollector/local/local/model_inputs/2018/12/31/23/i.jsonl"
	tests := []struct {
		name        string
		mdc         bool
		tail        string // what the file holds after the header
		lineEnd     string // what must be added after it
		raced, lost bool
	}{
		{name: "torn row", tail: "old.1,c,1\r\nold.2,c", lineEnd: "\r\n"},
		{name: "torn between CR and LF", tail: "old.1,c,1\r\nold.2,c,2\r", lineEnd: "\n"},
		{name: "torn, another writer ends the line first", tail: "old.2,c", lineEnd: "\r\n", raced: true},
		{name: "torn, the line end's answer lost", tail: "old.2,c", lineEnd: "\r\n", lost: true},
		{name: "whole rows", tail: "old.1,c,1\r\n"},
		{name: "header only"},
		{name: "mdc torn record", mdc: true, tail: "{\"id\":\"old.1\"}\n{\"id\":\"ol", lineEnd: "\n"},
		{name: "mdc torn, the line end's answer lost", mdc: true, tail: "{\"id\":\"ol", lineEnd: "\n", lost: true},
		{name: "mdc whole records", mdc: true, tail: "{\"id\":\"old.1\"}\n"},
	}
	rows := []testRow{
		{model: "m", version: "1", designation: "inputs", correlationID: "new.1", ts: day, features: [][2]any{{"a", int64(1)}, {"b", "x"}}},
		{model: "m", version: "1", designation: "inputs", correlationID: "new.2", ts: day, features: [][2]any{{"a", int64(2)}, {"b", "y"}}},
	}
	var containers atomic.Int64
	config := func(t *testing.T, mdc bool) *Config {
		cfg := backend(t)
		cfg.Local.Directory = t.TempDir()
		cfg.Container = fmt.Sprintf("torn-%d", containers.Add(1))
		if mdc {
			cfg.Format, cfg.MDC.InstanceID = FormatMDCJSONL, "i"
		}
		return cfg
	}
	read := func(t *testing.T, e *blobExporter, name string) string {
		t.Helper()
		p, err := e.store.props(context.Background(), name)
		if err != nil || !p.exists {
			t.Fatalf("%s: exists %v, %v", name, p.exists, err)
		}
		data, err := e.store.readAt(context.Background(), name, 0, p.size)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := csvFile
			if tc.mdc {
				file = jsonlFile
			}
			// What the rows are in a new file: the header (CSV), then body.
			ref := newTestExporter(t, config(t, tc.mdc))
			push(t, ref, rows...)
			fresh := read(t, ref, file)
			header := ""
			if !tc.mdc {
				header = fresh[:strings.Index(fresh, "\r\n")+2]
			}
			body := fresh[len(header):]

			cfg := config(t, tc.mdc)
			e := newTestExporter(t, cfg)
			ctx := context.Background()
			old := header + tc.tail
			if err := e.store.create(ctx, file); err != nil {
				t.Fatal(err)
			}
			if err := e.store.appendAt(ctx, file, 0, []byte(old)); err != nil {
				t.Fatal(err)
			}
			st := &lineEndStore{store: e.store, raced: tc.raced, lost: tc.lost}
			e.store, e.w.store = st, st
			if tc.lost {
				if err := e.push(ctx, makeLogs(rows...)); err == nil {
					t.Fatal("the lost answer must fail the push")
				}
			}
			push(t, e, rows...)
			// A restart appends again: the file ends with a line end now.
			push(t, newTestExporter(t, cfg), rows...)

			if got, want := read(t, e, file), old+tc.lineEnd+body+body; got != want {
				t.Fatalf("file:\ngot  %q\nwant %q", got, want)
			}
		})
	}
}
