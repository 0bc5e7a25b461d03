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

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
)

// stagingPath is where a local file's row groups are staged: a hidden name
// in its folder, which no reader's *.parquet pattern matches.
func (s *localStore) stagingPath(name string) string {
	p := s.path(name)
	return filepath.Join(filepath.Dir(p), ".tmp-"+filepath.Base(p)+".staging")
}

// stage writes data at off in the file's staging file and syncs it.
func (s *localStore) stage(_ context.Context, name string, _ int, off int64, data []byte) error {
	tmp := s.stagingPath(name)
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
func (s *localStore) commit(_ context.Context, name string, groups []stagedRange, tail []byte) error {
	p, tmp := s.path(name), s.stagingPath(name)
	if _, err := os.Stat(p); err == nil {
		_ = os.Remove(tmp)
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
	return os.Rename(tmp, p)
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
