package test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// TestRestoreLinks: a cluster whose pg_wal is a link to another directory.
// By default restore makes pg_wal a plain directory (as pgBackRest);
// --link-map=pg_wal=<dir> restores it as a link to <dir>, like pgBackRest
// 2.45, and the cluster recovers through it. A bad map is [078].
func TestRestoreLinks(t *testing.T) {
	testenv.RequirePgBackRest(t)
	dir := testenv.Dir(t, "links")
	e := testenv.NewEnv(t, testenv.EnvOptions{Cluster: testenv.ClusterOptions{InitdbArgs: []string{"--waldir=" + filepath.Join(dir, "waldir")}}})
	e.Cluster.Exec("postgres", "create table t(id int primary key, v text); insert into t select g, md5(g::text) from generate_series(1,1000) g")
	e.MustRun("stanza-create")
	e.MustRun("backup", "--type=full")
	e.Cluster.Exec("postgres", "insert into t values (5000, 'after')")
	e.Cluster.Exec("postgres", "select pg_switch_wal()")
	want := e.Cluster.QueryOne("postgres", digestSQL+"t")
	e.Cluster.Stop()

	if out, code := e.Run("restore", "--pg1-path="+filepath.Join(dir, "bad"), "--link-map=nolink=/tmp/x"); code != 78 {
		t.Fatalf("bad link map: exit %d\n%s", code, out)
	}
	plain := filepath.Join(testenv.Dir(t, "plain"), "pg")
	e.MustRun("restore", "--pg1-path="+plain)
	if fi, err := os.Lstat(filepath.Join(plain, "pg_wal")); err != nil || !fi.IsDir() {
		t.Fatalf("default restore: pg_wal should be a directory: %v %v", fi, err)
	}
	var links [2]string
	var pgbrData string
	for i, tool := range []string{"pgbr", "pgbackrest"} {
		rdir := testenv.Dir(t, "linked-"+tool)
		data, wal := filepath.Join(rdir, "pg"), filepath.Join(rdir, "newwal")
		args := []string{"restore", "--pg1-path=" + data, "--link-map=pg_wal=" + wal, "--archive-mode=off"}
		if tool == "pgbr" {
			e.MustRun(args...)
			pgbrData = data
		} else {
			e.MustPgBackRest(args...)
		}
		l, err := os.Readlink(filepath.Join(data, "pg_wal"))
		if err != nil || l != wal {
			t.Fatalf("%s: pg_wal link = %q, %v (want %s)", tool, l, err, wal)
		}
		links[i] = filepath.Base(l)
	}
	if links[0] != links[1] {
		t.Fatalf("links differ: %v", links)
	}
	r := testenv.StartRestored(t, filepath.Dir(pgbrData), pgbrData)
	if got := r.QueryOne("postgres", digestSQL+"t"); got != want {
		t.Fatal("data differs after restore through the pg_wal link")
	}
}
