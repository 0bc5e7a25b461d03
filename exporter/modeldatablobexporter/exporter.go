package modeldatablobexporter

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/logsubset"
)

// blobExporter writes model data rows synchronously inside the push
// function: a push returns only when its rows are in storage, so the
// exporterhelper queue (in memory or persistent) keeps every row not yet
// written, and its batcher supplies the large batches.
type blobExporter struct {
	cfg    *Config
	logger *zap.Logger
	tel    *telemetry
	store  store
	w      *writer
	// encode turns a push into per-file batches for w (CSV or MDC JSON Lines).
	encode func(plog.Logs) encoded
	// pq writes the batches of format parquet.
	pq *pqWriter

	id component.ID

	mu sync.Mutex
	// failing maps a batch that failed and was handed back for retry (the
	// plog.Logs the retry will push) to what its earlier attempts did.
	failing       map[plog.Logs]*batchState
	lastAccessLog time.Time
	lastDiskLog   [diskStuck + 1]time.Time
	lastStallLog  time.Time
	// stopStall is closed when the exporter stops: the queue's writes
	// waiting for disk space give up (queue_stall.go).
	stopStall chan struct{}
	stopOnce  sync.Once
	// gate refuses new requests while the queue waits for disk space.
	gate queueGate
	// reserve is the file deleted so that the queue drains on a full disk.
	reserve *queueReserve
}

// batchState follows one batch of the queue across its retries.
type batchState struct {
	firstFailure time.Time
	log          pushLog
}

func newExporter(cfg *Config, set exporter.Settings) (*blobExporter, error) {
	tel, err := newTelemetry(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	e := &blobExporter{cfg: cfg, logger: set.Logger, tel: tel, id: set.ID, failing: map[plog.Logs]*batchState{}, stopStall: make(chan struct{}),
		reserve: &queueReserve{size: cfg.QueueDiskReserve, logger: set.Logger}}
	e.gate.reserve = e.reserve
	tel.addReserve(e.reserve)
	switch cfg.Backend {
	case BackendAzBlob:
		blobs, err := newAzBlobStore(cfg, set.Logger)
		if err != nil {
			return nil, err
		}
		e.store = blobs
	default:
		e.store = newLocalStore(cfg)
	}
	e.w = newWriter(e.store, cfg, tel)
	e.w.logger = set.Logger
	e.encode = func(ld plog.Logs) encoded { return newEncoder(cfg).encode(ld) }
	switch cfg.Format {
	case FormatParquet:
		e.pq = newPQWriter(cfg, e.store.(blockStore))
		e.pq.logger = set.Logger
		e.encode = e.pq.encode
	case FormatMDCJSONL:
		agent, instance := "otelcol-modeldata/"+set.BuildInfo.Version, cfg.MDC.instanceID()
		e.encode = func(ld plog.Logs) encoded { return encodeMDC(cfg, agent, instance, ld) }
	}
	return e, nil
}

func (e *blobExporter) start(ctx context.Context, host component.Host) error {
	if err := e.store.start(ctx); err != nil {
		return err
	}
	if err := e.openJournal(ctx, host); err != nil {
		return err
	}
	if e.pq != nil {
		e.pq.startTimer()
		e.pq.startSweep()
	}
	return nil
}

// openJournal opens the append journal in the persistent queue's storage
// extension and takes what a previous run left there. Without a persistent
// queue nothing is replayed after a restart, so nothing is journaled.
func (e *blobExporter) openJournal(ctx context.Context, host component.Host) error {
	q := e.cfg.QueueConfig.Get()
	if q == nil || q.StorageID == nil {
		return nil
	}
	ext, ok := host.GetExtensions()[*q.StorageID].(storage.Extension)
	if !ok {
		return fmt.Errorf("sending_queue.storage: %s is not a storage extension", q.StorageID)
	}
	client, err := ext.GetClient(ctx, component.KindExporter, e.id, journalName)
	if err != nil {
		return fmt.Errorf("sending_queue.storage: open the append journal: %w", err)
	}
	rc := e.reserved(host, client, "append journal")
	j := newJournal(rc)
	j.win = e.w.keys
	prev, err := j.load(ctx)
	if err == nil {
		err = rc.start(ctx)
	}
	if err != nil {
		_ = client.Close(ctx)
		return fmt.Errorf("sending_queue.storage: open the append journal: %w", err)
	}
	if len(prev.intents)+len(prev.credits)+len(prev.files)+len(prev.groups) > 0 {
		e.logger.Warn("Writes of the previous run were not acknowledged by the queue, or their files not committed; they are checked before the queue replays them",
			zap.Int("appends", len(prev.intents)), zap.Int("parquet_groups", len(prev.files)),
			zap.Int("parquet_groups_to_commit", len(prev.groups)), zap.Int("credits", len(prev.credits)))
	}
	e.w.j = j
	var fileCredits []*credit
	credits := slices.DeleteFunc(prev.credits, func(c *credit) bool {
		if c.file == pqCredits {
			fileCredits = append(fileCredits, c)
		}
		return c.file == pqCredits
	})
	e.w.adopt(prev.intents, credits)
	if e.pq != nil {
		e.pq.adopt(j, prev.groups, prev.files, fileCredits)
	}
	return nil
}

// diskReserve is the disk space the journal keeps in its file for when the
// queue's disk is full (see journal_reserve.go): room for the intents of the
// appends in flight and the written keys of the idempotency window.
var diskReserve = 8 << 20

// reserved is client with a reserve of diskReserve bytes, its changes logged
// and reported as the component's status, and counted.
func (e *blobExporter) reserved(host component.Host, client storage.Client, name string) *reservedClient {
	rc := newReservedClient(client, name, diskReserve)
	rc.changed = func(r *reservedClient, s diskState, err error) { e.diskStateChanged(host, r, s, err) }
	rc.refused = e.diskFullWrite
	e.tel.addReserve(rc)
	return rc
}

// diskStateChanged tells the operator how the queue's disk is doing.
func (e *blobExporter) diskStateChanged(host component.Host, r *reservedClient, s diskState, err error) {
	switch s {
	case diskOnSpare:
		if err == nil { // written again after diskStuck
			componentstatus.ReportStatus(host, componentstatus.NewRecoverableErrorEvent(errors.New("the persistent queue's disk is full")))
			return
		}
		if !e.logDue(&e.lastDiskLog[s]) {
			return
		}
		e.logger.Error("The disk of the persistent queue (the sending_queue.storage extension's directory) is full: "+
			"receivers refuse new rows with 503 until the queue drains. The "+r.name+" writes in the space of its reserve to keep draining; "+
			"give the directory more space (see docs/operate.md, \"Queue disk\")", zap.Error(err))
		componentstatus.ReportStatus(host, componentstatus.NewRecoverableErrorEvent(fmt.Errorf("the persistent queue's disk is full: %w", err)))
	case diskStuck:
		componentstatus.ReportStatus(host, componentstatus.NewRecoverableErrorEvent(fmt.Errorf("the persistent queue's disk is full, nothing drains: %w", err)))
		if !e.logDue(&e.lastDiskLog[s]) {
			return
		}
		e.logger.Error("The disk of the persistent queue (the sending_queue.storage extension's directory) is full and the "+r.name+"'s reserve is spent: "+
			"nothing is written to storage until space is freed there (see docs/operate.md, \"Queue disk\")", zap.Error(err))
	case diskRoom:
		e.logger.Info("The disk of the persistent queue has room again; the " + r.name + "'s reserve is written back")
		componentstatus.ReportStatus(host, componentstatus.NewEvent(componentstatus.StatusOK))
	}
}

// logDue tells whether a line last logged at *last may be logged now, and
// if so marks it logged: the exporter's error lines that every retry, push
// or stalled write would repeat (a refused credential, a full disk, whose
// reserves are released and written back as the queue fills and drains)
// say it at most once per logInterval.
func (e *blobExporter) logDue(last *time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if time.Since(*last) < logInterval {
		return false
	}
	*last = time.Now()
	return true
}

// diskFullWrite is told of a write on the queue's disk refused for lack of
// space that a reserve let through.
func (e *blobExporter) diskFullWrite() {
	e.tel.diskFull.Add(context.Background(), 1)
	e.gate.sawFull()
}

// queueStalled is told each time a write of the queue waits for disk space.
func (e *blobExporter) queueStalled(err error) {
	e.tel.diskFull.Add(context.Background(), 1)
	if e.logDue(&e.lastStallLog) {
		e.logger.Error("The disk of the persistent queue (the sending_queue.storage extension's directory) is full: "+
			"the queue waits until it can write which request it hands out or deletes, and nothing drains until space is freed there; "+
			"meanwhile new rows are refused with 503 (counted in otelcol_modeldatablob_rows_refused_queue_disk_full) "+
			"(see docs/operate.md, \"Queue disk\")", zap.Error(err))
	}
}

// stopStalls ends the queue's waits for disk space, at shutdown.
func (e *blobExporter) stopStalls() { e.stopOnce.Do(func() { close(e.stopStall) }) }

// shutdown runs after the queue stopped: every open Parquet file is
// committed, every done batch is acknowledged.
func (e *blobExporter) shutdown(ctx context.Context) error {
	var err error
	if e.pq != nil {
		err = e.pq.shutdown(ctx)
	}
	if !e.w.j.enabled() {
		return err
	}
	return errors.Join(err, e.w.j.retireAll(ctx), e.w.j.client.Close(ctx))
}

// done hands a batch whose rows are all written (or dropped) to the journal,
// which forgets it once the queue has surely acknowledged it.
func (e *blobExporter) done(ctx context.Context, bs *batchState) {
	if err := e.w.j.done(ctx, &bs.log, time.Now()); err != nil {
		e.logger.Warn("Could not clear a written batch from the append journal; after a restart its rows are checked again", zap.Error(err))
	}
}

// helperRetryConfig is the retry the exporterhelper runs: without a time
// limit, because push itself gives up after max_elapsed_time, so that the
// rows it drops are counted in rows_dropped.
func helperRetryConfig(cfg configretry.BackOffConfig) configretry.BackOffConfig {
	cfg.MaxElapsedTime = 0
	return cfg
}

// push writes every row of ld, one append per file (split only at the
// append size limit; Parquet: one staged row group per file). Files that
// failed are returned for retry with only their unwritten rows, so rows
// already written are never sent again.
func (e *blobExporter) push(ctx context.Context, ld plog.Logs) error {
	bs := e.batchOf(ld)
	if e.pq != nil {
		// Files of the previous run are checked before their rows are replayed.
		if err := e.pq.resolve(ctx); err != nil {
			e.tel.failedWrites.Add(ctx, 1)
			return err
		}
	}
	release, err := e.holdKeys(ctx, ld)
	if err != nil {
		return err
	}
	defer release()
	ld, enc := e.prepare(ctx, ld, bs)
	out := e.writeAll(ctx, enc, bs)
	if out.allWritten {
		enc.recycle()
	}
	return e.finish(ctx, ld, bs, out)
}

// batchOf is what earlier attempts of ld's batch did, or a new batch.
func (e *blobExporter) batchOf(ld plog.Logs) *batchState {
	e.mu.Lock()
	bs := e.failing[ld]
	delete(e.failing, ld)
	e.mu.Unlock()
	if bs == nil {
		bs = &batchState{log: pushLog{batch: rand.Uint64()}}
	}
	return bs
}

// prepare drops the rows of keyed requests written already and encodes the
// rest into per-file batches; it returns the logs the batches refer to.
func (e *blobExporter) prepare(ctx context.Context, ld plog.Logs, bs *batchState) (plog.Logs, encoded) {
	if e.w.keys != nil {
		ld = e.dropWritten(ctx, ld)
	}
	enc := e.encode(ld)
	if e.w.keys != nil {
		for _, b := range enc.batches {
			b.keys = rowKeysOf(ld, b.refs)
		}
	}
	if len(enc.spent) > 0 {
		bs.log.spent = append(bs.log.spent, enc.spent...)
		e.tel.replayed.Add(ctx, int64(len(enc.spent)))
	}
	if enc.notModelData > 0 {
		e.logger.Debug("Ignoring log records that are not model data", zap.Int("records", enc.notModelData))
	}
	return ld, enc
}

// pushOutcome is what the writes of one push left to do.
type pushOutcome struct {
	retry      []logsubset.Ref // rows to send again
	retryErrs  []error
	permErrs   []error
	dropped    int // rows that failed for good
	allWritten bool
}

// writeAll writes every batch of enc and collects what failed.
func (e *blobExporter) writeAll(ctx context.Context, enc encoded, bs *batchState) pushOutcome {
	out := pushOutcome{allWritten: true}
	for _, b := range enc.batches {
		lines, err := e.write(ctx, b, &bs.log)
		done := b.rowsIn(lines)
		if b.quarantine && done > 0 {
			e.tel.quarantined.Add(ctx, int64(done))
		}
		if err == nil {
			continue
		}
		out.allWritten = false
		e.tel.failedWrites.Add(ctx, 1)
		err = fmt.Errorf("write %d rows to %s/%s%s: %w", len(b.refs)-done, b.dir, b.stem, cmp.Or(b.ext, ".csv"), err)
		if consumererror.IsPermanent(err) {
			out.dropped += len(b.refs) - done
			out.permErrs = append(out.permErrs, err)
			continue
		}
		e.logAccessError(err)
		out.retryErrs = append(out.retryErrs, err)
		for _, r := range b.refs[done:] {
			out.retry = append(out.retry, logsubset.Ref{Resource: r.rl, Scope: r.sl, Record: r.lr})
		}
	}
	return out
}

// finish hands the failed rows back for retry while retry_on_failure
// allows, and drops (counting them) those that can never be written.
func (e *blobExporter) finish(ctx context.Context, ld plog.Logs, bs *batchState, out pushOutcome) error {
	if len(out.retryErrs) > 0 {
		now := time.Now()
		if bs.firstFailure.IsZero() {
			bs.firstFailure = now
		}
		r := e.cfg.RetryConfig
		if r.Enabled && (r.MaxElapsedTime == 0 || now.Sub(bs.firstFailure) < r.MaxElapsedTime) {
			next := logsubset.Copy(ld, out.retry)
			e.mu.Lock()
			e.failing[next] = bs
			e.mu.Unlock()
			if len(out.permErrs) > 0 {
				e.drop(ctx, out.dropped, out.permErrs)
			}
			return consumererror.NewLogs(errors.Join(out.retryErrs...), next)
		}
		reason := "retry_on_failure is disabled"
		if r.Enabled {
			reason = fmt.Sprintf("retry_on_failure.max_elapsed_time (%s) has passed", r.MaxElapsedTime)
		}
		out.permErrs = append(out.permErrs, fmt.Errorf("%s: %w", reason, errors.Join(out.retryErrs...)))
		out.dropped += len(out.retry)
	}
	e.done(ctx, bs)
	if len(out.permErrs) > 0 {
		e.drop(ctx, out.dropped, out.permErrs)
		return consumererror.NewPermanent(errors.Join(out.permErrs...))
	}
	return nil
}

// drop counts and logs rows that will never be written: the one place a
// row leaves the exporter without landing.
func (e *blobExporter) drop(ctx context.Context, rows int, errs []error) {
	e.tel.dropped.Add(ctx, int64(rows))
	e.logger.Error("Dropping rows", zap.Int("rows", rows), zap.Error(errors.Join(errs...)))
}

// logInterval spaces the error lines of one kind (logDue).
const logInterval = time.Minute

// logAccessError logs, at error level and at most once a minute, a failure
// that needs an operator (401, 403, 404): the rows stay queued and are
// retried until it is fixed, or until the queue is full and receivers refuse.
func (e *blobExporter) logAccessError(err error) {
	var ae *accessError
	if !errors.As(err, &ae) {
		return
	}
	if !e.logDue(&e.lastAccessLog) {
		return
	}
	e.logger.Error("Storage refuses the writes; rows stay queued and are retried until this is fixed (receivers answer 503 once the queue is full)",
		zap.String("hint", ae.hint), zap.Error(err))
}
