package command

import (
	"github.com/pgbr-dev/pgbr/internal/repo"
)

// priorIsBlockIncr reports whether the prior backup of a diff/incr backup is
// a block incremental backup (backup.info has its map sizes only then). Its
// bundles are stored in the raw format and its files may hold block maps
// that a backup set must keep using, which pgbr does not write: the backup
// becomes a full backup, with a warning.
func priorIsBlockIncr(e *Env, prior *repo.BackupInfoEntry, typ string) bool {
	if prior.RepoSizeMap == nil {
		return false
	}
	e.Log.Warnf("prior backup %s is a block incremental backup, which pgbr cannot continue, %s backup has been changed to full",
		prior.Label, typ)
	return true
}
