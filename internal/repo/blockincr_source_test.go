package repo

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/filter"
	"github.com/pgbr-dev/pgbr/internal/storage"
	"github.com/pgbr-dev/pgbr/internal/storage/posix"
)

// A block incremental file of an incremental backup whose map takes its
// first block from the full backup (in a bundle) and the others from its
// own .pgbi is assembled from both, each block passed to OnBlock; a map
// that names a reference the set does not have, or a super block that is
// not stored, is a clear error.
func TestBlockIncrSourceAssemble(t *testing.T) {
	const (
		bs    = 8192
		full  = "20261125-143955F"
		incr  = "20261125-143955F_20261126-010000I"
		name  = "pg_data/base/5/16390"
		pass  = "set-passphrase"
		bndID = 3
	)
	ctx := context.Background()
	st := posix.New(t.TempDir())
	l := Layout{Stanza: "demo"}
	plain := bytes.Repeat([]byte("0123456789abcdef"), 3*bs/16)
	plain = plain[:2*bs+100]
	encode := func(b []byte) []byte {
		out, err := filter.EncodeRaw(b, filter.Zst, 3, pass)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// The full backup's bundle: 7 bytes of another file, then the super
	// block of block 0.
	sbFull := encode(plain[:bs])
	if err := storage.WriteAll(ctx, st, l.Bundle(full, bndID), append([]byte("other..")[:7], sbFull...)); err != nil {
		t.Fatal(err)
	}
	// The incremental's own super block of blocks 1 and 2.
	sbIncr := encode(plain[bs:])
	items := []BlockMapItem{
		{Reference: 0, BundleID: bndID, Offset: 7, Size: uint64(len(sbFull)), SuperBlockSize: bs, Block: 0,
			Checksum: BlockChecksum(plain[:bs], BlockIncrChecksumSizeDefault)},
		{Reference: 1, Offset: 0, Size: uint64(len(sbIncr)), SuperBlockSize: uint64(len(plain) - bs), Block: 0,
			Checksum: BlockChecksum(plain[bs:2*bs], BlockIncrChecksumSizeDefault)},
		{Reference: 1, Offset: 0, Size: uint64(len(sbIncr)), SuperBlockSize: uint64(len(plain) - bs), Block: 1,
			Checksum: BlockChecksum(plain[2*bs:], BlockIncrChecksumSizeDefault)},
	}
	bm, err := AppendBlockMap(nil, items, bs, BlockIncrChecksumSizeDefault)
	if err != nil {
		t.Fatal(err)
	}
	bmEnc, err := filter.EncodeRaw(bm, filter.None, 0, pass)
	if err != nil {
		t.Fatal(err)
	}
	stored := append(bytes.Clone(sbIncr), bmEnc...)
	if err := storage.WriteAll(ctx, st, l.BlockIncrFile(incr, name), stored); err != nil {
		t.Fatal(err)
	}
	m := &Manifest{CipherPass: pass}
	m.Backup.Label = incr
	m.Backup.Reference = []string{full, incr}
	m.Option.CompressType = string(filter.Zst)
	f := &ManifestFile{Name: name, Size: uint64(len(plain)), Checksum: HexDigest(hexSHA1(plain)), RepoSize: uint64(len(stored)),
		BlockIncr: 1, BlockIncrMap: uint64(len(bmEnc))}

	var blocks int
	s := &BlockIncrSource{Ctx: ctx, St: st, Stanza: "demo", M: m, OnBlock: func(it *BlockMapItem, block []byte) error {
		if !bytes.Equal(BlockChecksum(block, len(it.Checksum)), it.Checksum) {
			t.Errorf("block %d: checksum", blocks)
		}
		blocks++
		return nil
	}}
	var out bytes.Buffer
	if err := s.Assemble(f, &out); err != nil || !bytes.Equal(out.Bytes(), plain) || blocks != 3 {
		t.Fatalf("assemble: %v, %d bytes, %d blocks", err, out.Len(), blocks)
	}
	got, _, err := s.BlockMap(f)
	if err != nil || len(got) != 3 || got[0].BundleID != bndID || got[2].Reference != 1 {
		t.Fatalf("block map: %v %+v", err, got)
	}

	// Content that is not what the manifest says.
	f2 := *f
	f2.Checksum = HexDigest(hexSHA1([]byte("other")))
	if err := s.Assemble(&f2, &bytes.Buffer{}); errs.CodeOf(err) != errs.Checksum {
		t.Errorf("wrong checksum: %v", err)
	}
	// A set without the full backup: the map's reference 1 is out of range.
	m.Backup.Reference = []string{incr}
	if err := s.Assemble(f, &bytes.Buffer{}); errs.CodeOf(err) != errs.Format || !strings.Contains(err.Error(), "refers to backup reference") {
		t.Errorf("reference out of range: %v", err)
	}
	// The full backup's bundle is gone.
	m.Backup.Reference = []string{full, incr}
	if err := st.Remove(ctx, l.Bundle(full, bndID)); err != nil {
		t.Fatal(err)
	}
	if err := s.Assemble(f, &bytes.Buffer{}); errs.CodeOf(err) != errs.FileOpen || !strings.Contains(err.Error(), l.Bundle(full, bndID)) {
		t.Errorf("missing bundle: %v", err)
	}
}
