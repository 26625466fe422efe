package command

import (
	"github.com/pgbr-dev/pgbr/internal/config"
	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/filter"
	"github.com/pgbr-dev/pgbr/internal/pg"
	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/storage"
)

// clusterForStanza reads pg_control and, online, checks the server. As in
// pgBackRest, online it connects first, and any failure to use pg1 is
// reported as "unable to find primary cluster" [056] with pg1's reason.
func (e *Env) clusterForStanza() (*cluster, error) {
	if !e.Cfg.Bool(config.Online) {
		return e.readCluster()
	}
	if _, err := e.pgPath(); err != nil {
		return nil, err
	}
	db, err := e.connect()
	if err != nil {
		return nil, noPrimary(err)
	}
	defer db.Close()
	s, err := db.Settings(e.Ctx)
	if err != nil {
		return nil, noPrimary(err)
	}
	c, err := e.primaryCluster()
	if err != nil {
		return nil, err
	}
	if err := checkServer(s, c); err != nil {
		return nil, err
	}
	return c, nil
}

func stanzaCreate(e *Env) error {
	stanza, l, err := e.lockStanza()
	if err != nil {
		return err
	}
	defer l.Release()
	c, err := e.clusterForStanza()
	if err != nil {
		return err
	}
	if e.Cfg.Bool(config.Force) {
		e.Log.Warnf("option --force is no longer supported")
	}
	repos, err := e.repos()
	if err != nil {
		return err
	}
	for _, r := range repos {
		if err := stanzaCreateRepo(e, r, stanza, c); err != nil {
			return err
		}
	}
	return nil
}

func stanzaCreateRepo(e *Env, r *repoT, stanza string, c *cluster) error {
	ctx := e.Ctx
	st := r.St
	ap, bp := repo.ArchiveInfoPath(stanza), repo.BackupInfoPath(stanza)
	exist := map[string]bool{}
	for _, p := range []string{ap, ap + repo.CopyExt, bp, bp + repo.CopyExt} {
		ok, err := st.Exists(ctx, p)
		if err != nil {
			return errs.Wrap(errs.FileOpen, err, "unable to check '%s'", st.Full(p))
		}
		exist[p] = ok
	}
	archiveAny := exist[ap] || exist[ap+repo.CopyExt]
	backupAny := exist[bp] || exist[bp+repo.CopyExt]
	v := c.Control.Version
	switch {
	case !archiveAny && !backupAny:
		for _, dir := range []string{repo.Layout{Stanza: stanza}.ArchiveDir(), repo.Layout{Stanza: stanza}.BackupDir()} {
			list, err := st.List(ctx, dir)
			if err != nil {
				return errs.OrCode(errs.PathOpen, err)
			}
			if len(list) > 0 {
				return errs.New(errs.PathNotEmpty, "%s: backup directory and/or archive directory not empty\nHINT: use stanza-upgrade if the database has been upgraded or use --force if the directory is not empty (--force is not supported by pgbr: remove the stanza with stanza-delete first).", r.Name())
			}
		}
		a := &repo.ArchiveInfo{BackrestVersion: BackrestVersion,
			DB: repo.ArchiveHistory{ID: 1, SystemID: c.Control.SystemID, Version: v.Str}}
		a.History = []repo.ArchiveHistory{a.DB}
		b := &repo.BackupInfo{BackrestVersion: BackrestVersion,
			DB: repo.BackupDB{CatalogVersion: v.CatalogVersion, ControlVersion: v.ControlVersion, ID: 1,
				SystemID: c.Control.SystemID, Version: v.Str}}
		b.History = []repo.BackupHistory{b.DB}
		if r.CipherPass != "" {
			var err error
			if a.CipherPass, err = filter.NewSubPassphrase(); err != nil {
				return err
			}
			if b.CipherPass, err = filter.NewSubPassphrase(); err != nil {
				return err
			}
		}
		for _, dir := range []string{repo.Layout{Stanza: stanza}.ArchiveDir(), repo.Layout{Stanza: stanza}.BackupDir()} {
			if err := st.PathCreate(ctx, dir); err != nil {
				return errs.OrCode(errs.PathCreate, err)
			}
		}
		if err := repo.SaveArchiveInfo(ctx, st, stanza, a, r.CipherPass); err != nil {
			return err
		}
		if err := repo.SaveBackupInfo(ctx, st, stanza, b, r.CipherPass); err != nil {
			return err
		}
		e.Log.Infof("stanza-create for stanza '%s' on %s", stanza, r.Name())
		return nil
	case archiveAny && !backupAny:
		return errs.New(errs.FileMissing, "%s: archive.info exists but backup.info is missing\nHINT: this may be a symptom of repository corruption!", r.Name())
	case !archiveAny && backupAny:
		return errs.New(errs.FileMissing, "%s: backup.info exists but archive.info is missing\nHINT: this may be a symptom of repository corruption!", r.Name())
	}
	a, err := repo.LoadArchiveInfo(ctx, st, stanza, r.CipherPass)
	if err != nil {
		return err
	}
	b, err := repo.LoadBackupInfo(ctx, st, stanza, r.CipherPass)
	if err != nil {
		return err
	}
	if err := checkInfoPair(a, b, c.Control.SystemID, v); err != nil {
		return err
	}
	// Recreate a missing main or copy file from its twin.
	for _, p := range []string{ap, bp} {
		for _, pair := range [][2]string{{p, p + repo.CopyExt}, {p + repo.CopyExt, p}} {
			if !exist[pair[1]] && exist[pair[0]] {
				data, err := storage.ReadAll(ctx, st, pair[0])
				if err != nil {
					return errs.Wrap(errs.FileRead, err, "unable to read '%s'", st.Full(pair[0]))
				}
				if err := storage.WriteAll(ctx, st, pair[1], data); err != nil {
					return errs.Wrap(errs.FileWrite, err, "unable to write '%s'", st.Full(pair[1]))
				}
			}
		}
	}
	e.Log.Infof("stanza '%s' already exists on %s and is valid", stanza, r.Name())
	return nil
}

// checkInfoPair checks archive.info and backup.info agree with each other
// and with the cluster.
func checkInfoPair(a *repo.ArchiveInfo, b *repo.BackupInfo, sysID uint64, v pg.Version) error {
	if a.DB.ID != b.DB.ID || a.DB.SystemID != b.DB.SystemID || a.DB.Version != b.DB.Version {
		return errs.New(errs.FileInvalid, "backup info file and archive info file do not match\narchive: id = %d, version = %s, system-id = %d\nbackup : id = %d, version = %s, system-id = %d\nHINT: this may be a symptom of repository corruption!",
			a.DB.ID, a.DB.Version, a.DB.SystemID, b.DB.ID, b.DB.Version, b.DB.SystemID)
	}
	if a.DB.SystemID != sysID || a.DB.Version != v.Str {
		return errs.New(errs.FileInvalid, "backup and archive info files exist but do not match the database\nHINT: is this the correct stanza?\nHINT: did an error occur during stanza-upgrade?")
	}
	return nil
}
