package command

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"io"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/filter"
	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/storage"
)

// Reading files stored with block incremental (pgBackRest 2.46+,
// repo-block=y; docs/block-incremental.md).

// maxSuperBlockSize bounds the memory a single super block may take: a map
// asking for more is treated as corrupt. repo-block-size-super(-full) is at
// most 16MiB, rounded up to the block size (at most 88KiB × 4).
const maxSuperBlockSize = 32 << 20

// maxStoredSize is the largest stored size of a super block of n original
// bytes: no codec expands data by more than a small fraction, plus the
// salt and padding of the encryption.
func maxStoredSize(n uint64) uint64 { return n + n/16 + 4096 }

// blockIncrSource locates the stored data of a backup set.
type blockIncrSource struct {
	ctx    context.Context
	st     storage.Storage
	stanza string
	m      *repo.Manifest
	// onBlock, when set, is called for every block with its map item and
	// content (verify checks the block checksums).
	onBlock func(it *repo.BlockMapItem, block []byte) error
}

func (s *blockIncrSource) path(label string, bundleID uint64, name string) string {
	l := repo.Layout{Stanza: s.stanza}
	if bundleID != 0 {
		return l.Bundle(label, bundleID)
	}
	return l.BlockIncrFile(label, name)
}

// readRange reads exactly n bytes at off of path.
func (s *blockIncrSource) readRange(path string, off, n uint64) ([]byte, error) {
	if n > maxStoredSize(maxSuperBlockSize) || off > 1<<62 {
		return nil, errs.New(errs.Format, "invalid range %d+%d of '%s'", off, n, s.st.Full(path))
	}
	in, err := s.st.OpenRange(s.ctx, path, int64(off), int64(n))
	if err != nil {
		return nil, errs.Wrap(errs.FileOpen, err, "unable to open '%s' for read", s.st.Full(path))
	}
	defer in.Close()
	b := make([]byte, n)
	got, err := io.ReadFull(in, b)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return nil, errs.New(errs.FileRead, "unable to read %d bytes at offset %d of '%s': only %d available",
			n, off, s.st.Full(path), got)
	}
	if err != nil {
		return nil, errs.Wrap(errs.FileRead, err, "unable to read '%s'", s.st.Full(path))
	}
	return b, nil
}

// blockMap reads and decodes the block map of f.
func (s *blockIncrSource) blockMap(f *repo.ManifestFile) ([]repo.BlockMapItem, uint64, error) {
	if f.BlockIncr == 0 || f.BlockIncrMap == 0 || f.BlockIncrMap > f.RepoSize {
		return nil, 0, errs.New(errs.Format, "file '%s' has invalid block incremental sizes (bi %d, bim %d, repo-size %d)",
			f.Name, f.BlockIncr, f.BlockIncrMap, f.RepoSize)
	}
	blockSize := f.BlockIncr * repo.BlockIncrSizeFactor
	checksumSize := f.BlockIncrChecksum
	if checksumSize == 0 {
		checksumSize = repo.BlockIncrChecksumSizeDefault
	}
	label := f.Reference
	if label == "" {
		label = s.m.Backup.Label
	}
	path := s.path(label, f.BundleID, f.Name)
	data, err := s.readRange(path, f.BundleOffset+f.RepoSize-f.BlockIncrMap, f.BlockIncrMap)
	if err != nil {
		return nil, 0, err
	}
	if s.m.CipherPass != "" {
		if data, err = filter.DecryptRaw(data, s.m.CipherPass); err != nil {
			return nil, 0, errs.Wrap(errs.CodeOf(err), err, "unable to decrypt the block map of '%s' in '%s'", f.Name, s.st.Full(path))
		}
	}
	items, err := repo.ParseBlockMap(data, blockSize, checksumSize)
	if err != nil {
		return nil, 0, errs.Wrap(errs.CodeOf(err), err, "invalid block map of '%s' in '%s'", f.Name, s.st.Full(path))
	}
	if want := (f.Size + blockSize - 1) / blockSize; uint64(len(items)) != want {
		return nil, 0, errs.New(errs.Format, "block map of '%s' in '%s' has %d blocks, expected %d for %d bytes",
			f.Name, s.st.Full(path), len(items), want, f.Size)
	}
	return items, blockSize, nil
}

type superBlockKey struct {
	ref, bundle, offset uint64
}

// assemble writes the content of block incremental file f to out, from the
// super blocks of every backup of the set its map refers to, and checks the
// size and SHA-1 of the result against the manifest.
func (s *blockIncrSource) assemble(f *repo.ManifestFile, out io.Writer) error {
	items, blockSize, err := s.blockMap(f)
	if err != nil {
		return err
	}
	refs := s.m.Backup.Reference
	lastUse := make(map[superBlockKey]int, 16)
	for i := range items {
		it := &items[i]
		if it.Reference >= uint64(len(refs)) {
			return errs.New(errs.Format, "block map of '%s' refers to backup reference %d, the set has %d",
				f.Name, it.Reference, len(refs))
		}
		if it.SuperBlockSize == 0 || it.SuperBlockSize > maxSuperBlockSize || it.Size == 0 || it.Size > maxStoredSize(it.SuperBlockSize) {
			return errs.New(errs.Format, "block map of '%s' has an invalid super block (size %d, stored %d)",
				f.Name, it.SuperBlockSize, it.Size)
		}
		lastUse[superBlockKey{it.Reference, it.BundleID, it.Offset}] = i
	}
	ct := filter.CompressType(s.m.Option.CompressType)
	if ct == "" {
		ct = filter.None
	}
	cache := map[superBlockKey][]byte{}
	h := sha1.New()
	var written uint64
	for i := range items {
		it := &items[i]
		k := superBlockKey{it.Reference, it.BundleID, it.Offset}
		sb, ok := cache[k]
		if !ok {
			path := s.path(refs[it.Reference], it.BundleID, f.Name)
			raw, err := s.readRange(path, it.Offset, it.Size)
			if err != nil {
				return err
			}
			sb, err = filter.DecodeRaw(raw, ct, s.m.CipherPass, int(it.SuperBlockSize))
			if err != nil {
				return errs.Wrap(errs.CodeOf(err), err, "unable to decode the super block at offset %d of '%s' for '%s'",
					it.Offset, s.st.Full(path), f.Name)
			}
			cache[k] = sb
		}
		start := it.Block * blockSize
		want := min(blockSize, f.Size-uint64(i)*blockSize)
		if start > uint64(len(sb)) || uint64(len(sb))-start < want ||
			(want < blockSize && uint64(len(sb))-start != want) {
			return errs.New(errs.Format, "block %d of '%s' is not in its super block (block %d, %d bytes)",
				i, f.Name, it.Block, len(sb))
		}
		block := sb[start : start+want]
		if s.onBlock != nil {
			if err := s.onBlock(it, block); err != nil {
				return errs.Wrap(errs.CodeOf(err), err, "block %d of '%s'", i, f.Name)
			}
		}
		h.Write(block)
		if _, err := out.Write(block); err != nil {
			return errs.Wrap(errs.FileWrite, err, "unable to write '%s'", f.Name)
		}
		written += want
		if lastUse[k] == i {
			delete(cache, k)
		}
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if written != f.Size || sum != f.EffectiveChecksum() {
		return errs.New(errs.Checksum,
			"error restoring '%s' from block incremental: expected checksum %s and size %d but got checksum %s and size %d",
			f.Name, f.EffectiveChecksum(), f.Size, sum, written)
	}
	return nil
}
