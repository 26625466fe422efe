package command

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/pgbr-dev/pgbr/internal/config"
	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/lock"
	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/storage"
)

// lockAll takes the archive and the backup lock of the stanza, as
// pgBackRest does for the commands with lock type "all" (stanza-upgrade,
// stanza-delete). The returned function releases both.
func lockAll(e *Env, stanza string) (func(), error) {
	lockPath := e.Cfg.String(config.LockPath)
	a, err := lock.Acquire(lockPath, stanza, lock.Archive, e.ExecID)
	if err != nil {
		return nil, err
	}
	b, err := lock.Acquire(lockPath, stanza, lock.Backup, e.ExecID)
	if err != nil {
		a.Release()
		return nil, err
	}
	return func() { b.Release(); a.Release() }, nil
}

// stanzaUpgrade records a new cluster (PostgreSQL major upgrade, or a new
// system id after initdb) in the history of archive.info and backup.info of
// every repository (format spec §8.2). Each file gets a new history entry
// only when its current one differs from the cluster, so a run interrupted
// between the two saves is completed by the next one. archive.info is saved
// first. The sub-passphrases are kept, and so are the old entries: backups
// of the old cluster stay listed and restorable.
func stanzaUpgrade(e *Env) error {
	stanza, err := e.stanza()
	if err != nil {
		return err
	}
	if err := lock.CheckStop(e.Cfg.String(config.LockPath), stanza); err != nil {
		return err
	}
	release, err := lockAll(e, stanza)
	if err != nil {
		return err
	}
	defer release()
	c, err := e.clusterForStanza()
	if err != nil {
		return err
	}
	repos, err := e.repos()
	if err != nil {
		return err
	}
	v := c.Control.Version
	sysID := c.Control.SystemID
	for _, r := range repos {
		e.Log.Infof("stanza-upgrade for stanza '%s' on %s", stanza, r.Name())
		a, err := repo.LoadArchiveInfo(e.Ctx, r.St, stanza, r.CipherPass)
		if err != nil {
			return err
		}
		b, err := repo.LoadBackupInfo(e.Ctx, r.St, stanza, r.CipherPass)
		if err != nil {
			return err
		}
		archiveUpgrade := v.Str != a.DB.Version || sysID != a.DB.SystemID
		if archiveUpgrade {
			a.DB = repo.ArchiveHistory{ID: a.DB.ID + 1, SystemID: sysID, Version: v.Str}
			a.History = append(a.History, a.DB)
			a.BackrestVersion = BackrestVersion
		}
		backupUpgrade := v.Str != b.DB.Version || sysID != b.DB.SystemID
		if backupUpgrade {
			b.DB = repo.BackupDB{ID: b.DB.ID + 1, SystemID: sysID, Version: v.Str,
				CatalogVersion: c.Control.CatalogVersion, ControlVersion: v.ControlVersion}
			b.History = append(b.History, b.DB)
			b.BackrestVersion = BackrestVersion
		}
		// Both must agree before anything is written.
		if err := stanzaInfoMatch(a, b); err != nil {
			return err
		}
		if archiveUpgrade {
			if err := repo.SaveArchiveInfo(e.Ctx, r.St, stanza, a, r.CipherPass); err != nil {
				return err
			}
		}
		if backupUpgrade {
			if err := repo.SaveBackupInfo(e.Ctx, r.St, stanza, b, r.CipherPass); err != nil {
				return err
			}
		}
		if !archiveUpgrade && !backupUpgrade {
			e.Log.Infof("stanza '%s' on %s is already up to date", stanza, r.Name())
		}
	}
	return nil
}

// stanzaDelete removes a stanza from one repository: archive/<stanza> and
// backup/<stanza>. As pgBackRest requires, the stanza must have been
// stopped first (pgbr stop), and PostgreSQL must not be running unless
// --force is given. The info files go first, so that no command uses the
// stanza while its files disappear; the stop file stays until the end, so
// an interrupted delete is simply run again. Without --repo, the config
// parser already insists on it when several repositories are configured.
func stanzaDelete(e *Env) error {
	stanza, err := e.stanza()
	if err != nil {
		return err
	}
	release, err := lockAll(e, stanza)
	if err != nil {
		return err
	}
	defer release()
	repos, err := e.repos()
	if err != nil {
		return err
	}
	r := repos[0]
	ctx, st := e.Ctx, r.St
	archiveDir, backupDir := repo.Layout{Stanza: stanza}.ArchiveDir(), repo.Layout{Stanza: stanza}.BackupDir()
	archiveExists, archiveNotEmpty, err := pathState(e, st, archiveDir)
	if err != nil {
		return err
	}
	backupExists, backupNotEmpty, err := pathState(e, st, backupDir)
	if err != nil {
		return err
	}
	if !archiveExists && !backupExists {
		return nil
	}
	lockPath := e.Cfg.String(config.LockPath)
	stopFile := filepath.Join(lockPath, stanza+".stop")
	if archiveNotEmpty || backupNotEmpty {
		// Required even with --force.
		if _, err := os.Stat(stopFile); err != nil {
			return errs.New(errs.FileMissing, "stop file does not exist for stanza '%s'\nHINT: has the pgbackrest stop command been run on this server for this stanza?", stanza)
		}
		if !e.Cfg.Bool(config.Force) {
			pgPath, err := e.pgPath()
			if err != nil {
				return err
			}
			if _, err := os.Stat(filepath.Join(pgPath, "postmaster.pid")); err == nil {
				return errs.New(errs.PgRunning, "postmaster.pid exists - looks like PostgreSQL is running. To delete stanza '%s' on %s, shut down PostgreSQL for stanza '%s' and try again, or use --force.",
					stanza, r.Name(), stanza)
			}
		}
		if archiveNotEmpty {
			if err := removeFiles(e, st, repo.ArchiveInfoPath(stanza), repo.ArchiveInfoPath(stanza)+repo.CopyExt); err != nil {
				return err
			}
		}
		if backupNotEmpty {
			if err := removeFiles(e, st, repo.BackupInfoPath(stanza), repo.BackupInfoPath(stanza)+repo.CopyExt); err != nil {
				return err
			}
		}
	}
	for _, d := range []struct {
		path   string
		exists bool
	}{{archiveDir, archiveExists}, {backupDir, backupExists}} {
		if !d.exists {
			continue
		}
		if err := st.RemoveAll(ctx, d.path); err != nil {
			return errs.OrCode(errs.PathRemove, err)
		}
	}
	if err := os.Remove(stopFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return errs.Wrap(errs.FileRemove, err, "unable to remove '%s'", stopFile)
	}
	return nil
}

// pathState reports whether a repository path exists and whether it holds
// anything. On object stores a path exists only through what is in it.
func pathState(e *Env, st storage.Storage, p string) (exists, notEmpty bool, err error) {
	list, err := st.List(e.Ctx, p)
	if err != nil {
		return false, false, errs.OrCode(errs.PathOpen, err)
	}
	if len(list) > 0 {
		return true, true, nil
	}
	if _, err := st.Stat(e.Ctx, p); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return false, false, nil
		}
		return false, false, errs.OrCode(errs.PathOpen, err)
	}
	return true, false, nil
}

func removeFiles(e *Env, st storage.Storage, paths ...string) error {
	for _, p := range paths {
		if err := st.Remove(e.Ctx, p); err != nil {
			return errs.OrCode(errs.FileRemove, err)
		}
	}
	return nil
}
