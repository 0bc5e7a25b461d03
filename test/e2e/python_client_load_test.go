package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// The Python client's scoring loop (clients/python/bench_collect.py) against
// the built collector: every row it collected must be in the CSV files, also
// across a collector restart and a SIGTERM of the scoring process; and a
// collector that never answers must not hold the process's exit beyond
// MODELDATA_FLUSH_TIMEOUT.

// loopResult is the line bench_collect.py prints when its loop ends.
type loopResult struct {
	Rows          int     `json:"rows"`
	CollectedRate float64 `json:"collected_rows_per_s"`
	P50           float64 `json:"collect_p50_us"`
	P99           float64 `json:"collect_p99_us"`
	Buffered      int     `json:"buffered_rows"`
	Flushed       *bool   `json:"flushed"`
	Stats         struct {
		Dropped int `json:"dropped_rows"`
	} `json:"stats"`
	ServerHandler int `json:"server_handler"`
}

// scoringLoop is a running bench_collect.py.
type scoringLoop struct {
	t      *testing.T
	cmd    *exec.Cmd
	lines  chan string
	stderr *testutil.SyncBuffer
	done   chan error
}

func startScoringLoop(t *testing.T, endpoint string, env []string, args ...string) *scoringLoop {
	t.Helper()
	root := testutil.RepoRoot(t)
	cmd := exec.Command(python3(t), append([]string{filepath.Join(root, "clients", "python", "bench_collect.py"), "--endpoint", endpoint}, args...)...)
	cmd.Env = append(os.Environ(), "MODELDATA_MODEL_CONFIG_MAP="+os.DevNull)
	cmd.Env = append(cmd.Env, env...)
	l := &scoringLoop{t: t, cmd: cmd, lines: make(chan string, 16), stderr: &testutil.SyncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = l.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			l.lines <- sc.Text()
		}
		close(l.lines)
		l.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("scoring loop stderr:\n%s", l.stderr)
		}
	})
	return l
}

// result waits for the next JSON line of the loop.
func (l *scoringLoop) result(timeout time.Duration) loopResult {
	l.t.Helper()
	select {
	case line, ok := <-l.lines:
		if !ok {
			l.t.Fatalf("the scoring loop ended without a result: %v\nstderr:\n%s", <-l.done, l.stderr)
		}
		var r loopResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			l.t.Fatalf("scoring loop printed %q: %v", line, err)
		}
		return r
	case <-time.After(timeout):
		l.t.Fatalf("no result from the scoring loop within %s\nstderr:\n%s", timeout, l.stderr)
	}
	return loopResult{}
}

// wait waits for the process to end and returns its exit error.
func (l *scoringLoop) wait(timeout time.Duration) error {
	l.t.Helper()
	select {
	case err := <-l.done:
		return err
	case <-time.After(timeout):
		l.t.Fatalf("the scoring process did not exit within %s\nstderr:\n%s", timeout, l.stderr)
	}
	return nil
}

// csvRows counts the data rows of every CSV file under dir (each file's
// first line is its header); -1 while an append is caught half-way.
func csvRows(dir string) int {
	files, err := testutil.TryReadCSVTree(dir)
	if err != nil {
		return -1
	}
	n := 0
	for _, rows := range files {
		for _, row := range rows[1:] {
			if !equalRows(row, rows[0]) { // a header written again counts as none
				n++
			}
		}
	}
	return n
}

func equalRows(a, b []string) bool {
	return strings.Join(a, "\x00") == strings.Join(b, "\x00")
}

// assertRowsLanded drains the collector (a graceful stop writes everything
// it accepted) and requires the CSV files to hold exactly want rows, every
// file parsing.
func assertRowsLanded(t *testing.T, c *testutil.Collector, dir string, want int) {
	t.Helper()
	c.Stop()
	if got := csvRows(dir); got != want {
		t.Fatalf("the CSV files hold %d rows, the client collected %d (%+d)", got, want, got-want)
	}
	testutil.ReadCSVTree(t, dir)
}

// startCSVCollector starts the built collector with the local CSV exporter.
func startCSVCollector(t *testing.T) (c *testutil.Collector, endpoint, dataDir string, addrs []string) {
	collectAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	healthAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	dataDir = t.TempDir()
	addrs = []string{collectAddr, healthAddr}
	c = testutil.StartCollector(t, localCSVConfig(healthAddr, dataDir, "modeldata", "endpoint: "+collectAddr), addrs...)
	return c, "http://" + collectAddr, dataDir, addrs
}

// TestPythonClientScoringLoopLosesNoRow runs the scoring loop at 50,000
// rows/s (1-5-row collect() calls) for 10 s and finds every row in the CSV.
// The buffer is sized so that a CI machine shared with other work, where the
// collector may fall behind for a while, still loses nothing.
func TestPythonClientScoringLoopLosesNoRow(t *testing.T) {
	python3(t)
	c, endpoint, dataDir, _ := startCSVCollector(t)
	loop := startScoringLoop(t, endpoint, []string{"MODELDATA_BUFFER_ROWS=1000000", "MODELDATA_BUFFER_BYTES=1000000000"},
		"--seconds", "10", "--rate", "50000")
	r := loop.result(5 * time.Minute)
	if err := loop.wait(time.Minute); err != nil {
		t.Fatalf("scoring loop: %v", err)
	}
	t.Logf("collected %d rows at %.0f rows/s; collect() p50 %.1f µs, p99 %.1f µs", r.Rows, r.CollectedRate, r.P50, r.P99)
	if r.Flushed == nil || !*r.Flushed || r.Stats.Dropped != 0 {
		t.Fatalf("the client did not send everything: %+v\nstderr:\n%s", r, loop.stderr)
	}
	assertRowsLanded(t, c, dataDir, r.Rows)
}

// TestPythonClientKeepsRowsAcrossCollectorRestart stops the collector in the
// middle of a scoring loop, leaves it down as a DaemonSet rollout does (3 s,
// and 60 s: a node's collector down for its whole grace period), and starts
// it again: no row is lost, with the default buffer, and the client warns
// once when the collector goes away and once when it is back.
func TestPythonClientKeepsRowsAcrossCollectorRestart(t *testing.T) {
	python3(t)
	for _, tt := range []struct {
		down time.Duration
		rate int
	}{
		{3 * time.Second, 5000},
		{60 * time.Second, 1000}, // 60,000 rows buffered meanwhile: within the default 100,000
	} {
		t.Run(tt.down.String(), func(t *testing.T) {
			c, endpoint, dataDir, addrs := startCSVCollector(t)
			seconds := tt.down.Seconds() + 12 // the loop outlives the outage and the client's next retry (<= 5 s)
			loop := startScoringLoop(t, endpoint, nil, "--seconds", fmt.Sprint(seconds), "--rate", fmt.Sprint(tt.rate), "--then", "exit")
			if !testutil.Poll(30*time.Second, func() bool { return csvRows(dataDir) > 0 }) {
				t.Fatal("no rows reached the CSV files")
			}
			c.Stop()
			time.Sleep(tt.down) // the collector is down: the scenario, not a synchronisation
			c.Restart(addrs...)
			r := loop.result(time.Duration(seconds)*time.Second + time.Minute)
			if err := loop.wait(time.Minute); err != nil {
				t.Fatalf("scoring loop: %v\nstderr:\n%s", err, loop.stderr)
			}
			assertRowsLanded(t, c, dataDir, r.Rows)
			stderr := loop.stderr.String()
			if !strings.Contains(stderr, "not answering") || !strings.Contains(stderr, "answers again") || strings.Count(stderr, "modeldata_collector: ") != 2 {
				t.Errorf("want one warning when the collector went away and one when it came back, got:\n%s", stderr)
			}
		})
	}
}

// TestPythonClientFlushesOnSIGTERM sends SIGTERM to the scoring process right
// after a burst (50,000 rows in 1 s: within the default buffer however slow
// the collector is), with and without a handler of the scoring server
// installed before the client's: every row of the burst is in the CSV, and
// the server's handler still runs.
func TestPythonClientFlushesOnSIGTERM(t *testing.T) {
	python3(t)
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"default SIGTERM action", nil},
		{"scoring server handler", []string{"--server-handler"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, endpoint, dataDir, _ := startCSVCollector(t)
			loop := startScoringLoop(t, endpoint, []string{"MODELDATA_FLUSH_TIMEOUT=60"},
				append([]string{"--seconds", "1", "--rate", "50000", "--then", "wait"}, tt.args...)...)
			r := loop.result(time.Minute)
			if err := loop.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			t.Logf("SIGTERM with %d of %d rows not yet taken by the collector", r.Buffered, r.Rows)
			err := loop.wait(time.Minute)
			if tt.args == nil {
				var exit *exec.ExitError
				if !errors.As(err, &exit) || exit.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
					t.Errorf("the process ended with %v, want killed by SIGTERM (the default action, after the flush)", err)
				}
			} else {
				if err != nil {
					t.Errorf("the process ended with %v, want the server handler's exit 0", err)
				}
				if got := loop.result(time.Second); got.ServerHandler != int(syscall.SIGTERM) {
					t.Errorf("the server's SIGTERM handler did not run: %+v", got)
				}
			}
			assertRowsLanded(t, c, dataDir, r.Rows)
		})
	}
}

// TestPythonClientExitWithHungCollector points the client at a collector
// that accepts connections and never answers: the process exits within
// MODELDATA_FLUSH_TIMEOUT, at exit and on SIGTERM, although one HTTP request
// may take MODELDATA_TIMEOUT (30 s) here.
func TestPythonClientExitWithHungCollector(t *testing.T) {
	python3(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, conn)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	const flushTimeout = 2 * time.Second
	env := []string{"MODELDATA_TIMEOUT=30", fmt.Sprintf("MODELDATA_FLUSH_TIMEOUT=%g", flushTimeout.Seconds())}
	for _, then := range []string{"exit", "wait"} {
		t.Run(then, func(t *testing.T) {
			loop := startScoringLoop(t, "http://"+ln.Addr().String(), env, "--seconds", "0.5", "--rate", "1000", "--then", then)
			loop.result(time.Minute)
			start := time.Now()
			if then == "wait" {
				if err := loop.cmd.Process.Signal(syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}
			}
			_ = loop.wait(time.Minute)
			// The margin covers the interpreter's own shutdown on a busy machine.
			if took := time.Since(start); took > flushTimeout+time.Second {
				t.Errorf("the process took %s to exit, MODELDATA_FLUSH_TIMEOUT is %s", took.Round(time.Millisecond), flushTimeout)
			}
			if !strings.Contains(loop.stderr.String(), "rows not sent at exit") {
				t.Errorf("no warning about the rows left:\n%s", loop.stderr)
			}
		})
	}
}
