package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// TestArchivePushAsync: with archive-async=y PostgreSQL's archive_command
// returns once a background pgbr process (process-max 2) has pushed the
// segment; many segments queue up and all reach the archive; the spool
// holds the status files; a backup's archive check and a restore's WAL
// replay work on what it pushed, and pgBackRest 2.45 fetches it too.
func TestArchivePushAsync(t *testing.T) {
	testenv.RequirePgBackRest(t)
	dir := testenv.Dir(t, "async-spool")
	e := testenv.NewEnv(t, testenv.EnvOptions{Global: []string{"archive-async=y", "spool-path=" + dir, "process-max=2"},
		Cluster: testenv.ClusterOptions{InitdbArgs: []string{"--wal-segsize=1"}}})
	e.MustRun("stanza-create")
	e.Cluster.Exec("postgres", "create table t(id int primary key, v text)")
	for i := 0; i < 12; i++ {
		e.Cluster.Exec("postgres", "insert into t select g, md5(g::text) from generate_series(1,200) g on conflict (id) do update set v = excluded.v || 'x'")
		e.Cluster.Exec("postgres", "select pg_switch_wal()")
	}
	e.ArchiveCaughtUp()
	oks, _ := filepath.Glob(filepath.Join(dir, "archive", e.Stanza, "out", "*.ok"))
	if len(oks) == 0 {
		t.Fatal("no status file in the spool: archiving was not asynchronous")
	}
	log, err := os.ReadFile(filepath.Join(e.Dir, "log", e.Stanza+"-archive-push-async.log"))
	if err != nil || !strings.Contains(string(log), "pushed WAL file") {
		t.Fatalf("async log: %v\n%s", err, log)
	}
	e.MustRun("backup", "--type=full")
	e.Cluster.Exec("postgres", "insert into t values (100000, 'after backup')")
	e.Cluster.Exec("postgres", "select pg_switch_wal()")
	e.ArchiveCaughtUp()
	want := e.Cluster.QueryOne("postgres", digestSQL+"t")
	e.Cluster.Stop()
	for _, tool := range []string{"pgbr", "pgbackrest"} {
		r := restoreWith(t, e, tool)
		if got := r.QueryOne("postgres", digestSQL+"t"); got != want {
			t.Fatalf("%s restore after async archiving: data differs", tool)
		}
		r.Stop()
		if tool == "pgbr" {
			// pgbr's restore_command used the asynchronous archive-get.
			log, err := os.ReadFile(filepath.Join(e.Dir, "log", e.Stanza+"-archive-get-async.log"))
			if err != nil || !strings.Contains(string(log), "found ") {
				t.Fatalf("async archive-get log: %v\n%s", err, log)
			}
		}
	}
}
