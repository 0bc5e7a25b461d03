package harness

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// ProbeDesignation is the designation of latency probe rows: they land in a
// file of their own, so the file growing means the probe row is visible.
const ProbeDesignation = "latency"

// SizeFunc returns the size of a file or blob by its slash path below the
// container (0 when it does not exist yet).
type SizeFunc func(ctx context.Context, path string) (int64, error)

// LocalSize sizes files below a local backend's directory (container folder included in path).
func LocalSize(dir string) SizeFunc {
	return func(_ context.Context, path string) (int64, error) {
		fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(path)))
		if errors.Is(err, os.ErrNotExist) {
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		return fi.Size(), nil
	}
}

// BlobSize sizes blobs of a container.
func BlobSize(c *container.Client) SizeFunc {
	return func(ctx context.Context, path string) (int64, error) {
		props, err := c.NewBlobClient(path).GetProperties(ctx, nil)
		if bloberror.HasCode(err, bloberror.BlobNotFound) {
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		return *props.ContentLength, nil
	}
}

// ProbeConfig samples end-to-end latency: one single-row collect request at a
// time, timed from the call until its file has grown.
type ProbeConfig struct {
	Run         string
	Model       string
	Version     string
	CollectURL  string // base URL of the collect API
	Size        SizeFunc
	Interval    time.Duration // between probes (default 500 ms)
	PollEvery   time.Duration // default 20 ms
	MaxWait     time.Duration // per probe (default 60 s)
	Header      http.Header
	ContainerIn string // prefix of Size paths, e.g. "modeldata/" for the local backend; "" for blobs
}

// Probe runs until ctx ends and returns the sorted latencies, the number of
// probes that timed out (or were refused), and the number of probe rows the
// collector acknowledged.
func Probe(ctx context.Context, cfg ProbeConfig) (latencies []time.Duration, timeouts, acked int) {
	if cfg.Interval <= 0 {
		cfg.Interval = 500 * time.Millisecond
	}
	if cfg.PollEvery <= 0 {
		cfg.PollEvery = 20 * time.Millisecond
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 60 * time.Second
	}
	client := NewClient(1)
	for n := 0; ctx.Err() == nil; n++ {
		now := time.Now().UTC()
		parts := contract.PathParts{SubscriptionID: Subscription, ResourceGroup: ResourceGroup, Workspace: Workspace,
			Webservice: Webservice, ModelName: cfg.Model, ModelVersion: cfg.Version, Designation: ProbeDesignation}
		path := cfg.ContainerIn + parts.Dir(now, false) + "/" + contract.DataFile
		before, err := cfg.Size(ctx, path)
		if err != nil {
			before = -1 // unknown; any size counts
		}
		body := []byte(`{"model_name":` + strconv.Quote(cfg.Model) + `,"model_version":` + strconv.Quote(cfg.Version) +
			`,"designation":"` + ProbeDesignation + `","feature_names":["` + RowIDColumn + `"],"data":[[` +
			strconv.Quote(cfg.Run+"-probe-"+strconv.Itoa(n)) + `]]}`)
		t0 := time.Now()
		code, err := post(ctx, client, cfg.CollectURL+"/v1/collect", "application/json", body, cfg.Header)
		if err != nil || code != http.StatusOK {
			if ctx.Err() != nil {
				break
			}
			timeouts++
			sleepCtx(ctx, cfg.Interval)
			continue
		}
		acked++
		deadline := t0.Add(cfg.MaxWait)
		seen := false
		for time.Now().Before(deadline) && ctx.Err() == nil {
			if size, err := cfg.Size(ctx, path); err == nil && size > before && size > 0 {
				seen = true
				break
			}
			sleepCtx(ctx, cfg.PollEvery)
		}
		if seen {
			latencies = append(latencies, time.Since(t0))
		} else if ctx.Err() == nil {
			timeouts++
		}
		sleepCtx(ctx, cfg.Interval)
	}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	return latencies, timeouts, acked
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}
