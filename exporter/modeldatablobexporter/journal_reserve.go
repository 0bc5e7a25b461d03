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

// The journal records every append's intent before the append, so it must
// write when the disk of the queue's storage is full: that is when storage
// came back after a long outage under load and the queue must drain.
// file_storage is a bbolt file per client, and bbolt writes a transaction to
// pages of its freelist (pages the file held before) or, when none fit, past
// its end, which needs new disk blocks. The file never shrinks, so the disk
// stays full while the queue drains into the pages it freed in its own file.
//
// So the journal keeps a reserve: chunks of incompressible bytes written in
// its own file while the disk has room. When a journal write fails for lack
// of space, the reserve is deleted, its pages join the journal's freelist,
// and the write is made again in them. The reserve is written again once the
// disk has room.

// reserveChunk is the size of one reserve value: bbolt puts at least two
// values in a leaf, so two chunks fill one 4 KiB page and deleting them
// rewrites only small branch pages.
const reserveChunk = 1900

// reserveRetry is how often a spent reserve is written again.
const reserveRetry = time.Minute

// reservePrefix sorts after every other journal key, so that the journal's
// live leaves share at most one page with the reserve.
const reservePrefix = "z/reserve/"

// reserveKey names the reserve's i-th chunk in four letters, in the order of
// i: no digits, so no key reads as a number searched for in the queue
// folder (a test for masked card numbers found "4111" in "004111").
func reserveKey(i int) string {
	b := []byte("aaaa")
	for j := len(b) - 1; j >= 0; j-- {
		b[j] = 'a' + byte(i%26)
		i /= 26
	}
	return reservePrefix + string(b)
}

// diskState is what a file's writes meet on the queue's disk.
type diskState int

const (
	diskRoom    diskState = iota // writes go through, the reserve is held
	diskOnSpare                  // the disk is full; writes go to the reserve's pages
	diskStuck                    // the disk is full and the reserve is spent: no write goes through
)

// reservedClient is the journal's storage client, with the reserve.
type reservedClient struct {
	storage.Client
	name string // what the file holds, for the log
	size int    // the reserve's bytes, 0: none
	// changed is told each change of state (err: the write that failed).
	changed func(r *reservedClient, s diskState, err error)
	// refused counts each write refused for lack of space.
	refused func()

	mu      sync.Mutex
	held    bool // the reserve is in storage
	state   diskState
	retryAt time.Time // when to write a spent reserve again
	keys    []string
}

func newReservedClient(client storage.Client, name string, size int) *reservedClient {
	r := &reservedClient{Client: client, name: name, size: size, changed: func(*reservedClient, diskState, error) {}, refused: func() {}}
	for i := 0; i < (size+reserveChunk-1)/reserveChunk; i++ {
		r.keys = append(r.keys, reserveKey(i))
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
		ops[i] = storage.SetOperation(k, reserveBytes(reserveChunk))
	}
	if err := r.Client.Batch(ctx, ops...); err != nil {
		return err
	}
	r.held = true
	return nil
}

// reserveBytes is n bytes of a reserve: random, so a compressing filesystem
// stores them whole, each with its high bit set, so no run of them reads as
// text: a search of the queue folder for a value (a test for masked personal
// data, an operator's grep) finds only what was really stored.
func reserveBytes(n int) []byte {
	v := make([]byte, (n+7)/8*8)
	for j := 0; j < len(v); j += 8 {
		binary.LittleEndian.PutUint64(v[j:], rand.Uint64()|0x8080808080808080)
	}
	return v[:n]
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
	err := r.Client.Batch(ctx, ops...)
	if isDiskFull(err) {
		r.refused()
		switch released, relErr := r.release(ctx); {
		case relErr != nil:
			r.setState(diskStuck, fmt.Errorf("release the reserve: %w", relErr))
		case released:
			r.setState(diskOnSpare, err)
			err = r.Client.Batch(ctx, ops...)
		}
	}
	switch {
	case err == nil:
		r.wrote(ctx)
	case isDiskFull(err):
		r.setState(diskStuck, err)
	}
	return err
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
	if r.held || len(r.keys) == 0 || time.Now().Before(r.retryAt) {
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
