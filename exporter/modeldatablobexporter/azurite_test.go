package modeldatablobexporter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/consumer/consumererror"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// azuriteConfig is an azblob config on Azurite with a connection string.
func azuriteConfig(az *testutil.Azurite) *Config {
	cfg := createDefaultConfig()
	cfg.Backend = BackendAzBlob
	cfg.AzBlob.Auth = AuthConnectionString
	cfg.AzBlob.ConnectionString = configopaque.String(az.ConnectionString())
	return cfg
}

func containerClient(t testing.TB, az *testutil.Azurite, name string) *container.Client {
	t.Helper()
	c, err := container.NewClientFromConnectionString(az.ConnectionString(), name, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// readBlobs downloads every blob of a container, keyed by name.
func readBlobs(t testing.TB, az *testutil.Azurite, containerName string) map[string]string {
	t.Helper()
	c := containerClient(t, az, containerName)
	ctx := context.Background()
	out := map[string]string{}
	pager := c.NewListBlobsFlatPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range page.Segment.BlobItems {
			r, err := c.NewBlobClient(*b.Name).DownloadStream(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(r.Body)
			r.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			out[*b.Name] = string(data)
		}
	}
	return out
}

func TestAzuriteLayoutAndColumns(t *testing.T) {
	az := testutil.StartAzurite(t)
	cfg := azuriteConfig(az)
	cfg.SubscriptionID, cfg.ResourceGroup, cfg.Workspace = "1A2B3C4D-0000-0000-0000-000000000000", "MyResourceGrp", "MyWorkspace"
	e := newTestExporter(t, cfg)
	for _, rows := range layoutPushes() {
		push(t, e, rows...)
	}
	if got, want := readBlobs(t, az, "modeldata"), layoutWant(); !reflect.DeepEqual(got, want) {
		t.Fatalf("blobs:\ngot  %q\nwant %q", got, want)
	}
}

// TestAzuriteAuthModes writes with a shared key and with a container SAS,
// and checks that a wrong key fails at start without showing the secret.
func TestAzuriteAuthModes(t *testing.T) {
	az := testutil.StartAzurite(t)
	row := testRow{model: "m", version: "1", ts: day, features: [][2]any{{"a", 1}}}
	const file = "00000000-0000-0000-0000-000000000000/local/local/local/m/1/general/2018/12/31/data.csv"

	key := createDefaultConfig()
	key.Backend, key.AzBlob.Auth, key.AzBlob.Endpoint = BackendAzBlob, AuthAccountKey, az.Endpoint()
	key.AzBlob.AccountName, key.AzBlob.AccountKey = az.AccountName(), configopaque.String(az.AccountKey())
	push(t, newTestExporter(t, key), row)

	// A container SAS (read, add, create, write) cannot create the container: start checks it instead.
	cred, err := container.NewSharedKeyCredential(az.AccountName(), az.AccountKey())
	if err != nil {
		t.Fatal(err)
	}
	perms := sas.ContainerPermissions{Read: true, Add: true, Create: true, Write: true}
	q, err := sas.BlobSignatureValues{Protocol: sas.ProtocolHTTPSandHTTP, ExpiryTime: time.Now().Add(time.Hour),
		ContainerName: "modeldata", Permissions: perms.String()}.SignWithSharedKey(cred)
	if err != nil {
		t.Fatal(err)
	}
	sasCfg := createDefaultConfig()
	sasCfg.Backend, sasCfg.AzBlob.Auth, sasCfg.AzBlob.Endpoint = BackendAzBlob, AuthSAS, az.Endpoint()
	sasCfg.AzBlob.SASToken = configopaque.String(q.Encode())
	push(t, newTestExporter(t, sasCfg), row)

	if got := readBlobs(t, az, "modeldata")[file]; strings.Count(got, "\r\n") != 3 || strings.Count(got, "$aml_request_id") != 1 {
		t.Fatalf("want one header and two rows, got %q", got)
	}

	// Wrong key: a clear error at start, without the secret.
	bad := *key
	bad.AzBlob.AccountKey = "d3Jvbmcta2V5LXdyb25nLWtleQ=="
	e, err := newExporter(&bad, exportertestSettings())
	if err != nil {
		t.Fatal(err)
	}
	err = e.start(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "credential is refused") || strings.Contains(err.Error(), string(bad.AzBlob.AccountKey)) {
		t.Fatalf("wrong key at start: %v", err)
	}
	// A SAS without create permission on a missing container: clear error too.
	missing := *sasCfg
	missing.Container = "nosuchcontainer"
	e, err = newExporter(&missing, exportertestSettings())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.start(context.Background(), nil); err == nil || strings.Contains(err.Error(), "sig=") {
		t.Fatalf("SAS for another container at start: %v", err)
	}
}

// assertRowsOnce parses a file: one header, then n rows with distinct request ids.
func assertRowsOnce(t *testing.T, data string, n int) {
	t.Helper()
	records := parseCSV(t, data)
	if len(records) == 0 || records[0][len(records[0])-1] != contract.ColRequestID {
		t.Fatalf("no header: %q", data[:min(len(data), 200)])
	}
	seen := map[string]bool{}
	for _, r := range records[1:] {
		id := r[len(r)-1]
		if id == contract.ColRequestID {
			t.Fatal("header written twice")
		}
		if seen[id] {
			t.Fatalf("row %s written twice", id)
		}
		seen[id] = true
	}
	if len(seen) != n {
		t.Fatalf("want %d rows, got %d", n, len(seen))
	}
}

// TestAzuriteRoll makes files roll quickly (3 blocks: header + 2 appends).
func TestAzuriteRoll(t *testing.T) {
	az := testutil.StartAzurite(t)
	cfg := azuriteConfig(az)
	cfg.MaxBlocks = 3
	e := newTestExporter(t, cfg)
	for i := 0; i < 5; i++ {
		push(t, e, testRow{model: "m", version: "1", ts: day, requestID: fmt.Sprint(i), features: [][2]any{{"a", i}}})
	}
	// A second exporter (a restarted collector) finds the current file.
	push(t, newTestExporter(t, cfg), testRow{model: "m", version: "1", ts: day, requestID: "5", features: [][2]any{{"a", 5}}})
	blobs := readBlobs(t, az, "modeldata")
	dir := "00000000-0000-0000-0000-000000000000/local/local/local/m/1/general/2018/12/31/"
	var names []string
	for n := range blobs {
		names = append(names, strings.TrimPrefix(n, dir))
	}
	sort.Strings(names)
	if want := []string{"data.csv", "data_1.csv", "data_2.csv"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("files %q, want %q", names, want)
	}
	header := "a,$aml_dc_correlation_id,$aml_dc_scoring_timestamp,$aml_dc_boundary,$aml_workspace,$aml_service_name,$aml_model_name,$aml_model_version,$aml_request_id\r\n"
	for i, name := range []string{"data.csv", "data_1.csv", "data_2.csv"} {
		data := blobs[dir+name]
		if !strings.HasPrefix(data, header) || strings.Count(data, "\r\n") != 3 {
			t.Fatalf("%s: want header and 2 rows, got %q", name, data)
		}
		if want := fmt.Sprintf(",%d\r\n", 2*i); !strings.Contains(data, want) {
			t.Fatalf("%s: rows out of order: %q", name, data)
		}
	}
}

func TestAzuriteQuarantine(t *testing.T) {
	az := testutil.StartAzurite(t)
	e := newTestExporter(t, azuriteConfig(az))
	push(t, e,
		testRow{resource: map[string]string{contract.AttrWebservice: "../etc"}, model: "m", version: "1", ts: day, features: [][2]any{{"a", 1}}},
		testRow{model: "m", ts: day, requestID: "r2", features: [][2]any{{"a", 2}}},
	)
	blobs := readBlobs(t, az, "modeldata")
	if len(blobs) != 1 {
		t.Fatalf("want one quarantine file, got %q", blobs)
	}
	got := blobs["quarantine/2018/12/31/data.csv"]
	records := parseCSV(t, got)
	if len(records) != 3 || records[0][len(records[0])-1] != contract.ColQuarantineReason ||
		!strings.Contains(records[1][len(records[1])-1], `webservice "../etc"`) ||
		records[1][5] != "../etc" || records[2][len(records[2])-1] != "model version is missing" {
		t.Fatalf("quarantine file: %q", records)
	}
}

// dropResponseProxy forwards requests to Azurite; for the first append of
// rows that drop picks it lets the append land and then cuts the connection
// before the client sees the answer, as a network failure would.
type dropResponseProxy struct {
	target  *url.URL
	drop    func(r *http.Request) bool
	dropped atomic.Int32
}

func (p *dropResponseProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	resp := forwardTo(w, r, p.target)
	if resp == nil {
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	isAppend := r.Method == http.MethodPut && r.URL.Query().Get("comp") == "appendblock"
	if isAppend && resp.StatusCode == http.StatusCreated && r.Header.Get(appendPosHeader) != "0" && p.dropped.Load() == 0 &&
		p.drop(r) && p.dropped.Add(1) == 1 {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	writeResponse(w, resp, bytes.NewReader(body))
}

// appendPosHeader carries an append's position condition (position 0 is a header).
const appendPosHeader = "x-ms-blob-condition-appendpos"

// TestAzuriteRetriedAppendThatLanded: an append lands but its response is
// lost; the retry (the SDK's, and the exporterhelper's when the SDK gives
// up) must find it and not write the rows again: at its position, or, on a
// file shared with another writer (an append sent without a position),
// after other writers' rows.
func TestAzuriteRetriedAppendThatLanded(t *testing.T) {
	for _, tc := range []struct {
		name   string
		shared bool
	}{{"one writer", false}, {"shared file", true}} {
		t.Run(tc.name, func(t *testing.T) {
			az := testutil.StartAzurite(t)
			target, _ := url.Parse(az.Endpoint())
			proxy := &dropResponseProxy{target: target, drop: func(r *http.Request) bool {
				return (r.Header.Get(appendPosHeader) == "") == tc.shared
			}}
			endpoint := startProxy(t, proxy) + "/" + az.AccountName()
			newExporter := func() (*blobExporter, *componenttest.Telemetry) {
				cfg := createDefaultConfig()
				cfg.Backend, cfg.AzBlob.Auth = BackendAzBlob, AuthAccountKey
				cfg.AzBlob.Endpoint = endpoint
				cfg.AzBlob.AccountName, cfg.AzBlob.AccountKey = az.AccountName(), configopaque.String(az.AccountKey())
				return newTestExporterTel(t, cfg)
			}
			row := func(id string) testRow {
				return testRow{model: "m", version: "1", ts: day, requestID: id, features: [][2]any{{"a", 1}}}
			}
			e, tt := newExporter()
			other, _ := newExporter()
			want := 3
			if tc.shared {
				// e knows the file's end; another writer appends after it, so
				// e's next append loses a race and e writes the file as shared.
				push(t, e, row("r0"))
				push(t, other, row("o1"))
				want += 2
			}
			ld := makeLogs(row("r1"), row("r2"))
			// Retry as the exporterhelper would: only what the push gave back.
			for attempt := 0; ; attempt++ {
				err := e.push(context.Background(), ld)
				if err == nil {
					break
				}
				var failed consumererror.Logs
				if errors.As(err, &failed) {
					ld = failed.Data()
				}
				if attempt == 3 {
					t.Fatalf("push kept failing: %v", err)
				}
			}
			push(t, e, row("r3"))
			if proxy.dropped.Load() != 1 {
				t.Fatalf("the proxy dropped %d responses, want 1", proxy.dropped.Load())
			}
			if n := counter(t, tt, "otelcol_modeldatablob_duplicates_avoided"); n != 1 {
				t.Fatalf("duplicates avoided: %d, want 1", n)
			}
			if n := counter(t, tt, "otelcol_modeldatablob_append_races_lost"); tc.shared && n == 0 {
				t.Fatal("no race lost: the file was not written as shared")
			}
			push(t, other, row("o2")) // the other writer finds the end past e's appends
			blobs := readBlobs(t, az, "modeldata")
			for _, data := range blobs {
				assertRowsOnce(t, data, want+1)
			}
			if len(blobs) != 1 {
				t.Fatalf("blobs: %q", blobs)
			}
		})
	}
}

// TestAzuriteDownAtStart: the exporter starts while the service is down
// (a warning, not a failure) and creates the container once it is back.
func TestAzuriteDownAtStart(t *testing.T) {
	az := testutil.StartAzurite(t)
	az.Stop()
	e := newTestExporter(t, azuriteConfig(az))
	err := e.push(context.Background(), makeLogs(testRow{model: "m", version: "1", ts: day, features: [][2]any{{"a", 1}}}))
	if err == nil || consumererror.IsPermanent(err) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("push while down: want a retryable connection error, got %v", err)
	}
	az.Restart()
	push(t, e, testRow{model: "m", version: "1", ts: day, features: [][2]any{{"a", 1}}})
	if blobs := readBlobs(t, az, "modeldata"); len(blobs) != 1 {
		t.Fatalf("blobs: %q", blobs)
	}
}
