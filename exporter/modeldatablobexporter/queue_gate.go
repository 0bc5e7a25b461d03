package modeldatablobexporter

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/plog"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// diskFullRetryAfter is the delay a refusal for a full queue disk asks of
// the client: space is freed by an operator, not within a second.
const diskFullRetryAfter = 10 * time.Second

// While the queue's disk is nearly full, a request is offered so that it
// can be withdrawn if the queue starts to wait while the request waits for
// the queue's lock (consumeGated): for offerWithdrawnFor after a write on
// that disk was refused for lack of space, and while it has less than
// lowDiskSpace free (read at most every diskFreeEvery; Linux).
const (
	offerWithdrawnFor = 10 * time.Minute
	lowDiskSpace      = 64 << 20
	diskFreeEvery     = time.Second
)

// queueGate is what a new request meets before the persistent queue: closed
// while a write of the queue waits for disk space (queue_stall.go).
type queueGate struct {
	mu      sync.Mutex
	waiting int           // writes of the queue waiting for disk space now
	stall   chan struct{} // closed when the next wait begins (nil: nobody watches)
	fullAt  time.Time     // the last write on the queue's disk refused for lack of space
	dir     string        // the queue's folder ("": unknown)
	freeAt  time.Time     // when free was read
	free    int64         // bytes free on dir's filesystem
	reserve *queueReserve // the queue's reserve file
	queued  int           // requests in the queue's storage
	// holding: the reserve was released and the queue has not been empty
	// since; new requests are held back while the disk is low.
	holding bool
}

// wrote counts the requests a write of the queue added or deleted.
func (g *queueGate) wrote(ops []*storage.Operation) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, op := range ops {
		switch {
		case !isQueueItem(op.Key):
		case op.Type == storage.Set:
			g.queued++
		case op.Type == storage.Delete:
			g.queued--
		}
	}
	if g.queued <= 0 {
		g.queued, g.holding = 0, false
	}
}

// reserveReleased is told that the reserve file was deleted.
func (g *queueGate) reserveReleased() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.holding = true
}

func (g *queueGate) stallBegins() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.fullAt = time.Now()
	if g.waiting++; g.waiting == 1 && g.stall != nil {
		close(g.stall)
		g.stall = nil
	}
}

func (g *queueGate) stallEnds() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.waiting--
}

// sawFull is told of a write on the queue's disk refused for lack of space.
func (g *queueGate) sawFull() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.fullAt = time.Now()
}

// watch tells whether the queue waits for disk space now; if not, it
// returns a channel closed when a wait begins.
func (g *queueGate) watch() (stalled bool, stall <-chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.waiting > 0 {
		return true, nil
	}
	if g.stall == nil {
		g.stall = make(chan struct{})
	}
	return false, g.stall
}

// nearlyFull tells whether the queue's disk is nearly full: a write on it
// was refused for lack of space within offerWithdrawnFor, or it has less
// than lowDiskSpace free.
func (g *queueGate) nearlyFull() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	if !g.fullAt.IsZero() && now.Sub(g.fullAt) < offerWithdrawnFor {
		return true
	}
	if g.dir == "" {
		return false
	}
	if now.Sub(g.freeAt) >= diskFreeEvery {
		if free, ok := diskFree(g.dir); ok {
			g.free, g.freeAt = free, now
		}
	}
	return !g.freeAt.IsZero() && g.free < lowDiskSpace
}

// keepsForDrain tells whether new requests are refused so that the disk
// space the released reserve freed stays for the queue's drain: until the
// queue was empty once, while the disk has less than half of the reserve
// free, read for each request (a statfs): fast senders would take the space
// within the second of a cached value. Once drained, the queue's file has
// free pages for new requests.
func (g *queueGate) keepsForDrain() bool {
	g.mu.Lock()
	holding := g.holding
	g.mu.Unlock()
	if !holding || !g.reserve.spent() {
		return false
	}
	free, ok := diskFree(filepath.Dir(g.reserve.path))
	return ok && free < g.reserve.size/2
}

// consumeGated hands ld to next (the exporterhelper's ConsumeLogs, whose
// Offer writes it to the queue) unless the queue waits for disk space: then
// it refuses at once. A request that reached the queue's Offer before the
// wait began would wait with it, for its lock. So while the disk is nearly
// full, when a wait may begin, a request is offered on its own copy from
// another goroutine: when a wait begins before the queue wrote it, or ctx
// ends, it is withdrawn (the queue's write of it is refused when it gets
// there, offerMay) and refused at once.
func (e *blobExporter) consumeGated(ctx context.Context, ld plog.Logs, next func(context.Context, plog.Logs) error) error {
	stalled, stall := e.gate.watch()
	if stalled || e.gate.keepsForDrain() {
		return e.refuseDiskFull(ctx, ld)
	}
	if !e.gate.nearlyFull() {
		return next(ctx, ld)
	}
	own := plog.NewLogs()
	ld.CopyTo(own)
	offer := new(offerTicket)
	done := make(chan error, 1)
	go func() { done <- next(context.WithValue(ctx, offerKey{}, offer), own) }()
	select {
	case err := <-done:
		return err
	case <-stall:
	case <-ctx.Done():
	}
	if !offer.state.CompareAndSwap(offerOpen, offerWithdrawn) {
		return <-done // written: the queue's lock is behind it
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return e.refuseDiskFull(ctx, ld)
}

// refuseDiskFull counts ld's rows as refused and says why.
func (e *blobExporter) refuseDiskFull(ctx context.Context, ld plog.Logs) error {
	e.tel.refusedDiskFull.Add(ctx, int64(ld.LogRecordCount()))
	return errQueueDiskFull
}

// errQueueDiskFull refuses a request while the queue waits for disk space:
// retryable, Unavailable with a retry delay (503 with Retry-After).
var errQueueDiskFull error = queueDiskFullError{}

type queueDiskFullError struct{}

func (queueDiskFullError) Error() string {
	return "the disk of the collector's persistent queue is full: no new rows are taken until space is freed there"
}

func (e queueDiskFullError) GRPCStatus() *grpcstatus.Status {
	st, err := grpcstatus.New(codes.Unavailable, e.Error()).WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(diskFullRetryAfter)})
	if err != nil {
		return grpcstatus.New(codes.Unavailable, e.Error())
	}
	return st
}

// offerTicket is a request offered from its own goroutine (consumeGated):
// either the queue writes it or it is withdrawn, never both.
type offerTicket struct{ state atomic.Int32 }

const (
	offerOpen int32 = iota
	offerWritten
	offerWithdrawn
)

type offerKey struct{}

// offerMay tells whether the queue may write the request of ctx.
func offerMay(ctx context.Context) bool {
	t, ok := ctx.Value(offerKey{}).(*offerTicket)
	return !ok || t.state.CompareAndSwap(offerOpen, offerWritten) || t.state.Load() == offerWritten
}

// errOfferWithdrawn ends the queue's write of a request already refused.
var errOfferWithdrawn = errors.New("the request was refused while it waited for the persistent queue")
