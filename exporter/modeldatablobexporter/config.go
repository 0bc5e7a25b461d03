package modeldatablobexporter

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// Storage backends.
const (
	BackendLocal  = "local"
	BackendAzBlob = "azblob"
)

// Azure auth modes (azblob.auth).
const (
	AuthConnectionString = "connection_string"
	AuthAccountKey       = "account_key"
	AuthSAS              = "sas"
	AuthManagedIdentity  = "managed_identity"
	AuthWorkloadIdentity = "workload_identity"
	AuthServicePrincipal = "service_principal"
	AuthDefault          = "default"
)

// Azure append blob limits: 50,000 blocks per blob, 100 MiB per append
// (4 MiB for older service versions), about 195 GiB per blob.
const (
	azureMaxBlocks      = 50_000
	azureMaxAppendBlock = 100 << 20
	azureMaxBlobSize    = 50_000 * (4 << 20)
)

// Config is the configuration of the modeldatablob exporter.
type Config struct {
	TimeoutConfig exporterhelper.TimeoutConfig                             `mapstructure:",squash"`
	QueueConfig   configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	RetryConfig   configretry.BackOffConfig                                `mapstructure:"retry_on_failure"`

	// Backend is "local" (a folder with the same layout) or "azblob".
	Backend string `mapstructure:"backend"`
	// Container is the blob container, or the first folder under local.directory.
	Container string       `mapstructure:"container"`
	Local     LocalConfig  `mapstructure:"local"`
	AzBlob    AzBlobConfig `mapstructure:"azblob"`

	// Path parts used when a record's resource does not name them.
	SubscriptionID string `mapstructure:"subscription_id"`
	ResourceGroup  string `mapstructure:"resource_group"`
	Workspace      string `mapstructure:"workspace"`
	Webservice     string `mapstructure:"webservice"`

	// FileName is the file name in each day (or hour) folder; "{designation}"
	// is replaced by the row's designation, "{writer}" by WriterID. It must
	// end in ".csv".
	FileName string `mapstructure:"file_name"`
	// WriterID replaces "{writer}" in FileName, so each collector appends to
	// its own file; empty: the host name (a pod's name on Kubernetes).
	WriterID string `mapstructure:"writer_id"`
	// Hourly adds an <hh>/ folder below the day and writes boundary 60.
	Hourly bool `mapstructure:"hourly"`
	// NeutralizeFormulas prefixes cells starting with =, +, -, @, tab or CR
	// (and not numbers) with a single quote, against spreadsheet formula injection.
	NeutralizeFormulas bool `mapstructure:"neutralize_formulas"`
	// QuarantineDir is the folder (under the container) for rows that cannot be placed.
	QuarantineDir string `mapstructure:"quarantine_dir"`

	// MaxAppendSize bounds one append (one write); a batch is split at line boundaries.
	MaxAppendSize int64 `mapstructure:"max_append_size"`
	// MaxFileSize and MaxBlocks make a file roll to data_1.csv, data_2.csv, ...
	MaxFileSize int64 `mapstructure:"max_file_size"`
	MaxBlocks   int   `mapstructure:"max_blocks"`
	// MaxOpenFiles caps the files whose state (name, size, header checked)
	// the exporter keeps; the least recently written is forgotten first and
	// found again (two reads) when rows come for it.
	MaxOpenFiles int `mapstructure:"max_open_files"`

	// Format is csv (the modeldata layout, default), mdc_jsonl (the Azure ML
	// v2 data collector layout) or parquet; mdc and parquet configure the latter two.
	Format  string        `mapstructure:"format"`
	MDC     MDCConfig     `mapstructure:"mdc"`
	Parquet ParquetConfig `mapstructure:"parquet"`

	// Idempotency bounds the rows of keyed requests (Idempotency-Key at the
	// receiver) remembered as written, so that a resend is written once.
	Idempotency IdempotencyConfig `mapstructure:"idempotency"`

	// QueueDiskReserve is the size of a file of real blocks kept in the
	// persistent queue's folder and deleted when the queue's own writes meet
	// a full disk, so that the queue drains (queue_reserve.go); 0: none.
	QueueDiskReserve int64 `mapstructure:"queue_disk_reserve"`
}

// LocalConfig configures the local folder backend.
type LocalConfig struct {
	// Directory holds <container>/<path>/data.csv.
	Directory string `mapstructure:"directory"`
}

// AzBlobConfig configures the Azure Blob Storage backend.
type AzBlobConfig struct {
	// Endpoint is the blob service URL, e.g. https://<account>.blob.core.windows.net.
	// Empty: derived from account_name (or taken from the connection string).
	Endpoint    string `mapstructure:"endpoint"`
	AccountName string `mapstructure:"account_name"`
	// Auth is one of connection_string, account_key, sas, managed_identity,
	// workload_identity, service_principal, default.
	Auth             string              `mapstructure:"auth"`
	ConnectionString configopaque.String `mapstructure:"connection_string"`
	AccountKey       configopaque.String `mapstructure:"account_key"`
	SASToken         configopaque.String `mapstructure:"sas_token"`
	// TenantID and ClientID select the identity (client_id of a user-assigned
	// managed identity, of the workload identity, or of the service principal).
	TenantID     string              `mapstructure:"tenant_id"`
	ClientID     string              `mapstructure:"client_id"`
	ClientSecret configopaque.String `mapstructure:"client_secret"`
	// FederatedTokenFile is the workload identity token file (default: AZURE_FEDERATED_TOKEN_FILE).
	FederatedTokenFile string `mapstructure:"federated_token_file"`
	// CreateContainer creates the container at start when it is missing.
	CreateContainer bool `mapstructure:"create_container"`
}

// Defaults of the path parts: placeholders so a laptop run needs no edits.
const (
	DefaultSubscriptionID = "00000000-0000-0000-0000-000000000000"
	DefaultResourceGroup  = "local"
	DefaultWorkspace      = "local"
	DefaultWebservice     = "local"
)

func createDefaultConfig() *Config {
	queue := exporterhelper.NewDefaultQueueConfig()
	// Large batches, grouped by file, make few large appends: storage
	// throughput is decided by append size, not row count.
	queue.Batch = configoptional.Some(exporterhelper.BatchConfig{
		FlushTimeout: 2 * time.Second,
		Sizer:        exporterhelper.RequestSizerTypeItems,
		MinSize:      5000,
		MaxSize:      50000,
		Partition:    exporterhelper.NewDefaultPartitionConfig(),
	})
	timeout := exporterhelper.NewDefaultTimeoutConfig()
	timeout.Timeout = 30 * time.Second
	return &Config{
		TimeoutConfig:    timeout,
		QueueConfig:      configoptional.Some(queue),
		RetryConfig:      defaultRetryConfig(),
		Backend:          BackendLocal,
		Container:        "modeldata",
		Local:            LocalConfig{Directory: "./data"},
		AzBlob:           AzBlobConfig{Auth: AuthConnectionString, CreateContainer: true},
		SubscriptionID:   DefaultSubscriptionID,
		ResourceGroup:    DefaultResourceGroup,
		Workspace:        DefaultWorkspace,
		Webservice:       DefaultWebservice,
		FileName:         contract.DataFile,
		QuarantineDir:    "quarantine",
		MaxAppendSize:    4 << 20,
		MaxFileSize:      azureMaxBlobSize,
		MaxBlocks:        azureMaxBlocks,
		MaxOpenFiles:     1000,
		Format:           FormatCSV,
		MDC:              defaultMDCConfig(),
		Parquet:          defaultParquetConfig(),
		Idempotency:      IdempotencyConfig{TTL: contract.DefaultKeyTTL, MaxKeys: contract.DefaultMaxKeys},
		QueueDiskReserve: defaultQueueDiskReserve,
	}
}

// defaultRetryConfig retries until storage is back, however long that is
// (max_elapsed_time 0): a failing batch stays in the queue, and a full queue
// refuses new rows instead of dropping old ones. The interval is capped at
// 2 s (3 s with jitter), so the queue drains within seconds of storage
// returning, at a few requests per second per consumer while it is down.
func defaultRetryConfig() configretry.BackOffConfig {
	r := configretry.NewDefaultBackOffConfig()
	r.InitialInterval = time.Second
	r.MaxInterval = 2 * time.Second
	r.MaxElapsedTime = 0
	return r
}

// Validate checks the configuration; its messages name the key to fix.
func (c *Config) Validate() error {
	var errs []error
	switch c.Backend {
	case BackendLocal:
		if c.Local.Directory == "" {
			errs = append(errs, errors.New("local.directory must be set for backend local"))
		}
	case BackendAzBlob:
		errs = append(errs, c.AzBlob.validate())
	default:
		errs = append(errs, fmt.Errorf("backend %q is not one of %q, %q", c.Backend, BackendLocal, BackendAzBlob))
	}
	if err := validateContainer(c.Container); err != nil {
		errs = append(errs, err)
	}
	for _, p := range []struct{ key, v string }{
		{"subscription_id", c.SubscriptionID}, {"resource_group", c.ResourceGroup},
		{"workspace", c.Workspace}, {"webservice", c.Webservice}, {"quarantine_dir", c.QuarantineDir},
	} {
		if err := contract.ValidateSegment(p.key, p.v); err != nil {
			errs = append(errs, err)
		}
	}
	if !strings.HasSuffix(c.FileName, ".csv") || len(c.FileName) == len(".csv") {
		errs = append(errs, fmt.Errorf("file_name %q must end in .csv", c.FileName))
	} else if err := contract.ValidateSegment("file_name", c.fileName("inputs")); err != nil {
		errs = append(errs, err)
	}
	if c.WriterID != "" {
		errs = append(errs, contract.ValidateSegment("writer_id", c.WriterID))
	}
	if c.MaxAppendSize <= 0 || c.MaxAppendSize > azureMaxAppendBlock {
		errs = append(errs, fmt.Errorf("max_append_size %d must be between 1 and %d (100 MiB)", c.MaxAppendSize, azureMaxAppendBlock))
	}
	if c.MaxFileSize <= 0 {
		errs = append(errs, fmt.Errorf("max_file_size %d must be positive", c.MaxFileSize))
	}
	if c.MaxOpenFiles < 1 {
		errs = append(errs, fmt.Errorf("max_open_files %d must be at least 1", c.MaxOpenFiles))
	}
	if c.MaxBlocks <= 1 || c.MaxBlocks > azureMaxBlocks {
		errs = append(errs, fmt.Errorf("max_blocks %d must be between 2 and %d", c.MaxBlocks, azureMaxBlocks))
	}
	if err := c.validateFormat(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Idempotency.validate(); err != nil {
		errs = append(errs, err)
	}
	if c.QueueDiskReserve < 0 || c.QueueDiskReserve > maxQueueDiskReserve {
		errs = append(errs, fmt.Errorf("queue_disk_reserve %d must be between 0 (none) and %d (1 GiB)", c.QueueDiskReserve, maxQueueDiskReserve))
	}
	return errors.Join(errs...)
}

// validateContainer applies Azure's container name rules: 3-63 characters,
// lower-case letters, digits and single hyphens, starting with a letter or digit.
func validateContainer(name string) error {
	bad := len(name) < 3 || len(name) > 63 || name[0] == '-' || name[len(name)-1] == '-' || strings.Contains(name, "--")
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			bad = true
		}
	}
	if bad {
		return fmt.Errorf("container %q is not a valid container name (3-63 lower-case letters, digits, single hyphens)", name)
	}
	return nil
}

func (a *AzBlobConfig) validate() error {
	needEndpoint := func() error {
		if a.Endpoint == "" && a.AccountName == "" {
			return fmt.Errorf("azblob.endpoint or azblob.account_name must be set for auth %q", a.Auth)
		}
		return nil
	}
	switch a.Auth {
	case AuthConnectionString:
		if a.ConnectionString == "" {
			return errors.New("azblob.connection_string must be set for auth connection_string")
		}
	case AuthAccountKey:
		if a.AccountName == "" || a.AccountKey == "" {
			return errors.New("azblob.account_name and azblob.account_key must be set for auth account_key")
		}
	case AuthSAS:
		if a.SASToken == "" {
			return errors.New("azblob.sas_token must be set for auth sas")
		}
		return needEndpoint()
	case AuthServicePrincipal:
		if a.TenantID == "" || a.ClientID == "" || a.ClientSecret == "" {
			return errors.New("azblob.tenant_id, azblob.client_id and azblob.client_secret must be set for auth service_principal")
		}
		return needEndpoint()
	case AuthManagedIdentity, AuthWorkloadIdentity, AuthDefault:
		return needEndpoint()
	default:
		return fmt.Errorf("azblob.auth %q is not one of connection_string, account_key, sas, managed_identity, workload_identity, service_principal, default", a.Auth)
	}
	return nil
}

// serviceURL is the blob service endpoint for the non-connection-string modes.
func (a *AzBlobConfig) serviceURL() string {
	if a.Endpoint != "" {
		return strings.TrimSuffix(a.Endpoint, "/") + "/"
	}
	return "https://" + a.AccountName + ".blob.core.windows.net/"
}

// fileName is FileName with its placeholders replaced; "{designation}" stays
// when designation is "" (it is replaced per row).
func (c *Config) fileName(designation string) string {
	name := c.FileName
	if strings.Contains(name, "{writer}") {
		name = strings.ReplaceAll(name, "{writer}", cmp.Or(c.WriterID, hostSegment()))
	}
	if designation != "" {
		name = strings.ReplaceAll(name, "{designation}", designation)
	}
	return name
}
