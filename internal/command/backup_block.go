package command

import (
	"github.com/pgbr-dev/pgbr/internal/config"
	"github.com/pgbr-dev/pgbr/internal/errs"
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

// blockIncrUnsupported lists the repo-block options pgbr does not
// implement yet (custom maps).
var blockIncrUnsupported = []config.Opt{config.RepoBlockSizeMap, config.RepoBlockAgeMap, config.RepoBlockChecksumSizeMap}

// checkBlockIncrOptions refuses repo-block options pgbr does not implement.
func checkBlockIncrOptions(e *Env, r *repoT) error {
	if !e.Cfg.Bool(config.RepoBlock.Index(r.Key)) {
		return nil
	}
	for _, o := range blockIncrUnsupported {
		if opt := o.Index(r.Key); e.Cfg.IsSet(opt) {
			return errs.New(errs.OptionInvalid, "option '%s' is not supported by pgbr yet\n"+
				"HINT: remove it to use pgBackRest's default map.", opt)
		}
	}
	return nil
}
