package test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/storage/posix"
	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// dropFromBackupInfo removes an entry from backup.info (and its copy) the
// way a lost update would leave it.
func dropFromBackupInfo(t *testing.T, e *testenv.Env, label string) {
	t.Helper()
	ctx := context.Background()
	st := posix.New(e.Repo)
	bi, err := repo.LoadBackupInfo(ctx, st, e.Stanza, "")
	if err != nil {
		t.Fatal(err)
	}
	bi.Remove(label)
	if err := repo.SaveBackupInfo(ctx, st, e.Stanza, bi, ""); err != nil {
		t.Fatal(err)
	}
	testenv.Chown(t, e.Repo)
}

// TestBackupInfoReconstruct: backup and expire drop backup.info entries
// whose manifest is gone (with their dependents) and add back complete
// backups that backup.info lost, as pgBackRest 2.45 does.
func TestBackupInfoReconstruct(t *testing.T) {
	testenv.RequirePgBackRest(t)
	e := testenv.NewEnv(t, testenv.EnvOptions{})
	e.MustRun("stanza-create")
	e.Cluster.Exec("postgres", "create table t(id int)")
	full := newLabel(t, e.MustRun("backup", "--type=full"))
	e.Cluster.Exec("postgres", "insert into t values (1)")
	incr1 := newLabel(t, e.MustRun("backup", "--type=incr"))
	e.Cluster.Exec("postgres", "insert into t values (2)")
	incr2 := newLabel(t, e.MustRun("backup", "--type=incr"))

	// The manifest of incr1 is lost: incr1 and its dependent incr2 leave
	// backup.info; incr2 cannot come back without its prior.
	if err := os.Remove(filepath.Join(e.Repo, "backup", e.Stanza, incr1, "backup.manifest")); err != nil {
		t.Fatal(err)
	}
	out := e.MustRun("backup", "--type=full")
	for _, w := range []string{
		"WARN: backup '" + incr2 + "' missing manifest removed from backup.info",
		"WARN: backup '" + incr1 + "' missing manifest removed from backup.info",
		"WARN: invalid backup '" + incr2 + "' cannot be added to current backups",
	} {
		if !strings.Contains(out, w) {
			t.Fatalf("want %q in:\n%s", w, out)
		}
	}
	if strings.Index(out, incr2+"' missing") > strings.Index(out, incr1+"' missing") {
		t.Fatalf("dependents are removed newest first:\n%s", out)
	}
	full2 := newLabel(t, out)
	if got := currentLabels(t, e); !slices.Equal(got, []string{full, full2}) {
		t.Fatalf("backup.info lists %v, want [%s %s]", got, full, full2)
	}

	// backup.info loses a complete backup: the next backup adds it back
	// (and uses it as its prior).
	dropFromBackupInfo(t, e, full2)
	out = e.MustRun("backup", "--type=incr")
	if !strings.Contains(out, "WARN: backup '"+full2+"' found in repository added to backup.info") {
		t.Fatalf("output:\n%s", out)
	}
	incr3 := newLabel(t, out)
	if m := loadManifest(t, e, incr3, ""); m.Backup.Prior != full2 {
		t.Fatalf("incr prior %s, want %s", m.Backup.Prior, full2)
	}
	if got := currentLabels(t, e); !slices.Equal(got, []string{full, full2, incr3}) {
		t.Fatalf("backup.info lists %v", got)
	}

	// expire reconstructs too, and saves what it found.
	dropFromBackupInfo(t, e, incr3)
	out = e.MustRun("expire")
	if !strings.Contains(out, "WARN: backup '"+incr3+"' found in repository added to backup.info") {
		t.Fatalf("expire output:\n%s", out)
	}
	if got := currentLabels(t, e); !slices.Equal(got, []string{full, full2, incr3}) {
		t.Fatalf("backup.info after expire lists %v", got)
	}
	info := e.MustPgBackRest("info")
	if n := strings.Count(info, "backup: 2"); n != 3 {
		t.Fatalf("pgBackRest info lists %d backups:\n%s", n, info)
	}
}
