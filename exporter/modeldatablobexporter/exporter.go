package modeldatablobexporter

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"
)

// blobExporter writes model data rows synchronously inside the push
// function: a push returns only when its rows are in storage, so the
// exporterhelper queue (in memory or persistent) keeps every row not yet
// written, and its batcher supplies the large batches.
type blobExporter struct {
	cfg    *Config
	logger *zap.Logger
	tel    *telemetry
	st     store
	w      *writer
	// encode turns a push into per-file batches for w (CSV or MDC JSON Lines).
	encode func(plog.Logs) encoded
	// pq writes the batches of format parquet.
	pq *pqWriter

	mu sync.Mutex
	// failing maps a batch that failed and was handed back for retry (the
	// plog.Logs the retry will push) to when it first failed.
	failing       map[plog.Logs]time.Time
	lastAccessLog time.Time
}

func newExporter(cfg *Config, set exporter.Settings) (*blobExporter, error) {
	tel, err := newTelemetry(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	e := &blobExporter{cfg: cfg, logger: set.Logger, tel: tel, failing: map[plog.Logs]time.Time{}}
	switch cfg.Backend {
	case BackendAzBlob:
		st, err := newAzBlobStore(cfg, set.Logger)
		if err != nil {
			return nil, err
		}
		e.st = st
	default:
		e.st = newLocalStore(cfg)
	}
	e.w = newWriter(e.st, cfg, tel)
	e.encode = func(ld plog.Logs) encoded { return newEncoder(cfg).encode(ld) }
	switch cfg.Format {
	case FormatParquet:
		e.pq = newPQWriter(cfg, e.st.(blockStore))
		e.encode = e.pq.encode
	case FormatMDCJSONL:
		agent, instance := "otelcol-modeldata/"+set.BuildInfo.Version, cfg.MDC.instanceID()
		e.encode = func(ld plog.Logs) encoded { return encodeMDC(cfg, agent, instance, ld) }
	}
	return e, nil
}

func (e *blobExporter) start(ctx context.Context, _ component.Host) error {
	return e.st.start(ctx)
}

// helperRetryConfig is the retry the exporterhelper runs: without a time
// limit, because push itself gives up after max_elapsed_time, so that the
// rows it drops are counted in rows_dropped.
func helperRetryConfig(cfg configretry.BackOffConfig) configretry.BackOffConfig {
	cfg.MaxElapsedTime = 0
	return cfg
}

// push writes every row of ld, one append per file (split only at the
// append size limit). Files that failed are returned for retry with only
// their unwritten rows, so rows already written are never sent again.
func (e *blobExporter) push(ctx context.Context, ld plog.Logs) error {
	e.mu.Lock()
	firstFailure, retried := e.failing[ld]
	delete(e.failing, ld)
	e.mu.Unlock()

	enc := e.encode(ld)
	if enc.notModelData > 0 {
		e.logger.Debug("Ignoring log records that are not model data", zap.Int("records", enc.notModelData))
	}
	var retry []recordRef
	var retryErrs, permErrs []error
	dropped := 0
	for _, b := range enc.batches {
		lines, err := e.write(ctx, b)
		done := b.rowsIn(lines)
		if b.quarantine && done > 0 {
			e.tel.quarantined.Add(ctx, int64(done))
		}
		if err == nil {
			continue
		}
		e.tel.failedWrites.Add(ctx, 1)
		err = fmt.Errorf("write %d rows to %s/%s%s: %w", len(b.refs)-done, b.dir, b.stem, cmp.Or(b.ext, ".csv"), err)
		if consumererror.IsPermanent(err) {
			dropped += len(b.refs) - done
			permErrs = append(permErrs, err)
			continue
		}
		e.logAccessError(err)
		retryErrs = append(retryErrs, err)
		retry = append(retry, b.refs[done:]...)
	}
	if len(retryErrs) > 0 {
		now := time.Now()
		if !retried {
			firstFailure = now
		}
		r := e.cfg.RetryConfig
		if r.Enabled && (r.MaxElapsedTime == 0 || now.Sub(firstFailure) < r.MaxElapsedTime) {
			next := subset(ld, retry)
			e.mu.Lock()
			e.failing[next] = firstFailure
			e.mu.Unlock()
			if len(permErrs) > 0 {
				e.drop(ctx, dropped, permErrs)
			}
			return consumererror.NewLogs(errors.Join(retryErrs...), next)
		}
		reason := "retry_on_failure is disabled"
		if r.Enabled {
			reason = fmt.Sprintf("retry_on_failure.max_elapsed_time (%s) has passed", r.MaxElapsedTime)
		}
		permErrs = append(permErrs, fmt.Errorf("%s: %w", reason, errors.Join(retryErrs...)))
		dropped += len(retry)
	}
	if len(permErrs) > 0 {
		e.drop(ctx, dropped, permErrs)
		return consumererror.NewPermanent(errors.Join(permErrs...))
	}
	return nil
}

// drop counts and logs rows that will never be written: the one place a
// row leaves the exporter without landing.
func (e *blobExporter) drop(ctx context.Context, rows int, errs []error) {
	e.tel.dropped.Add(ctx, int64(rows))
	e.logger.Error("Dropping rows", zap.Int("rows", rows), zap.Error(errors.Join(errs...)))
}

// accessLogInterval spaces the error logs of a refused credential or a
// missing container: every retry would otherwise log one.
const accessLogInterval = time.Minute

// logAccessError logs, at error level and at most once a minute, a failure
// that needs an operator (401, 403, 404): the rows stay queued and are
// retried until it is fixed, or until the queue is full and receivers refuse.
func (e *blobExporter) logAccessError(err error) {
	var ae *accessError
	if !errors.As(err, &ae) {
		return
	}
	e.mu.Lock()
	now := time.Now()
	if now.Sub(e.lastAccessLog) < accessLogInterval {
		e.mu.Unlock()
		return
	}
	e.lastAccessLog = now
	e.mu.Unlock()
	e.logger.Error("Storage refuses the writes; rows stay queued and are retried until this is fixed (receivers answer 503 once the queue is full)",
		zap.String("hint", ae.hint), zap.Error(err))
}

// subset copies the referenced records of ld, with their resource and scope.
func subset(ld plog.Logs, refs []recordRef) plog.Logs {
	out := plog.NewLogs()
	want := make(map[recordRef]bool, len(refs))
	for _, r := range refs {
		want[r] = true
	}
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		var outRL plog.ResourceLogs
		rlSet := false
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			var outSL plog.ScopeLogs
			slSet := false
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				if !want[recordRef{i, j, k}] {
					continue
				}
				if !rlSet {
					outRL = out.ResourceLogs().AppendEmpty()
					rls.At(i).Resource().CopyTo(outRL.Resource())
					outRL.SetSchemaUrl(rls.At(i).SchemaUrl())
					rlSet = true
				}
				if !slSet {
					outSL = outRL.ScopeLogs().AppendEmpty()
					sls.At(j).Scope().CopyTo(outSL.Scope())
					outSL.SetSchemaUrl(sls.At(j).SchemaUrl())
					slSet = true
				}
				lrs.At(k).CopyTo(outSL.LogRecords().AppendEmpty())
			}
		}
	}
	return out
}
