package backup

import (
	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/storage"
)

// openBundle is a bundle a worker is filling: one storage Writer that
// commits once, after its last file, so a bundle appears whole or not at
// all. Results are applied to the manifest only after the commit.
type openBundle struct {
	id      uint64
	path    string
	w       storage.Writer
	offset  uint64 // repository bytes written so far
	size    uint64 // original bytes of its files (what repo-bundle-size bounds)
	results []fileResult
}

// bundlePath is backup/<stanza>/<label>/bundle/<id>.
func (b *Backup) bundlePath(id uint64) string {
	return repo.Layout{Stanza: b.stanza}.Bundle(b.m.Backup.Label, id)
}

// fillBundles packs the small files it takes from the shared queue into
// bundles of its own (format spec §1.8): every file is an independent
// compressed (and encrypted) stream appended to the bundle, recorded with
// its bundle id, offset and repository size. A bundle is committed when the
// next file would make its original size reach repo-bundle-size, and when
// the queue is empty. Bundle ids count from 1 in the order bundles are
// opened; readers only use the ids of the manifest.
func (b *Backup) fillBundles(cw *copyWorker, take func() (int, bool)) error {
	var cur *openBundle
	defer func() {
		if cur != nil {
			cur.w.Abort()
		}
	}()
	for {
		idx, ok := take()
		if !ok {
			break
		}
		f := &b.m.Files[idx]
		if err := b.waitCopyStart(f); err != nil {
			return err
		}
		if b.plan[idx].delta {
			match, gone, err := b.deltaMatch(cw, idx)
			if err != nil {
				return err
			}
			if gone {
				if err := b.apply(cw, fileResult{idx: idx, kind: resGone}); err != nil {
					return err
				}
				continue
			}
			if match {
				if err := b.apply(cw, fileResult{idx: idx, kind: resMatch, size: f.Size, checksum: f.EffectiveChecksum()}); err != nil {
					return err
				}
				continue
			}
		}
		in, err := b.openCopySource(idx)
		if err != nil {
			return err
		}
		if in == nil {
			if err := b.apply(cw, fileResult{idx: idx, kind: resGone}); err != nil {
				return err
			}
			continue
		}
		if cur != nil && cur.size+f.Size >= b.bundleSize {
			err := b.commitBundle(cw, cur)
			cur = nil
			if err != nil {
				in.Close()
				return err
			}
		}
		if cur == nil {
			id := b.bundleSeq.Add(1)
			path := b.bundlePath(id)
			// Synced with every other data file by storage.SyncAll before
			// the final manifest.
			w, err := b.st.Create(b.ctx, path, storage.CreateOptions{NoSync: true, InPlace: true})
			if err != nil {
				in.Close()
				return errs.Wrap(errs.FileOpen, err, "unable to open '%s' for write", b.st.Full(path))
			}
			cur = &openBundle{id: id, path: path, w: w}
		}
		cw.bundleID, cw.bundleOffset = cur.id, cur.offset
		res, err := b.pipeFile(cw, idx, in, cur.w, b.st.Full(cur.path))
		in.Close()
		if err != nil {
			return err
		}
		res.bundleID, res.bundleOffset = cur.id, cur.offset
		cur.offset += res.repoSize
		cur.size += f.Size
		cur.results = append(cur.results, res)
	}
	if cur != nil {
		err := b.commitBundle(cw, cur)
		cur = nil
		return err
	}
	return nil
}

// commitBundle makes a bundle visible, then records its files.
func (b *Backup) commitBundle(cw *copyWorker, ob *openBundle) error {
	if err := ob.w.Commit(); err != nil {
		return errs.Wrap(errs.FileWrite, err, "unable to write '%s'", b.st.Full(ob.path))
	}
	for _, res := range ob.results {
		if err := b.apply(cw, res); err != nil {
			return err
		}
	}
	return nil
}
