package command

import (
	"strings"
	"time"

	"github.com/pgbr-dev/pgbr/internal/config"
	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/repo"
)

// check verifies the cluster and every repository are set up for backups
// and that WAL archiving works (format spec §8.3), as pgBackRest 2.45 does:
// connect, compare the server with pg1-path, check the archive settings,
// check both info files of every repo against the cluster, then switch WAL
// and wait for the segment to reach every repo.
func check(e *Env) error {
	stanza, err := e.stanza()
	if err != nil {
		return err
	}
	db, err := e.connect()
	if err != nil {
		e.Log.Warnf("unable to check pg1: [%s] %s", errs.CodeOf(err).Name(), err.Error())
		return errs.New(errs.Config, "no database found\nHINT: check indexed pg-path/pg-host configurations")
	}
	defer db.Close()
	s, err := db.Settings(e.Ctx)
	if err != nil {
		return err
	}
	if s.InRecovery {
		// pgBackRest needs the primary when a repository is local (pgbr's
		// always are) and pg1 is the only cluster configured.
		return errs.New(errs.Config, "primary database not found\nHINT: check indexed pg-path/pg-host configurations")
	}
	c, err := e.readCluster()
	if err != nil {
		return err
	}
	if err := checkServer(s, c); err != nil {
		return err
	}
	if e.Cfg.Bool(config.BackupStandby) {
		if err := checkStandby(e, c); err != nil {
			return err
		}
	}
	if e.Cfg.Bool(config.ArchiveCheck) {
		as := s
		if as.ArchiveMode == "always" && !e.Cfg.Bool(config.ArchiveModeCheck) {
			as.ArchiveMode = "on" // archive_mode=always is accepted with --no-archive-mode-check
		}
		if err := checkArchiveSettings(as); err != nil {
			return err
		}
	}

	repos, err := e.repos()
	if err != nil {
		return err
	}
	archiveIDs := make([]string, len(repos))
	for i, r := range repos {
		e.Log.Infof("check %s configuration (primary)", r.Name())
		a, err := repo.LoadArchiveInfo(e.Ctx, r.St, stanza, r.CipherPass)
		if err != nil {
			return err
		}
		b, err := repo.LoadBackupInfo(e.Ctx, r.St, stanza, r.CipherPass)
		if err != nil {
			return err
		}
		if err := checkInfoPair(a, b, c.Control.SystemID, c.Control.Version); err != nil {
			return err
		}
		checkCredentials(e, r, b)
		archiveIDs[i] = a.ArchiveID()
	}

	segment, err := db.SwitchWal(e.Ctx)
	if err != nil {
		return err
	}
	timeout := e.Cfg.Duration(config.ArchiveTimeout)
	for i, r := range repos {
		e.Log.Infof("check %s archive for WAL (primary)", r.Name())
		path, err := checkWaitSegment(e, r, stanza, archiveIDs[i], segment, timeout)
		if err != nil {
			return err
		}
		e.Log.Infof("WAL segment %s successfully archived to '%s' on %s", segment, r.St.Full(path), r.Name())
	}
	return nil
}

// checkWaitSegment waits up to timeout for a WAL segment to be stored in
// an archive id and returns its repository path.
func checkWaitSegment(e *Env, r *repoT, stanza, archiveID, segment string, timeout time.Duration) (string, error) {
	dir := archiveFileDir(stanza, archiveID, segment)
	deadline := time.Now().Add(timeout)
	sleep := 100 * time.Millisecond
	for {
		found, err := findSegment(e, r.St, dir, segment)
		if err != nil {
			return "", err
		}
		if len(found) > 1 {
			return "", errs.New(errs.ArchiveDuplicate, "duplicates found in archive for WAL segment %s: %s\nHINT: are multiple primaries archiving to this stanza?",
				segment, strings.Join(found, ", "))
		}
		if len(found) == 1 {
			return dir + "/" + found[0], nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return "", errs.New(errs.ArchiveTimeout, "WAL segment %s was not archived before the %dms timeout\n"+
				"HINT: check the archive_command to ensure that all options are correct (especially --stanza).\n"+
				"HINT: check the PostgreSQL server log for errors.\n"+
				"HINT: run the 'start' command if the stanza was previously stopped.",
				segment, timeout.Milliseconds())
		}
		select {
		case <-e.Ctx.Done():
			return "", errs.New(errs.Term, "terminated on signal")
		case <-time.After(min(sleep, left)):
		}
		sleep = min(sleep*2, time.Second)
	}
}
