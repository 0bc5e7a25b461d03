package testutil

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TrackLines reads a request to an Application Insights track endpoint:
// the body, gunzipped when its Content-Encoding says gzip, split into its
// newline-delimited envelopes (one JSON document per line).
func TrackLines(r *http.Request) ([][]byte, error) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, err
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		return nil, err
	}
	var lines [][]byte
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		lines = append(lines, bytes.Clone(sc.Bytes()))
	}
	return lines, sc.Err()
}

// IngestionStub is a local Application Insights track endpoint that accepts
// everything (200, every item accepted) and keeps the envelopes, decoded. It
// reads both forms the exporters send: a JSON array (Microsoft's exporters)
// and newline-delimited JSON, gzip'd or not.
type IngestionStub struct {
	srv    *httptest.Server
	caFile string

	mu        sync.Mutex
	envelopes []map[string]any
	paths     []string
}

// StartIngestionStub starts the stub on 127.0.0.1 over plain HTTP; it is
// stopped when the test ends.
func StartIngestionStub(t testing.TB) *IngestionStub {
	s := &IngestionStub{}
	s.srv = httptest.NewServer(http.HandlerFunc(s.handle))
	t.Cleanup(s.srv.Close)
	return s
}

// StartTLSIngestionStub starts the stub over HTTPS with a self-signed
// certificate for 127.0.0.1 made for this test; CAFile is that certificate
// in PEM, for NODE_EXTRA_CA_CERTS (Microsoft's exporter only speaks https).
func StartTLSIngestionStub(t testing.TB) *IngestionStub {
	t.Helper()
	cert, certPEM, err := selfSignedCert()
	if err != nil {
		t.Fatal(err)
	}
	s := &IngestionStub{caFile: filepath.Join(t.TempDir(), "ingestion-ca.pem")}
	if err := os.WriteFile(s.caFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.handle))
	s.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the stub's base URL (the connection string's IngestionEndpoint).
func (s *IngestionStub) URL() string { return s.srv.URL }

// CAFile is the PEM file of the TLS stub's certificate ("" without TLS).
func (s *IngestionStub) CAFile() string { return s.caFile }

// Envelopes returns a copy of the envelopes received so far, in order.
func (s *IngestionStub) Envelopes() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.envelopes...)
}

// Paths returns the request paths received so far.
func (s *IngestionStub) Paths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.paths...)
}

func (s *IngestionStub) handle(w http.ResponseWriter, r *http.Request) {
	lines, err := TrackLines(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var got []map[string]any
	for _, line := range lines {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if line[0] == '[' {
			var arr []map[string]any
			err = json.Unmarshal(line, &arr)
			got = append(got, arr...)
		} else {
			var env map[string]any
			err = json.Unmarshal(line, &env)
			got = append(got, env)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	s.mu.Lock()
	s.envelopes = append(s.envelopes, got...)
	s.paths = append(s.paths, r.URL.Path)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"itemsReceived": len(got), "itemsAccepted": len(got), "errors": []any{}})
}

// selfSignedCert makes a one-hour ECDSA certificate for 127.0.0.1 and
// localhost that is its own CA.
func selfSignedCert() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "otelcol-modeldata test ingestion"},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

var aidiffOnce sync.Once

// AIDiffTool returns the path of tools/aidiff/emit.js, the Node program that
// sends one fixed set of telemetry through Microsoft's Azure Monitor
// exporters and as OTLP, installing its pinned packages with npm ci first
// when missing.
func AIDiffTool(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(RepoRoot(t), "tools", "aidiff")
	var err error
	aidiffOnce.Do(func() {
		if _, statErr := os.Stat(filepath.Join(dir, "node_modules", "@azure", "monitor-opentelemetry-exporter")); statErr != nil {
			err = npmCI(dir)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "emit.js")
}
