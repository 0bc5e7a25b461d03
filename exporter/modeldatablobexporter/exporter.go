package modeldatablobexporter

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/component"
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
}

func newExporter(cfg *Config, set exporter.Settings) (*blobExporter, error) {
	tel, err := newTelemetry(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	e := &blobExporter{cfg: cfg, logger: set.Logger, tel: tel}
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
	if cfg.Format == FormatMDCJSONL {
		agent, instance := "otelcol-modeldata/"+set.BuildInfo.Version, cfg.MDC.instanceID()
		e.encode = func(ld plog.Logs) encoded { return encodeMDC(cfg, agent, instance, ld) }
	}
	return e, nil
}

func (e *blobExporter) start(ctx context.Context, _ component.Host) error {
	return e.st.start(ctx)
}

// push writes every row of ld, one append per file (split only at the
// append size limit). Files that failed are returned for retry with only
// their unwritten rows, so rows already written are never sent again.
func (e *blobExporter) push(ctx context.Context, ld plog.Logs) error {
	enc := e.encode(ld)
	if enc.notModelData > 0 {
		e.logger.Debug("Ignoring log records that are not model data", zap.Int("records", enc.notModelData))
	}
	var retry []recordRef
	var retryErrs, permErrs []error
	for _, b := range enc.batches {
		lines, err := e.w.write(ctx, b)
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
			e.tel.dropped.Add(ctx, int64(len(b.refs)-done))
			permErrs = append(permErrs, err)
			continue
		}
		retryErrs = append(retryErrs, err)
		retry = append(retry, b.refs[done:]...)
	}
	if len(permErrs) > 0 {
		e.logger.Error("Dropping rows after a permanent storage error", zap.Error(errors.Join(permErrs...)))
	}
	switch {
	case len(retryErrs) > 0:
		return consumererror.NewLogs(errors.Join(retryErrs...), subset(ld, retry))
	case len(permErrs) > 0:
		return consumererror.NewPermanent(errors.Join(permErrs...))
	}
	return nil
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
