package command

import (
	"context"
	"io"

	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/storage"
)

// Reading files stored with block incremental (pgBackRest 2.46+,
// repo-block=y; docs/block-incremental.md) is repo.BlockIncrSource; this
// is its thin wrapper for backup and restore.

// blockIncrSource locates the stored data of a backup set.
type blockIncrSource struct {
	ctx    context.Context
	st     storage.Storage
	stanza string
	m      *repo.Manifest
}

func (s *blockIncrSource) src() *repo.BlockIncrSource {
	return &repo.BlockIncrSource{Ctx: s.ctx, St: s.st, Stanza: s.stanza, M: s.m}
}

// blockMap reads and decodes the block map of f.
func (s *blockIncrSource) blockMap(f *repo.ManifestFile) ([]repo.BlockMapItem, uint64, error) {
	return s.src().BlockMap(f)
}

// assemble writes the content of block incremental file f to out and
// checks its size and SHA-1 against the manifest.
func (s *blockIncrSource) assemble(f *repo.ManifestFile, out io.Writer) error {
	return s.src().Assemble(f, out)
}

// blockChecksum is repo.BlockChecksum.
func blockChecksum(block []byte, n int) []byte { return repo.BlockChecksum(block, n) }

// copyBlockIncr is copyFromRepo for a file stored with block incremental.
func (rr *restoreRun) copyBlockIncr(f *repo.ManifestFile, out io.Writer) error {
	s := &blockIncrSource{ctx: rr.e.Ctx, st: rr.r.St, stanza: rr.stanza, m: rr.m}
	return s.assemble(f, out)
}
