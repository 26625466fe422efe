package command

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/pgbr-dev/pgbr/internal/config"
	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/repo"
	restoreeng "github.com/pgbr-dev/pgbr/internal/restore"
)

// restore reads the options, selects the backup set and loads its
// manifest; the restore itself is internal/restore.
func restore(e *Env) error {
	ctx := e.Ctx
	stanza, err := e.stanza()
	if err != nil {
		return err
	}
	pgData, err := e.pgPath()
	if err != nil {
		return err
	}
	delta, force, err := restoreeng.Check(pgData, e.Cfg.Bool(config.Delta), e.Cfg.Bool(config.Force), e.Log)
	if err != nil {
		return err
	}

	// The archive spool (push acknowledgements, prefetched WAL) belongs to
	// whatever ran before: clear it, as pgBackRest does.
	if err := clearArchiveSpool(e, stanza); err != nil {
		return err
	}

	// Select the backup set.
	repos, err := e.repos()
	if err != nil {
		return err
	}
	set := e.Cfg.String(config.Set)
	var label string
	var r *repoT
	var bi *repo.BackupInfo
	var lastErr error
	for _, cand := range repos {
		b, err := repo.LoadBackupInfo(ctx, cand.St, stanza, cand.CipherPass)
		if err != nil {
			e.Log.Warnf("%s: [%s] %s", cand.Name(), errs.CodeOf(err).Name(), err.Error())
			continue
		}
		l, err := selectBackup(e, b, set)
		if err != nil {
			lastErr = err
			continue
		}
		if l != "" {
			r, bi, label = cand, b, l
			break
		}
	}
	if label == "" {
		if lastErr != nil {
			return lastErr
		}
		if set != "" && set != "latest" {
			return errs.New(errs.BackupSetInvalid, "backup set %s is not valid", set)
		}
		return errs.New(errs.BackupSetInvalid, "no backup set found to restore")
	}
	entry, _ := bi.Find(label)
	if entry.DbID != bi.DB.ID && (set == "" || set == "latest") {
		return errs.New(errs.BackupSetInvalid, "the latest backup set found '%s' is from a prior version of PostgreSQL", label)
	}
	e.Log.Infof("%s: restore backup set %s, recovery will start at %s", r.Name(), label,
		time.Unix(entry.TimestampStart, 0).Format("2006-01-02 15:04:05"))
	m, err := repo.LoadManifest(ctx, r.St, stanza, label, bi.CipherPass)
	if err != nil {
		return err
	}
	if err := m.CheckRestorable(); err != nil {
		return err
	}

	// Recovery settings.
	typ := e.Cfg.String(config.Type)
	if typ == "" {
		typ = "default"
	}
	if !m.Option.Online && !e.Cfg.IsSet(config.Type) {
		typ = "none"
	}
	_, err = restoreeng.Run(ctx, restoreeng.Options{
		Stanza: stanza, Storage: r.St, Manifest: m, PgData: pgData, Delta: delta, Force: force,
		TablespaceMap: e.Cfg.Hash(config.TablespaceMap), TablespaceMapAll: e.Cfg.String(config.TablespaceMapAll),
		LinkMap: e.Cfg.Hash(config.LinkMap), LinkAll: e.Cfg.Bool(config.LinkAll),
		DBInclude: e.Cfg.List(config.DBInclude), DBExclude: e.Cfg.List(config.DBExclude),
		Recovery: restoreeng.Recovery{Type: typ, Target: e.Cfg.String(config.Target), TargetAction: e.Cfg.String(config.TargetAction),
			TargetExcl: e.Cfg.Bool(config.TargetExclusive), TargetTimeline: e.Cfg.String(config.TargetTimeline),
			RestoreCommand: restoreCommand(e, stanza, pgData), ArchiveModeOff: e.Cfg.String(config.ArchiveMode) == "off",
			Options: e.Cfg.Hash(config.RecoveryOption)},
		Workers: e.processMax(), Root: os.Geteuid() == 0, Log: e.Log, Progress: e.progress, Pool: e.runPool, Now: e.Now,
		FileSync: fileSync, Syncfs: fsSync,
	})
	return err
}

// selectBackup picks the label to restore from one repo's backup.info.
func selectBackup(e *Env, b *repo.BackupInfo, set string) (string, error) {
	if len(b.Current) == 0 {
		return "", nil
	}
	if set != "" && set != "latest" {
		if _, ok := b.Find(set); ok {
			return set, nil
		}
		return "", nil
	}
	typ := e.Cfg.String(config.Type)
	target := e.Cfg.String(config.Target)
	if typ == "time" && target != "" {
		t, err := parseTargetTime(target)
		if err != nil {
			e.Log.Warnf("%s; the latest backup will be used", err.Error())
		} else {
			for i := len(b.Current) - 1; i >= 0; i-- {
				if b.Current[i].TimestampStop < t.Unix() && b.Current[i].DbID == b.DB.ID {
					return b.Current[i].Label, nil
				}
			}
			e.Log.Warnf("unable to find backup set with stop time less than '%s', latest backup set will be used", target)
		}
	}
	for i := len(b.Current) - 1; i >= 0; i-- {
		if b.Current[i].DbID == b.DB.ID {
			return b.Current[i].Label, nil
		}
	}
	return b.Current[len(b.Current)-1].Label, nil
}

// parseTargetTime understands the time formats PostgreSQL accepts for
// recovery_target_time that pgBackRest parses.
func parseTargetTime(s string) (time.Time, error) {
	layouts := []string{"2006-01-02 15:04:05.999999-07:00", "2006-01-02 15:04:05.999999-07", "2006-01-02 15:04:05.999999-0700",
		"2006-01-02 15:04:05.999999Z07:00", "2006-01-02 15:04:05.999999"}
	for _, l := range layouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	for _, l := range layouts[4:] {
		if t, err := time.ParseInLocation(l, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("automatic backup set selection cannot be performed with provided time '%s'", s)
}

// restoreCommand builds the restore_command PostgreSQL will run.
func restoreCommand(e *Env, stanza, pgData string) string {
	skip := map[string]bool{"exec-id": true, "job-retry": true, "job-retry-interval": true, "log-subprocess": true,
		"log-timestamp": true, "process-max": true, "cmd": true, "type": true, "target": true, "target-action": true,
		"target-exclusive": true, "target-timeline": true, "set": true, "delta": true, "force": true,
		"recovery-option": true, "tablespace-map": true, "tablespace-map-all": true, "link-map": true, "link-all": true,
		"db-include": true, "db-exclude": true, "archive-mode": true}
	var opts []string
	seen := map[string]bool{}
	for _, a := range e.Cfg.CommandLineArgs() {
		name := strings.TrimPrefix(a, "--")
		if i := strings.IndexByte(name, '='); i >= 0 {
			name = name[:i]
		}
		name = strings.TrimPrefix(strings.TrimPrefix(name, "no-"), "reset-")
		if skip[name] || strings.HasPrefix(name, "log-level-") {
			continue
		}
		seen[name] = true
		opts = append(opts, a)
	}
	if !seen["stanza"] {
		opts = append(opts, "--stanza="+stanza)
	}
	if !seen["pg1-path"] && !seen["pg-path"] {
		opts = append(opts, "--pg1-path="+pgData)
	}
	sort.Strings(opts)
	self := e.Self
	if self == "" {
		self = "pgbr"
	}
	return self + " " + strings.Join(opts, " ") + ` archive-get %f "%p"`
}
