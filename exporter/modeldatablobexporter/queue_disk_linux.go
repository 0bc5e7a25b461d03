package modeldatablobexporter

import (
	"os"
	"path/filepath"
	"syscall"
)

// openFileDir is the folder of the file named name this process has open
// (the storage extension's file of the queue), or "" when none is found.
func openFileDir(name string) string {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return ""
	}
	for _, fd := range fds {
		path, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && filepath.Base(path) == name {
			return filepath.Dir(path)
		}
	}
	return ""
}

// diskFree is the bytes free to this process on dir's filesystem.
func diskFree(dir string) (int64, bool) {
	var st syscall.Statfs_t
	if syscall.Statfs(dir, &st) != nil {
		return 0, false
	}
	return int64(st.Bavail) * st.Bsize, true
}

// allocated is the bytes of disk blocks st's file holds.
func allocated(st os.FileInfo) int64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Blocks * 512
	}
	return 0
}
