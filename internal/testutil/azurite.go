package testutil

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The well-known Azurite development account (published by Microsoft; not a secret).
const (
	AzuriteAccount = "devstoreaccount1"
	AzuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// azuriteBin is the pinned Azurite blob server, relative to the repo root
// (tools/azurite/package.json and package-lock.json pin the version).
const azuriteBin = "tools/azurite/node_modules/.bin/azurite-blob"

// Azurite is a running Azurite blob service on 127.0.0.1.
type Azurite struct {
	t        testing.TB
	bin      string
	port     int
	location string
	log      *SyncBuffer

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

var installOnce sync.Once

// StartAzurite starts the Azurite blob service on a free port of 127.0.0.1
// with a fresh data folder, installing it with npm first when missing. It is
// stopped when the test ends.
func StartAzurite(t testing.TB) *Azurite {
	t.Helper()
	root := RepoRoot(t)
	bin := filepath.Join(root, azuriteBin)
	var installErr error
	installOnce.Do(func() { installErr = installAzurite(root, bin) })
	if installErr != nil {
		t.Fatal(installErr)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("azurite: %v (run `make azurite`)", err)
	}
	a := &Azurite{t: t, bin: bin, port: FreePort(t), location: t.TempDir(), log: &SyncBuffer{}}
	a.start()
	t.Cleanup(func() {
		a.Stop()
		if t.Failed() {
			t.Logf("azurite output:\n%s", a.log.String())
		}
	})
	return a
}

// installAzurite runs `npm ci` for the pinned Azurite when its binary is missing.
func installAzurite(root, bin string) error {
	if _, err := os.Stat(bin); err == nil {
		return nil
	}
	return npmCI(filepath.Join(root, "tools", "azurite"))
}

// npmCI installs the pinned packages of a tools/ folder (package-lock.json).
func npmCI(dir string) error {
	cmd := exec.Command("npm", "ci", "--prefix", dir, "--no-audit", "--no-fund", "--loglevel=error")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("npm ci in %s: %v\n%s", dir, err, out)
	}
	return nil
}

func (a *Azurite) start() {
	a.t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	cmd := exec.Command(a.bin, "--blobHost", "127.0.0.1", "--blobPort", fmt.Sprint(a.port), "--location", a.location,
		"--silent", "--skipApiVersionCheck", "--disableTelemetry")
	cmd.Stdout, cmd.Stderr = a.log, a.log
	if err := cmd.Start(); err != nil {
		a.t.Fatalf("start azurite: %v", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	a.cmd, a.done = cmd, done
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			a.t.Fatalf("azurite exited at start:\n%s", a.log.String())
		default:
		}
		if err := WaitForPort(a.addr(), 200*time.Millisecond); err == nil {
			return
		}
		if time.Now().After(deadline) {
			a.stopLocked()
			a.t.Fatalf("azurite did not listen on %s within 30s:\n%s", a.addr(), a.log.String())
		}
	}
}

func (a *Azurite) addr() string { return fmt.Sprintf("127.0.0.1:%d", a.port) }

// Endpoint is the blob service URL of the development account.
func (a *Azurite) Endpoint() string { return fmt.Sprintf("http://%s/%s", a.addr(), AzuriteAccount) }

// Port is the TCP port Azurite listens on.
func (a *Azurite) Port() int { return a.port }

// AccountName and AccountKey are the development account's credentials.
func (a *Azurite) AccountName() string { return AzuriteAccount }
func (a *Azurite) AccountKey() string  { return AzuriteKey }

// ConnectionString is a storage connection string for the development account.
func (a *Azurite) ConnectionString() string {
	return fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=%s;",
		AzuriteAccount, AzuriteKey, a.Endpoint())
}

// Stop ends Azurite: SIGTERM, then SIGKILL by pid after a short grace. The
// data folder is kept for Restart.
func (a *Azurite) Stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stopLocked()
}

func (a *Azurite) stopLocked() {
	if a.cmd == nil || a.cmd.Process == nil {
		return
	}
	select {
	case <-a.done:
	default:
		_ = a.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-a.done:
		case <-time.After(2 * time.Second):
			_ = syscall.Kill(a.cmd.Process.Pid, syscall.SIGKILL)
			<-a.done
		}
	}
	a.cmd = nil
}

// Restart starts Azurite again on the same port and data folder after Stop.
func (a *Azurite) Restart() {
	a.t.Helper()
	a.Stop()
	a.start()
}

// Log is what Azurite printed so far.
func (a *Azurite) Log() string { return a.log.String() }

// errNotRunning reports a stopped server (used by Running).
var errNotRunning = errors.New("azurite is not running")

// Running reports whether the server process is alive.
func (a *Azurite) Running() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cmd == nil {
		return errNotRunning
	}
	select {
	case <-a.done:
		return fmt.Errorf("azurite exited: %s", strings.TrimSpace(a.log.String()))
	default:
		return nil
	}
}
