package command

import "github.com/pgbr-dev/pgbr/internal/errs"

// refuseStandby: an option pgbr does not honour is never accepted in
// silence. Offline, pgBackRest warns and backs up the primary.
func (b *backupRun) refuseStandby() error {
	e := b.e
	if !e.Cfg.Bool("backup-standby") {
		return nil
	}
	if !b.online {
		e.Log.Warnf("option backup-standby is enabled but backup is offline - backups will be performed from the primary")
		return nil
	}
	return errs.New(errs.FeatureNotSupported, "option 'backup-standby=%s' is not supported by pgbr yet: the backup would be taken from the primary\nHINT: set backup-standby=n to back up the primary.",
		e.Cfg.String("backup-standby"))
}
