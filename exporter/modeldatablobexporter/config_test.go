package modeldatablobexporter

import (
	"strings"
	"testing"
	"time"

	"github.com/otelcol-modeldata/otelcol-modeldata/exporter/modeldatablobexporter/internal/metadata"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

func loadConfig(t *testing.T, name string) *Config {
	t.Helper()
	cfg := createDefaultConfig()
	if err := testutil.LoadConfig(t, metadata.Type, name, cfg); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return cfg
}

func TestLoadConfig(t *testing.T) {
	def := loadConfig(t, "")
	if def.Backend != BackendLocal || def.Container != "modeldata" || def.Local.Directory != "./data" ||
		def.SubscriptionID != DefaultSubscriptionID || def.ResourceGroup != "local" || def.Workspace != "local" ||
		def.Webservice != "local" || def.FileName != "data.csv" || def.Hourly || def.NeutralizeFormulas ||
		def.QuarantineDir != "quarantine" || def.MaxAppendSize != 4<<20 || def.MaxBlocks != 50000 || def.TimeoutConfig.Timeout != 30*time.Second ||
		def.QueueDiskReserve != 16<<20 {
		t.Fatalf("defaults: %+v", def)
	}
	q := def.QueueConfig.Get()
	if q == nil || !q.Batch.HasValue() || q.Batch.Get().MinSize != 5000 || q.Batch.Get().FlushTimeout != 2*time.Second {
		t.Fatalf("default queue: %+v", q)
	}

	local := loadConfig(t, "local")
	if local.Local.Directory != "/var/lib/modeldata" || local.FileName != "{designation}.csv" || !local.Hourly ||
		!local.NeutralizeFormulas || local.QueueConfig.Get().StorageID.String() != "file_storage" || local.QueueDiskReserve != 32<<20 ||
		local.QueueConfig.Get().Batch.Get().FlushTimeout != 100*time.Millisecond || local.QueueConfig.Get().Batch.Get().MinSize != 5000 {
		t.Fatalf("local: %+v", local)
	}
	cs := loadConfig(t, "connection_string")
	if cs.AzBlob.Auth != AuthConnectionString || cs.Container != "mldata" || cs.MaxAppendSize != 1<<20 || cs.MaxBlocks != 1000 ||
		!strings.HasPrefix(string(cs.AzBlob.ConnectionString), "DefaultEndpointsProtocol") || !cs.AzBlob.CreateContainer {
		t.Fatalf("connection_string: %+v", cs)
	}
	sas := loadConfig(t, "sas")
	if sas.AzBlob.CreateContainer || sas.AzBlob.serviceURL() != "https://acct.blob.core.windows.net/" {
		t.Fatalf("sas: %+v", sas.AzBlob)
	}
	for _, name := range []string{"account_key", "managed_identity", "workload_identity", "service_principal", "default"} {
		if got := loadConfig(t, name).AzBlob.Auth; got != name {
			t.Errorf("%s: auth %q", name, got)
		}
	}
	if got := loadConfig(t, "default").AzBlob.serviceURL(); got != "https://acct.blob.core.windows.net/" {
		t.Errorf("service URL from account_name: %q", got)
	}
}

func TestValidateMessages(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"backend", func(c *Config) { c.Backend = "s3" }, `backend "s3" is not one of`},
		{"local dir", func(c *Config) { c.Local.Directory = "" }, "local.directory must be set"},
		{"container", func(c *Config) { c.Container = "Model_Data" }, `container "Model_Data" is not a valid container name`},
		{"segment", func(c *Config) { c.Workspace = "a/b" }, "workspace"},
		{"empty webservice", func(c *Config) { c.Webservice = "" }, "webservice is empty"},
		{"file name", func(c *Config) { c.FileName = "data.txt" }, `file_name "data.txt" must end in .csv`},
		{"file name slash", func(c *Config) { c.FileName = "x/data.csv" }, "file_name"},
		{"writer id slash", func(c *Config) { c.FileName, c.WriterID = "data-{writer}.csv", "a/b" }, "writer_id"},
		{"writer id dots", func(c *Config) { c.WriterID = ".." }, "writer_id"},
		{"append size", func(c *Config) { c.MaxAppendSize = 200 << 20 }, "max_append_size"},
		{"blocks", func(c *Config) { c.MaxBlocks = 60000 }, "max_blocks 60000"},
		{"file size", func(c *Config) { c.MaxFileSize = 0 }, "max_file_size 0"},
		{"no connection string", func(c *Config) { c.Backend = BackendAzBlob }, "azblob.connection_string must be set"},
		{"account key", func(c *Config) { c.Backend, c.AzBlob.Auth, c.AzBlob.AccountName = BackendAzBlob, AuthAccountKey, "a" }, "azblob.account_name and azblob.account_key"},
		{"sas", func(c *Config) { c.Backend, c.AzBlob.Auth, c.AzBlob.SASToken = BackendAzBlob, AuthSAS, "sig=x" }, "azblob.endpoint or azblob.account_name"},
		{"sp", func(c *Config) {
			c.Backend, c.AzBlob.Auth, c.AzBlob.AccountName = BackendAzBlob, AuthServicePrincipal, "a"
		}, "client_secret must be set"},
		{"auth", func(c *Config) { c.Backend, c.AzBlob.Auth = BackendAzBlob, "password" }, `azblob.auth "password" is not one of`},
		{"parquet max_age", func(c *Config) { c.Format, c.Parquet.MaxAge = FormatParquet, -time.Second }, "parquet.max_age -1s must not be negative"},
		{"parquet max_open_files", func(c *Config) { c.Format, c.Parquet.MaxOpenFiles = FormatParquet, 0 }, "parquet.max_open_files 0 must be at least 1"},
		{"queue disk reserve negative", func(c *Config) { c.QueueDiskReserve = -1 }, "queue_disk_reserve -1 must be between 0 (none) and 1073741824"},
		{"queue disk reserve too large", func(c *Config) { c.QueueDiskReserve = 2 << 30 }, "queue_disk_reserve 2147483648 must be between"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := createDefaultConfig()
			tt.modify(cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
	if err := createDefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
}

func TestLoadConfigFormats(t *testing.T) {
	def := loadConfig(t, "")
	if def.Format != FormatCSV || def.MDC.RootDir != "modelDataCollector" || def.MDC.RollingRate != RollingHour ||
		def.MDC.Collections["inputs"] != "model_inputs" || def.MDC.Collections["predictions"] != "model_outputs" {
		t.Fatalf("format defaults: %+v", def.MDC)
	}
	mdc := loadConfig(t, "mdc")
	if mdc.Format != FormatMDCJSONL || mdc.MDC.Endpoint != "fraud-ep" || mdc.MDC.Deployment != "blue" || mdc.MDC.RollingRate != RollingDay ||
		mdc.MDC.InstanceID != "replica-0" || mdc.MDC.Collections["labels"] != "ground_truth" || mdc.MDC.Collections["inputs"] != "model_inputs" {
		t.Fatalf("mdc: %+v", mdc.MDC)
	}
	if err := mdc.Validate(); err != nil {
		t.Fatal(err)
	}
	if p := def.Parquet; p.MaxAge != 5*time.Minute || p.MaxOpenFiles != 100 || p.MaxRows != 1_000_000 || p.MaxBytes != 256<<20 {
		t.Fatalf("parquet defaults: %+v", p)
	}
	pq := loadConfig(t, "parquet")
	want := ParquetConfig{Layout: LayoutV2, Compression: CompressionZstd, MaxRows: 500_000, MaxBytes: 128 << 20, MaxAge: 10 * time.Minute, MaxOpenFiles: 20}
	if pq.Format != FormatParquet || pq.Parquet != want {
		t.Fatalf("parquet: %+v", pq.Parquet)
	}
	if err := pq.Validate(); err != nil {
		t.Fatal(err)
	}
}
