package verify

import (
	"bytes"
	"encoding/hex"
	"io"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/repo"
)

// blockIncrJob completes a verify job for a file of a block incremental
// backup set: files in its bundles are stored in the raw format, and a file
// with a block map is also assembled end to end from the super blocks its
// map refers to (possibly in earlier backups of the set).
func (v *verifier) blockIncrJob(j *verifyJob, m *repo.Manifest, f *repo.ManifestFile) {
	if f.BlockIncrMap != 0 {
		j.blockIncr, j.blockSet = f, m
		if f.BundleID == 0 {
			// Not bundled (larger than repo-bundle-limit): <name>.pgbi.
			label := repo.FileLabel(m, f)
			j.name = label + "/" + f.Name + repo.BlockIncrExt
		}
	}
}

// verifyBlockIncr assembles a block incremental file from its block map,
// checking every block's checksum against the map and the whole file's
// size and SHA-1 against the manifest. A file that is not block
// incremental is valid here.
func (v *verifier) verifyBlockIncr(j *verifyJob) (verifyCode, error) {
	if j.blockIncr == nil {
		return verifyOK, nil
	}
	s := &repo.BlockIncrSource{Ctx: v.ctx, St: v.st, Stanza: v.stanza, M: j.blockSet,
		OnBlock: func(it *repo.BlockMapItem, block []byte) error {
			if sum := repo.BlockChecksum(block, len(it.Checksum)); !bytes.Equal(sum, it.Checksum) {
				return errs.New(errs.Checksum, "block checksum %s does not match the block map's %s",
					hex.EncodeToString(sum), hex.EncodeToString(it.Checksum))
			}
			return nil
		}}
	err := s.Assemble(j.blockIncr, io.Discard)
	switch {
	case err == nil:
		return verifyOK, nil
	case errs.CodeOf(err) == errs.Checksum:
		v.log.Infof("%s: %s", j.name, err.Error())
		return verifyChecksum, nil
	}
	return verifyOther, err
}
