package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// memoryCgroup is a memory cgroup made for one collector, with the memory
// limit of the container it stands for: the kernel charges it the
// process's anonymous memory and the page cache it touches (the queue
// file, the files it writes), reclaims that cache when the group nears the
// limit, and kills the process when it cannot.
type memoryCgroup struct {
	dir string
	v2  bool
}

// newMemoryCgroup makes a child of this process's memory cgroup (cgroup v2,
// or the v1 memory controller) with the given limit. It returns nil and
// why when the machine does not allow it (no controller, not writable).
func newMemoryCgroup(t *testing.T, limit int64) (*memoryCgroup, string) {
	t.Helper()
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err.Error()
	}
	var tries []memoryCgroup
	sc := bufio.NewScanner(bytes.NewReader(own))
	for sc.Scan() {
		// hierarchy-id:controllers:path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		name := fmt.Sprintf("modeldata-memory-%d-%d", os.Getpid(), time.Now().UnixNano())
		switch {
		case parts[0] == "0" && parts[1] == "":
			if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
				tries = append(tries, memoryCgroup{dir: filepath.Join("/sys/fs/cgroup", parts[2], name), v2: true})
			}
		case contains(strings.Split(parts[1], ","), "memory"):
			tries = append(tries, memoryCgroup{dir: filepath.Join("/sys/fs/cgroup/memory", parts[2], name)})
		}
	}
	var why []string
	for _, cg := range tries {
		if err := cg.create(limit); err != nil {
			why = append(why, err.Error())
			_ = os.Remove(cg.dir)
			continue
		}
		t.Cleanup(func() {
			// The group is removable once its processes are gone.
			for i := 0; i < 50 && os.Remove(cg.dir) != nil; i++ {
				time.Sleep(100 * time.Millisecond)
			}
		})
		return &cg, ""
	}
	if len(tries) == 0 {
		return nil, "no memory cgroup controller in /proc/self/cgroup"
	}
	return nil, strings.Join(why, "; ")
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func (cg memoryCgroup) create(limit int64) error {
	if err := os.Mkdir(cg.dir, 0o755); err != nil {
		return err
	}
	if cg.v2 {
		if err := os.WriteFile(filepath.Join(cg.dir, "memory.max"), []byte(strconv.FormatInt(limit, 10)), 0); err != nil {
			return err
		}
		// No swap, as on a Kubernetes node.
		_ = os.WriteFile(filepath.Join(cg.dir, "memory.swap.max"), []byte("0"), 0)
		return nil
	}
	return os.WriteFile(filepath.Join(cg.dir, "memory.limit_in_bytes"), []byte(strconv.FormatInt(limit, 10)), 0)
}

// startIn runs start (which starts a process) with this test process in the
// group, so the process starts in it and every page it touches is charged
// to it (charges do not move with a process moved later); this process
// goes back to its own group right after.
func (cg *memoryCgroup) startIn(start func()) error {
	self := []byte(strconv.Itoa(os.Getpid()))
	if err := os.WriteFile(filepath.Join(cg.dir, "cgroup.procs"), self, 0); err != nil {
		return err
	}
	defer func() { _ = os.WriteFile(filepath.Join(filepath.Dir(cg.dir), "cgroup.procs"), self, 0) }()
	start()
	return nil
}

// cgroupUsage is what the kernel charged a group: its peak, the number of
// times it hit the limit (and reclaimed), and its out-of-memory kills.
type cgroupUsage struct {
	peak, hits, oomKills int64
}

func (cg *memoryCgroup) usage() (cgroupUsage, error) {
	var u cgroupUsage
	if cg.v2 {
		peak, err := readInt(filepath.Join(cg.dir, "memory.peak"))
		if err != nil { // memory.peak is new in Linux 5.19: the usage now, then
			if peak, err = readInt(filepath.Join(cg.dir, "memory.current")); err != nil {
				return u, err
			}
		}
		events, err := readKeyed(filepath.Join(cg.dir, "memory.events"))
		u.peak, u.hits, u.oomKills = peak, events["max"], events["oom_kill"]
		return u, err
	}
	peak, err1 := readInt(filepath.Join(cg.dir, "memory.max_usage_in_bytes"))
	hits, err2 := readInt(filepath.Join(cg.dir, "memory.failcnt"))
	oom, err3 := readKeyed(filepath.Join(cg.dir, "memory.oom_control"))
	u.peak, u.hits, u.oomKills = peak, hits, oom["oom_kill"]
	for _, err := range []error{err1, err2, err3} {
		if err != nil {
			return u, err
		}
	}
	return u, nil
}

func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// readKeyed reads a file of "key value" lines.
func readKeyed(path string) (map[string]int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m := map[string]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok {
			m[k], _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return m, nil
}
