package command

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pgbr-dev/pgbr/internal/config"
	"github.com/pgbr-dev/pgbr/internal/errs"
)

// `pgbr exporter` serves Prometheus metrics at /metrics. The pgbackrest_*
// metrics have the names, labels and values of pgbackrest_exporter
// (github.com/woblerr/pgbackrest_exporter, default flags, except that
// pgbackrest_wal_archive_status carries wal_min/wal_max as with its
// --backrest.verbose-wal), computed at each scrape from the same JSON that
// `pgbr info --output=json` prints (pgBackRest 2.45's). The pgbr_* metrics
// come from the state files each command run leaves under lock-path
// (runstate.go).

// The parts of info's JSON the metrics use.
type exInfoStanza struct {
	Name   string `json:"name"`
	Status struct {
		Code int `json:"code"`
		Lock struct {
			Backup  exLock `json:"backup"`
			Restore exLock `json:"restore"`
		} `json:"lock"`
	} `json:"status"`
	Repo []struct {
		Cipher string `json:"cipher"`
		Key    int    `json:"key"`
		Status struct {
			Code int `json:"code"`
		} `json:"status"`
	} `json:"repo"`
	DB []struct {
		ID      int    `json:"id"`
		RepoKey int    `json:"repo-key"`
		Version string `json:"version"`
	} `json:"db"`
	Archive []struct {
		Database exDBRef `json:"database"`
		Min      string  `json:"min"`
		Max      string  `json:"max"`
	} `json:"archive"`
	Backup []exInfoBackup `json:"backup"`
}

type exLock struct {
	Held         bool   `json:"held"`
	SizeTotal    *int64 `json:"size"`
	SizeComplete *int64 `json:"size-cplt"`
}

type exDBRef struct {
	ID      int `json:"id"`
	RepoKey int `json:"repo-key"`
}

type exInfoBackup struct {
	Label      string            `json:"label"`
	Type       string            `json:"type"`
	Prior      string            `json:"prior"`
	Reference  []string          `json:"reference"`
	Annotation map[string]string `json:"annotation"`
	Error      *bool             `json:"error"`
	Backrest   struct {
		Version string `json:"version"`
	} `json:"backrest"`
	Database  exDBRef `json:"database"`
	Timestamp struct {
		Start int64 `json:"start"`
		Stop  int64 `json:"stop"`
	} `json:"timestamp"`
	Lsn struct {
		Start string `json:"start"`
		Stop  string `json:"stop"`
	} `json:"lsn"`
	Archive struct {
		Start string `json:"start"`
		Stop  string `json:"stop"`
	} `json:"archive"`
	Info struct {
		Size       int64 `json:"size"`
		Delta      int64 `json:"delta"`
		Repository struct {
			Size     *int64 `json:"size"`
			Delta    int64  `json:"delta"`
			SizeMap  *int64 `json:"size-map"`
			DeltaMap *int64 `json:"delta-map"`
		} `json:"repository"`
	} `json:"info"`
}

func (b *exInfoBackup) blockIncr() string {
	if b.Info.Repository.SizeMap != nil && b.Info.Repository.DeltaMap != nil {
		return "y"
	}
	return "n"
}

func exportPtr(v *int64) float64 {
	if v == nil {
		return 0
	}
	return float64(*v)
}

func exportBool(v bool) float64 {
	if v {
		return 1
	}
	return 0
}

func exporter(e *Env) error {
	addr := net.JoinHostPort(e.Cfg.String(config.ExporterHost), strconv.FormatInt(e.Cfg.Int(config.ExporterPort), 10))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return errs.Wrap(errs.FileOpen, err, "unable to listen on '%s'", addr)
	}
	// Scrapes read the configuration: info renders JSON.
	if err := e.Cfg.Set(config.Output, "json"); err != nil {
		ln.Close()
		return err
	}
	x := &metricsExporter{e: e}
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", x.serve)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte("<html><head><title>pgbr exporter</title></head><body><h1>pgbr exporter</h1><p><a href=\"/metrics\">Metrics</a></p></body></html>\n"))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	e.Log.Infof("exporter listening on http://%s/metrics", ln.Addr().String())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case <-e.Ctx.Done():
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
		return nil
	case err := <-done:
		return errs.Wrap(errs.FileOpen, err, "exporter stopped serving on '%s'", addr)
	}
}

type metricsExporter struct {
	e  *Env
	mu sync.Mutex // one scrape at a time: they share the configuration and the repo drivers
}

func (x *metricsExporter) serve(w http.ResponseWriter, r *http.Request) {
	x.mu.Lock()
	g := x.collect(time.Now())
	x.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	g.writeText(w)
}

// collect builds the metrics of one scrape.
func (x *metricsExporter) collect(now time.Time) *gauges {
	e := x.e
	g := newGauges()

	g.set("pgbackrest_exporter_build_info", "Information about pgBackRest exporter (pgbr).",
		[]string{"branch", "goarch", "goos", "goversion", "revision", "tags", "version"}, 1,
		"", goarch(), goos(), goversion(), "", "", Version)
	if v, err := strconv.ParseFloat(BackrestVersion, 64); err == nil {
		g.set("pgbackrest_version_info", "Information about pgBackRest version.", nil, v)
	}

	statusStanza := e.Cfg.String(config.Stanza)
	if statusStanza == "" {
		statusStanza = "all-stanzas"
	}
	stanzas, err := x.info()
	if err != nil {
		e.Log.Warnf("exporter: unable to read the repository: %s", err.Error())
	}
	g.set("pgbackrest_exporter_status", "pgBackRest exporter get data status.", []string{"stanza"},
		exportBool(err == nil), statusStanza)
	for i := range stanzas {
		exportStanza(g, &stanzas[i], now)
	}
	x.exportRunStates(g)
	return g
}

// info renders pgbr info --output=json (every stanza, or --stanza) and
// parses it.
func (x *metricsExporter) info() ([]exInfoStanza, error) {
	out, err := infoRender(x.e)
	if err != nil {
		return nil, err
	}
	var st []exInfoStanza
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return nil, errs.Wrap(errs.JSONFormat, err, "unable to parse info output")
	}
	return st, nil
}

const exLayout = "2006-01-02 15:04:05"

var (
	lblBackup     = []string{"backup_name", "backup_type", "block_incr", "database_id", "repo_key", "stanza"}
	lblLast       = []string{"backup_type", "block_incr", "stanza"}
	lblLastRef    = []string{"ref_backup", "backup_type", "block_incr", "stanza"}
	lblBackupInfo = []string{"backrest_ver", "backup_name", "backup_type", "block_incr", "database_id", "lsn_start",
		"lsn_stop", "pg_version", "prior", "repo_key", "stanza", "wal_start", "wal_stop"}
	lblDuration = []string{"backup_name", "backup_type", "block_incr", "database_id", "repo_key", "stanza",
		"start_time", "stop_time"}
)

func exportStanza(g *gauges, s *exInfoStanza, now time.Time) {
	st := []string{"stanza"}
	g.set("pgbackrest_stanza_status", "Current stanza status.", st, float64(s.Status.Code), s.Name)
	bl, rl := &s.Status.Lock.Backup, &s.Status.Lock.Restore
	g.set("pgbackrest_stanza_backup_lock_status", "Current stanza backup lock status.", st, exportBool(bl.Held), s.Name)
	g.set("pgbackrest_stanza_backup_total_bytes", "Total size for backup in progress.", st, exportPtr(bl.SizeTotal), s.Name)
	g.set("pgbackrest_stanza_backup_complete_bytes", "Completed size for backup in progress.", st, exportPtr(bl.SizeComplete), s.Name)
	g.set("pgbackrest_stanza_restore_lock_status", "Current stanza restore lock status.", st, exportBool(rl.Held), s.Name)
	g.set("pgbackrest_stanza_restore_total_bytes", "Total size for restore in progress.", st, exportPtr(rl.SizeTotal), s.Name)
	g.set("pgbackrest_stanza_restore_complete_bytes", "Completed size for restore in progress.", st, exportPtr(rl.SizeComplete), s.Name)

	if len(s.Repo) == 0 {
		g.set("pgbackrest_repo_status", "Current repository status.", []string{"cipher", "repo_key", "stanza"}, 0, "none", "0", s.Name)
	}
	for _, r := range s.Repo {
		g.set("pgbackrest_repo_status", "Current repository status.", []string{"cipher", "repo_key", "stanza"},
			float64(r.Status.Code), r.Cipher, strconv.Itoa(r.Key), s.Name)
	}

	pgVersion := func(id, repoKey int) string {
		for _, d := range s.DB {
			if d.ID == id && d.RepoKey == repoKey {
				return d.Version
			}
		}
		return ""
	}
	for _, a := range s.Archive {
		v := 0.0
		if a.Min != "" && a.Max != "" {
			v = 1
		}
		g.set("pgbackrest_wal_archive_status", "Current WAL archive status.",
			[]string{"database_id", "pg_version", "repo_key", "stanza", "wal_max", "wal_min"}, v,
			strconv.Itoa(a.Database.ID), pgVersion(a.Database.ID, a.Database.RepoKey), strconv.Itoa(a.Database.RepoKey),
			s.Name, a.Max, a.Min)
	}

	// Per backup, and the last full/diff/incr (a full backup also counts as
	// the last diff and incr when newer, a diff as the last incr).
	type last struct {
		set bool
		b   *exInfoBackup
	}
	lasts := map[string]*last{"full": {}, "diff": {}, "incr": {}}
	consider := func(kind string, b *exInfoBackup) {
		l := lasts[kind]
		// Two backups can stop in the same second: the later label wins.
		if !l.set || b.Timestamp.Stop > l.b.Timestamp.Stop || b.Timestamp.Stop == l.b.Timestamp.Stop && b.Label > l.b.Label {
			l.set, l.b = true, b
		}
	}
	for i := range s.Backup {
		b := &s.Backup[i]
		bi := b.blockIncr()
		id, rk := strconv.Itoa(b.Database.ID), strconv.Itoa(b.Database.RepoKey)
		lv := []string{b.Label, b.Type, bi, id, rk, s.Name}
		dash := func(v string) string {
			if v == "" {
				return "-"
			}
			return v
		}
		g.set("pgbackrest_backup_info", "Backup info.", lblBackupInfo, 1,
			b.Backrest.Version, b.Label, b.Type, bi, id, dash(b.Lsn.Start), dash(b.Lsn.Stop),
			pgVersion(b.Database.ID, b.Database.RepoKey), b.Prior, rk, s.Name, b.Archive.Start, b.Archive.Stop)
		g.set("pgbackrest_backup_duration_seconds", "Backup duration.", lblDuration,
			float64(b.Timestamp.Stop-b.Timestamp.Start), b.Label, b.Type, bi, id, rk, s.Name,
			time.Unix(b.Timestamp.Start, 0).Format(exLayout), time.Unix(b.Timestamp.Stop, 0).Format(exLayout))
		g.set("pgbackrest_backup_size_bytes", "Full uncompressed size of the database.", lblBackup, float64(b.Info.Size), lv...)
		g.set("pgbackrest_backup_delta_bytes", "Amount of data in the database to actually backup.", lblBackup, float64(b.Info.Delta), lv...)
		g.set("pgbackrest_backup_repo_size_bytes", "Full compressed files size to restore the database from backup.", lblBackup, exportPtr(b.Info.Repository.Size), lv...)
		g.set("pgbackrest_backup_repo_delta_bytes", "Compressed files size in backup.", lblBackup, float64(b.Info.Repository.Delta), lv...)
		g.set("pgbackrest_backup_repo_size_map_bytes", "Size of block incremental map.", lblBackup, exportPtr(b.Info.Repository.SizeMap), lv...)
		g.set("pgbackrest_backup_repo_delta_map_bytes", "Size of block incremental delta map.", lblBackup, exportPtr(b.Info.Repository.DeltaMap), lv...)
		g.set("pgbackrest_backup_error_status", "Backup error status.", lblBackup, exportBool(b.Error != nil && *b.Error), lv...)
		g.set("pgbackrest_backup_annotations", "Number of annotations in backup.", lblBackup, float64(len(b.Annotation)), lv...)
		switch b.Type {
		case "full":
			consider("full", b)
			consider("diff", b)
			consider("incr", b)
		case "diff":
			consider("diff", b)
			consider("incr", b)
		case "incr":
			consider("incr", b)
		}
	}
	if !lasts["full"].set {
		return
	}
	for _, kind := range []string{"full", "diff", "incr"} {
		l := lasts[kind]
		if !l.set {
			continue
		}
		b := l.b
		lv := []string{kind, b.blockIncr(), s.Name}
		g.set("pgbackrest_backup_since_last_completion_seconds", "Seconds since the last completed full, differential or incremental backup.",
			lblLast, float64(now.Unix()-b.Timestamp.Stop), lv...)
		g.set("pgbackrest_backup_last_duration_seconds", "Backup duration for the last full, differential or incremental backup.",
			lblLast, float64(b.Timestamp.Stop-b.Timestamp.Start), lv...)
		g.set("pgbackrest_backup_last_size_bytes", "Full uncompressed size of the database in the last full, differential or incremental backup.",
			lblLast, float64(b.Info.Size), lv...)
		g.set("pgbackrest_backup_last_delta_bytes", "Amount of data in the database to actually backup in the last full, differential or incremental backup.",
			lblLast, float64(b.Info.Delta), lv...)
		g.set("pgbackrest_backup_last_repo_size_bytes", "Full compressed files size to restore the database from the last full, differential or incremental backup.",
			lblLast, exportPtr(b.Info.Repository.Size), lv...)
		g.set("pgbackrest_backup_last_repo_delta_bytes", "Compressed files size in the last full, differential or incremental backup.",
			lblLast, float64(b.Info.Repository.Delta), lv...)
		g.set("pgbackrest_backup_last_repo_size_map_bytes", "Size of block incremental map in the last full, differential or incremental backup.",
			lblLast, exportPtr(b.Info.Repository.SizeMap), lv...)
		g.set("pgbackrest_backup_last_repo_delta_map_bytes", "Size of block incremental delta map in the last full, differential or incremental backup.",
			lblLast, exportPtr(b.Info.Repository.DeltaMap), lv...)
		g.set("pgbackrest_backup_last_error_status", "Error status in the last full, differential or incremental backup.",
			lblLast, exportBool(b.Error != nil && *b.Error), lv...)
		g.set("pgbackrest_backup_last_annotations", "Number of annotations in the last full, differential or incremental backup.",
			lblLast, float64(len(b.Annotation)), lv...)
		refs := map[string]int{"full": 0, "diff": 0, "incr": 0}
		for _, r := range b.Reference {
			switch {
			case strings.HasSuffix(r, "F"):
				refs["full"]++
			case strings.HasSuffix(r, "D"):
				refs["diff"]++
			case strings.HasSuffix(r, "I"):
				refs["incr"]++
			}
		}
		for _, rt := range []string{"full", "diff", "incr"} {
			g.set("pgbackrest_backup_last_references", "Number of references to other backups (backup reference list) in the last full, differential or incremental backup.",
				lblLastRef, float64(refs[rt]), append([]string{rt}, lv...)...)
		}
	}
}

// exportRunStates exposes the state files of the last run of each command.
func (x *metricsExporter) exportRunStates(g *gauges) {
	e := x.e
	lockPath := e.Cfg.String(config.LockPath)
	paths, _ := filepath.Glob(filepath.Join(lockPath, "*.metrics.json"))
	only := e.Cfg.String(config.Stanza)
	lc := []string{"stanza", "command"}
	lcred := []string{"stanza", "command", "repo", "key_type", "role"}
	for _, p := range paths {
		st, err := ReadRunState(p)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				e.Log.Debugf("exporter: skipping state file '%s': %v", p, err)
			}
			continue
		}
		if only != "" && st.Stanza != only {
			continue
		}
		v := []string{st.Stanza, st.Command}
		g.set("pgbr_command_last_run_timestamp_seconds", "End of the last run of the command (unix time).", lc, float64(st.End), v...)
		g.set("pgbr_command_last_start_timestamp_seconds", "Start of the last run of the command (unix time).", lc, float64(st.Start), v...)
		g.set("pgbr_command_last_duration_seconds", "Duration of the last run of the command.", lc, st.DurationSeconds, v...)
		g.set("pgbr_command_last_result", "Exit code of the last run of the command (0: success, else pgBackRest's error code).", lc, float64(st.Result), v...)
		g.set("pgbr_command_last_success", "1 when the last run of the command succeeded.", lc, exportBool(st.Result == 0), v...)
		g.set("pgbr_command_last_repo_read_bytes", "Repository bytes read by the last run of the command.", lc, float64(st.BytesRead), v...)
		g.set("pgbr_command_last_repo_written_bytes", "Repository bytes written by the last run of the command.", lc, float64(st.BytesWritten), v...)
		g.set("pgbr_command_last_repo_files_read", "Repository files read by the last run of the command.", lc, float64(st.FilesRead), v...)
		g.set("pgbr_command_last_repo_files_written", "Repository files written by the last run of the command.", lc, float64(st.FilesWritten), v...)
		for _, c := range st.Credentials {
			cv := []string{st.Stanza, st.Command, c.Repo, c.KeyType, c.Role}
			g.set("pgbr_s3_credential_refreshes", "S3 credential refreshes during the last run of the command.", lcred, float64(c.Refreshes), cv...)
			g.set("pgbr_s3_credential_failures", "Failed S3 credential fetches during the last run of the command.", lcred, float64(c.Failures), cv...)
			g.set("pgbr_s3_credential_invalidations", "S3 credentials dropped as expired or revoked during the last run of the command.", lcred, float64(c.Invalidations), cv...)
			g.set("pgbr_s3_credential_expiry_timestamp_seconds", "Expiry of the newest S3 credentials of the last run of the command (unix time, 0: none or never).", lcred, float64(c.LastExpiry), cv...)
		}
	}
}

func goarch() string    { return runtime.GOARCH }
func goos() string      { return runtime.GOOS }
func goversion() string { return runtime.Version() }
