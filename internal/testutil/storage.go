package testutil

import (
	"context"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension"
)

// FileStorageID is the id of the file_storage extension StartFileStorage starts.
var FileStorageID = component.MustNewID("file_storage")

// StorageHost is a host with one file_storage extension.
type StorageHost struct {
	component.Host
	exts map[component.ID]component.Component
}

// GetExtensions returns the file_storage extension.
func (h StorageHost) GetExtensions() map[component.ID]component.Component { return h.exts }

// StartFileStorage starts a file_storage extension on dir (the components'
// files survive a stop and a new start on the same dir) and returns a host
// holding it, and the function that stops it.
func StartFileStorage(t testing.TB, dir string) (StorageHost, func()) {
	t.Helper()
	f := filestorage.NewFactory()
	cfg := f.CreateDefaultConfig().(*filestorage.Config)
	cfg.Directory = dir
	cfg.Compaction.Directory = dir
	ext, err := f.Create(context.Background(), extension.Settings{ID: FileStorageID,
		TelemetrySettings: componenttest.NewNopTelemetrySettings(), BuildInfo: component.NewDefaultBuildInfo()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := ext.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	host := StorageHost{Host: componenttest.NewNopHost(), exts: map[component.ID]component.Component{FileStorageID: ext}}
	return host, func() { _ = ext.Shutdown(context.Background()) }
}
