package testutil

import (
	"fmt"
	"syscall"
)

func mountTmpfs(dir string, sizeMiB int) error {
	return syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%dm", sizeMiB))
}

func unmount(dir string) error { return syscall.Unmount(dir, 0) }

// DiskFree is the bytes free on dir's filesystem.
func DiskFree(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return int64(st.Bavail) * st.Bsize, nil
}
