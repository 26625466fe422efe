package command

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pgbr-dev/pgbr/internal/config"
	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/filter"
	"github.com/pgbr-dev/pgbr/internal/lock"
	"github.com/pgbr-dev/pgbr/internal/pg"
	"github.com/pgbr-dev/pgbr/internal/pgdb"
	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/workpool"
)

// compressSettings returns compress-type and level (the type's default
// level unless compress-level is set).
func (e *Env) compressSettings() (filter.CompressType, int, error) {
	t, err := filter.ParseCompressType(e.Cfg.String(config.CompressType))
	if err != nil {
		return "", 0, err
	}
	if e.Cfg.IsSet(config.Compress) && !e.Cfg.Bool(config.Compress) {
		t = filter.None
	}
	level := filter.DefaultLevel(t)
	if e.Cfg.IsSet(config.CompressLevel) {
		level = int(e.Cfg.Int(config.CompressLevel))
		if lo, hi := filter.LevelRange(t); t != filter.None && (level < lo || level > hi) {
			return "", 0, errs.New(errs.OptionInvalidValue, "'%d' is out of range for 'compress-level' option when 'compress-type' option = '%s'", level, t)
		}
	}
	return t, level, nil
}

// cluster is what commands learn about the local cluster.
type cluster struct {
	Path    string
	Control pg.Control
}

// readCluster reads pg_control from pg1-path. A missing pg1-path or
// pg_control is FileMissingError [055], as pgBackRest reports it, with a
// hint about pg1-path.
func (e *Env) readCluster() (*cluster, error) {
	p, err := e.pgPath()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(p); err != nil {
		if os.IsNotExist(err) {
			return nil, errs.New(errs.FileMissing, "unable to open missing file '%s' for read\nHINT: pg1-path '%s' does not exist: is pg1-path set to the PostgreSQL data directory?",
				filepath.Join(p, "global", "pg_control"), p)
		}
		return nil, errs.Wrap(errs.PathOpen, err, "unable to open pg1-path '%s'", p)
	}
	ctl, err := pg.ReadControl(p)
	if err != nil {
		if errs.CodeOf(err) == errs.FileMissing {
			return nil, errs.New(errs.FileMissing, "%s\nHINT: is pg1-path '%s' the PostgreSQL data directory?", err.Error(), p)
		}
		return nil, err
	}
	return &cluster{Path: p, Control: ctl}, nil
}

// primaryCluster reads pg_control for a command that works on the primary
// (stanza-create, backup). Online, pgBackRest treats any failure to reach
// pg1 as "no primary": DbConnectError [056], with pg1's own error inside.
// Offline the error is pg_control's own.
func (e *Env) primaryCluster() (*cluster, error) {
	c, err := e.readCluster()
	if err != nil && e.Cfg.Bool(config.Online) && errs.CodeOf(err) != errs.OptionRequired {
		return nil, noPrimary(err)
	}
	return c, err
}

// noPrimary is pgBackRest's "unable to find primary cluster" error with the
// reason pg1 could not be used (pgBackRest logs it as a warning before).
func noPrimary(cause error) error {
	return &errs.Error{Code: errs.DbConnect, Err: cause, Msg: fmt.Sprintf(
		"unable to find primary cluster - cannot proceed\npg1: [%s] %s", errs.CodeOf(cause).Name(), cause.Error())}
}

// guard runs one job of a worker goroutine and turns a panic into an
// AssertError. The CLI's recover only covers the main goroutine: a panic in
// a worker would print a Go stack trace on the console and kill the process.
func guard[T any](e *Env, f func() (T, error)) (v T, err error) {
	err = errs.Guard(e.Log.Debugf, func() error {
		v, err = f()
		return err
	})
	return v, err
}

// guardErr is guard for a job that returns only an error.
func guardErr(e *Env, f func() error) error {
	_, err := guard(e, func() (struct{}, error) { return struct{}{}, f() })
	return err
}

// runPool runs n jobs on workers goroutines (workpool): a panic in a job
// becomes an AssertError, the first error stops the pool, and a pool
// stopped by a signal fails with [063] whatever its jobs returned.
func (e *Env) runPool(workers, n int, job func(ctx context.Context, proc, i int) error) error {
	err := workpool.Run(e.Ctx, workers, n, func(ctx context.Context, proc, i int) error {
		return guardErr(e, func() error { return job(ctx, proc, i) })
	})
	if e.Ctx.Err() != nil {
		return errs.New(errs.Term, "terminated on signal")
	}
	return err
}

// checkServer verifies the server behind the connection is the cluster in
// pg1-path (pgBackRest's DbMismatchError).
func checkServer(s pgdb.Settings, c *cluster) error {
	v, _ := pg.VersionByNum(s.VersionNum)
	dataDir := filepath.Clean(s.DataDirectory)
	if v.Str != c.Control.Version.Str || !samePath(dataDir, c.Path) {
		return errs.New(errs.DbMismatch, "version '%s' and path '%s' queried from cluster do not match version '%s' and '%s' read from '%s/global/pg_control'\nHINT: the pg1-path and pg1-port settings likely reference different clusters.",
			v.Str, dataDir, c.Control.Version.Str, c.Path, c.Path)
	}
	return nil
}

func samePath(a, b string) bool {
	if a == b {
		return true
	}
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	return err1 == nil && err2 == nil && ra == rb
}

// resolvePgPath resolves a path given by PostgreSQL (%p) that may be
// relative to PGDATA: then pg1-path must be set and be the working dir.
func (e *Env) resolvePgPath(p string) (string, error) {
	if filepath.IsAbs(p) {
		return p, nil
	}
	pgPath := e.Cfg.String(config.PgPath.Index(1))
	if pgPath == "" {
		return "", errs.New(errs.OptionRequired, "option 'pg1-path' must be specified when relative wal paths are used\nHINT: is %%f passed to %s instead of %%p?\nHINT: PostgreSQL may pass relative paths even with %%p depending on the environment.", e.Cfg.Command())
	}
	if !samePath(filepath.Clean(e.Cwd), filepath.Clean(pgPath)) {
		return "", errs.New(errs.OptionInvalidValue, "PostgreSQL working directory '%s' is not the same as option pg1-path '%s'\nHINT: is the PostgreSQL data_directory configured the same as the pg1-path option?", e.Cwd, pgPath)
	}
	return filepath.Join(pgPath, p), nil
}

// mismatch compares the cluster with an info file's current entry.
func mismatch(version string, sysID uint64, r *repo.ArchiveInfo) bool {
	return version != r.DB.Version || sysID != r.DB.SystemID
}

// lockStanza returns the stanza after checking its stop files and taking
// its backup lock (held by backup, expire and stanza-create, as in
// pgBackRest, so no two of them run at once on this host).
func (e *Env) lockStanza() (string, *lock.Lock, error) {
	stanza, err := e.stanza()
	if err != nil {
		return "", nil, err
	}
	lockPath := e.Cfg.String(config.LockPath)
	if err := lock.CheckStop(lockPath, stanza); err != nil {
		return "", nil, err
	}
	l, err := lock.Acquire(lockPath, stanza, lock.Backup, e.ExecID)
	if err != nil {
		return "", nil, err
	}
	return stanza, l, nil
}

// processMax is the number of workers (process-max, at least 1).
func (e *Env) processMax() int { return max(int(e.Cfg.Int(config.ProcessMax)), 1) }
