package modeldatablobexporter

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/extension/xextension/storage"
)

// The exporterhelper's persistent queue opens its storage client from the
// host it is started with. queueHost hands it the storage extension through
// queueStorage, which gives the queue's client a reserve (journal_reserve.go),
// so that the queue can hand out and delete requests on a full disk.

// queueHost is the host the exporterhelper starts with.
type queueHost struct {
	component.Host
	e *blobExporter
}

func (e *blobExporter) queueHost(host component.Host) component.Host {
	return queueHost{Host: host, e: e}
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
	out[*q.StorageID] = queueStorage{Extension: ext, host: h.Host, e: h.e}
	return out
}

// Report passes the status of the exporter on to the collector.
func (h queueHost) Report(ev *componentstatus.Event) {
	componentstatus.ReportStatus(h.Host, ev)
}

// queueStorage is the storage extension as the exporter's queue sees it.
type queueStorage struct {
	storage.Extension
	host component.Host
	e    *blobExporter
}

func (s queueStorage) GetClient(ctx context.Context, kind component.Kind, id component.ID, name string) (storage.Client, error) {
	client, err := s.Extension.GetClient(ctx, kind, id, name)
	if err != nil || kind != component.KindExporter || id != s.e.id || name == journalName {
		return client, err
	}
	rc := s.e.reserved(s.host, client, "sending queue", true)
	if err := rc.start(ctx); err != nil {
		_ = client.Close(ctx)
		return nil, err
	}
	return rc, nil
}
