package backup

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/filter"
	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/storage"
)

// resumeOrLabel gives the new manifest its label: the label of the
// interrupted backup it resumes (format spec §8.6.9), or a new one.
func (b *Backup) resumeOrLabel() error {
	resumed, err := b.tryResume()
	if err != nil || resumed {
		return err
	}
	existing, err := repo.ExistingLabels(b.ctx, b.st, b.stanza)
	if err != nil {
		return errs.Wrap(errs.PathOpen, err, "unable to list backups")
	}
	label, err := repo.NewLabel(b.m.Backup.Type, b.m.Backup.Prior, b.start.Local(), existing)
	if err != nil {
		return err
	}
	b.m.Backup.Label = label
	return nil
}

// tryResume looks at the newest backup directory, as pgBackRest 2.45's
// backupResumeFind: a directory with backup.manifest.copy but no
// backup.manifest is an interrupted backup. It is resumed when resume is
// enabled, its manifest loads and it has the same pgBackRest version,
// backup type, prior backup and compression as this backup; otherwise it is
// deleted with a warning. It is never in backup.info (reconstruct dropped
// any entry without backup.manifest), so nothing valid is lost.
func (b *Backup) tryResume() (bool, error) {
	ctx := b.ctx
	st := b.st
	lay := repo.Layout{Stanza: b.stanza}
	list, err := st.List(ctx, lay.BackupDir())
	if err != nil {
		return false, errs.Wrap(errs.PathOpen, err, "unable to list backups")
	}
	label := ""
	for _, en := range list {
		if en.Type == storage.TypePath && repo.IsLabel(en.Name) && en.Name > label {
			label = en.Name
		}
	}
	if label == "" {
		return false, nil
	}
	manifestPath := repo.BackupManifestPath(b.stanza, label)
	if ok, err := st.Exists(ctx, manifestPath); err != nil {
		return false, errs.OrCode(errs.FileOpen, err)
	} else if ok {
		return false, nil
	}
	resume := b.opt.Resume
	reason := "partially deleted by prior resume or invalid"
	var rm *repo.Manifest
	hasCopy, err := st.Exists(ctx, manifestPath+repo.CopyExt)
	if err != nil {
		return false, errs.OrCode(errs.FileOpen, err)
	}
	if hasCopy {
		reason = "resume is disabled"
		if resume {
			// Its files are read once, beside the new manifest's, not held:
			// it is as large as the new one.
			m, files, err := repo.LoadManifestHead(ctx, st, b.stanza, label, b.opt.InfoCipherPass)
			if err == nil {
				if reason = b.resumeMismatch(m, label); reason == "" {
					if err = b.planResume(files); err == nil {
						rm = m
					}
				}
			}
			if err != nil {
				reason = "unable to read " + st.Full(manifestPath) + repo.CopyExt
			}
		}
	}
	if rm == nil {
		msg := fmt.Sprintf("backup '%s' cannot be resumed: %s", label, reason)
		if resume {
			b.log.Warnf("%s", msg)
		} else {
			b.log.Infof("%s", msg)
		}
		if err := st.RemoveAll(ctx, lay.LabelDir(label)); err != nil {
			return false, errs.Wrap(errs.PathRemove, err, "unable to remove '%s'", st.Full(lay.LabelDir(label)))
		}
		return false, nil
	}
	b.m.Backup.Label = label
	b.log.Warnf("resumable backup %s of same type exists -- invalid files will be removed then the backup will resume", label)
	if b.m.Backup.Type == repo.BackupTypeFull {
		// The resumed files are encrypted with the interrupted backup's
		// passphrase; a diff/incr already has the set's passphrase.
		b.m.CipherPass = rm.CipherPass
		if rm.CipherPass != "" {
			b.log.Redact(rm.CipherPass)
		}
	}
	if err := b.resumeClean(lay.LabelDir(label), ""); err != nil {
		return true, err
	}
	for i := range b.m.Files {
		if b.plan[i].resumeWhy == resumeOK && !b.plan[i].resume {
			forgetStored(&b.m.Files[i]) // recorded, but its stored file is gone: copied afresh
		}
	}
	return true, nil
}

// filePlan.resumeWhy: what the interrupted backup's manifest says of a file
// (planResume), in the order pgBackRest 2.45's backupResumeClean checks.
const (
	resumeMissing    = iota // not in the resumed manifest
	resumeOK                // may be kept: it takes the recorded checksums
	resumeRef               // a reference in the resumed manifest
	resumeNoChecksum        // not copied before the interruption
	resumeSize
	resumeTimestamp
	resumeZero
	resumeNotCopied // this backup does not copy it (a reference, or bundled)
)

var resumeReasons = [...]string{
	resumeMissing:    "missing in resumed manifest",
	resumeRef:        "reference in resumed manifest",
	resumeNoChecksum: "no checksum in resumed manifest",
	resumeSize:       "mismatched size",
	resumeTimestamp:  "mismatched timestamp",
	resumeZero:       "zero size",
	resumeNotCopied:  "not copied by this backup",
}

// planResume reads the interrupted backup's files beside this backup's
// (both in name order) and decides for each file of this backup whether a
// stored copy of it may be kept (resumeFile); a file that may takes the
// recorded checksums. On a read error nothing is decided.
func (b *Backup) planResume(files repo.FileSource) error {
	m := b.m
	err := b.matchFiles(files, func(i int, rf *repo.ManifestFile) {
		f, p := &m.Files[i], &b.plan[i]
		switch {
		case f.Reference != "":
			// resumeFile says so first
		case rf.Reference != "":
			p.resumeWhy = resumeRef
		case rf.Checksum.IsZero():
			p.resumeWhy = resumeNoChecksum
		case f.Size != rf.Size:
			p.resumeWhy = resumeSize
		case !m.Option.Delta && f.Timestamp != rf.Timestamp:
			p.resumeWhy = resumeTimestamp
		case f.Size == 0:
			p.resumeWhy = resumeZero
		case !p.copy || rf.BundleID != 0:
			p.resumeWhy = resumeNotCopied
		default:
			p.resumeWhy = resumeOK
			f.Checksum = rf.Checksum
			f.RepoChecksum = rf.RepoChecksum
			f.RepoSize = rf.RepoSize
			f.ChecksumPage = sharedBool(rf.ChecksumPage)
			f.ChecksumPageError = strings.Clone(rf.ChecksumPageError)
		}
	})
	if err != nil {
		for i := range m.Files {
			if b.plan[i].resumeWhy == resumeOK {
				forgetStored(&m.Files[i]) // a file to copy: nothing else was set
			}
			b.plan[i].resumeWhy = resumeMissing
		}
	}
	return err
}

// resumeMismatch returns why the interrupted backup's manifest rm cannot be
// resumed by this backup, or "".
func (b *Backup) resumeMismatch(rm *repo.Manifest, label string) string {
	m := b.m
	undef := func(s string) string {
		if s == "" {
			return "<undef>"
		}
		return s
	}
	rct := rm.Option.CompressType
	if rct == "" {
		rct = string(filter.None)
	}
	switch {
	case rm.BackrestVersion != m.BackrestVersion:
		return fmt.Sprintf("new pgBackRest version '%s' does not match resumable pgBackRest version '%s'", m.BackrestVersion, rm.BackrestVersion)
	case rm.Backup.Type != m.Backup.Type:
		return fmt.Sprintf("new backup type '%s' does not match resumable backup type '%s'", m.Backup.Type, rm.Backup.Type)
	case rm.Backup.Prior != m.Backup.Prior:
		return fmt.Sprintf("new prior backup label '%s' does not match resumable prior backup label '%s'", undef(rm.Backup.Prior), undef(m.Backup.Prior))
	case rct != string(b.ct):
		return fmt.Sprintf("new compression '%s' does not match resumable compression '%s'", b.ct, rct)
	case rm.Backup.Label != label:
		return fmt.Sprintf("resumable manifest label '%s' does not match its directory", rm.Backup.Label)
	}
	return ""
}

// compressExts are the extensions a stored file name may end with.
var compressExts = []string{"gz", "bz2", "lz4", "zst", "xz"}

// splitCompressExt returns the compress type of a stored file name and the
// name without its extension ("none" and the name when it has none).
func splitCompressExt(name string) (string, string) {
	for _, ext := range compressExts {
		if strings.HasSuffix(name, "."+ext) {
			return ext, strings.TrimSuffix(name, "."+ext)
		}
	}
	return string(filter.None), name
}

// fileIndex returns the index of a file in the (sorted) manifest, or -1.
func (b *Backup) fileIndex(name string) int {
	i, ok := slices.BinarySearchFunc(b.m.Files, name, func(f repo.ManifestFile, n string) int {
		return strings.Compare(f.Name, n)
	})
	if !ok {
		return -1
	}
	return i
}

// resumeClean walks the interrupted backup's directory (dir, holding the
// manifest path name; "" at the top) as pgBackRest 2.45's
// backupResumeClean: paths the new manifest does not have are removed,
// links are removed, and a file is kept only when it is a non-referenced
// file of the new manifest that the resumed manifest recorded as copied
// (with a checksum) with the same size (and timestamp unless delta) and
// data; a kept file takes the resumed manifest's checksums and is verified
// by its job instead of being copied again. The bundle directory is not in
// the manifest, so bundles are never reused.
func (b *Backup) resumeClean(dir, name string) error {
	ctx := b.ctx
	st := b.st
	list, err := st.List(ctx, dir)
	if err != nil {
		return errs.Wrap(errs.PathOpen, err, "unable to list '%s'", st.Full(dir))
	}
	for _, en := range list {
		if name == "" && en.Name == repo.ManifestName+repo.CopyExt {
			continue // kept so the backup stays resumable until the next save
		}
		mname := en.Name
		if name != "" {
			mname = name + "/" + en.Name
		}
		path := dir + "/" + en.Name
		switch en.Type {
		case storage.TypePath:
			if _, ok := b.m.FindPath(mname); !ok {
				b.log.Detailf("remove path '%s' from resumed backup", st.Full(path))
				if err := st.RemoveAll(ctx, path); err != nil {
					return errs.Wrap(errs.PathRemove, err, "unable to remove '%s'", st.Full(path))
				}
				continue
			}
			if err := b.resumeClean(path, mname); err != nil {
				return err
			}
		case storage.TypeFile:
			if reason := b.resumeFile(mname); reason != "" {
				b.log.Detailf("remove file '%s' from resumed backup (%s)", st.Full(path), reason)
				if err := st.Remove(ctx, path); err != nil {
					return errs.OrCode(errs.FileRemove, err)
				}
			}
		default:
			if err := st.Remove(ctx, path); err != nil {
				return errs.OrCode(errs.FileRemove, err)
			}
		}
	}
	return nil
}

// resumeFile decides about one stored file of the interrupted backup:
// "" keeps it (and marks it for verification), otherwise the reason to
// remove it.
func (b *Backup) resumeFile(stored string) string {
	ct, name := splitCompressExt(stored)
	if ct != string(b.ct) {
		return "mismatched compression type"
	}
	idx := b.fileIndex(name)
	if idx < 0 {
		return "missing in manifest"
	}
	if b.m.Files[idx].Reference != "" {
		return "reference in manifest"
	}
	if why := b.plan[idx].resumeWhy; why != resumeOK {
		return resumeReasons[why]
	}
	b.plan[idx].resume = true
	return ""
}

// checkResumed verifies a file kept from the interrupted backup: the
// PostgreSQL file must still have the recorded checksum and size, and the
// stored file must read back (decrypt, decompress) to it, with the recorded
// repository checksum and size. done means res is the outcome; otherwise
// the file is copied again.
func (b *Backup) checkResumed(cw *copyWorker, idx int) (res fileResult, done bool, err error) {
	f := &b.m.Files[idx]
	path := b.repoFilePath(f.Name)
	sum, size, missing, err := hashSource(b.SourcePath(f.Name), cw.buf)
	if err != nil {
		return res, false, err
	}
	if missing {
		if f.Name == "pg_data/global/pg_control" {
			return res, false, nil // the copy reports it
		}
		if err := b.st.Remove(b.ctx, path); err != nil {
			return res, false, errs.OrCode(errs.FileRemove, err)
		}
		return fileResult{idx: idx, kind: resGone}, true, nil
	}
	if size != f.Size || sum != f.Checksum.String() {
		return res, false, nil // changed since it was stored
	}
	if !b.storedFileValid(f, path) {
		b.log.Warnf("resumed backup file %s does not have expected checksum %s. The file will be recopied and backup will continue but this may be an issue unless the resumed backup path in the repository is known to be corrupted.\nNOTE: this does not indicate a problem with the PostgreSQL page checksums.",
			f.Name, f.Checksum)
		return res, false, nil
	}
	return fileResult{idx: idx, kind: resResumed, size: f.Size, checksum: f.Checksum.String()}, true, nil
}

// storedFileValid reads a stored file back (repo.StoredReader) and
// compares everything the manifest records about it: the stored bytes'
// size (and checksum when recorded), the content's checksum and size.
func (b *Backup) storedFileValid(f *repo.ManifestFile, path string) bool {
	r, err := repo.OpenStored(b.ctx, b.st, repo.StoredFile{Path: path, Compress: b.ct, CipherPass: b.m.CipherPass,
		Checksum: f.Checksum.String(), Size: int64(f.Size), RepoChecksum: f.RepoChecksum.String(), RepoSize: int64(f.RepoSize)})
	if err != nil {
		return false
	}
	defer r.Close()
	mm, err := r.Drain()
	return err == nil && mm == repo.MatchOK
}
