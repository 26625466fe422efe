package command

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pgbr-dev/pgbr/internal/errs"
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

// dependents returns label plus every backup whose prior chain leads to it.
func dependents(bi *repo.BackupInfo, label string) []string {
	set := map[string]bool{label: true}
	for changed := true; changed; {
		changed = false
		for _, c := range bi.Current {
			if !set[c.Label] && c.Prior != "" && set[c.Prior] {
				set[c.Label] = true
				changed = true
			}
		}
	}
	var out []string
	for _, c := range bi.Current {
		if set[c.Label] {
			out = append(out, c.Label)
		}
	}
	return out
}

func expireRepo(e *Env, r *repoT, stanza string) error {
	ctx := e.Ctx
	bi, err := repo.LoadBackupInfo(ctx, r.St, stanza, r.CipherPass)
	if err != nil {
		return err
	}
	if changed, err := reconstructBackupInfo(e, r, stanza, bi); err != nil {
		return err
	} else if changed && !e.Cfg.Bool("dry-run") {
		if err := repo.SaveBackupInfo(ctx, r.St, stanza, bi, r.CipherPass); err != nil {
			return err
		}
	}
	x := &expirer{e: e, r: r, stanza: stanza, bi: bi, dry: e.Cfg.Bool("dry-run")}
	if x.dry {
		x.prefix = "[DRY-RUN] "
	}
	x.prefix += r.Name() + ": "
	expired := map[string]bool{}
	expireSet := func(labels []string, what string) {
		var fresh []string
		for _, l := range labels {
			if !expired[l] {
				expired[l] = true
				fresh = append(fresh, l)
			}
		}
		if len(fresh) > 0 {
			x.logf("%s %s", what, strings.Join(fresh, ", "))
		}
	}
	rk := func(name string) string { return e.ropt(r.Key, name) }

	if set := e.Cfg.String("set"); set != "" {
		entry, ok := bi.Find(set)
		if !ok {
			return errs.New(errs.BackupSetInvalid, "%sbackup '%s' does not exist", r.Name()+": ", set)
		}
		if entry.Type == repo.BackupTypeFull {
			fulls := 0
			for _, c := range bi.Current {
				if c.Type == repo.BackupTypeFull && c.DbID == entry.DbID {
					fulls++
				}
			}
			if fulls <= 1 && entry.DbID == bi.DB.ID {
				return errs.New(errs.BackupSetInvalid, "full backup %s cannot be expired until another full backup has been created on this repo", set)
			}
		}
		deps := dependents(bi, set)
		if bi.Current[len(bi.Current)-1].Label == deps[len(deps)-1] {
			e.Log.Warnf("%sexpiring latest backup %s - the ability to perform point-in-time-recovery (PITR) may be affected\nHINT: non-default settings for '%s'/'%s' (even in prior expires) can cause gaps in the WAL.",
				r.Name()+": ", deps[len(deps)-1], rk("retention-archive"), rk("retention-archive-type"))
		}
		if len(deps) == 1 {
			expireSet(deps, "expire adhoc backup")
		} else {
			expireSet(deps, "expire adhoc backup set")
		}
	} else {
		if e.Cfg.IsSet(rk("retention-full")) {
			keep := e.Cfg.Int(rk("retention-full"))
			var fulls []repo.BackupInfoEntry
			for _, c := range bi.Current {
				if c.Type == repo.BackupTypeFull {
					fulls = append(fulls, c)
				}
			}
			if e.Cfg.String(rk("retention-full-type")) == "time" {
				cutoff := e.Now().Add(-time.Duration(keep) * 24 * time.Hour).Unix()
				// Keep the newest full older than the cutoff and everything newer.
				keepFrom := -1
				for i := len(fulls) - 1; i >= 0; i-- {
					if fulls[i].TimestampStop < cutoff {
						keepFrom = i
						break
					}
				}
				for i := 0; i < keepFrom; i++ {
					expireSet(dependents(bi, fulls[i].Label), "expire time-based backup set")
				}
			} else if int64(len(fulls)) > keep {
				for _, f := range fulls[:int64(len(fulls))-keep] {
					expireSet(dependents(bi, f.Label), "expire full backup set")
				}
			}
		}
		if e.Cfg.IsSet(rk("retention-diff")) {
			keep := e.Cfg.Int(rk("retention-diff"))
			var diffs []repo.BackupInfoEntry
			for _, c := range bi.Current {
				if !expired[c.Label] && (c.Type == repo.BackupTypeFull || c.Type == repo.BackupTypeDiff) {
					diffs = append(diffs, c)
				}
			}
			if int64(len(diffs)) > keep {
				for _, d := range diffs[:int64(len(diffs))-keep] {
					if d.Type == repo.BackupTypeDiff {
						expireSet(dependents(bi, d.Label), "expire diff backup set")
					}
				}
			}
		}
	}

	// backup.info first, then the directories.
	if len(expired) > 0 && !x.dry {
		for l := range expired {
			bi.Remove(l)
		}
		if err := repo.SaveBackupInfo(ctx, r.St, stanza, bi, r.CipherPass); err != nil {
			return err
		}
		if len(bi.Current) > 0 {
			r.St.Symlink(ctx, bi.Current[len(bi.Current)-1].Label, "backup/"+stanza+"/latest")
		}
	}
	if err := x.removeBackupDirs(expired); err != nil {
		return err
	}
	return x.archiveRetention(expired)
}

// removeBackupDirs deletes every label directory that is not a current
// backup, newest first.
func (x *expirer) removeBackupDirs(expired map[string]bool) error {
	ctx := x.e.Ctx
	list, err := x.r.St.List(ctx, "backup/"+x.stanza)
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
	adhoc := x.e.Cfg.String("set") != ""
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
			dir := "backup/" + x.stanza + "/" + l
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

// archiveRetention removes WAL no kept backup needs.
func (x *expirer) archiveRetention(expired map[string]bool) error {
	e := x.e
	ctx := e.Ctx
	rk := func(name string) string { return e.ropt(x.r.Key, name) }
	typ := e.Cfg.String(rk("retention-archive-type"))
	if typ == "" {
		typ = repo.BackupTypeFull
	}
	var keep int64
	switch {
	case e.Cfg.IsSet(rk("retention-archive")):
		keep = e.Cfg.Int(rk("retention-archive"))
	case typ == repo.BackupTypeFull && e.Cfg.IsSet(rk("retention-full")) && e.Cfg.String(rk("retention-full-type")) != "time":
		keep = e.Cfg.Int(rk("retention-full"))
	case typ == repo.BackupTypeDiff && e.Cfg.IsSet(rk("retention-diff")):
		keep = e.Cfg.Int(rk("retention-diff"))
	default:
		if e.Cfg.IsSet(rk("retention-full")) && e.Cfg.String(rk("retention-full-type")) == "time" && typ == repo.BackupTypeFull {
			// time-based: WAL is kept from the oldest remaining full on (as
			// pgBackRest 2.45 does: checked against it on the same repository).
			cutoff := e.Now().Add(-time.Duration(e.Cfg.Int(rk("retention-full"))) * 24 * time.Hour).Unix()
			keep = 0
			met := false
			for _, c := range x.bi.Current {
				if c.Type == repo.BackupTypeFull {
					keep++
					met = met || c.TimestampStop < cutoff
				}
			}
			if !met {
				x.logf("time-based archive retention not met - archive logs will not be expired")
				return nil
			}
		} else {
			x.logf("option '%s' is not set - archive logs will not be expired", rk("retention-archive"))
			return nil
		}
	}
	ai, err := repo.LoadArchiveInfo(ctx, x.r.St, x.stanza, x.r.CipherPass)
	if err != nil {
		return err
	}
	if len(ai.History) != len(x.bi.History) {
		return errs.New(errs.Format, "archive expiration cannot continue - archive and backup history lists do not match")
	}
	for i := range ai.History {
		if ai.History[i].ID != x.bi.History[i].ID || ai.History[i].SystemID != x.bi.History[i].SystemID || ai.History[i].Version != x.bi.History[i].Version {
			return errs.New(errs.Format, "archive expiration cannot continue - archive and backup history lists do not match")
		}
	}
	for _, h := range ai.History {
		id := h.ArchiveID()
		dir := "archive/" + x.stanza + "/" + id
		var backups []repo.BackupInfoEntry
		for _, c := range x.bi.Current {
			if c.DbID == h.ID {
				backups = append(backups, c)
			}
		}
		if len(backups) == 0 {
			if h.ID != ai.DB.ID {
				x.logf("remove archive path %s", x.r.St.Full(dir))
				if !x.dry {
					if err := x.r.St.RemoveAll(ctx, dir); err != nil {
						return errs.Wrap(errs.PathRemove, err, "unable to remove archive path")
					}
				}
			}
			continue
		}
		// R: the oldest of the newest `keep` backups of the retention type.
		var ofType []repo.BackupInfoEntry
		for _, c := range backups {
			if typ == repo.BackupTypeIncr || c.Type == repo.BackupTypeFull || (typ == repo.BackupTypeDiff && c.Type == repo.BackupTypeDiff) {
				ofType = append(ofType, c)
			}
		}
		// Fewer backups of the type than retention-archive: keep all WAL.
		if int64(len(ofType)) < keep || len(ofType) == 0 || keep <= 0 {
			continue
		}
		ri := len(ofType) - int(keep)
		rb := ofType[ri]
		if rb.ArchiveStart == "" {
			continue
		}
		type rng struct{ start, stop string }
		var ranges []rng
		for _, c := range backups {
			if c.Label < rb.Label && c.ArchiveStart != "" {
				ranges = append(ranges, rng{c.ArchiveStart, c.ArchiveStop})
				x.logf("%s archive retention on backup %s, start = %s, stop = %s", id, c.Label, c.ArchiveStart, c.ArchiveStop)
			}
		}
		x.logf("%s archive retention on backup %s, start = %s", id, rb.Label, rb.ArchiveStart)
		keepFrom := rb.ArchiveStart
		// pgBackRest compares segment names as strings: everything from R's
		// start onward is kept (later timelines sort after), and the
		// consistency range of every older kept backup.
		needed := func(seg string) bool {
			if seg >= keepFrom {
				return true
			}
			for _, r := range ranges {
				if seg >= r.start && seg <= r.stop {
					return true
				}
			}
			return false
		}
		if err := x.removeWAL(dir, id, needed, keepFrom); err != nil {
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
