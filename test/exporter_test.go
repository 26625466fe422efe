package test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// startExporter runs `pgbr exporter` on a free loopback port and returns
// its metrics URL; it is stopped (SIGTERM) at the end of the test.
func startExporter(t *testing.T, e *testenv.Env, args ...string) string {
	t.Helper()
	c := exec.Command(e.Pgbr, append([]string{"--config=" + e.Conf, "--exporter-port=0", "--log-level-console=info", "exporter"}, args...)...)
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.Stderr = os.Stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	t.Cleanup(func() {
		c.Process.Signal(syscall.SIGTERM)
		<-exited
	})
	urlCh := make(chan string, 1)
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(out)
		re := regexp.MustCompile(`exporter listening on (http://\S+/metrics)`)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				urlCh <- m[1]
			}
		}
		close(urlCh)
		c.Wait()
	}()
	u, ok := <-urlCh
	if !ok {
		t.Fatal("pgbr exporter exited without listening")
	}
	return u
}

// scrape fetches and parses the metrics with the Prometheus text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("scrape: %s\n%s", resp.Status, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse metrics: %v\n%s", err, body)
	}
	return fams
}

// query is an instant-vector selector with equality matchers
// (name{k="v",...}); it returns the matching series' label sets and values.
func query(fams map[string]*dto.MetricFamily, name string, match map[string]string) ([]map[string]string, []float64) {
	var lbls []map[string]string
	var vals []float64
	f := fams[name]
	if f == nil {
		return nil, nil
	}
next:
	for _, m := range f.Metric {
		l := map[string]string{}
		for _, p := range m.Label {
			l[p.GetName()] = p.GetValue()
		}
		for k, v := range match {
			if l[k] != v {
				continue next
			}
		}
		lbls = append(lbls, l)
		vals = append(vals, m.GetGauge().GetValue())
	}
	return lbls, vals
}

// one requires exactly one series and returns its value.
func one(t *testing.T, fams map[string]*dto.MetricFamily, name string, match map[string]string) float64 {
	t.Helper()
	_, v := query(fams, name, match)
	if len(v) != 1 {
		t.Fatalf("%s%v: %d series, want 1", name, match, len(v))
	}
	return v[0]
}

type infoJSONBackup struct {
	Label     string   `json:"label"`
	Type      string   `json:"type"`
	Prior     string   `json:"prior"`
	Reference []string `json:"reference"`
	Timestamp struct {
		Start, Stop int64
	} `json:"timestamp"`
	Archive struct {
		Start, Stop string
	} `json:"archive"`
	Lsn struct {
		Start, Stop string
	} `json:"lsn"`
	Info struct {
		Size       int64 `json:"size"`
		Delta      int64 `json:"delta"`
		Repository struct {
			Size  int64 `json:"size"`
			Delta int64 `json:"delta"`
		} `json:"repository"`
	} `json:"info"`
}

type infoJSONStanza struct {
	Name    string `json:"name"`
	Archive []struct {
		Min, Max string
	} `json:"archive"`
	Backup []infoJSONBackup `json:"backup"`
}

// TestExporterMatchesPgBackRestInfo: dashboard queries written for
// pgbackrest_exporter return on pgbr's exporter the values computed from
// pgBackRest 2.45's `info --output=json` of the same repository, and the
// pgbr_* metrics report each command's last run.
func TestExporterMatchesPgBackRestInfo(t *testing.T) {
	t.Parallel()
	testenv.RequirePgBackRest(t)
	e := testenv.NewEnv(t, testenv.EnvOptions{Global: []string{"compress-type=lz4"}})
	e.MustRun("stanza-create")
	e.Cluster.Exec("postgres", "create table t(id int, v text); insert into t select g, md5(g::text) from generate_series(1,3000) g")
	e.MustPgBackRest("backup", "--type=full", "--annotation=by=pgbackrest")
	e.Cluster.Exec("postgres", "insert into t select g, md5(g::text) from generate_series(1,500) g")
	e.MustRun("backup", "--type=incr", "--annotation=keep=1", "--annotation=drop=2")
	// A failing run: check with the cluster down.
	e.Cluster.Stop()
	_, checkCode := e.Run("check")
	if checkCode == 0 {
		t.Fatal("check succeeded with the cluster stopped")
	}

	out, _, code := runSplit(t, e, "pgbackrest", false, "info", "--output=json")
	var info []infoJSONStanza
	if err := json.Unmarshal([]byte(out), &info); code != 0 || err != nil || len(info) != 1 || len(info[0].Backup) != 2 {
		t.Fatalf("pgbackrest info: exit %d %v\n%s", code, err, out)
	}
	full, incr := info[0].Backup[0], info[0].Backup[1]

	url := startExporter(t, e)
	t0 := time.Now().Unix()
	fams := scrape(t, url)
	t1 := time.Now().Unix()
	st := map[string]string{"stanza": e.Stanza}
	with := func(kv ...string) map[string]string {
		m := map[string]string{"stanza": e.Stanza}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}

	// Queries from pgbackrest_exporter's README / dashboard.
	if v := one(t, fams, "pgbackrest_exporter_status", map[string]string{"stanza": "all-stanzas"}); v != 1 {
		t.Fatalf("pgbackrest_exporter_status = %v", v)
	}
	if v := one(t, fams, "pgbackrest_stanza_status", st); v != 0 {
		t.Fatalf("pgbackrest_stanza_status = %v", v)
	}
	if v := one(t, fams, "pgbackrest_repo_status", with("repo_key", "1", "cipher", "none")); v != 0 {
		t.Fatalf("pgbackrest_repo_status = %v", v)
	}
	if v := one(t, fams, "pgbackrest_stanza_backup_lock_status", st); v != 0 {
		t.Fatalf("pgbackrest_stanza_backup_lock_status = %v", v)
	}
	for _, c := range []struct {
		typ string
		b   infoJSONBackup
	}{{"full", full}, {"diff", full}, {"incr", incr}} {
		since := one(t, fams, "pgbackrest_backup_since_last_completion_seconds", with("backup_type", c.typ))
		if since < float64(t0-c.b.Timestamp.Stop) || since > float64(t1-c.b.Timestamp.Stop) {
			t.Fatalf("since_last_completion %s = %v, want %d..%d", c.typ, since, t0-c.b.Timestamp.Stop, t1-c.b.Timestamp.Stop)
		}
		for name, want := range map[string]int64{
			"pgbackrest_backup_last_size_bytes":       c.b.Info.Size,
			"pgbackrest_backup_last_delta_bytes":      c.b.Info.Delta,
			"pgbackrest_backup_last_repo_size_bytes":  c.b.Info.Repository.Size,
			"pgbackrest_backup_last_repo_delta_bytes": c.b.Info.Repository.Delta,
			"pgbackrest_backup_last_duration_seconds": c.b.Timestamp.Stop - c.b.Timestamp.Start,
		} {
			if v := one(t, fams, name, with("backup_type", c.typ)); v != float64(want) {
				t.Fatalf("%s{backup_type=%q} = %v, pgBackRest info says %d", name, c.typ, v, want)
			}
		}
	}
	if v := one(t, fams, "pgbackrest_backup_last_references", with("backup_type", "incr", "ref_backup", "full")); v != float64(len(incr.Reference)) {
		t.Fatalf("last_references = %v, info: %v", v, incr.Reference)
	}
	if v := one(t, fams, "pgbackrest_backup_last_annotations", with("backup_type", "full")); v != 1 {
		t.Fatalf("last_annotations full = %v", v)
	}
	if v := one(t, fams, "pgbackrest_backup_last_annotations", with("backup_type", "incr")); v != 2 {
		t.Fatalf("last_annotations incr = %v (pgbr backup --annotation)", v)
	}
	for _, b := range info[0].Backup {
		lbl := with("backup_name", b.Label, "backup_type", b.Type, "repo_key", "1", "database_id", "1", "block_incr", "n")
		if v := one(t, fams, "pgbackrest_backup_size_bytes", lbl); v != float64(b.Info.Size) {
			t.Fatalf("backup_size_bytes %s = %v, info %d", b.Label, v, b.Info.Size)
		}
		if v := one(t, fams, "pgbackrest_backup_repo_size_bytes", lbl); v != float64(b.Info.Repository.Size) {
			t.Fatalf("backup_repo_size_bytes %s = %v, info %d", b.Label, v, b.Info.Repository.Size)
		}
		d := with("backup_name", b.Label, "start_time", time.Unix(b.Timestamp.Start, 0).Format("2006-01-02 15:04:05"),
			"stop_time", time.Unix(b.Timestamp.Stop, 0).Format("2006-01-02 15:04:05"))
		if v := one(t, fams, "pgbackrest_backup_duration_seconds", d); v != float64(b.Timestamp.Stop-b.Timestamp.Start) {
			t.Fatalf("backup_duration_seconds %s = %v", b.Label, v)
		}
		lsn := func(s string) string {
			if s == "" {
				return "-"
			}
			return s
		}
		bi := with("backup_name", b.Label, "prior", b.Prior, "wal_start", b.Archive.Start, "wal_stop", b.Archive.Stop,
			"lsn_start", lsn(b.Lsn.Start), "lsn_stop", lsn(b.Lsn.Stop), "pg_version", "15", "backrest_ver", "2.45")
		if v := one(t, fams, "pgbackrest_backup_info", bi); v != 1 {
			t.Fatalf("backup_info %s = %v", b.Label, v)
		}
	}
	a := info[0].Archive[0]
	if v := one(t, fams, "pgbackrest_wal_archive_status", with("wal_min", a.Min, "wal_max", a.Max, "pg_version", "15")); v != 1 {
		t.Fatalf("wal_archive_status = %v", v)
	}

	// pgbr's own metrics: the last run of each command.
	if v := one(t, fams, "pgbr_command_last_result", with("command", "backup")); v != 0 {
		t.Fatalf("backup result = %v", v)
	}
	if v := one(t, fams, "pgbr_command_last_result", with("command", "check")); v != float64(checkCode) {
		t.Fatalf("check result = %v, exit code was %d", v, checkCode)
	}
	if v := one(t, fams, "pgbr_command_last_success", with("command", "check")); v != 0 {
		t.Fatalf("check success = %v", v)
	}
	if v := one(t, fams, "pgbr_command_last_result", with("command", "archive-push")); v != 0 {
		t.Fatalf("archive-push result = %v", v)
	}
	if v := one(t, fams, "pgbr_command_last_repo_written_bytes", with("command", "backup")); v < float64(incr.Info.Repository.Delta) {
		t.Fatalf("backup wrote %v repository bytes, its files alone are %d", v, incr.Info.Repository.Delta)
	}
	if v := one(t, fams, "pgbr_command_last_repo_files_written", with("command", "backup")); v < 3 {
		t.Fatalf("backup wrote %v repository files", v)
	}
	end := one(t, fams, "pgbr_command_last_run_timestamp_seconds", with("command", "backup"))
	if end < float64(incr.Timestamp.Stop) || end > float64(t0) {
		t.Fatalf("backup run end %v not between the backup's stop %d and the scrape %d", end, incr.Timestamp.Stop, t0)
	}
	if _, err := os.Stat(filepath.Join(e.Dir, "lock", e.Stanza+"-backup.metrics.json")); err != nil {
		t.Fatalf("state file: %v", err)
	}

	// --stanza restricts the stanzas and names the status series.
	url2 := startExporter(t, e, "--stanza=nosuch")
	fams = scrape(t, url2)
	if v := one(t, fams, "pgbackrest_stanza_status", map[string]string{"stanza": "nosuch"}); v != 1 {
		t.Fatalf("missing stanza status = %v", v)
	}
	if l, _ := query(fams, "pgbackrest_stanza_status", st); len(l) != 0 {
		t.Fatalf("--stanza=nosuch exports stanza %s", e.Stanza)
	}
	if v := one(t, fams, "pgbackrest_exporter_status", map[string]string{"stanza": "nosuch"}); v != 1 {
		t.Fatalf("exporter_status = %v", v)
	}
	if l, _ := query(fams, "pgbr_command_last_result", nil); len(l) != 0 {
		t.Fatalf("--stanza=nosuch exports other stanzas' runs: %v", l)
	}

	annotateChecks(t, e, incr.Label)
}

// exporterS3Check scrapes an exporter on an S3 repository and requires
// the credential statistics of the last backup.
func exporterS3Check(t *testing.T, e *testenv.Env) {
	url := startExporter(t, e)
	fams := scrape(t, url)
	l, v := query(fams, "pgbr_s3_credential_refreshes", map[string]string{"stanza": e.Stanza, "command": "backup", "repo": "repo1"})
	if len(l) != 1 || l[0]["key_type"] != "shared" || l[0]["role"] != "" || v[0] < 1 {
		t.Fatalf("credential refreshes of backup: %v %v", l, v)
	}
	if v := one(t, fams, "pgbr_s3_credential_failures", map[string]string{"stanza": e.Stanza, "command": "backup"}); v != 0 {
		t.Fatalf("credential failures = %v", v)
	}
	if v := one(t, fams, "pgbackrest_stanza_status", map[string]string{"stanza": e.Stanza}); v != 0 {
		t.Fatal(fmt.Sprint("S3 stanza status ", v))
	}
}

// checkCredentialState requires the state file of a command run on a
// web-id S3 repository to hold the credential counts its log showed.
func checkCredentialState(t *testing.T, e *testenv.Env, command, role string, refreshes, invalidations int, start time.Time) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(e.Dir, "lock", e.Stanza+"-"+command+".metrics.json"))
	if err != nil {
		t.Fatalf("state file of %s: %v", command, err)
	}
	var st struct {
		Result      int `json:"result"`
		Credentials []struct {
			Repo          string `json:"repo"`
			KeyType       string `json:"key_type"`
			Role          string `json:"role"`
			Refreshes     int    `json:"refreshes"`
			Failures      int    `json:"failures"`
			Invalidations int    `json:"invalidations"`
			LastExpiry    int64  `json:"last_expiry"`
		} `json:"credentials"`
	}
	if err := json.Unmarshal(data, &st); err != nil || st.Result != 0 || len(st.Credentials) != 1 {
		t.Fatalf("state file of %s: %v\n%s", command, err, data)
	}
	c := st.Credentials[0]
	if c.Repo != "repo1" || c.KeyType != "web-id" || c.Role != role || c.Refreshes != refreshes ||
		c.Invalidations != invalidations || c.LastExpiry <= start.Unix() {
		t.Fatalf("credential state of %s (log: %d refreshes, %d invalidations):\n%s", command, refreshes, invalidations, data)
	}
}
