package test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// TestToolsTakeTurns has pgbr and pgBackRest 2.45 alternate in one stanza:
// each pushes WAL and takes a backup (full, incr, diff) on top of the
// other's, then each restores the final chain and the data matches — for
// each compression type, with and without encryption.
func TestToolsTakeTurns(t *testing.T) {
	testenv.RequirePgBackRest(t)
	for _, c := range []string{"gz", "none", "lz4+aes", "zst", "bz2+aes", "gz+aes"} {
		t.Run(c, func(t *testing.T) { toolsTakeTurns(t, c) })
	}
}

func toolsTakeTurns(t *testing.T, compress string) {
	global := []string{"compress-type=" + strings.TrimSuffix(compress, "+aes")}
	if strings.HasSuffix(compress, "+aes") {
		global = append(global, "repo1-cipher-type=aes-256-cbc", "repo1-cipher-pass=Xk2u8vL0pQ3rT6yW9zB1cE4fH7jM0nP2")
	}
	e := testenv.NewEnv(t, testenv.EnvOptions{Global: global})
	archiveWith := func(tool string) {
		bin := e.Pgbr
		if tool == "pgbackrest" {
			bin = testenv.PgBackRest
		}
		e.Cluster.Exec("postgres", fmt.Sprintf("alter system set archive_command = '%s --config=%s --stanza=%s archive-push %%p'", bin, e.Conf, e.Stanza))
		e.Cluster.Exec("postgres", "select pg_reload_conf()")
	}
	e.MustPgBackRest("stanza-create")
	e.Cluster.Exec("postgres", "create table t(id int primary key, v text)")
	batch := 0
	write := func() {
		batch++
		e.Cluster.Exec("postgres", fmt.Sprintf("insert into t select g, md5(g::text) from generate_series(%d, %d) g", batch*1000, batch*1000+999))
	}
	steps := []struct{ tool, typ string }{
		{"pgbr", "full"}, {"pgbackrest", "incr"}, {"pgbr", "incr"}, {"pgbackrest", "diff"}, {"pgbr", "incr"},
	}
	for _, s := range steps {
		archiveWith(s.tool)
		write()
		e.Cluster.Exec("postgres", "select pg_switch_wal()")
		if s.tool == "pgbr" {
			e.MustRun("backup", "--type="+s.typ)
		} else {
			e.MustPgBackRest("backup", "--type="+s.typ)
		}
	}
	write()
	e.Cluster.Exec("postgres", "select pg_switch_wal()")
	want := e.Cluster.QueryOne("postgres", digestSQL+"t")
	e.Cluster.Stop()

	out := e.MustPgBackRest("info")
	if n := strings.Count(out, "backup: 2"); n != len(steps) {
		t.Fatalf("pgBackRest info lists %d backups, want %d:\n%s", n, len(steps), out)
	}
	out = e.MustPgBackRest("verify")
	if strings.Contains(out, "ERROR") || strings.Contains(out, "WARN") {
		t.Fatalf("pgBackRest verify:\n%s", out)
	}
	for _, tool := range []string{"pgbr", "pgbackrest"} {
		r := restoreWith(t, e, tool)
		if got := r.QueryOne("postgres", digestSQL+"t"); got != want {
			t.Fatalf("%s restore: data differs\n%s", tool, r.RestoredLog())
		}
	}
}
