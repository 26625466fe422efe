package test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// TestSelectiveRestore: --db-include restores one user database; the others
// come back as zero-filled files of the original size (PG_VERSION kept),
// exactly as pgBackRest 2.45 lays them out; the included database works.
func TestSelectiveRestore(t *testing.T) {
	testenv.RequirePgBackRest(t)
	e := testenv.NewEnv(t, testenv.EnvOptions{})
	for _, db := range []string{"db2", "db3"} {
		e.Cluster.Exec("postgres", "create database "+db)
		e.Cluster.Exec(db, "create table t(v text); insert into t select md5(g::text) from generate_series(1,5000) g")
	}
	oid3 := e.Cluster.QueryOne("postgres", "select oid::text from pg_database where datname = 'db3'")
	want := e.Cluster.QueryOne("db2", "select md5(string_agg(v, ',' order by v)) from t")
	e.MustRun("stanza-create")
	e.MustRun("backup", "--type=full")
	e.Cluster.Stop()
	if out, code := e.Run("restore", "--pg1-path="+filepath.Join(e.Dir, "x"), "--db-include=nosuchdb"); code != 80 {
		t.Fatalf("missing database: exit %d\n%s", code, out)
	}
	// Both tools: which files of db3 are zeroed and their sizes.
	layout := func(data string) map[string]string {
		out := map[string]string{}
		dir := filepath.Join(data, "base", oid3)
		ents, _ := os.ReadDir(dir)
		for _, en := range ents {
			b, _ := os.ReadFile(filepath.Join(dir, en.Name()))
			zero := len(b) > 0 && bytes.Count(b, []byte{0}) == len(b)
			out[en.Name()] = map[bool]string{true: "zero", false: "data"}[zero] + "/" + string(rune('0'+len(b)%10))
		}
		return out
	}
	var layouts [2]map[string]string
	var pgbrData string
	for i, tool := range []string{"pgbr", "pgbackrest"} {
		dir := testenv.Dir(t, "selective-"+tool)
		data := filepath.Join(dir, "pg")
		args := []string{"restore", "--pg1-path=" + data, "--db-include=db2", "--archive-mode=off"}
		if tool == "pgbr" {
			e.MustRun(args...)
			pgbrData = data
		} else {
			e.MustPgBackRest(args...)
		}
		layouts[i] = layout(data)
	}
	if len(layouts[0]) == 0 || len(layouts[0]) != len(layouts[1]) {
		t.Fatalf("db3 files: pgbr %d, pgbackrest %d", len(layouts[0]), len(layouts[1]))
	}
	zeros := 0
	for name, l := range layouts[0] {
		if layouts[1][name] != l {
			t.Fatalf("base/%s/%s: pgbr %s, pgbackrest %s", oid3, name, l, layouts[1][name])
		}
		if l[:4] == "zero" {
			zeros++
		}
	}
	if zeros == 0 || layouts[0]["PG_VERSION"][:4] != "data" {
		t.Fatalf("db3 not zeroed as expected: %v", layouts[0])
	}
	r := testenv.StartRestored(t, filepath.Dir(pgbrData), pgbrData)
	if got := r.QueryOne("db2", "select md5(string_agg(v, ',' order by v)) from t"); got != want {
		t.Fatalf("db2 differs after selective restore")
	}
}
