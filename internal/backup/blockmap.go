package backup

import (
	"io"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/filter"
	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/zeebo/xxh3"
)

// Reading the prior block map of a block incremental file (the block
// checksums of the new map are compared with it). Restore and verify read
// block maps with the same rules (command's blockIncrSource).

// maxRangeSize bounds a range read back, as the readers of block
// incremental files bound a stored super block (32 MiB of original bytes,
// plus what a codec and the encryption may add).
const maxRangeSize = 32<<20 + 32<<20/16 + 4096

// blockChecksum is a block's checksum as pgBackRest stores it in a block
// map: the canonical (big-endian) XXH3-128 truncated to n bytes.
func blockChecksum(block []byte, n int) []byte {
	sum := xxh3.Hash128(block).Bytes()
	return sum[:n]
}

// priorBlockMap reads and decodes the block map of the prior backup's file
// pf (its reference, or the prior backup itself, stores it).
func (b *Backup) priorBlockMap(f *repo.ManifestFile) ([]repo.BlockMapItem, error) {
	if f.BlockIncr == 0 || f.BlockIncrMap == 0 || f.BlockIncrMap > f.RepoSize {
		return nil, errs.New(errs.Format, "file '%s' has invalid block incremental sizes (bi %d, bim %d, repo-size %d)",
			f.Name, f.BlockIncr, f.BlockIncrMap, f.RepoSize)
	}
	blockSize := f.BlockIncr * repo.BlockIncrSizeFactor
	checksumSize := f.BlockIncrChecksum
	if checksumSize == 0 {
		checksumSize = repo.BlockIncrChecksumSizeDefault
	}
	label := f.Reference
	if label == "" {
		label = b.prior.Backup.Label
	}
	lay := repo.Layout{Stanza: b.stanza}
	path := lay.BlockIncrFile(label, f.Name)
	if f.BundleID != 0 {
		path = lay.Bundle(label, f.BundleID)
	}
	off, n := f.BundleOffset+f.RepoSize-f.BlockIncrMap, f.BlockIncrMap
	if n > maxRangeSize || off > 1<<62 {
		return nil, errs.New(errs.Format, "invalid range %d+%d of '%s'", off, n, b.st.Full(path))
	}
	in, err := b.st.OpenRange(b.ctx, path, int64(off), int64(n))
	if err != nil {
		return nil, errs.Wrap(errs.FileOpen, err, "unable to open '%s' for read", b.st.Full(path))
	}
	defer in.Close()
	data := make([]byte, n)
	got, err := io.ReadFull(in, data)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return nil, errs.New(errs.FileRead, "unable to read %d bytes at offset %d of '%s': only %d available",
			n, off, b.st.Full(path), got)
	}
	if err != nil {
		return nil, errs.Wrap(errs.FileRead, err, "unable to read '%s'", b.st.Full(path))
	}
	if b.prior.CipherPass != "" {
		if data, err = filter.DecryptRaw(data, b.prior.CipherPass); err != nil {
			return nil, errs.Wrap(errs.CodeOf(err), err, "unable to decrypt the block map of '%s' in '%s'", f.Name, b.st.Full(path))
		}
	}
	items, err := repo.ParseBlockMap(data, blockSize, checksumSize)
	if err != nil {
		return nil, errs.Wrap(errs.CodeOf(err), err, "invalid block map of '%s' in '%s'", f.Name, b.st.Full(path))
	}
	if want := (f.Size + blockSize - 1) / blockSize; uint64(len(items)) != want {
		return nil, errs.New(errs.Format, "block map of '%s' in '%s' has %d blocks, expected %d for %d bytes",
			f.Name, b.st.Full(path), len(items), want, f.Size)
	}
	return items, nil
}
