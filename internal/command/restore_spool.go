package command

import (
	"os"
	"path/filepath"

	"github.com/pgbr-dev/pgbr/internal/config"
	"github.com/pgbr-dev/pgbr/internal/errs"
)

// clearArchiveSpool removes the stanza's whole archive spool,
// <spool-path>/archive/<stanza> with its out and in directories, as
// pgBackRest's restore does before it selects the backup set, whether
// archive-async is set or not: an old <segment>.ok in out would acknowledge
// a segment of the restored cluster that was never pushed, and WAL
// prefetched into in belongs to whatever ran before. A missing spool is
// fine; an entry that cannot be removed is [061].
func clearArchiveSpool(e *Env, stanza string) error {
	dir := filepath.Join(e.Cfg.String(config.SpoolPath), "archive", stanza)
	if err := os.RemoveAll(dir); err != nil {
		return errs.Wrap(errs.PathRemove, err, "unable to remove path '%s'", dir)
	}
	return nil
}
