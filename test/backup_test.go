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
	e.MustRun("backup", "--type=full")
	if out := e.MustPgBackRest("info"); !strings.Contains(out, "full backup: ") {
		t.Fatalf("pgBackRest info does not list the pgbr backup:\n%s", out)
	}
	out := e.MustPgBackRest("verify", "--log-level-console=detail", "--verbose")
	if strings.Contains(out, "ERROR") || strings.Contains(out, "WARN") || !strings.Contains(out, "20") {
		t.Fatalf("pgBackRest verify of a pgbr backup:\n%s", out)
	}
}
