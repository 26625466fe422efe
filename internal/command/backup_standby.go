package command

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pgbr-dev/pgbr/internal/config"
	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/pg"
	"github.com/pgbr-dev/pgbr/internal/pgdb"
)

// Backup from a standby (backup-standby=y|prefer), as pgBackRest: pg1 is
// the primary, where the backup starts and stops; the first pgN (N > 1) in
// recovery is the standby. Once the standby has replayed past the backup
// start LSN (and made a restartpoint there), the files of relations and
// transaction status (base, global, pg_xact, pg_multixact, tablespaces) are
// copied from the standby, everything else (pg_control included) from the
// primary.

// standbyT is the standby a backup copies from.
type standbyT struct {
	idx  int
	path string
	db   *pgdb.DB
}

// standbyMode returns the backup-standby value ("n", "y" or "prefer").
// Offline, pgBackRest backs up the primary with a warning.
func (b *backupRun) standbyMode() string {
	e := b.e
	mode := e.Cfg.String(config.BackupStandby)
	if mode == "" || mode == "n" {
		return "n"
	}
	if !b.online {
		e.Log.Warnf("option backup-standby is enabled but backup is offline - backups will be performed from the primary")
		return "n"
	}
	return mode
}

// findStandby connects to the standby. With backup-standby=prefer a missing,
// unreachable or promoted standby means a backup of the primary (with a
// warning); with y it is an error. A standby of another cluster, or of
// another PostgreSQL version, is always an error.
func (b *backupRun) findStandby(mode string) (*standbyT, error) {
	e := b.e
	var reasons []string
	for _, idx := range e.Cfg.PgKeys() {
		if idx == 1 {
			continue
		}
		sb, reason, err := b.tryStandby(idx)
		if err != nil {
			return nil, err
		}
		if sb != nil {
			e.Log.Infof("backup from standby pg%d '%s', primary pg1 '%s'", idx, sb.path, b.c.Path)
			return sb, nil
		}
		reasons = append(reasons, reason)
	}
	if len(reasons) == 0 {
		reasons = append(reasons, "no standby is configured (set pg2-path and pg2-port or pg2-socket-path to a standby of pg1)")
	}
	if mode == "prefer" {
		e.Log.Warnf("unable to find a standby to perform the backup, using primary instead\n%s", strings.Join(reasons, "\n"))
		return nil, nil
	}
	return nil, errs.New(errs.DbConnect, "unable to find standby cluster - cannot proceed\n%s\nHINT: set backup-standby=prefer to back up the primary when no standby is available.",
		strings.Join(reasons, "\n"))
}

// tryStandby returns the standby pg<idx>, or why it is not one (reason), or
// an error that must stop the backup whatever the mode.
func (b *backupRun) tryStandby(idx int) (sb *standbyT, reason string, err error) {
	e := b.e
	opt := func(o config.Opt) config.Opt { return o.Index(idx) }
	if e.Cfg.String(opt(config.PgPath)) == "" {
		return nil, fmt.Sprintf("pg%d: option '%s' is not set", idx, opt(config.PgPath)), nil
	}
	path := filepath.Clean(e.Cfg.String(opt(config.PgPath)))
	if e.Cfg.String(opt(config.PgHost)) != "" {
		return nil, "", errs.New(errs.FeatureNotSupported, "option '%s' is set: pgbr backs up from a standby on this host only", opt(config.PgHost))
	}
	db, err := e.connectPg(idx)
	if err != nil {
		return nil, fmt.Sprintf("pg%d: [%s] %s", idx, errs.CodeOf(err).Name(), err.Error()), nil
	}
	ok := false
	defer func() {
		if !ok {
			db.Close()
		}
	}()
	s, err := db.Settings(e.Ctx)
	if err != nil {
		return nil, fmt.Sprintf("pg%d: [%s] %s", idx, errs.CodeOf(err).Name(), err.Error()), nil
	}
	if !s.InRecovery {
		return nil, fmt.Sprintf("pg%d: the cluster at '%s' (port %d) is not in recovery: it is not a standby", idx, s.DataDirectory, e.Cfg.Int(opt(config.PgPort))), nil
	}
	ctl, err := pg.ReadControl(path)
	if err != nil {
		return nil, "", err
	}
	if ctl.SystemID != b.c.Control.SystemID || ctl.Version != b.c.Control.Version {
		return nil, "", errs.New(errs.DbMismatch, "standby pg%d '%s' belongs to another cluster: system-id %d, version %s; primary pg1 '%s' has system-id %d, version %s\nHINT: is %s the data directory of a standby of pg1?",
			idx, path, ctl.SystemID, ctl.Version.Str, b.c.Path, b.c.Control.SystemID, b.c.Control.Version.Str, opt(config.PgPath))
	}
	v, _ := pg.VersionByNum(s.VersionNum)
	if v.Str != ctl.Version.Str || !samePath(filepath.Clean(s.DataDirectory), path) {
		return nil, "", errs.New(errs.DbMismatch, "version '%s' and path '%s' queried from cluster do not match version '%s' and '%s' read from '%s/global/pg_control'\nHINT: the %s and %s settings likely reference different clusters.",
			v.Str, s.DataDirectory, ctl.Version.Str, path, path, opt(config.PgPath), opt(config.PgPort))
	}
	ok = true
	return &standbyT{idx: idx, path: path, db: db}, "", nil
}

// waitReplay waits (archive-timeout, restarted while replay progresses)
// until the standby has replayed past the backup start LSN and made a
// restartpoint there, on the primary's timeline.
func (b *backupRun) waitReplay(startLSN, startSegment string) error {
	e := b.e
	sb := b.sb
	target, err := pg.ParseLSN(startLSN)
	if err != nil {
		return err
	}
	ctl, err := pg.ReadControl(sb.path)
	if err != nil {
		return err
	}
	if pg.LSN(ctl.Checkpoint) > target {
		return errs.New(errs.DbMismatch, "standby checkpoint '%s' is ahead of target '%s'\nHINT: is pg%d a standby of pg1?",
			lsnString(pg.LSN(ctl.Checkpoint)), startLSN, sb.idx)
	}
	timeout := e.Cfg.Duration(config.ArchiveTimeout)
	e.Log.Infof("wait for replay on the standby to reach %s", startLSN)
	deadline := time.Now().Add(timeout)
	var last pg.LSN
	for {
		s, ok, err := sb.db.ReplayLSN(e.Ctx)
		if err != nil {
			return err
		}
		if !ok {
			return errs.New(errs.ArchiveTimeout, "unable to query replay lsn on the standby using 'pg_catalog.pg_last_wal_replay_lsn()'\nHINT: Is this a standby?")
		}
		replay, err := pg.ParseLSN(s)
		if err != nil {
			return err
		}
		if replay > target {
			break
		}
		if replay > last {
			last = replay
			deadline = time.Now().Add(timeout)
		} else if time.Now().After(deadline) {
			return errs.New(errs.ArchiveTimeout, "timeout before standby replayed to %s - only reached %s\nHINT: is replication running and current on the standby?\nHINT: disable the 'backup-standby' option to backup directly from the primary.",
				startLSN, s)
		}
		if err := b.sleep(); err != nil {
			return err
		}
	}
	e.Log.Infof("replay on the standby reached %s", startLSN)
	// A restartpoint at the backup start checkpoint: replay may have passed
	// the start (redo) LSN before the checkpoint record itself, so the
	// restartpoint is requested again until it is there.
	deadline = time.Now().Add(timeout)
	for {
		if err := sb.db.Checkpoint(e.Ctx); err != nil {
			return err
		}
		s, tli, err := sb.db.CheckpointLSN(e.Ctx)
		if err != nil {
			return err
		}
		lsn, err := pg.ParseLSN(s)
		if err != nil {
			return err
		}
		if lsn >= target {
			want, _ := strconv.ParseUint(startSegment[:8], 16, 32)
			if tli != uint32(want) {
				return errs.New(errs.DbMismatch, "standby is on timeline %d but expected %d", tli, want)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return errs.New(errs.ArchiveTimeout, "timeout before standby checkpoint lsn reached %s - only reached %s", startLSN, s)
		}
		if err := b.sleep(); err != nil {
			return err
		}
	}
}

func (b *backupRun) sleep() error {
	select {
	case <-b.e.Ctx.Done():
		return errs.New(errs.Term, "terminated on signal")
	case <-time.After(100 * time.Millisecond):
		return nil
	}
}

func lsnString(l pg.LSN) string { return fmt.Sprintf("%X/%X", uint64(l)>>32, uint32(l)) }

// checkStandby is check's part of backup-standby: the standby a backup
// would copy from must belong to pg1's cluster; without one check warns.
func checkStandby(e *Env, c *cluster) error {
	b := &backupRun{e: e, c: c, online: true}
	var reasons []string
	for _, idx := range e.Cfg.PgKeys() {
		if idx == 1 {
			continue
		}
		sb, reason, err := b.tryStandby(idx)
		if err != nil {
			return err
		}
		if sb != nil {
			sb.db.Close()
			e.Log.Infof("standby pg%d '%s' belongs to the cluster of pg1 and is in recovery", idx, sb.path)
			return nil
		}
		reasons = append(reasons, reason)
	}
	msg := "option 'backup-standby' is enabled but standby is not properly configured"
	if len(reasons) > 0 {
		msg += "\n" + strings.Join(reasons, "\n")
	}
	e.Log.Warnf("%s", msg)
	return nil
}
