// Package testutil starts the real parts that end-to-end tests need: the
// ocb-built collector binary and the Azurite blob emulator, on 127.0.0.1,
// and stops them when the test ends.
package testutil

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BinaryEnv names the environment variable that points the end-to-end tests
// at the collector binary; `make test` builds it once and sets it.
const BinaryEnv = "OTELCOL_MODELDATA_BIN"

// RepoRoot is the folder holding the module's go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// CollectorBinary returns the path of the built otelcol-modeldata binary.
// Outside CI a test without it is skipped; in CI (CI=true) it fails, so a
// broken build can never pass as skipped tests.
func CollectorBinary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv(BinaryEnv)
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set: run the tests with `make test`", BinaryEnv)
		}
		t.Skipf("%s is not set: run `make test` (it builds the collector once and sets it)", BinaryEnv)
	}
	if !filepath.IsAbs(bin) {
		bin = filepath.Join(RepoRoot(t), bin)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("collector binary: %v", err)
	}
	return bin
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago and
// that this process has not handed out before. It is taken below the
// kernel's ephemeral range: a port from that range can become the source port
// of any outgoing connection (the load clients make thousands) between this
// check and the collector's bind, and the collector then fails to start.
func FreePort(t testing.TB) int {
	t.Helper()
	low := ephemeralLow()
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 1000 {
		port := minListenPort + rand.IntN(low-minListenPort)
		if handedOut.ports[port] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		l.Close()
		handedOut.ports[port] = true
		return port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// minListenPort keeps FreePort clear of well-known and registered service
// ports that a developer machine may be running.
const minListenPort = 10000

var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's
// default when the range cannot be read).
func ephemeralLow() int {
	low := 32768
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > minListenPort+1000 {
				low = n
			}
		}
	}
	return low
}

// WaitForPort waits until addr accepts TCP connections or the timeout passes.
func WaitForPort(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not accept connections within %s: %w", addr, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Collector is a running collector process.
type Collector struct {
	t          testing.TB
	bin        string
	configPath string
	cmd        *exec.Cmd
	done       chan struct{}
	output     *SyncBuffer
}

// StartCollector writes configYAML to a file, starts the built collector on
// it, and waits until every address in waitAddrs accepts connections. The
// process is stopped when the test ends.
func StartCollector(t testing.TB, configYAML string, waitAddrs ...string) *Collector {
	t.Helper()
	return StartBinary(t, CollectorBinary(t), configYAML, waitAddrs...)
}

// StartBinary is StartCollector with another collector binary (the stock
// one, for comparisons).
func StartBinary(t testing.TB, bin, configYAML string, waitAddrs ...string) *Collector {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(configYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &Collector{t: t, bin: bin, configPath: path, output: &SyncBuffer{}}
	c.start(waitAddrs)
	t.Cleanup(func() {
		c.Stop()
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(bin), c.Output())
		}
	})
	return c
}

func (c *Collector) start(waitAddrs []string) {
	c.t.Helper()
	c.cmd = exec.Command(c.bin, "--config", c.configPath)
	c.cmd.Stdout = c.output
	c.cmd.Stderr = c.output
	if err := c.cmd.Start(); err != nil {
		c.t.Fatalf("start collector: %v", err)
	}
	c.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(c.cmd, c.done)
	for _, addr := range waitAddrs {
		if err := WaitForPort(addr, 30*time.Second); err != nil {
			c.Kill()
			c.t.Fatalf("collector not ready: %v\noutput:\n%s", err, c.Output())
		}
	}
}

// Restart starts the collector again on the same config after Stop or Kill.
func (c *Collector) Restart(waitAddrs ...string) {
	c.t.Helper()
	c.start(waitAddrs)
}

// Stop sends SIGTERM and waits for a graceful shutdown, then SIGKILL.
func (c *Collector) Stop() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		c.Kill()
	}
}

// Kill ends the process with SIGKILL, as a crash would.
func (c *Collector) Kill() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	_ = c.cmd.Process.Kill()
	<-c.done
}

// Output is what the collector printed so far.
func (c *Collector) Output() string { return c.output.String() }

// SyncBuffer is a bytes.Buffer safe for one writer (a process's output) and concurrent readers.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// ReadCSVTree parses every .csv file below dir, keyed by its slash-separated
// path relative to dir.
func ReadCSVTree(t testing.TB, dir string) map[string][][]string {
	t.Helper()
	files, err := TryReadCSVTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TryReadCSVTree is ReadCSVTree for polling while the collector still writes:
// an append caught half-way fails to parse, and the caller reads again later.
func TryReadCSVTree(dir string) (map[string][][]string, error) {
	files := map[string][][]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".csv") {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		records, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		rel, _ := filepath.Rel(dir, path)
		files[filepath.ToSlash(rel)] = records
		return nil
	})
	return files, err
}

// Poll calls cond every 100 ms until it is true (true) or the timeout passes (false).
func Poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

// ReadFile returns a file's bytes or fails the test.
func ReadFile(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
