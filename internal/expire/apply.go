package expire

import (
	"context"
	"errors"
	"sort"
	"strconv"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/log"
	"github.com/pgbr-dev/pgbr/internal/pg"
	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/storage"
)

// Target is the repository a Plan is carried out on (the I/O side of
// expire: ApplyBackups, then ApplyWAL).
type Target struct {
	Storage    storage.Storage
	Layout     repo.Layout
	CipherPass string // of the repository
	// DryRun logs what would go and changes nothing.
	DryRun bool
	// Adhoc is an expire of one --set: the newest leftover (resumable)
	// backup directory stays.
	Adhoc bool
	Log   *log.Logger
	// Prefix starts every line logged ("[DRY-RUN] repo1: ").
	Prefix string
}

func (t *Target) logf(format string, a ...any) {
	t.Log.Infof(t.Prefix+format, a...)
}

// ApplyBackups removes the backups the plan expires: backup.info first
// (saved without them, latest pointed at the newest remaining backup),
// then every label directory that is not a current backup, newest first.
// bi is modified (unless DryRun).
func ApplyBackups(ctx context.Context, t *Target, bi *repo.BackupInfo, plan *Result) error {
	expired := plan.Labels()
	if len(expired) > 0 && !t.DryRun {
		for l := range expired {
			bi.Remove(l)
		}
		if err := repo.SaveBackupInfo(ctx, t.Storage, t.Layout.Stanza, bi, t.CipherPass); err != nil {
			return err
		}
		if len(bi.Current) > 0 {
			t.Storage.Symlink(ctx, bi.Current[len(bi.Current)-1].Label, t.Layout.Latest())
		}
	}
	return removeBackupDirs(ctx, t, bi, expired)
}

// removeBackupDirs deletes every label directory that is not a current
// backup, newest first.
func removeBackupDirs(ctx context.Context, t *Target, bi *repo.BackupInfo, expired map[string]bool) error {
	list, err := t.Storage.List(ctx, t.Layout.BackupDir())
	if err != nil {
		return errs.Wrap(errs.PathOpen, err, "unable to list backups")
	}
	var labels []string
	for _, en := range list {
		if en.Type == storage.TypePath && repo.IsLabel(en.Name) {
			if _, ok := bi.Find(en.Name); !ok || (t.DryRun && expired[en.Name]) {
				labels = append(labels, en.Name)
			}
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(labels)))
	for i, l := range labels {
		if t.Adhoc && i == 0 && !expired[l] {
			// An ad-hoc expire keeps the newest resumable backup.
			continue
		}
		t.logf("remove expired backup %s", l)
		if !t.DryRun {
			// The manifests go first: a removal that fails half way must not
			// leave a backup.manifest that the next command's backup.info
			// reconstruction would bring back with files missing.
			dir := t.Layout.LabelDir(l)
			for _, m := range []string{repo.ManifestName, repo.ManifestName + repo.CopyExt} {
				if err := t.Storage.Remove(ctx, dir+"/"+m); err != nil {
					return errs.Wrap(errs.PathRemove, err, "unable to remove expired backup %s", l)
				}
			}
			if err := t.Storage.RemoveAll(ctx, dir); err != nil {
				return errs.Wrap(errs.PathRemove, err, "unable to remove expired backup %s", l)
			}
		}
	}
	return nil
}

// ApplyWAL removes the WAL the plan does not keep: it loads archive.info,
// completes the plan (PlanWAL) against bi (as ApplyBackups left it) and
// deletes per archive id. A plan whose ArchiveSkip is not ArchiveExpire
// removes nothing (the caller logs why).
func ApplyWAL(ctx context.Context, t *Target, bi *repo.BackupInfo, plan *Result) error {
	if plan.ArchiveSkip != ArchiveExpire {
		return nil
	}
	ai, err := repo.LoadArchiveInfo(ctx, t.Storage, t.Layout.Stanza, t.CipherPass)
	if err != nil {
		return err
	}
	if err := plan.PlanWAL(bi, ai); err != nil {
		if errors.Is(err, ErrHistoryMismatch) {
			return errs.New(errs.Format, "%s", err.Error())
		}
		return err
	}
	for _, a := range plan.Archive {
		dir := t.Layout.ArchiveIDDir(a.ID)
		if a.RemoveAll {
			t.logf("remove archive path %s", t.Storage.Full(dir))
			if !t.DryRun {
				if err := t.Storage.RemoveAll(ctx, dir); err != nil {
					return errs.Wrap(errs.PathRemove, err, "unable to remove archive path")
				}
			}
			continue
		}
		if a.KeepAll {
			continue
		}
		for _, rg := range a.Ranges {
			t.logf("%s archive retention on backup %s, start = %s, stop = %s", a.ID, rg.Label, rg.Start, rg.Stop)
		}
		t.logf("%s archive retention on backup %s, start = %s", a.ID, a.FromLabel, a.From)
		if err := removeWAL(ctx, t, dir, a.ID, a.Needed, a.From); err != nil {
			return err
		}
	}
	return nil
}

// removeWAL deletes unneeded segments (whole 16-hex directories when
// nothing in them is needed), .backup files of removed segments and
// history files of timelines older than the retention start.
func removeWAL(ctx context.Context, t *Target, dir, id string, needed func(string) bool, keepFrom string) error {
	st := t.Storage
	entries, err := st.List(ctx, dir)
	if err != nil {
		return errs.Wrap(errs.PathOpen, err, "unable to list '%s'", st.Full(dir))
	}
	var removed []string
	flush := func() {
		if len(removed) == 0 {
			return
		}
		t.logf("%s remove archive, start = %s, stop = %s", id, removed[0], removed[len(removed)-1])
		removed = nil
	}
	keepTL, _ := strconv.ParseUint(keepFrom[:8], 16, 32)
	for _, en := range entries {
		if en.Type == storage.TypeFile && pg.IsHistoryFile(en.Name) {
			if tl, err := strconv.ParseUint(en.Name[:8], 16, 32); err == nil && tl < keepTL {
				if !t.DryRun {
					st.Remove(ctx, dir+"/"+en.Name)
				}
			}
			continue
		}
		if en.Type != storage.TypePath || len(en.Name) != 16 || !isUpperHex(en.Name) {
			continue
		}
		sub := dir + "/" + en.Name
		files, err := st.List(ctx, sub)
		if err != nil {
			return errs.Wrap(errs.PathOpen, err, "unable to list '%s'", st.Full(sub))
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
		if t.DryRun {
			continue
		}
		if !keepAny {
			if err := st.RemoveAll(ctx, sub); err != nil {
				return errs.Wrap(errs.PathRemove, err, "unable to remove '%s'", st.Full(sub))
			}
			continue
		}
		for _, f := range del {
			if err := st.Remove(ctx, sub+"/"+f); err != nil {
				return errs.Wrap(errs.FileRemove, err, "unable to remove '%s'", st.Full(sub+"/"+f))
			}
		}
	}
	flush()
	return nil
}

func isUpperHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}
