package modeldatablobexporter

import (
	"context"
	"errors"
	"fmt"
)

// store is what the writer needs from a backend: append-only files with an
// append-position condition, the primitives Azure append blobs offer. Names
// are relative to the container.
type store interface {
	// start checks that the backend is reachable and authorized.
	start(ctx context.Context) error
	// props returns a file's size and block count; exists is false when it is missing.
	props(ctx context.Context, name string) (fileProps, error)
	// create makes an empty file unless one already exists (create-if-not-exists).
	create(ctx context.Context, name string) error
	// appendAt appends data as one block when the file's size is pos. It
	// returns errPosition when the size is not pos, errFull when the file
	// cannot take the block (block count, size limit, sealed), errGone when
	// the file (or its container) no longer exists.
	appendAt(ctx context.Context, name string, pos int64, data []byte) error
	// appendAny appends data as one block wherever the file ends, sent once
	// (never retried by the client: a second copy could land after the
	// first), and returns a lower bound of where it landed (exact on Azure)
	// and of the block count after it. Errors as appendAt's, bar errPosition.
	appendAny(ctx context.Context, name string, data []byte) (appended, error)
	// readAt reads n bytes at off.
	readAt(ctx context.Context, name string, off, n int64) ([]byte, error)
}

// appended is where an append landed and the file's block count after it.
type appended struct {
	at     int64
	blocks int
}

type fileProps struct {
	exists bool
	size   int64
	blocks int
}

var (
	errPosition = errors.New("append position condition not met")
	errFull     = errors.New("file cannot take more appends")
	errGone     = errors.New("file no longer exists")
	// errRaceLost is an errPosition the store knows is not ours: the request
	// was sent once, so no earlier attempt of it can be at that position.
	errRaceLost = fmt.Errorf("%w: another writer appended first", errPosition)
)

// accessError is a refusal only an operator can fix (a credential, a role
// assignment, a missing container). It stays retryable: the queue keeps the
// rows until it is fixed.
type accessError struct {
	err  error
	hint string
}

func (e *accessError) Error() string { return e.err.Error() }
func (e *accessError) Unwrap() error { return e.err }
