package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// TestStanzaUpgrade15To18: a PostgreSQL 15 cluster is upgraded to 18 at
// the same pg1-path (a new 18 cluster loaded from pg_dumpall of the 15
// one, as the packages hold no pg_upgrade). After stanza-upgrade the old
// 15 backup stays listed and restorable (started with 15's binaries) and
// new backups and WAL use the new history id.
func TestStanzaUpgrade15To18(t *testing.T) {
	t.Parallel()
	e := testenv.NewEnv(t, testenv.EnvOptions{})
	e.MustRun("stanza-create")
	e.Cluster.Exec("postgres", "create table t(id int primary key, v text); insert into t select g, md5(g::text) from generate_series(1,5000) g")
	e.Cluster.Exec("postgres", "create database app")
	e.Cluster.Exec("app", "create table a(v text); insert into a values ('from 15')")
	old := backupLabel(t, e.MustRun("backup", "--type=full"))
	e.Cluster.Exec("postgres", "insert into t values (5001, 'after the 15 backup')")
	want15 := e.Cluster.QueryOne("postgres", digestSQL+"t")
	e.ArchiveCaughtUp()

	// Dump, stop, and replace the data directory by a new 18 cluster.
	dump := filepath.Join(e.Dir, "dump.sql")
	out, code := testenv.AsPostgres(e.Dir, nil, filepath.Join(testenv.PgBin, "pg_dumpall"), "-h", e.Cluster.Socket,
		"-p", strconv.Itoa(e.Cluster.Port), "-U", "postgres", "-f", dump)
	if code != 0 {
		t.Fatalf("pg_dumpall: %s", out)
	}
	e.Cluster.Stop()
	pgPath := e.Cluster.Data
	if err := os.RemoveAll(pgPath); err != nil {
		t.Fatal(err)
	}
	archiveCmd := fmt.Sprintf("%s --config=%s --stanza=%s archive-push %%p", e.Pgbr, e.Conf, e.Stanza)
	e.Cluster = testenv.NewCluster(t, e.Dir, testenv.ClusterOptions{Major: 18, ArchiveCommand: archiveCmd})
	if e.Cluster.Data != pgPath {
		t.Fatalf("18 cluster at %s, want the same pg1-path %s", e.Cluster.Data, pgPath)
	}
	e.WriteConf()
	out, code = testenv.AsPostgres(e.Dir, nil, filepath.Join(testenv.PgBin, "psql"), "-h", e.Cluster.Socket,
		"-p", strconv.Itoa(e.Cluster.Port), "-U", "postgres", "-q", "-v", "ON_ERROR_STOP=0", "-f", dump, "postgres")
	if code != 0 {
		t.Fatalf("load dump into 18: %s", out)
	}
	if got := e.Cluster.QueryOne("postgres", digestSQL+"t"); got != want15 {
		t.Fatalf("dump loaded into 18 differs")
	}

	// Before the upgrade the stanza refuses the new cluster.
	if out, code := e.Run("backup", "--type=full"); code == 0 || !strings.Contains(out, "stanza-upgrade") && !strings.Contains(out, "do not match") {
		t.Fatalf("backup before stanza-upgrade: exit %d\n%s", code, out)
	}
	mustContain(t, "stanza-upgrade", e.MustRun("stanza-upgrade"), "stanza-upgrade for stanza 'main' on repo1")
	e.MustRun("check")
	e.Cluster.Exec("postgres", "insert into t values (5002, 'on 18')")
	newLabel := backupLabel(t, e.MustRun("backup", "--type=full"))
	e.Cluster.Exec("app", "insert into a values ('after the 18 backup')")
	want18 := e.Cluster.QueryOne("postgres", digestSQL+"t") + "/" + e.Cluster.QueryOne("app", "select string_agg(v, ',' order by v) from a")
	e.ArchiveCaughtUp()

	if _, err := os.Stat(filepath.Join(e.Repo, "archive", e.Stanza, "18-2")); err != nil {
		t.Fatalf("no archive 18-2 after the upgrade: %v\n%s", err, testenv.Tree(filepath.Join(e.Repo, "archive")))
	}
	m := loadManifest(t, e, newLabel, "")
	if m.DB.ID != 2 || m.DB.Version != "18" {
		t.Fatalf("new backup: db-id %d version %s, want 2 and 18", m.DB.ID, m.DB.Version)
	}
	m = loadManifest(t, e, old, "")
	if m.DB.ID != 1 || m.DB.Version != "15" {
		t.Fatalf("old backup: db-id %d version %s, want 1 and 15", m.DB.ID, m.DB.Version)
	}
	info := e.MustRun("info")
	if !strings.Contains(info, old) || !strings.Contains(info, newLabel) || !strings.Contains(info, "db (prior)") {
		t.Fatalf("info after the upgrade:\n%s", info)
	}
	if out := e.MustRun("verify"); !strings.Contains(out, "verify command end: completed successfully") {
		t.Fatalf("verify:\n%s", out)
	}

	// The old backup restores and runs on PostgreSQL 15 (its WAL from 15-1).
	r := restoreInto(t, e, "pgbr", testenv.Dir(t, "restore-15"), "--set="+old, "--type=immediate", "--target-action=promote")
	if r.Major != 15 || !strings.HasPrefix(r.QueryOne("postgres", "select current_setting('server_version_num')"), "15") {
		t.Fatalf("old backup started with PostgreSQL %d", r.Major)
	}
	if got := r.QueryOne("app", "select string_agg(v, ',') from a"); got != "from 15" {
		t.Fatalf("old backup restored app data %q", got)
	}
	if n := r.QueryOne("postgres", "select count(*) from t"); n != "5000" {
		t.Fatalf("old backup restored %s rows, want 5000", n)
	}
	r.Stop()
	// The new backup replays 18's WAL to the end.
	r = restoreInto(t, e, "pgbr", testenv.Dir(t, "restore-18"))
	if got := r.QueryOne("postgres", digestSQL+"t") + "/" + r.QueryOne("app", "select string_agg(v, ',' order by v) from a"); got != want18 || r.Major != 18 {
		t.Fatalf("new backup restored on %d: %s, want %s\n%s", r.Major, got, want18, tailStr(r.RestoredLog()))
	}
}
