package backup

import (
	"crypto/sha1"
	"encoding/hex"
	"io"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/filter"
	"github.com/pgbr-dev/pgbr/internal/repo"
)

// Writing block incremental backups (repo-block=y) in pgBackRest's format
// (docs/block-incremental.md).

// blockWriter is the block incremental state of a backup.
type blockWriter struct {
	superSize uint64                     // super block size (before rounding to the block size)
	prior     map[int]*repo.ManifestFile // file index → prior file whose map the new one continues
}

// Default maps of pgBackRest (src/command/backup/option.c.inc).
var (
	blockSizeMap = []struct{ fileSize, blockSize uint64 }{
		{914 << 20, 88 << 10}, {740 << 20, 80 << 10}, {585 << 20, 72 << 10}, {448 << 20, 64 << 10},
		{329 << 20, 56 << 10}, {228 << 20, 48 << 10}, {146 << 20, 40 << 10}, {96 << 20, 32 << 10},
		{43 << 20, 24 << 10}, {11 << 20, 16 << 10}, {16 << 10, 8 << 10},
	}
	blockAgeMap = []struct {
		age  int64
		mult uint64
	}{{28 * 86400, 0}, {14 * 86400, 4}, {7 * 86400, 2}}
	blockChecksumSizeMap = []struct{ blockSize, checksumSize uint64 }{
		{4 << 20, 12}, {2 << 20, 11}, {1 << 20, 10}, {512 << 10, 9}, {128 << 10, 8}, {32 << 10, 7},
	}
)

// initBlockIncr marks the manifest of a backup with repo-block=y. The raw
// bundle format never changes inside a backup set.
func (b *Backup) initBlockIncr() {
	if !b.opt.BlockIncr {
		return
	}
	b.log.Warnf("block incremental backups use the format of pgBackRest 2.46 and later\n" +
		"HINT: pgBackRest 2.45 cannot restore them; use pgbr or pgBackRest 2.46+ to restore this backup set.")
	m := b.m
	m.Backup.BlockIncr = true
	if b.prior != nil {
		m.Backup.BundleRaw = b.prior.Backup.BundleRaw
	} else {
		m.Backup.BundleRaw = true
	}
	super := b.opt.BlockSuperSize
	if m.Backup.Type == repo.BackupTypeFull {
		super = b.opt.BlockSuperSizeFull
	}
	b.blk = &blockWriter{superSize: super, prior: map[int]*repo.ManifestFile{}}
}

// blockIncrSizes returns pgBackRest's block size and checksum size for a
// new file (0: not block incremental).
func (b *Backup) blockIncrSizes(f *repo.ManifestFile) (uint64, uint64) {
	var bs uint64
	for _, r := range blockSizeMap {
		if f.Size >= r.fileSize {
			bs = r.blockSize
			break
		}
	}
	if bs == 0 {
		return 0, 0
	}
	age := b.m.Backup.TimestampStart - f.Timestamp
	for _, r := range blockAgeMap {
		if age >= r.age {
			bs *= r.mult
			break
		}
	}
	if bs == 0 {
		return 0, 0
	}
	cs := uint64(repo.BlockIncrChecksumSizeDefault)
	for _, r := range blockChecksumSizeMap {
		if bs >= r.blockSize {
			cs = r.checksumSize
			break
		}
	}
	return bs, cs
}

// planBlockIncr chooses the block size of every file the backup copies, as
// pgBackRest's manifest build does: a file whose prior copy has a block map
// keeps its block size and checksum size while it is at least one block
// long, and its new map continues the prior one; other files get sizes
// from the default maps. Block incremental files are never resumed.
func (b *Backup) planBlockIncr() {
	if b.blk == nil {
		return
	}
	m := b.m
	for i := range m.Files {
		f := &m.Files[i]
		if !b.plan[i].copy || f.Size == 0 {
			continue
		}
		var pf *repo.ManifestFile
		if b.prior != nil {
			if p, ok := b.prior.FindFile(f.Name); ok && p.BlockIncrMap != 0 && f.Size >= p.BlockIncr*repo.BlockIncrSizeFactor {
				c := *p
				pf = &c
			}
		}
		if pf != nil {
			f.BlockIncr, f.BlockIncrChecksum = pf.BlockIncr, pf.BlockIncrChecksum
			b.blk.prior[i] = pf
		} else {
			bs, cs := b.blockIncrSizes(f)
			f.BlockIncr, f.BlockIncrChecksum = bs/repo.BlockIncrSizeFactor, cs
		}
		if f.BlockIncrChecksum == repo.BlockIncrChecksumSizeDefault {
			f.BlockIncrChecksum = 0 // bic is written only when it is not the default
		}
		if f.BlockIncr != 0 {
			b.plan[i].resume = false
		}
	}
}

// blockIncrRepoPath is backup/<stanza>/<label>/<name>.pgbi, where a block
// incremental file larger than repo-bundle-limit is stored.
func (b *Backup) blockIncrRepoPath(name string) string {
	return repo.Layout{Stanza: b.stanza}.BlockIncrFile(b.m.Backup.Label, name)
}

// pipeBlock stores a file of a block incremental backup set when it needs
// the raw format: a block incremental file, or a file in a bundle of a set
// with backup-bundle-raw. ok is false for the other files.
func (b *Backup) pipeBlock(cw *copyWorker, idx int, in sourceFile, dst io.Writer, destName string) (res fileResult, ok bool, err error) {
	f := &b.m.Files[idx]
	switch {
	case b.blk != nil && f.BlockIncr != 0:
		res, err = b.pipeBlockIncr(cw, idx, in, dst, destName)
		return res, true, err
	case b.m.Backup.BundleRaw && cw.bundleID != 0:
		res, err = b.pipeRaw(cw, idx, in, dst, destName)
		return res, true, err
	}
	return res, false, nil
}

// readSource reads the next up to len(buf) bytes of a file being backed
// up, feeding the page checker, and returns them (short only at the end).
func (b *Backup) readSource(cw *copyWorker, in sourceFile, buf []byte, check bool) ([]byte, error) {
	n, err := io.ReadFull(in, buf)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = nil
	}
	if err != nil {
		return nil, errs.Wrap(errs.FileRead, err, "unable to read '%s'", in.Name())
	}
	if check && n > 0 {
		cw.chk.Write(buf[:n])
	}
	return buf[:n], nil
}

// finishResult fills the common parts of a file result.
func (b *Backup) finishResult(cw *copyWorker, idx int, res *fileResult, check bool) {
	f := &b.m.Files[idx]
	if check {
		res.pageChecked = true
		res.pageValid, res.pageAligned, res.pages = cw.chk.Result()
		if res.pageAligned && !res.pageValid {
			res.pages = recheckPages(b.SourcePath(f.Name), res.pages, cw.chk)
		}
	}
}

// pipeRaw stores a small file (at most repo-bundle-limit) of a bundle of a
// raw set as one raw object.
func (b *Backup) pipeRaw(cw *copyWorker, idx int, in sourceFile, dst io.Writer, destName string) (fileResult, error) {
	f := &b.m.Files[idx]
	check := b.pageChk && pageCheckable(f.Name)
	if check {
		cw.chk.Reset(segmentNo(f.Name))
	}
	data, err := io.ReadAll(io.LimitReader(in, int64(max(b.bundleLimit, f.Size))+1))
	if err != nil {
		return fileResult{}, errs.Wrap(errs.FileRead, err, "unable to read '%s'", in.Name())
	}
	if check {
		cw.chk.Write(data)
	}
	enc, err := filter.EncodeRaw(data, b.ct, b.level, b.m.CipherPass)
	if err != nil {
		return fileResult{}, err
	}
	if _, err := dst.Write(enc); err != nil {
		return fileResult{}, errs.Wrap(errs.FileWrite, err, "unable to write '%s'", destName)
	}
	sum := sha1.Sum(data)
	res := fileResult{idx: idx, kind: resCopied, size: uint64(len(data)), checksum: hex.EncodeToString(sum[:]),
		repoSize: uint64(len(enc))}
	if b.ct != filter.None || b.m.CipherPass != "" {
		rs := sha1.Sum(enc)
		res.repoChecksum = hex.EncodeToString(rs[:])
	}
	b.finishResult(cw, idx, &res, check)
	return res, nil
}

// pipeBlockIncr stores a file as block incremental: the blocks that are new
// or differ from the prior map (by checksum) go into super blocks of this
// backup, each compressed and encrypted on its own, followed by the new map
// that refers to earlier backups of the set for the other blocks.
func (b *Backup) pipeBlockIncr(cw *copyWorker, idx int, in sourceFile, dst io.Writer, destName string) (fileResult, error) {
	f := &b.m.Files[idx]
	bs := f.BlockIncr * repo.BlockIncrSizeFactor
	cs := f.BlockIncrChecksum
	if cs == 0 {
		cs = repo.BlockIncrChecksumSizeDefault
	}
	var priorItems []repo.BlockMapItem
	if pf := b.blk.prior[idx]; pf != nil {
		items, err := b.priorBlockMap(pf)
		if err != nil {
			return fileResult{}, errs.Wrap(errs.CodeOf(err), err, "unable to read the prior block map of '%s'", f.Name)
		}
		priorItems = items
	}
	ownRef := uint64(len(b.m.Backup.Reference) - 1)
	superSize := (b.blk.superSize + bs - 1) / bs * bs
	check := b.pageChk && pageCheckable(f.Name)
	if check {
		cw.chk.Reset(segmentNo(f.Name))
	}
	orig, repoSum := sha1.New(), sha1.New()
	var size, written uint64
	var items []repo.BlockMapItem
	var super []byte   // original bytes of the open super block
	var pending []int  // items in the open super block
	var superNo uint64 // blocks in the open super block
	buf := make([]byte, bs)
	write := func(p []byte) error {
		if _, err := dst.Write(p); err != nil {
			return errs.Wrap(errs.FileWrite, err, "unable to write '%s'", destName)
		}
		repoSum.Write(p)
		written += uint64(len(p))
		return nil
	}
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		enc, err := filter.EncodeRaw(super, b.ct, b.level, b.m.CipherPass)
		if err != nil {
			return err
		}
		for _, i := range pending {
			items[i].Offset = cw.bundleOffset + written
			items[i].Size = uint64(len(enc))
			items[i].SuperBlockSize = uint64(len(super))
		}
		super, pending, superNo = super[:0], pending[:0], 0
		return write(enc)
	}
	for {
		block, err := b.readSource(cw, in, buf, check)
		if err != nil {
			return fileResult{}, err
		}
		if len(block) == 0 {
			break
		}
		orig.Write(block)
		size += uint64(len(block))
		sum := repo.BlockChecksum(block, int(cs))
		n := len(items)
		if n < len(priorItems) && string(priorItems[n].Checksum) == string(sum) {
			items = append(items, priorItems[n])
		} else {
			items = append(items, repo.BlockMapItem{Reference: ownRef, BundleID: cw.bundleID, Block: superNo,
				Checksum: append([]byte(nil), sum...)})
			pending = append(pending, n)
			super = append(super, block...)
			superNo++
			if uint64(len(super)) >= superSize {
				if err := flush(); err != nil {
					return fileResult{}, err
				}
			}
		}
		if uint64(len(block)) < bs {
			break
		}
	}
	if err := flush(); err != nil {
		return fileResult{}, err
	}
	sum := hex.EncodeToString(orig.Sum(nil))
	res := fileResult{idx: idx, kind: resCopied, size: size, checksum: sum}
	if size == 0 {
		// Truncated to nothing meanwhile: a normal empty file.
		res.repoSize = 0
		b.finishResult(cw, idx, &res, check)
		return res, nil
	}
	mapBytes, err := repo.AppendBlockMap(nil, items, bs, cs)
	if err != nil {
		return fileResult{}, err
	}
	if b.m.CipherPass != "" {
		if mapBytes, err = filter.EncodeRaw(mapBytes, filter.None, 0, b.m.CipherPass); err != nil {
			return fileResult{}, err
		}
	}
	if err := write(mapBytes); err != nil {
		return fileResult{}, err
	}
	res.repoSize = written
	res.repoChecksum = hex.EncodeToString(repoSum.Sum(nil))
	res.blockIncrMap = uint64(len(mapBytes))
	b.finishResult(cw, idx, &res, check)
	return res, nil
}
