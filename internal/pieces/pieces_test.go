package pieces

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// logsOf is resources × scopes × records records whose body is cell bytes
// naming the record, under resources and scopes that name themselves.
func logsOf(resources, scopes, records, cell int) plog.Logs {
	ld := plog.NewLogs()
	n := 0
	for r := 0; r < resources; r++ {
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr("resource", fmt.Sprint(r))
		rl.SetSchemaUrl("schema")
		for s := 0; s < scopes; s++ {
			sl := rl.ScopeLogs().AppendEmpty()
			sl.Scope().SetName(fmt.Sprintf("scope%d", s))
			for i := 0; i < records; i++ {
				v := fmt.Sprintf("%d/%d/%d-", r, s, n)
				sl.LogRecords().AppendEmpty().Body().SetStr(v + strings.Repeat("x", cell-len(v)))
				n++
			}
		}
	}
	return ld
}

// flat is each record of the pieces as resource/scope/body prefix, in order.
func flat(pieces []plog.Logs) []string {
	var out []string
	for _, ld := range pieces {
		for _, rl := range ld.ResourceLogs().All() {
			res, _ := rl.Resource().Attributes().Get("resource")
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					body, _, _ := strings.Cut(lr.Body().Str(), "-")
					out = append(out, res.Str()+" "+sl.Scope().Name()+" "+rl.SchemaUrl()+" "+body)
				}
			}
		}
	}
	return out
}

// TestSplitter: a plog.Logs over Bytes reaches next in pieces of about
// Bytes, every record once, in order, under its own resource and scope; a
// smaller one goes on whole.
func TestSplitter(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		resources, scopes, recs int
		cell                    int
		wantPieces, wantAtLeast int
	}{
		{"small: whole", 1, 1, 10, 1000, 1, 1},
		{"one scope of 4 MiB", 1, 1, 4000, 1000, 0, 4},
		{"many resources and scopes", 5, 3, 300, 1000, 0, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := new(consumertest.LogsSink)
			want := flat([]plog.Logs{logsOf(tc.resources, tc.scopes, tc.recs, tc.cell)})
			if err := (Splitter{Next: sink}).ConsumeLogs(context.Background(), logsOf(tc.resources, tc.scopes, tc.recs, tc.cell)); err != nil {
				t.Fatal(err)
			}
			got := sink.AllLogs()
			if tc.wantPieces > 0 && len(got) != tc.wantPieces || len(got) < tc.wantAtLeast {
				t.Fatalf("%d pieces, want %d (at least %d)", len(got), tc.wantPieces, tc.wantAtLeast)
			}
			for i, ld := range got {
				size := 0
				for _, rl := range ld.ResourceLogs().All() {
					for _, sl := range rl.ScopeLogs().All() {
						for _, lr := range sl.LogRecords().All() {
							size += recordSize(lr)
						}
					}
				}
				if len(got) > 1 && size > Bytes+RecordBytes+ValueBytes+tc.cell {
					t.Errorf("piece %d is about %d bytes, over %d and a record", i, size, Bytes)
				}
			}
			if f := flat(got); strings.Join(f, "\n") != strings.Join(want, "\n") {
				t.Fatalf("%d records reached next, want %d, in order under their resource and scope", len(f), len(want))
			}
		})
	}
}

// refusing refuses the calls that refuse names, then takes into sink.
type refusing struct {
	calls  int
	refuse func(call int) error
	sink   consumertest.LogsSink
}

func (c *refusing) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }
func (c *refusing) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	call := c.calls
	c.calls++
	if err := c.refuse(call); err != nil {
		// What a processor further on may do before refusing.
		ld.ResourceLogs().RemoveIf(func(plog.ResourceLogs) bool { return true })
		return err
	}
	return c.sink.ConsumeLogs(ctx, ld)
}

// TestSplitterRefused: the first piece refused refuses the whole with
// nothing taken; a later piece refused for a passing reason is offered
// again, intact, until taken; a permanent refusal is not offered again.
func TestSplitterRefused(t *testing.T) {
	full := errors.New("sending queue is full")
	for _, tc := range []struct {
		name    string
		refuse  func(call int) error
		wantErr bool
		records int
	}{
		{"first refused", func(int) error { return full }, true, 0},
		{"second refused twice, then taken", func(call int) error {
			if call == 1 || call == 2 {
				return full
			}
			return nil
		}, false, 4000},
		{"a permanent refusal ends it", func(call int) error {
			if call == 1 {
				return consumererror.NewPermanent(full)
			}
			return nil
		}, true, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := &refusing{refuse: tc.refuse}
			err := (Splitter{Next: next}).ConsumeLogs(context.Background(), logsOf(1, 1, 4000, 1000))
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want one: %v", err, tc.wantErr)
			}
			got := flat(next.sink.AllLogs())
			want := flat([]plog.Logs{logsOf(1, 1, 4000, 1000)})
			if tc.records >= 0 && len(got) != tc.records {
				t.Fatalf("%d records taken, want %d", len(got), tc.records)
			}
			if strings.Join(got, "\n") != strings.Join(want[:len(got)], "\n") {
				t.Fatal("the records taken are not the first of the request, in order")
			}
		})
	}
}
