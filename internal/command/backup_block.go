package command

import (
	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/repo"
)

// refuseBlockIncrBackup refuses repo-block=y: pgbr reads block incremental
// backups (restore_block.go) but does not write them yet, and must never
// silently take a different kind of backup than the one configured.
func refuseBlockIncrBackup(e *Env, r *repoT) error {
	if opt := e.ropt(r.Key, "block"); e.Cfg.Bool(opt) {
		return errs.New(errs.OptionInvalid,
			"option '%s' is set but pgbr cannot write block incremental backups yet\n"+
				"HINT: pgbr restores, verifies and expires block incremental backups; set %s=n to take backups with pgbr.", opt, opt)
	}
	return nil
}

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
