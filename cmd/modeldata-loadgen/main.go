// Command modeldata-loadgen sends model data rows to a running
// otelcol-modeldata (or any collector with an OTLP/HTTP receiver) at a target
// rate or as fast as it can, through the collect API (POST /v1/collect) and/or
// OTLP/HTTP logs in contract form (POST /v1/logs). Every request has a unique
// request id and every row a unique row_id whose cells the verifier can
// recompute; the run's manifest (which requests were acknowledged) is written
// for cmd/modeldata-verify.
//
//	modeldata-loadgen -collect http://127.0.0.1:4320 -otlp http://127.0.0.1:4318 \
//	    -rows 100000 -rows-per-request 100 -features 10 -rate 20000 -manifest run.json
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/harness"
)

func main() {
	var (
		collect     = flag.String("collect", "", "collect API base URL, e.g. http://127.0.0.1:4320 (empty: not used)")
		otlp        = flag.String("otlp", "", "OTLP/HTTP base URL, e.g. http://127.0.0.1:4318 (empty: not used)")
		doors       = flag.String("doors", "", "doors in turn, comma-separated: collect,otlp (default: every door with a URL)")
		run         = flag.String("run", "", "run id (default: random)")
		rows        = flag.Int("rows", 10000, "rows to send (rounded up to whole requests)")
		perRequest  = flag.Int("rows-per-request", 100, "rows per request")
		features    = flag.Int("features", 10, "columns per row, row_id included")
		rate        = flag.Float64("rate", 0, "target rows per second (0: as fast as possible)")
		concurrency = flag.Int("concurrency", 4, "requests in flight")
		duration    = flag.Duration("max-duration", 10*time.Minute, "stop sending after this long")
		retryFor    = flag.Duration("retry-for", 2*time.Minute, "retry a request on transport errors, 429 and 503 for this long")
		model       = flag.String("model", "load_model", "model name")
		version     = flag.String("model-version", "1", "model version")
		designation = flag.String("designation", "inputs", "designation")
		manifest    = flag.String("manifest", "", "write the run's manifest (JSON) here, for modeldata-verify")
		header      = flag.String("header", "", "extra request header, e.g. 'Authorization: Bearer secret'")
	)
	flag.Parse()
	cfg := harness.LoadConfig{
		Rows: harness.Rows{Run: *run, Model: *model, Version: *version, Designation: *designation,
			Features: *features, RowsPerRequest: *perRequest},
		Targets:     map[harness.Door]string{},
		Requests:    (*rows + *perRequest - 1) / max(*perRequest, 1),
		Rate:        *rate,
		Concurrency: *concurrency,
		MaxDuration: *duration,
		RetryFor:    *retryFor,
		NoRetry:     *retryFor == 0,
	}
	if cfg.Run == "" {
		cfg.Run = harness.NewRunID()
	}
	if *collect != "" {
		cfg.Targets[harness.DoorCollect] = strings.TrimSuffix(*collect, "/")
	}
	if *otlp != "" {
		cfg.Targets[harness.DoorOTLP] = strings.TrimSuffix(*otlp, "/")
	}
	for _, d := range strings.Split(*doors, ",") {
		if d = strings.TrimSpace(d); d != "" {
			cfg.Doors = append(cfg.Doors, harness.Door(d))
		}
	}
	if *header != "" {
		k, v, ok := strings.Cut(*header, ":")
		if !ok {
			fail("-header must be 'Name: value'")
		}
		cfg.Header = http.Header{}
		cfg.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	m, err := harness.Load(ctx, cfg)
	if err != nil {
		fail(err.Error())
	}
	if *manifest != "" {
		if err := harness.WriteManifest(*manifest, m); err != nil {
			fail(err.Error())
		}
	}
	out, _ := json.MarshalIndent(struct {
		Run      string            `json:"run"`
		Requests int               `json:"requests"`
		NotAcked int               `json:"not_acked"`
		Stats    harness.LoadStats `json:"stats"`
	}{m.Run, m.Requests, len(m.NotAcked), m.Stats}, "", "  ")
	fmt.Println(string(out))
	if len(m.NotAcked) > 0 {
		os.Exit(1)
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "modeldata-loadgen:", msg)
	os.Exit(2)
}
