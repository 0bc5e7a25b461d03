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

// putFile writes a local file under a temporary name, syncs it and renames
// it into place, so a reader never sees it partly written.
func (s *localStore) putFile(_ context.Context, name string, data []byte) error {
	p := s.path(name)
	if _, err := os.Stat(p); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-"+filepath.Base(p)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

// stagedBlockSize is the size of one staged block of a block blob.
const stagedBlockSize = 4 << 20

// putFile stages data as blocks of stagedBlockSize bytes and commits
// the block list: the blob appears only complete. The commit is
// conditioned on the blob not existing, so a retry of a commit that landed
// without an answer finds it there and is done.
func (s *azBlobStore) putFile(ctx context.Context, name string, data []byte) error {
	p, err := s.props(ctx, name)
	if err != nil || p.exists {
		return err
	}
	c := s.client.NewBlockBlobClient(name)
	var ids []string
	for i := 0; len(data) > 0 || i == 0; i++ {
		n := min(len(data), stagedBlockSize)
		id := base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("%010d", i)))
		if _, err := c.StageBlock(ctx, id, nopCloser{bytes.NewReader(data[:n])}, nil); err != nil {
			if bloberror.HasCode(err, bloberror.ContainerNotFound) && s.createContainer {
				if _, cerr := s.client.Create(ctx, nil); cerr == nil || bloberror.HasCode(cerr, bloberror.ContainerAlreadyExists) {
					i--
					continue
				}
			}
			return s.wrap("stage a block of", name, err)
		}
		ids = append(ids, id)
		data = data[n:]
	}
	_, err = c.CommitBlockList(ctx, ids, &blockblob.CommitBlockListOptions{
		HTTPHeaders: &blob.HTTPHeaders{BlobContentType: ptr(contentType(name))},
		AccessConditions: &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{
			IfNoneMatch: ptr(azcore.ETagAny),
		}},
	})
	if err == nil || bloberror.HasCode(err, bloberror.BlobAlreadyExists) || status(err) == http.StatusConflict ||
		status(err) == http.StatusPreconditionFailed {
		return nil
	}
	return s.wrap("commit the blocks of", name, err)
}
