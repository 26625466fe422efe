package repo

import "github.com/pgbr-dev/pgbr/internal/errs"

// StanzaInfoMatch checks that archive.info and backup.info describe the
// same current cluster (pgBackRest's checkStanzaInfo).
func StanzaInfoMatch(a *ArchiveInfo, b *BackupInfo) error {
	if a.DB.ID != b.DB.ID || a.DB.SystemID != b.DB.SystemID || a.DB.Version != b.DB.Version {
		return errs.New(errs.FileInvalid, "backup info file and archive info file do not match\narchive: id = %d, version = %s, system-id = %d\nbackup : id = %d, version = %s, system-id = %d\nHINT: this may be a symptom of repository corruption!",
			a.DB.ID, a.DB.Version, a.DB.SystemID, b.DB.ID, b.DB.Version, b.DB.SystemID)
	}
	return nil
}
