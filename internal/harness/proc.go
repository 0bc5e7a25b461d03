package harness

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, 100 on every Linux this runs on (the kernel ABI
// fixes it for /proc/<pid>/stat).
const clockTicks = 100

// ProcStats are a process's CPU time and memory from /proc.
type ProcStats struct {
	CPUSeconds float64 // utime + stime
	HWMBytes   int64   // VmHWM: peak resident set
	RSSBytes   int64   // VmRSS: resident set now
	AnonBytes  int64   // RssAnon: the anonymous part of VmRSS (heap, stacks)
	FileBytes  int64   // RssFile: the file-backed part (the binary, memory-mapped files)
}

// ReadProc reads /proc/<pid>/stat (utime+stime) and /proc/<pid>/status (VmHWM, VmRSS, RssAnon, RssFile).
func ReadProc(pid int) (ProcStats, error) {
	var s ProcStats
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return s, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	fields := strings.Fields(string(stat[end+1:]))
	// fields[0] is field 3 (state); utime is field 14, stime 15.
	if len(fields) < 13 {
		return s, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields))
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("/proc/%d/stat: utime %q stime %q", pid, fields[11], fields[12])
	}
	s.CPUSeconds = float64(utime+stime) / clockTicks
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		line := sc.Text()
		for _, f := range []struct {
			key string
			dst *int64
		}{{"VmHWM:", &s.HWMBytes}, {"VmRSS:", &s.RSSBytes}, {"RssAnon:", &s.AnonBytes}, {"RssFile:", &s.FileBytes}} {
			if rest, ok := strings.CutPrefix(line, f.key); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				*f.dst = kb * 1024
			}
		}
	}
	return s, nil
}

// ChildPIDs lists the live child processes of parent whose executable is exe
// (e.g. the collector a test started), oldest first by pid.
func ChildPIDs(parent int, exe string) []int {
	exe, _ = filepath.EvalSymlinks(exe)
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		end := bytes.LastIndexByte(stat, ')')
		fields := strings.Fields(string(stat[end+1:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(parent) || fields[0] == "Z" {
			continue
		}
		if target, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && target == exe {
			pids = append(pids, pid)
		}
	}
	return pids
}

// FindPIDByArg returns a live process whose command line contains every one
// of args (e.g. Azurite's port), or 0.
func FindPIDByArg(args ...string) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		parts := strings.Split(string(cmdline), "\x00")
		all := true
		for _, a := range args {
			found := false
			for _, p := range parts {
				if p == a {
					found = true
					break
				}
			}
			all = all && found
		}
		if all && len(args) > 0 {
			return pid
		}
	}
	return 0
}

// SentRows reads the collector's own metrics (Prometheus text at
// metricsURL) and returns the sum of otelcol_exporter_sent_log_records.
func SentRows(ctx context.Context, metricsURL string) (float64, error) {
	return SentRowsBy(ctx, metricsURL, "")
}

// SentRowsBy is SentRows over the exporters whose series mention exporter
// ("" for all of them).
func SentRowsBy(ctx context.Context, metricsURL, exporter string) (float64, error) {
	return MetricSum(ctx, metricsURL, "otelcol_exporter_sent_log_records", `"`+exporter)
}

// MetricSum sums the series of the metrics whose names start with name
// (Prometheus text at metricsURL) whose line contains every one of labels
// (e.g. `feature="alcohol"`).
func MetricSum(ctx context.Context, metricsURL, name string, labels ...string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var sum float64
	found := false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
lines:
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(line, l) {
				continue lines
			}
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			sum += v
			found = true
		}
	}
	if !found {
		return 0, fmt.Errorf("no %s at %s", name, metricsURL)
	}
	return sum, sc.Err()
}
