package repo

import "strconv"

// Layout owns every repository path of one stanza (format spec §1):
//
//	archive/<stanza>/archive.info(.copy)
//	archive/<stanza>/<archive id>/<first 16 hex>/<segment>-<sha1>[.<ext>]
//	archive/<stanza>/<archive id>/<timeline>.history
//	backup/<stanza>/backup.info(.copy)
//	backup/<stanza>/latest -> <label>
//	backup/<stanza>/backup.history/<YYYY>/<label>.manifest.gz
//	backup/<stanza>/<label>/backup.manifest(.copy)
//	backup/<stanza>/<label>/pg_data/...[.<ext>]   (or .pgbi: block incremental)
//	backup/<stanza>/<label>/bundle/<id>
//
// Paths are relative to the repository root (storage.Storage paths). The
// zero value is not useful: set Stanza.
type Layout struct {
	Stanza string
}

// Names of the fixed entries of a stanza.
const (
	archiveRoot     = "archive"
	backupRoot      = "backup"
	LatestName      = "latest"
	HistoryDirName  = "backup.history"
	BundleDirName   = "bundle"
	BlockIncrExt    = ".pgbi"
	historyManifest = ".manifest.gz"
)

// ArchiveDir returns archive/<stanza>.
func (l Layout) ArchiveDir() string { return archiveRoot + "/" + l.Stanza }

// ArchiveInfo returns archive/<stanza>/archive.info (add CopyExt for the copy).
func (l Layout) ArchiveInfo() string { return l.ArchiveDir() + "/" + ArchiveInfoName }

// ArchiveIDDir returns archive/<stanza>/<archiveID> (archiveID as "15-1").
func (l Layout) ArchiveIDDir(archiveID string) string { return l.ArchiveDir() + "/" + archiveID }

// SegmentDir returns the directory that holds an archive file: for names
// starting with 24 hex characters (segments, .partial, .backup)
// archive/<stanza>/<archiveID>/<first 16 chars>, for any other name
// (.history) archive/<stanza>/<archiveID>.
func (l Layout) SegmentDir(archiveID, walName string) string {
	dir := l.ArchiveIDDir(archiveID)
	if segmentPrefixRegexp.MatchString(walName) {
		return dir + "/" + walName[:16]
	}
	return dir
}

// ArchiveFile returns the path of an archive file stored as storedName
// (segments: see StoredSegmentName; other files: their own name).
func (l Layout) ArchiveFile(archiveID, storedName string) string {
	return l.SegmentDir(archiveID, storedName) + "/" + storedName
}

// BackupDir returns backup/<stanza>.
func (l Layout) BackupDir() string { return backupRoot + "/" + l.Stanza }

// BackupInfo returns backup/<stanza>/backup.info (add CopyExt for the copy).
func (l Layout) BackupInfo() string { return l.BackupDir() + "/" + BackupInfoName }

// Latest returns backup/<stanza>/latest (a relative symlink to a label).
func (l Layout) Latest() string { return l.BackupDir() + "/" + LatestName }

// HistoryDir returns backup/<stanza>/backup.history.
func (l Layout) HistoryDir() string { return l.BackupDir() + "/" + HistoryDirName }

// HistoryManifest returns backup/<stanza>/backup.history/<YYYY>/<label>.manifest.gz,
// YYYY being the label's first four characters.
func (l Layout) HistoryManifest(label string) string {
	year := label
	if len(year) > 4 {
		year = year[:4]
	}
	return l.HistoryDir() + "/" + year + "/" + label + historyManifest
}

// LabelDir returns backup/<stanza>/<label>.
func (l Layout) LabelDir(label string) string { return l.BackupDir() + "/" + label }

// Manifest returns backup/<stanza>/<label>/backup.manifest (add CopyExt for
// the copy).
func (l Layout) Manifest(label string) string { return l.LabelDir(label) + "/" + ManifestName }

// BackupFile returns backup/<stanza>/<label>/<name><ext> where name is the
// manifest name (pg_data/..., pg_tblspc/...) and ext the compression
// extension (CompressExt: ".gz", "" for none).
func (l Layout) BackupFile(label, name, ext string) string {
	return l.LabelDir(label) + "/" + name + ext
}

// BlockIncrFile returns backup/<stanza>/<label>/<name>.pgbi, the stored name
// of a block incremental file outside a bundle.
func (l Layout) BlockIncrFile(label, name string) string {
	return l.LabelDir(label) + "/" + name + BlockIncrExt
}

// Bundle returns backup/<stanza>/<label>/bundle/<id>.
func (l Layout) Bundle(label string, id uint64) string {
	return l.LabelDir(label) + "/" + BundleDirName + "/" + strconv.FormatUint(id, 10)
}

// FileLabel returns the label of the backup that stores f's bytes: its
// reference, or m's own label.
func FileLabel(m *Manifest, f *ManifestFile) string {
	if f.Reference != "" {
		return f.Reference
	}
	return m.Backup.Label
}

// StoredPath returns where f's bytes are stored: its bundle (read RepoSize
// bytes at BundleOffset), its .pgbi file (block incremental with a map) or
// <label>/<name><ext>.
func (l Layout) StoredPath(m *Manifest, f *ManifestFile) string {
	label := FileLabel(m, f)
	switch {
	case f.BundleID != 0:
		return l.Bundle(label, f.BundleID)
	case f.BlockIncrMap != 0:
		return l.BlockIncrFile(label, f.Name)
	}
	return l.BackupFile(label, f.Name, CompressExt(m.Option.CompressType))
}
