// Command modeldata-verify reads back every data.csv of a load run (from a
// local backend's folder or from a blob container) and reports the rows
// expected, found, missing, duplicated, malformed and unexpected. It exits 1
// unless every acknowledged row is there exactly once and intact.
//
//	modeldata-verify -manifest run.json -dir ./data
//	modeldata-verify -manifest run.json -connection-string "$AZURE_STORAGE_CONNECTION_STRING" -container modeldata
//	modeldata-verify -manifest run.json -otlp-json out.json   # the stock route's file exporter output
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/harness"
)

func main() {
	var (
		manifest = flag.String("manifest", "", "the load run's manifest (written by modeldata-loadgen -manifest)")
		dir      = flag.String("dir", "", "local backend folder (local.directory) to read")
		connStr  = flag.String("connection-string", os.Getenv("AZURE_STORAGE_CONNECTION_STRING"), "storage connection string (default $AZURE_STORAGE_CONNECTION_STRING)")
		cont     = flag.String("container", "modeldata", "blob container")
		otlpJSON = flag.String("otlp-json", "", "an OTLP JSON lines file (file exporter output) to read instead")
		timeout  = flag.Duration("timeout", 10*time.Minute, "give up after this long")
	)
	flag.Parse()
	if *manifest == "" {
		fail("-manifest is required")
	}
	m, err := harness.ReadManifest(*manifest)
	if err != nil {
		fail(err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	var rep *harness.Report
	switch {
	case *otlpJSON != "":
		rep, err = harness.VerifyOTLPJSONFiles(m, *otlpJSON)
	case *dir != "":
		rep, err = harness.VerifyDir(m, *dir)
	case *connStr != "":
		c, cerr := harness.ContainerClient(*connStr, *cont)
		if cerr != nil {
			fail(cerr.Error())
		}
		rep, err = harness.VerifyContainer(ctx, m, c)
	default:
		fail("give -dir, -connection-string or -otlp-json")
	}
	if err != nil {
		fail(err.Error())
	}
	out, _ := json.MarshalIndent(rep, "", "  ")
	fmt.Println(string(out))
	if !rep.OK() {
		os.Exit(1)
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "modeldata-verify:", msg)
	os.Exit(2)
}
