package test

import (
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/testenv"
)

func TestBackupVerifiedByPgBackRest(t *testing.T) {
	testenv.RequirePgBackRest(t)
	e := testenv.NewEnv(t, testenv.EnvOptions{})
	e.MustRun("stanza-create")
	e.Cluster.Exec("postgres", "create table t(id int primary key, v text); insert into t select g, md5(g::text) from generate_series(1,10000) g")
	out := e.MustRun("backup", "--type=full")
	t.Log(out)
	out = e.MustPgBackRest("info")
	t.Log(out)
	out = e.MustPgBackRest("verify", "--log-level-console=detail")
	t.Log(out)
	if !strings.Contains(out, "total files checked") {
		t.Fatal("verify output")
	}
}
