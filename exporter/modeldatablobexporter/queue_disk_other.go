//go:build !linux

package modeldatablobexporter

import "os"

// openFileDir finds no file outside Linux: the queue's disk counts as nearly
// full only after a write on it was refused for lack of space.
func openFileDir(string) string { return "" }

func diskFree(string) (int64, bool) { return 0, false }

func allocated(st os.FileInfo) int64 { return st.Size() }
