package modeldatablobexporter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/appendblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.uber.org/zap"
)

// azBlobStore keeps the layout in append blobs of one container.
type azBlobStore struct {
	client          *container.Client
	containerName   string
	createContainer bool
	maxSize         int64
	logger          *zap.Logger
}

// clientOptions keep the SDK's own retries short: the exporterhelper
// retries with backoff, and a retried append is checked by position.
func clientOptions() *container.ClientOptions {
	return &container.ClientOptions{ClientOptions: azcore.ClientOptions{
		Retry: policy.RetryOptions{MaxRetries: 2, RetryDelay: 200 * time.Millisecond, MaxRetryDelay: 2 * time.Second},
		// The exporter's own log lines say what failed; keep SDK logging quiet.
		Logging:          policy.LogOptions{},
		PerRetryPolicies: []policy.Policy{countAttempts{}},
	}}
}

// attemptsKey carries a request's *requestAttempts in its context.
type attemptsKey struct{}

// requestAttempts counts the HTTP attempts of one SDK call, its own retries
// included; tel (optional) counts the retries.
type requestAttempts struct {
	n   int
	tel *telemetry
}

// countAttempts runs once per attempt, in the caller's goroutine.
type countAttempts struct{}

func (countAttempts) Do(req *policy.Request) (*http.Response, error) {
	if a, ok := req.Raw().Context().Value(attemptsKey{}).(*requestAttempts); ok {
		if a.n++; a.n > 1 && a.tel != nil {
			a.tel.appendRetried(req.Raw().Context())
		}
	}
	return req.Next()
}

// withAppendTelemetry makes the SDK retries of the appends made with ctx
// counted in tel.
func withAppendTelemetry(ctx context.Context, tel *telemetry) context.Context {
	return context.WithValue(ctx, telemetryKey{}, tel)
}

type telemetryKey struct{}

func newAzBlobStore(cfg *Config, logger *zap.Logger) (*azBlobStore, error) {
	a := cfg.AzBlob
	opts := clientOptions()
	containerURL := a.serviceURL() + cfg.Container
	var (
		client *container.Client
		err    error
	)
	switch a.Auth {
	case AuthConnectionString:
		client, err = container.NewClientFromConnectionString(string(a.ConnectionString), cfg.Container, opts)
		if err != nil {
			// The SDK's message may quote the connection string: keep it out.
			err = errors.New("azblob.connection_string is not a valid storage connection string")
		}
	case AuthAccountKey:
		var cred *container.SharedKeyCredential
		cred, err = container.NewSharedKeyCredential(a.AccountName, string(a.AccountKey))
		if err != nil {
			err = errors.New("azblob.account_key is not a valid base64 account key")
			break
		}
		client, err = container.NewClientWithSharedKeyCredential(containerURL, cred, opts)
	case AuthSAS:
		client, err = container.NewClientWithNoCredential(containerURL+"?"+strings.TrimPrefix(string(a.SASToken), "?"), opts)
	default:
		var cred azcore.TokenCredential
		cred, err = tokenCredential(&a)
		if err != nil {
			return nil, fmt.Errorf("azblob.auth %s: %w", a.Auth, err)
		}
		client, err = container.NewClient(containerURL, cred, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("azblob: %w", err)
	}
	return &azBlobStore{client: client, containerName: cfg.Container, createContainer: a.CreateContainer,
		maxSize: cfg.MaxFileSize, logger: logger}, nil
}

// tokenCredential builds the Microsoft Entra ID credential of an auth mode.
func tokenCredential(a *AzBlobConfig) (azcore.TokenCredential, error) {
	switch a.Auth {
	case AuthManagedIdentity:
		o := &azidentity.ManagedIdentityCredentialOptions{}
		if a.ClientID != "" { // user-assigned identity
			o.ID = azidentity.ClientID(a.ClientID)
		}
		return azidentity.NewManagedIdentityCredential(o)
	case AuthWorkloadIdentity:
		// Empty fields fall back to AZURE_TENANT_ID, AZURE_CLIENT_ID and
		// AZURE_FEDERATED_TOKEN_FILE, which the AKS workload identity webhook sets.
		return azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			TenantID: a.TenantID, ClientID: a.ClientID, TokenFilePath: a.FederatedTokenFile})
	case AuthServicePrincipal:
		return azidentity.NewClientSecretCredential(a.TenantID, a.ClientID, string(a.ClientSecret), nil)
	default: // AuthDefault: environment, workload identity, managed identity, Azure CLI, ...
		return azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{TenantID: a.TenantID})
	}
}

// aadErrorRE finds Entra's error code (AADSTS70021: no matching federated identity record, ...).
var aadErrorRE = regexp.MustCompile(`AADSTS\d+`)

// start creates (or checks) the container. A refused credential or a
// missing container is an error; an unreachable service is only logged, so
// the collector starts and the queue keeps rows until the service is back.
func (s *azBlobStore) start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if s.createContainer {
		_, err := s.client.Create(ctx, nil)
		if err == nil || bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
			return nil
		}
		if status(err) != http.StatusForbidden {
			return s.startError(err)
		}
		// A credential scoped to the container (e.g. a container SAS) may
		// not create it: check that it can use the existing one.
	}
	_, err := s.client.NewBlobClient("modeldatablob-start-check").GetProperties(ctx, nil)
	if err == nil || bloberror.HasCode(err, bloberror.BlobNotFound) || (status(err) == http.StatusNotFound && errorCode(err) == "") {
		return nil
	}
	return s.startError(err)
}

func (s *azBlobStore) startError(err error) error {
	// Microsoft Entra ID refusing the token request (a wrong client id, or
	// a federated credential whose subject is not this ServiceAccount) is a
	// refused credential too, not an unreachable service.
	var authErr *azidentity.AuthenticationFailedError
	if errors.As(err, &authErr) && authErr.RawResponse != nil && authErr.RawResponse.StatusCode < 500 &&
		authErr.RawResponse.StatusCode != http.StatusTooManyRequests {
		code := aadErrorRE.FindString(authErr.Error())
		return fmt.Errorf("azblob: Microsoft Entra ID refused the token request (HTTP %d %s): check azblob.auth, client_id and tenant_id; for workload_identity, that the identity's federated credential names this pod's ServiceAccount (system:serviceaccount:<namespace>:<name>)",
			authErr.RawResponse.StatusCode, code)
	}
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		s.logger.Warn("Blob service not reachable at start; rows stay queued until it is",
			zap.String("container", s.containerName), zap.String("error", describe(err)))
		return nil
	}
	switch {
	case re.StatusCode == http.StatusUnauthorized || re.StatusCode == http.StatusForbidden:
		return fmt.Errorf("azblob: the credential is refused for container %q (HTTP %d %s): check azblob.auth and its secret, and that the identity may write blobs (e.g. role Storage Blob Data Contributor)",
			s.containerName, re.StatusCode, re.ErrorCode)
	case re.ErrorCode == string(bloberror.ContainerNotFound):
		return fmt.Errorf("azblob: container %q does not exist; create it or set azblob.create_container: true", s.containerName)
	case re.StatusCode >= 500 || re.StatusCode == http.StatusTooManyRequests:
		s.logger.Warn("Blob service unavailable at start; rows stay queued until it is back",
			zap.String("container", s.containerName), zap.String("error", describe(err)))
		return nil
	}
	return fmt.Errorf("azblob: container %q: %s", s.containerName, describe(err))
}

func (s *azBlobStore) props(ctx context.Context, name string) (fileProps, error) {
	r, err := s.client.NewBlobClient(name).GetProperties(ctx, nil)
	if err != nil {
		// A missing container means a missing blob: create makes both.
		if bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ContainerNotFound) || (status(err) == http.StatusNotFound && errorCode(err) == "") {
			return fileProps{}, nil
		}
		return fileProps{}, s.wrap("get properties of", name, err)
	}
	p := fileProps{exists: true}
	if r.ContentLength != nil {
		p.size = *r.ContentLength
	}
	if r.BlobCommittedBlockCount != nil {
		p.blocks = int(*r.BlobCommittedBlockCount)
	}
	if r.IsSealed != nil && *r.IsSealed {
		p.blocks = azureMaxBlocks // a sealed blob takes no appends: roll
	}
	return p, nil
}

func (s *azBlobStore) create(ctx context.Context, name string) error {
	return s.createBlob(ctx, name, false)
}

func (s *azBlobStore) createBlob(ctx context.Context, name string, retried bool) error {
	_, err := s.client.NewAppendBlobClient(name).Create(ctx, &appendblob.CreateOptions{
		HTTPHeaders: &blob.HTTPHeaders{BlobContentType: ptr(contentType(name))},
		AccessConditions: &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{
			IfNoneMatch: ptr(azcore.ETagAny), // never truncate a blob another writer created
		}},
	})
	if err == nil || bloberror.HasCode(err, bloberror.BlobAlreadyExists) || status(err) == http.StatusConflict && errorCode(err) == "" {
		return nil
	}
	if bloberror.HasCode(err, bloberror.ContainerNotFound) && s.createContainer && !retried {
		// The service was unreachable at start, or the container was deleted since.
		if _, cerr := s.client.Create(ctx, nil); cerr == nil || bloberror.HasCode(cerr, bloberror.ContainerAlreadyExists) {
			return s.createBlob(ctx, name, true)
		}
	}
	return s.wrap("create", name, err)
}

func (s *azBlobStore) appendAt(ctx context.Context, name string, pos int64, data []byte) error {
	_, err := s.appendBlock(ctx, name, &pos, data)
	return err
}

// sentOnce retries an unconditional append only when the service refused
// it unprocessed (503 Server Busy): after a lost answer, a retry could land
// a second copy.
var sentOnce = policy.RetryOptions{MaxRetries: 2, RetryDelay: 200 * time.Millisecond, MaxRetryDelay: 2 * time.Second,
	ShouldRetry: func(resp *http.Response, err error) bool {
		return err == nil && resp.StatusCode == http.StatusServiceUnavailable
	}}

func (s *azBlobStore) appendAny(ctx context.Context, name string, data []byte) (appended, error) {
	r, err := s.appendBlock(policy.WithRetryOptions(ctx, sentOnce), name, nil, data)
	if err != nil {
		return appended{}, err
	}
	a := appended{at: -1}
	if r.BlobAppendOffset != nil {
		if at, perr := strconv.ParseInt(*r.BlobAppendOffset, 10, 64); perr == nil {
			a.at = at
		}
	}
	if r.BlobCommittedBlockCount != nil {
		a.blocks = int(*r.BlobCommittedBlockCount)
	}
	return a, nil
}

// appendBlock appends data, at pos unless pos is nil.
func (s *azBlobStore) appendBlock(ctx context.Context, name string, pos *int64, data []byte) (appendblob.AppendBlockResponse, error) {
	attempts := &requestAttempts{}
	attempts.tel, _ = ctx.Value(telemetryKey{}).(*telemetry)
	ctx = context.WithValue(ctx, attemptsKey{}, attempts)
	r, err := s.client.NewAppendBlobClient(name).AppendBlock(ctx, nopCloser{bytes.NewReader(data)}, &appendblob.AppendBlockOptions{
		AppendPositionAccessConditions: &appendblob.AppendPositionAccessConditions{AppendPosition: pos, MaxSize: &s.maxSize},
	})
	switch {
	case err == nil:
		return r, nil
	case bloberror.HasCode(err, bloberror.AppendPositionConditionNotMet):
		if attempts.n == 1 {
			return r, errRaceLost
		}
		// The SDK sent it again: an earlier attempt may be what is there.
		return r, errPosition
	case bloberror.HasCode(err, bloberror.BlockCountExceedsLimit, bloberror.MaxBlobSizeConditionNotMet, "BlobIsSealed"):
		return r, errFull
	case bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ContainerNotFound):
		// Deleted since we opened it: the writer opens it again, which
		// creates the container too when create_container is set.
		return r, fmt.Errorf("append to %s: %s: %w", name, describe(err), errGone)
	}
	return r, s.wrap("append to", name, err)
}

func (s *azBlobStore) readAt(ctx context.Context, name string, off, n int64) ([]byte, error) {
	r, err := s.client.NewBlobClient(name).DownloadStream(ctx, &blob.DownloadStreamOptions{Range: blob.HTTPRange{Offset: off, Count: n}})
	if err != nil {
		return nil, s.wrap("read", name, err)
	}
	defer r.Body.Close()
	data, err := io.ReadAll(io.LimitReader(r.Body, n))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return data, nil
}

// wrap turns an SDK error into a short message (no URL query, so no SAS
// signature) and marks client errors that no retry can fix as permanent.
func (s *azBlobStore) wrap(op, name string, err error) error {
	werr := fmt.Errorf("%s %s: %s", op, name, describe(err))
	switch status(err) {
	case http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusLengthRequired,
		http.StatusRequestEntityTooLarge, http.StatusRequestURITooLong, http.StatusRequestedRangeNotSatisfiable:
		return consumererror.NewPermanent(werr)
	}
	// 401/403/404 stay retryable: credentials, role assignments and
	// containers can be fixed while the queue holds the rows.
	switch {
	case status(err) == http.StatusUnauthorized || status(err) == http.StatusForbidden:
		return &accessError{err: werr, hint: "the credential is refused: check azblob.auth and its secret, and that the identity may write blobs (role Storage Blob Data Contributor)"}
	case bloberror.HasCode(err, bloberror.ContainerNotFound):
		return &accessError{err: werr, hint: fmt.Sprintf("container %q does not exist: create it, or set azblob.create_container: true", s.containerName)}
	}
	return werr
}

// describe is an SDK error in one line: the HTTP status and error code, or
// the transport error.
func describe(err error) string {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return fmt.Sprintf("HTTP %d %s", re.StatusCode, re.ErrorCode)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out"
	}
	// A transport error quotes the request URL, whose query may hold a SAS
	// signature: name only the operation, host and path.
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			return fmt.Sprintf("%s %s://%s%s: %v", ue.Op, u.Scheme, u.Host, u.EscapedPath(), ue.Err)
		}
		return fmt.Sprintf("%s: %v", ue.Op, ue.Err)
	}
	return err.Error()
}

func status(err error) int {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

func errorCode(err error) string {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}

type nopCloser struct{ io.ReadSeeker }

func (nopCloser) Close() error { return nil }

func ptr[T any](v T) *T { return &v }
