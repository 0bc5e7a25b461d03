package modeldatablobexporter

import (
	"bytes"
	"testing"
)

// TestRecycledLineStorage checks that a push encoding on the line storage
// of an earlier one writes the same lines as on fresh storage.
func TestRecycledLineStorage(t *testing.T) {
	cfg := createDefaultConfig()
	big, small := makeLogs(benchRows(50, 20)...), makeLogs(benchRows(3, 10)...)
	fresh := newEncoder(cfg).encode(small)
	want := bytes.Clone(fresh.batches[0].body.Bytes())

	first := newEncoder(cfg).encode(big)
	first.recycle()
	again := newEncoder(cfg).encode(small)
	b := again.batches[0]
	if b.lines == nil || cap(b.body.Bytes()) < len(want) {
		t.Fatalf("the second push did not take the kept storage")
	}
	if got := b.body.Bytes(); !bytes.Equal(got, want) {
		t.Fatalf("lines on recycled storage:\n%q\nwant\n%q", got, want)
	}
	if len(b.lineEnds) != 3 || len(b.refs) != 3 {
		t.Fatalf("lineEnds %v, refs %v: want 3 of each", b.lineEnds, b.refs)
	}
	again.recycle()
}
