package modeldatablobexporter

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/extension/xextension/storage"
)

// The exporterhelper's persistent queue writes to hand a request out (its
// read position) and to delete it once written. When such a write fails it
// skips the request, and deletes it if the deletion goes through: on a full
// disk that loses acknowledged rows. The queue is handed a storage client
// that instead waits while those writes meet a full disk, trying again every
// second: the queue stalls until the disk has room, and loses nothing.
//
// The queue makes those writes holding its lock, which its Offer takes too:
// a request offered while one waits would wait with it. So the exporter's
// ConsumeLogs refuses new requests at once while the queue waits (a
// retryable error: receivers answer 503 with Retry-After), and withdraws
// those already on their way to the lock when a wait begins (queue_gate.go).

// stallRetry is how often a stalled write of the queue is tried again.
var stallRetry = time.Second

// queueHost is the host the exporterhelper starts with: its storage
// extension opens the queue's client as a stallingClient.
type queueHost struct {
	component.Host
	e *blobExporter
}

func (h queueHost) GetExtensions() map[component.ID]component.Component {
	exts := h.Host.GetExtensions()
	q := h.e.cfg.QueueConfig.Get()
	if q == nil || q.StorageID == nil {
		return exts
	}
	ext, ok := exts[*q.StorageID].(storage.Extension)
	if !ok {
		return exts
	}
	out := make(map[component.ID]component.Component, len(exts))
	for id, c := range exts {
		out[id] = c
	}
	out[*q.StorageID] = queueStorage{Extension: ext, e: h.e}
	return out
}

// Report passes the exporter's status on to the collector.
func (h queueHost) Report(ev *componentstatus.Event) { componentstatus.ReportStatus(h.Host, ev) }

// queueStorage is the storage extension as the exporter's queue sees it.
type queueStorage struct {
	storage.Extension
	e *blobExporter
}

func (s queueStorage) GetClient(ctx context.Context, kind component.Kind, id component.ID, name string) (storage.Client, error) {
	client, err := s.Extension.GetClient(ctx, kind, id, name)
	if err != nil || kind != component.KindExporter || id != s.e.id || name == journalName {
		return client, err
	}
	// file_storage's name of the queue's file.
	queueFile := fmt.Sprintf("exporter_%s_%s_%s", id.Type(), id.Name(), name)
	dir := openFileDir(queueFile)
	if err := s.e.reserve.start(dir, queueFile); err != nil {
		_ = client.Close(ctx)
		return nil, err
	}
	go s.e.reserve.refillUntil(s.e.stopStall)
	queued := countQueued(ctx, client)
	s.e.gate.mu.Lock()
	s.e.gate.dir = dir
	s.e.gate.queued = queued
	s.e.gate.mu.Unlock()
	return &stallingClient{Client: client, stop: s.e.stopStall, stalled: s.e.queueStalled, gate: &s.e.gate,
		reserve: s.e.reserve, refused: s.e.diskFullWrite}, nil
}

// stallingClient is the queue's storage client.
type stallingClient struct {
	storage.Client
	stop    <-chan struct{} // closed at shutdown: stalled writes give up, unmade
	stalled func(err error) // told each time a write waits
	gate    *queueGate      // closed while a write waits
	reserve *queueReserve   // deleted when a write first meets a full disk
	refused func()          // told of a write refused for lack of space
}

// errStallStopped ends a stalled write at shutdown without making it: the
// request stays in storage for the next run.
var errStallStopped = errors.New("the collector stops while the persistent queue's disk is full")

func (c *stallingClient) Batch(ctx context.Context, ops ...*storage.Operation) error {
	if !drains(ops) {
		// A new request: a full disk refuses it, and one its ConsumeLogs
		// already refused is not written (consumeGated).
		if !offerMay(ctx) {
			return errOfferWithdrawn
		}
		err := c.Client.Batch(ctx, ops...)
		if isDiskFull(err) {
			c.gate.sawFull()
		}
		if err == nil {
			c.gate.wrote(ops)
		}
		return err
	}
	err := c.Client.Batch(ctx, ops...)
	if isDiskFull(err) && c.reserve.release() {
		c.refused()
		c.gate.reserveReleased()
		err = c.Client.Batch(ctx, ops...)
	}
	if isDiskFull(err) {
		c.gate.stallBegins()
		defer c.gate.stallEnds()
	}
	for isDiskFull(err) {
		c.stalled(err)
		select {
		case <-c.stop:
			return errStallStopped
		case <-time.After(stallRetry):
		}
		err = c.Client.Batch(ctx, ops...)
	}
	if err == nil {
		c.gate.wrote(ops)
	}
	return err
}

// isQueueItem tells the key of a request in the queue: its index, in
// decimal (exporterhelper v0.165 getItemKey).
func isQueueItem(key string) bool {
	_, err := strconv.ParseUint(key, 10, 64)
	return err == nil
}

// countQueued is the requests in the queue's storage at start.
func countQueued(ctx context.Context, client storage.Client) int {
	w, ok := client.(storage.Walker)
	if !ok {
		return 0
	}
	n := 0
	_ = w.Walk(ctx, func(key string, _ []byte) ([]*storage.Operation, error) {
		if isQueueItem(key) {
			n++
		}
		return nil, nil
	})
	return n
}

func (c *stallingClient) Delete(ctx context.Context, key string) error {
	return c.Batch(ctx, storage.DeleteOperation(key))
}

// drains tells the queue's writes that hand out or delete requests: they
// read or delete.
func drains(ops []*storage.Operation) bool {
	for _, op := range ops {
		if op.Type != storage.Set {
			return true
		}
	}
	return false
}
