package modeldatablobexporter

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/extension/xextension/storage"
)

// The drain of the persistent queue writes: the queue records which request
// it hands out and deletes it once done, and the journal records every
// append's intent before the append. It must write when the disk of the
// queue's storage is full: that is when storage came back after a long
// outage under load. file_storage is a bbolt file per client, and bbolt
// writes a transaction to pages of its freelist (pages the file held before)
// or, when none fit, past its end, which needs new disk blocks. The file
// never shrinks, so the disk stays full while the queue drains into the pages
// it freed in its own file.
//
// So the journal's file and the queue's each keep a reserve: chunks of
// incompressible bytes written while the disk has room. When a write fails
// for lack of space, the reserve is deleted, its pages join the file's
// freelist, and a write of the drain is made again in them. The queue's new
// requests (writes that neither read nor delete) stay refused, and are
// refused while the reserve is spent, so that what it freed stays the
// drain's until the reserve is written again.

// reserveChunk is the size of one reserve value: bbolt puts at least two
// values in a leaf, so two chunks fill one 4 KiB page and deleting them
// rewrites only small branch pages.
const reserveChunk = 1900

// reserveRetry is how often a spent reserve is written again.
const reserveRetry = 5 * time.Second

// reservePrefix sorts after every other key of the journal and the queue, so
// that their live leaves share at most one page with the reserve.
const reservePrefix = "z/reserve/"

// errReserveSpent refuses the queue's new requests while its reserve is spent.
var errReserveSpent = fmt.Errorf("the persistent queue's disk is full; what the queue frees is kept for its drain: %w", syscall.ENOSPC)

// diskState is what a file's writes meet on the queue's disk.
type diskState int

const (
	diskRoom    diskState = iota // writes go through, the reserve is held
	diskOnSpare                  // the disk is full; writes go to the reserve's pages
	diskStuck                    // the disk is full and the reserve is spent: no write goes through
)

// reservedClient is a storage client of the journal or the queue, with the
// reserve.
type reservedClient struct {
	storage.Client
	name string // what the file holds, for the log
	size int    // the reserve's bytes, 0: none
	// forDrain: writes that neither read nor delete (the queue's new
	// requests) are refused while the reserve is spent.
	forDrain bool
	// changed is told each change of state (err: the write that failed).
	changed func(r *reservedClient, s diskState, err error)
	// refused counts each write refused for lack of space.
	refused func()

	mu      sync.Mutex
	held    bool // the reserve is in storage
	state   diskState
	retryAt time.Time // when to write a spent reserve again
	keys    []string
	// sizes are the values written through this client, by key; freed is
	// what deletions freed since the reserve was released. The reserve is
	// written back only once that is more than the reserve: the pages it
	// takes then are not the last ones the drain needs.
	sizes map[string]int
	freed int
}

func newReservedClient(client storage.Client, name string, size int) *reservedClient {
	r := &reservedClient{Client: client, name: name, size: size, sizes: map[string]int{},
		changed: func(*reservedClient, diskState, error) {}, refused: func() {}}
	for i := 0; i < (size+reserveChunk-1)/reserveChunk; i++ {
		r.keys = append(r.keys, fmt.Sprintf("%s%06d", reservePrefix, i))
	}
	return r
}

// isDiskFull tells a write refused for lack of disk space (or quota).
func isDiskFull(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return true
	}
	// bbolt formats some file errors with %s.
	return strings.Contains(err.Error(), syscall.ENOSPC.Error())
}

// start finds the reserve a previous run left, or writes it. The reserve is
// written in one transaction, so its last chunk tells it is whole.
func (r *reservedClient) start(ctx context.Context) error {
	if len(r.keys) == 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	last, err := r.Client.Get(ctx, r.keys[len(r.keys)-1])
	if err != nil {
		return err
	}
	if len(last) == reserveChunk {
		r.held = true
		return nil
	}
	if err := r.fill(ctx); err != nil {
		if !isDiskFull(err) {
			return fmt.Errorf("write the journal's reserve: %w", err)
		}
		r.retryAt = time.Now().Add(reserveRetry)
		r.setState(diskOnSpare, err)
	}
	return nil
}

// fill writes the reserve.
func (r *reservedClient) fill(ctx context.Context) error {
	ops := make([]*storage.Operation, len(r.keys))
	for i, k := range r.keys {
		// Random bytes: a compressing filesystem stores them whole.
		v := make([]byte, reserveChunk)
		for j := 0; j+8 <= len(v); j += 8 {
			binary.LittleEndian.PutUint64(v[j:], rand.Uint64())
		}
		ops[i] = storage.SetOperation(k, v)
	}
	if err := r.Client.Batch(ctx, ops...); err != nil {
		return err
	}
	r.held = true
	return nil
}

// release deletes the reserve, so that its pages take the next writes; it
// tells whether there was one to delete.
func (r *reservedClient) release(ctx context.Context) (bool, error) {
	if !r.held {
		return false, nil
	}
	ops := make([]*storage.Operation, len(r.keys))
	for i, k := range r.keys {
		ops[i] = storage.DeleteOperation(k)
	}
	if err := r.Client.Batch(ctx, ops...); err != nil {
		return false, err
	}
	r.held = false
	r.freed = 0
	r.retryAt = time.Now().Add(reserveRetry)
	return true, nil
}

func (r *reservedClient) Set(ctx context.Context, key string, value []byte) error {
	return r.Batch(ctx, storage.SetOperation(key, value))
}

func (r *reservedClient) Delete(ctx context.Context, key string) error {
	return r.Batch(ctx, storage.DeleteOperation(key))
}

// Batch runs ops; refused for lack of space, it releases the reserve and
// runs them again in its pages. The ops are one transaction: refused, none
// of them is in storage, so running them again records each once.
func (r *reservedClient) Batch(ctx context.Context, ops ...*storage.Operation) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	adds := r.forDrain && !drains(ops)
	if adds && len(r.keys) > 0 && r.state != diskRoom {
		if r.refill(ctx); r.state != diskRoom {
			return errReserveSpent
		}
	}
	err := r.Client.Batch(ctx, ops...)
	if isDiskFull(err) {
		if !adds {
			r.refused()
		}
		// A new request refused for lack of space releases the reserve too
		// (it stays refused): the release needs a few free pages itself, and
		// a drain write that fails later may find none left.
		switch released, relErr := r.release(ctx); {
		case relErr != nil:
			r.setState(diskStuck, fmt.Errorf("release the reserve: %w", relErr))
		case released:
			r.setState(diskOnSpare, err)
			if !adds {
				err = r.Client.Batch(ctx, ops...)
			}
		}
	}
	switch {
	case err == nil:
		r.track(ops)
		r.wrote(ctx)
	case isDiskFull(err) && !adds:
		r.setState(diskStuck, err)
	}
	return err
}

// drains tells the writes of the queue's drain: they read or delete.
func drains(ops []*storage.Operation) bool {
	for _, op := range ops {
		if op.Type != storage.Set {
			return true
		}
	}
	return false
}

// unknownSize is what the deletion of a value written before this run is
// taken to free: a page.
const unknownSize = 4096

// track follows the sizes of the values ops wrote, read and deleted.
func (r *reservedClient) track(ops []*storage.Operation) {
	for _, op := range ops {
		switch op.Type {
		case storage.Set:
			r.sizes[op.Key] = len(op.Value)
		case storage.Get:
			if op.Value != nil {
				r.sizes[op.Key] = len(op.Value)
			}
		case storage.Delete:
			n, ok := r.sizes[op.Key]
			if !ok {
				n = unknownSize
			}
			delete(r.sizes, op.Key)
			r.freed += n
		}
	}
}

// wrote follows a successful write: a stuck file writes again, and a spent
// reserve is written again when its time came.
func (r *reservedClient) wrote(ctx context.Context) {
	if r.state == diskStuck {
		r.setState(diskOnSpare, nil)
	}
	r.refill(ctx)
}

// refill writes a spent reserve again when its time came; written, the disk
// has room again.
func (r *reservedClient) refill(ctx context.Context) {
	if r.held || len(r.keys) == 0 || time.Now().Before(r.retryAt) || r.freed < r.size+r.size/4 {
		return
	}
	if r.fill(ctx) != nil {
		r.retryAt = time.Now().Add(reserveRetry)
		return
	}
	r.setState(diskRoom, nil)
}

func (r *reservedClient) setState(s diskState, err error) {
	if s != r.state {
		r.state = s
		r.changed(r, s, err)
	}
}

// reserveHeld is the reserve's bytes in storage now.
func (r *reservedClient) reserveHeld() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.held {
		return 0
	}
	return int64(len(r.keys) * reserveChunk)
}

func (r *reservedClient) Walk(ctx context.Context, fn storage.WalkFunc) error {
	w, ok := r.Client.(storage.Walker)
	if !ok {
		return errors.New("the storage extension cannot list its keys")
	}
	return w.Walk(ctx, fn)
}
