package modeldatablobexporter

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// The queue's own file (bbolt) needs free pages to hand out and delete
// requests; when it has none and the disk is full, the queue cannot drain
// (queue_stall.go waits). A reserve inside that file does not help: a bbolt
// deletion needs new pages too. So the exporter keeps its reserve outside
// it, as a plain file of real blocks in the queue's folder. When a write that
// hands out or deletes a request first meets a full disk, the file is
// deleted: the filesystem has room for bbolt's pages again and the queue
// drains. Until the queue was empty once after that, new requests are
// refused while the disk has less than half of it free, so that what it
// freed stays for the drain (queueGate.keepsForDrain). It is written again
// once the disk has room for it twice over, never while the disk is full.

const (
	defaultQueueDiskReserve = 16 << 20
	maxQueueDiskReserve     = 1 << 30
)

// queueReserveEvery is how often a spent reserve is tried again.
var queueReserveEvery = reserveRetry

// queueReserve is the reserve file of the queue.
type queueReserve struct {
	size   int64
	logger *zap.Logger

	mu   sync.Mutex // held while the file is written or deleted
	path string     // "": no file (none configured, or the folder unknown)
	held atomic.Bool
}

// start keeps the reserve file of the queue file queueFile in dir: one a
// previous run left whole, or a new one. A full disk leaves it spent (the
// queue may need to drain first), any other error fails the start.
func (r *queueReserve) start(dir, queueFile string) error {
	if dir == "" {
		if r.size > 0 {
			r.logger.Warn("The folder of the persistent queue's file is not known (a storage extension other than file_storage, or not Linux): " +
				"no queue_disk_reserve file is kept, and on a full disk the queue waits until space is freed (see docs/operate.md, \"Queue disk\")")
		}
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	path := filepath.Join(dir, queueFile+".reserve")
	if r.size == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("queue_disk_reserve: remove %s: %w", path, err)
		}
		return nil
	}
	r.path = path
	if st, err := os.Stat(path); err == nil && st.Size() == r.size && allocated(st) >= r.size {
		r.held.Store(true)
		return nil
	}
	err := r.write()
	switch {
	case err == nil:
	case isDiskFull(err):
		r.logger.Error("The disk of the persistent queue is full at start: its queue_disk_reserve file is written once the disk has room for it twice over; "+
			"until then the queue waits while the disk is full, as without it (see docs/operate.md, \"Queue disk\")",
			zap.Int64("queue_disk_reserve", r.size), zap.Error(err))
	default:
		return fmt.Errorf("queue_disk_reserve: write %s: %w", path, err)
	}
	return nil
}

// write writes the reserve file whole, synced, or removes what it wrote.
func (r *queueReserve) write() (err error) {
	f, err := os.OpenFile(r.path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			_ = os.Remove(r.path)
			return
		}
		r.held.Store(true)
	}()
	const chunk = 1 << 20
	for left := r.size; left > 0; left -= chunk {
		if _, err := f.Write(reserveBytes(int(min(left, chunk)))); err != nil {
			return err
		}
	}
	return f.Sync()
}

// release deletes the reserve file, so that its blocks take the queue's
// next writes; it tells whether there was one to delete.
func (r *queueReserve) release() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.held.Load() {
		return false
	}
	if err := os.Remove(r.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		r.logger.Error("Cannot delete the persistent queue's queue_disk_reserve file on the full disk", zap.String("file", r.path), zap.Error(err))
		return false
	}
	r.held.Store(false)
	r.logger.Error("The disk of the persistent queue (the sending_queue.storage extension's directory) is full: "+
		"its queue_disk_reserve file is deleted so that the queue drains; until the queue was empty once, new rows are refused with 503 while the disk has less than half of it free, "+
		"and it is written back once the disk has room for it twice over (see docs/operate.md, \"Queue disk\")",
		zap.String("file", r.path), zap.Int64("queue_disk_reserve", r.size))
	return true
}

// spent tells whether the reserve is configured and not held.
func (r *queueReserve) spent() bool { return r.path != "" && !r.held.Load() }

// refill writes a spent reserve back when the disk has room for it twice
// over; it tells whether it did.
func (r *queueReserve) refill() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.path == "" || r.held.Load() {
		return false
	}
	if free, ok := diskFree(filepath.Dir(r.path)); !ok || free < 2*r.size {
		return false
	}
	if err := r.write(); err != nil {
		r.logger.Warn("Cannot write the persistent queue's queue_disk_reserve file back", zap.String("file", r.path), zap.Error(err))
		return false
	}
	r.logger.Info("The disk of the persistent queue has room again; its queue_disk_reserve file is written back", zap.String("file", r.path))
	return true
}

// refillUntil tries a spent reserve again every queueReserveEvery until
// stop is closed.
func (r *queueReserve) refillUntil(stop <-chan struct{}) {
	if r.path == "" {
		return
	}
	t := time.NewTicker(queueReserveEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			r.refill()
		}
	}
}

// reserveHeld is the reserve's bytes on the disk now.
func (r *queueReserve) reserveHeld() int64 {
	if r.path == "" || !r.held.Load() {
		return 0
	}
	return r.size
}
