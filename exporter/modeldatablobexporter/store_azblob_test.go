package modeldatablobexporter

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// What the start check makes of a token request Entra answered, and of a
// service it could not reach.
func TestStartErrorTokenRefused(t *testing.T) {
	entra := func(status int, body string) error {
		resp := &http.Response{StatusCode: status, Status: http.StatusText(status), Header: http.Header{},
			Body: io.NopCloser(strings.NewReader(body))}
		// The SDK wraps the credential's error on its way out of the pipeline.
		return fmt.Errorf("get token: %w", &azidentity.AuthenticationFailedError{RawResponse: resp})
	}
	tests := []struct {
		name    string
		err     error
		wantErr string // "" when the collector starts and logs
		wantLog string
	}{
		{"no federated credential for this ServiceAccount",
			entra(http.StatusBadRequest, `{"error":"invalid_request","error_description":"AADSTS70021: No matching federated identity record found for presented assertion."}`),
			"HTTP 400 AADSTS70021", ""},
		{"unknown client id", entra(http.StatusBadRequest, `{"error":"unauthorized_client","error_description":"AADSTS700016: Application not found"}`),
			"federated credential names this pod's ServiceAccount", ""},
		{"Entra unavailable", entra(http.StatusServiceUnavailable, `{}`), "", "Blob service not reachable at start"},
		{"network down", &url.Error{Op: "Put", URL: "https://acct.blob.core.windows.net/modeldata?sig=secret", Err: errors.New("connection refused")},
			"", "Blob service not reachable at start"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			core, logs := observer.New(zap.InfoLevel)
			s := &azBlobStore{containerName: "modeldata", logger: zap.New(core)}
			err := s.startError(tt.err)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("start failed: %v", err)
				}
				if logs.FilterMessageSnippet(tt.wantLog).Len() != 1 {
					t.Fatalf("want the log line %q, got %v", tt.wantLog, logs.All())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "refused the token request") {
				t.Fatalf("got %v, want an error with %q", err, tt.wantErr)
			}
		})
	}
}
