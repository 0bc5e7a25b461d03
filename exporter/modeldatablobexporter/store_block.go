package modeldatablobexporter

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
)

// stagingPath is where a local file's row groups are staged: a hidden name
// in its folder, which no reader's *.parquet pattern matches.
func (s *localStore) stagingPath(name string) string {
	p := s.path(name)
	return filepath.Join(filepath.Dir(p), stagingPrefix+filepath.Base(p)+stagingSuffix)
}

const stagingPrefix, stagingSuffix = ".tmp-", ".staging"

// liveStaging holds the path of every staging file this process writes
// and has not committed or discarded yet, of every exporter (with its
// store): a sweep never removes one, also when exporters of the collector
// share a folder.
var liveStaging sync.Map

// processStart is when this process started: a staging file last written
// before it is of a run that is over.
var processStart = time.Now()

// stage writes data at off in the file's staging file and syncs it.
func (s *localStore) stage(_ context.Context, name string, _ int, off int64, data []byte) error {
	tmp := s.stagingPath(name)
	liveStaging.Store(tmp, s)
	if err := os.MkdirAll(filepath.Dir(tmp), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(data, off)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// commit writes the magic and tail around the staged groups, syncs the
// staging file and renames it into place: a reader never sees it partly
// written.
func (s *localStore) commit(ctx context.Context, name string, groups []stagedRange, tail []byte) error {
	p, tmp := s.path(name), s.stagingPath(name)
	if _, err := os.Stat(p); err == nil {
		_ = s.discard(ctx, name)
		return nil
	}
	end := int64(len(pqMagic))
	if n := len(groups); n > 0 {
		end = groups[n-1].off + groups[n-1].size
	}
	f, err := os.OpenFile(tmp, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", errStagedMissing, tmp)
	}
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err == nil && fi.Size() < end {
		err = fmt.Errorf("%w: %s holds %d bytes, the groups end at %d", errStagedMissing, tmp, fi.Size(), end)
	}
	if err == nil {
		_, err = f.WriteAt([]byte(pqMagic), 0)
	}
	if err == nil {
		_, err = f.WriteAt(tail, end)
	}
	if err == nil {
		err = f.Truncate(end + int64(len(tail)))
	}
	if err == nil {
		err = f.Sync()
	}
	if err = errors.Join(err, f.Close()); err != nil {
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		return err
	}
	liveStaging.Delete(tmp)
	return nil
}

// discard removes the file's staging file.
func (s *localStore) discard(_ context.Context, name string) error {
	tmp := s.stagingPath(name)
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	liveStaging.Delete(tmp)
	return nil
}

// sweepStaging removes the staging files under the root whose file stale
// accepts and that are of a run that is over: not this process's (another
// exporter of the collector may share the folder) and last written before
// it started. A folder it cannot read is skipped and reported.
func (s *localStore) sweepStaging(ctx context.Context, stale func(name string) bool) (int, error) {
	removed := 0
	var errs []error
	err := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		base, staged := strings.CutPrefix(d.Name(), stagingPrefix)
		base, suffixed := strings.CutSuffix(base, stagingSuffix)
		if !staged || !suffixed || !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(s.root, filepath.Join(filepath.Dir(p), base))
		if err != nil || !stale(filepath.ToSlash(rel)) {
			return nil
		}
		if _, live := liveStaging.Load(p); live {
			return nil
		}
		if fi, err := d.Info(); err != nil || !fi.ModTime().Before(processStart) {
			return nil
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			return nil
		}
		removed++
		return nil
	})
	return removed, errors.Join(append(errs, err)...)
}

// stagedBlockSize is the largest block staged for a block blob.
const stagedBlockSize = 4 << 20

// blockID names block piece of a part of a Parquet blob: the head (h), row
// group index (g) or the tail (t). Ids of one blob must have one length.
func blockID(part byte, index, piece int) string {
	return base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "%c%06d%05d", part, index, piece))
}

// blockCount is the number of blocks of n bytes.
func blockCount(n int64) int { return int(max(1, (n+stagedBlockSize-1)/stagedBlockSize)) }

// stage stages data as the uncommitted blocks of row group index:
// deterministic ids, so staging the group again replaces them.
func (s *azBlobStore) stage(ctx context.Context, name string, index int, _ int64, data []byte) error {
	return s.stageBlocks(ctx, name, 'g', index, data)
}

func (s *azBlobStore) stageBlocks(ctx context.Context, name string, part byte, index int, data []byte) error {
	c := s.client.NewBlockBlobClient(name)
	for piece := range blockCount(int64(len(data))) {
		chunk := data[min(len(data), piece*stagedBlockSize):min(len(data), (piece+1)*stagedBlockSize)]
		_, err := c.StageBlock(ctx, blockID(part, index, piece), nopCloser{bytes.NewReader(chunk)}, nil)
		if err != nil && bloberror.HasCode(err, bloberror.ContainerNotFound) && s.createContainer {
			if _, cerr := s.client.Create(ctx, nil); cerr == nil || bloberror.HasCode(cerr, bloberror.ContainerAlreadyExists) {
				_, err = c.StageBlock(ctx, blockID(part, index, piece), nopCloser{bytes.NewReader(chunk)}, nil)
			}
		}
		if err != nil {
			return s.wrap("stage a block of", name, err)
		}
	}
	return nil
}

// discard leaves the staged blocks: nothing reads a blob's uncommitted
// blocks, a commit drops those it does not list, and the service discards
// them a week after the last was staged; the name is never used again.
func (s *azBlobStore) discard(context.Context, string) error { return nil }

// commit stages the head and tail and commits the block list, conditioned
// on the blob not existing: a retry of a commit that landed without an
// answer finds it there and is done.
func (s *azBlobStore) commit(ctx context.Context, name string, groups []stagedRange, tail []byte) error {
	p, err := s.props(ctx, name)
	if err != nil || p.exists {
		return err
	}
	if err := s.stageBlocks(ctx, name, 'h', 0, []byte(pqMagic)); err != nil {
		return err
	}
	if err := s.stageBlocks(ctx, name, 't', 0, tail); err != nil {
		return err
	}
	ids := []string{blockID('h', 0, 0)}
	for _, g := range groups {
		for piece := range blockCount(g.size) {
			ids = append(ids, blockID('g', g.index, piece))
		}
	}
	for piece := range blockCount(int64(len(tail))) {
		ids = append(ids, blockID('t', 0, piece))
	}
	_, err = s.client.NewBlockBlobClient(name).CommitBlockList(ctx, ids, &blockblob.CommitBlockListOptions{
		HTTPHeaders: &blob.HTTPHeaders{BlobContentType: ptr(contentType(name))},
		AccessConditions: &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{
			IfNoneMatch: ptr(azcore.ETagAny),
		}},
	})
	switch {
	case err == nil || bloberror.HasCode(err, bloberror.BlobAlreadyExists) || status(err) == http.StatusConflict ||
		status(err) == http.StatusPreconditionFailed:
		return nil
	case bloberror.HasCode(err, bloberror.InvalidBlockList):
		return fmt.Errorf("%w: %w", errStagedMissing, s.wrap("commit the blocks of", name, err))
	}
	return s.wrap("commit the blocks of", name, err)
}
