package modeldatablobexporter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// localStore keeps the layout in a folder: <directory>/<container>/<name>.
// Appends are serialized in the process, so the position condition holds
// for one collector; several processes must not share a folder.
type localStore struct {
	root    string
	maxSize int64
	mu      sync.Mutex
}

func newLocalStore(cfg *Config) *localStore {
	root := filepath.Join(cfg.Local.Directory, cfg.Container)
	// Absolute, so that exporters sharing the folder name its files alike.
	if abs, err := filepath.Abs(root); err == nil {
		root = abs
	}
	return &localStore{root: root, maxSize: cfg.MaxFileSize}
}

func (s *localStore) path(name string) string { return filepath.Join(s.root, filepath.FromSlash(name)) }

func (s *localStore) start(context.Context) error {
	if err := os.MkdirAll(s.root, 0o755); err != nil {
		return fmt.Errorf("local.directory: %w", err)
	}
	return nil
}

func (s *localStore) props(_ context.Context, name string) (fileProps, error) {
	fi, err := os.Stat(s.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return fileProps{}, nil
	}
	if err != nil {
		return fileProps{}, err
	}
	return fileProps{exists: true, size: fi.Size()}, nil
}

func (s *localStore) create(_ context.Context, name string) error {
	p := s.path(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return f.Close()
}

func (s *localStore) appendAt(_ context.Context, name string, pos int64, data []byte) error {
	_, err := s.appendBlock(name, pos, data)
	return err
}

func (s *localStore) appendAny(_ context.Context, name string, data []byte) (appended, error) {
	return s.appendBlock(name, -1, data)
}

// appendBlock appends data, at pos unless pos is negative.
func (s *localStore) appendBlock(name string, pos int64, data []byte) (appended, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.OpenFile(s.path(name), os.O_WRONLY|os.O_APPEND, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return appended{}, fmt.Errorf("%w: %w", errGone, err)
	}
	if err != nil {
		return appended{}, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return appended{}, err
	}
	size := fi.Size()
	switch {
	case pos >= 0 && size != pos:
		f.Close()
		return appended{}, errPosition
	case size+int64(len(data)) > s.maxSize:
		f.Close()
		return appended{}, errFull
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		// Cut a partial write back so the file holds only complete lines.
		_ = os.Truncate(s.path(name), size)
		return appended{}, err
	}
	return appended{at: size}, f.Close()
}

func (s *localStore) readAt(_ context.Context, name string, off, n int64) ([]byte, error) {
	f, err := os.Open(s.path(name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, n)
	m, err := f.ReadAt(buf, off)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return buf[:m], err
}
