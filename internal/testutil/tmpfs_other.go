//go:build !linux

package testutil

import "errors"

func mountTmpfs(string, int) error { return errors.New("tmpfs needs Linux") }

func unmount(string) error { return nil }

// DiskFree is the bytes free on dir's filesystem.
func DiskFree(string) (int64, error) { return 0, errors.New("statfs needs Linux") }
