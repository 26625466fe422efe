package command

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/pgbr-dev/pgbr/internal/config"
	"github.com/pgbr-dev/pgbr/internal/errs"
	expirepkg "github.com/pgbr-dev/pgbr/internal/expire"
	"github.com/pgbr-dev/pgbr/internal/pg"
	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/storage"
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

type expirer struct {
	e      *Env
	r      *repoT
	stanza string
	bi     *repo.BackupInfo
	dry    bool
	prefix string
}

func (x *expirer) logf(format string, a ...any) {
	x.e.Log.Infof(x.prefix+format, a...)
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
	x := &expirer{e: e, r: r, stanza: stanza, bi: bi, dry: e.Cfg.Bool(config.DryRun)}
	if x.dry {
		x.prefix = "[DRY-RUN] "
	}
	x.prefix += r.Name() + ": "
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
		x.logf("%s %s", ex.Reason, strings.Join(ex.Labels, ", "))
	}
	expired := plan.Labels()

	// backup.info first, then the directories.
	if len(expired) > 0 && !x.dry {
		for l := range expired {
			bi.Remove(l)
		}
		if err := repo.SaveBackupInfo(ctx, r.St, stanza, bi, r.CipherPass); err != nil {
			return err
		}
		if len(bi.Current) > 0 {
			r.St.Symlink(ctx, bi.Current[len(bi.Current)-1].Label, repo.Layout{Stanza: stanza}.Latest())
		}
	}
	if err := x.removeBackupDirs(expired); err != nil {
		return err
	}
	return x.archiveRetention(plan)
}

// removeBackupDirs deletes every label directory that is not a current
// backup, newest first.
func (x *expirer) removeBackupDirs(expired map[string]bool) error {
	ctx := x.e.Ctx
	list, err := x.r.St.List(ctx, repo.Layout{Stanza: x.stanza}.BackupDir())
	if err != nil {
		return errs.Wrap(errs.PathOpen, err, "unable to list backups")
	}
	var labels []string
	for _, en := range list {
		if en.Type == storage.TypePath && repo.IsLabel(en.Name) {
			if _, ok := x.bi.Find(en.Name); !ok || (x.dry && expired[en.Name]) {
				labels = append(labels, en.Name)
			}
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(labels)))
	adhoc := x.e.Cfg.String(config.Set) != ""
	for i, l := range labels {
		if adhoc && i == 0 && !expired[l] {
			// An ad-hoc expire keeps the newest resumable backup.
			continue
		}
		x.logf("remove expired backup %s", l)
		if !x.dry {
			// The manifests go first: a removal that fails half way must not
			// leave a backup.manifest that the next command's backup.info
			// reconstruction would bring back with files missing.
			dir := repo.Layout{Stanza: x.stanza}.LabelDir(l)
			for _, m := range []string{repo.ManifestName, repo.ManifestName + repo.CopyExt} {
				if err := x.r.St.Remove(ctx, dir+"/"+m); err != nil {
					return errs.Wrap(errs.PathRemove, err, "unable to remove expired backup %s", l)
				}
			}
			if err := x.r.St.RemoveAll(ctx, dir); err != nil {
				return errs.Wrap(errs.PathRemove, err, "unable to remove expired backup %s", l)
			}
		}
	}
	return nil
}

// archiveRetention removes the WAL the plan does not keep.
func (x *expirer) archiveRetention(plan *expirepkg.Result) error {
	ctx := x.e.Ctx
	rk := func(o config.Opt) config.Opt { return o.Index(x.r.Key) }
	switch plan.ArchiveSkip {
	case expirepkg.ArchiveTimeNotMet:
		x.logf("time-based archive retention not met - archive logs will not be expired")
		return nil
	case expirepkg.ArchiveNotSet:
		x.logf("option '%s' is not set - archive logs will not be expired", rk(config.RepoRetentionArchive))
		return nil
	}
	ai, err := repo.LoadArchiveInfo(ctx, x.r.St, x.stanza, x.r.CipherPass)
	if err != nil {
		return err
	}
	if err := plan.PlanWAL(x.bi, ai); err != nil {
		if errors.Is(err, expirepkg.ErrHistoryMismatch) {
			return errs.New(errs.Format, "%s", err.Error())
		}
		return err
	}
	for _, a := range plan.Archive {
		dir := repo.Layout{Stanza: x.stanza}.ArchiveIDDir(a.ID)
		if a.RemoveAll {
			x.logf("remove archive path %s", x.r.St.Full(dir))
			if !x.dry {
				if err := x.r.St.RemoveAll(ctx, dir); err != nil {
					return errs.Wrap(errs.PathRemove, err, "unable to remove archive path")
				}
			}
			continue
		}
		if a.KeepAll {
			continue
		}
		for _, rg := range a.Ranges {
			x.logf("%s archive retention on backup %s, start = %s, stop = %s", a.ID, rg.Label, rg.Start, rg.Stop)
		}
		x.logf("%s archive retention on backup %s, start = %s", a.ID, a.FromLabel, a.From)
		if err := x.removeWAL(dir, a.ID, a.Needed, a.From); err != nil {
			return err
		}
	}
	return nil
}

// removeWAL deletes unneeded segments (whole 16-hex directories when
// nothing in them is needed), .backup files of removed segments and
// history files of timelines older than the retention start.
func (x *expirer) removeWAL(dir, id string, needed func(string) bool, keepFrom string) error {
	ctx := x.e.Ctx
	entries, err := x.r.St.List(ctx, dir)
	if err != nil {
		return errs.Wrap(errs.PathOpen, err, "unable to list '%s'", x.r.St.Full(dir))
	}
	var removed []string
	flush := func() {
		if len(removed) == 0 {
			return
		}
		x.logf("%s remove archive, start = %s, stop = %s", id, removed[0], removed[len(removed)-1])
		removed = nil
	}
	keepTL, _ := strconv.ParseUint(keepFrom[:8], 16, 32)
	for _, en := range entries {
		if en.Type == storage.TypeFile && pg.IsHistoryFile(en.Name) {
			if tl, err := strconv.ParseUint(en.Name[:8], 16, 32); err == nil && tl < keepTL {
				if !x.dry {
					x.r.St.Remove(ctx, dir+"/"+en.Name)
				}
			}
			continue
		}
		if en.Type != storage.TypePath || len(en.Name) != 16 || !isUpperHex(en.Name) {
			continue
		}
		sub := dir + "/" + en.Name
		files, err := x.r.St.List(ctx, sub)
		if err != nil {
			return errs.Wrap(errs.PathOpen, err, "unable to list '%s'", x.r.St.Full(sub))
		}
		var del []string
		keepAny := false
		for _, f := range files {
			if len(f.Name) < 24 || !isUpperHex(f.Name[:24]) {
				continue
			}
			seg := f.Name[:24]
			if needed(seg) {
				keepAny = true
				flush()
				continue
			}
			del = append(del, f.Name)
			if len(removed) == 0 || removed[len(removed)-1] != seg {
				removed = append(removed, seg)
			}
		}
		if x.dry {
			continue
		}
		if !keepAny {
			if err := x.r.St.RemoveAll(ctx, sub); err != nil {
				return errs.Wrap(errs.PathRemove, err, "unable to remove '%s'", x.r.St.Full(sub))
			}
			continue
		}
		for _, f := range del {
			if err := x.r.St.Remove(ctx, sub+"/"+f); err != nil {
				return errs.Wrap(errs.FileRemove, err, "unable to remove '%s'", x.r.St.Full(sub+"/"+f))
			}
		}
	}
	flush()
	return nil
}
