package command

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pgbr-dev/pgbr/internal/config"
	"github.com/pgbr-dev/pgbr/internal/errs"
	expirepkg "github.com/pgbr-dev/pgbr/internal/expire"
	"github.com/pgbr-dev/pgbr/internal/repo"
)

// expire is the expire command: retention, ad-hoc --set, WAL retention.
func expire(e *Env) error {
	stanza, l, err := e.lockStanza()
	if err != nil {
		return err
	}
	defer l.Release()
	repos, err := e.repos()
	if err != nil {
		return err
	}
	var failed []string
	for _, r := range repos {
		if err := expireRepo(e, r, stanza); err != nil {
			if len(repos) == 1 {
				return err
			}
			failed = append(failed, fmt.Sprintf("%s: [%d] %s", r.Name(), errs.CodeOf(err), err.Error()))
		}
	}
	if len(failed) > 0 {
		return errs.New(errs.Command, "expire command encountered %d error(s), check the log file for details:\n%s", len(failed), strings.Join(failed, "\n"))
	}
	return nil
}

// policy reads the retention options of a repository.
func (e *Env) policy(key int) expirepkg.Policy {
	rk := func(o config.Opt) config.Opt { return o.Index(key) }
	return expirepkg.Policy{
		Set:         e.Cfg.String(config.Set),
		HasFull:     e.Cfg.IsSet(rk(config.RepoRetentionFull)),
		Full:        e.Cfg.Int(rk(config.RepoRetentionFull)),
		FullTime:    e.Cfg.String(rk(config.RepoRetentionFullType)) == "time",
		HasDiff:     e.Cfg.IsSet(rk(config.RepoRetentionDiff)),
		Diff:        e.Cfg.Int(rk(config.RepoRetentionDiff)),
		HasArchive:  e.Cfg.IsSet(rk(config.RepoRetentionArchive)),
		Archive:     e.Cfg.Int(rk(config.RepoRetentionArchive)),
		ArchiveType: e.Cfg.String(rk(config.RepoRetentionArchiveType)),
	}
}

func expireRepo(e *Env, r *repoT, stanza string) error {
	ctx := e.Ctx
	bi, err := repo.LoadBackupInfo(ctx, r.St, stanza, r.CipherPass)
	if err != nil {
		return err
	}
	if changed, err := reconstructBackupInfo(e, r, stanza, bi); err != nil {
		return err
	} else if changed && !e.Cfg.Bool(config.DryRun) {
		if err := repo.SaveBackupInfo(ctx, r.St, stanza, bi, r.CipherPass); err != nil {
			return err
		}
	}
	t := &expirepkg.Target{
		Storage:    r.St,
		Layout:     repo.Layout{Stanza: stanza},
		CipherPass: r.CipherPass,
		DryRun:     e.Cfg.Bool(config.DryRun),
		Adhoc:      e.Cfg.String(config.Set) != "",
		Log:        e.Log,
	}
	if t.DryRun {
		t.Prefix = "[DRY-RUN] "
	}
	t.Prefix += r.Name() + ": "
	rk := func(o config.Opt) config.Opt { return o.Index(r.Key) }

	plan, err := expirepkg.Plan(bi, nil, e.policy(r.Key), e.Now())
	var se *expirepkg.SetError
	if errors.As(err, &se) {
		if se.Err == expirepkg.ErrSetMissing {
			return errs.New(errs.BackupSetInvalid, "%s%s", r.Name()+": ", se.Error())
		}
		return errs.New(errs.BackupSetInvalid, "%s", se.Error())
	} else if err != nil {
		return err
	}
	if plan.LatestExpired != "" {
		e.Log.Warnf("%sexpiring latest backup %s - the ability to perform point-in-time-recovery (PITR) may be affected\nHINT: non-default settings for '%s'/'%s' (even in prior expires) can cause gaps in the WAL.",
			r.Name()+": ", plan.LatestExpired, rk(config.RepoRetentionArchive), rk(config.RepoRetentionArchiveType))
	}
	for _, ex := range plan.Expire {
		e.Log.Infof("%s%s %s", t.Prefix, ex.Reason, strings.Join(ex.Labels, ", "))
	}
	if err := expirepkg.ApplyBackups(ctx, t, bi, plan); err != nil {
		return err
	}
	switch plan.ArchiveSkip {
	case expirepkg.ArchiveTimeNotMet:
		e.Log.Infof("%stime-based archive retention not met - archive logs will not be expired", t.Prefix)
		return nil
	case expirepkg.ArchiveNotSet:
		e.Log.Infof("%soption '%s' is not set - archive logs will not be expired", t.Prefix, rk(config.RepoRetentionArchive))
		return nil
	}
	return expirepkg.ApplyWAL(ctx, t, bi, plan)
}
