package test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// TestRestoreClearsSpool: restore removes the stanza's whole archive spool
// (out and in), as pgBackRest 2.45 does, so a stale <segment>.ok left by an
// earlier cluster does not acknowledge a segment that was never pushed: after
// the restore, an asynchronous archive-push of that segment reaches the
// repository.
func TestRestoreClearsSpool(t *testing.T) {
	t.Parallel()
	spool := testenv.Dir(t, "restore-spool")
	e := testenv.NewEnv(t, testenv.EnvOptions{Global: []string{"archive-async=y", "spool-path=" + spool}})
	e.MustRun("stanza-create")
	e.MustRun("backup", "--type=full")
	// The segment being written is not archived yet.
	seg := e.Cluster.QueryOne("postgres", "select pg_walfile_name(pg_current_wal_insert_lsn())")
	e.Cluster.Stop()

	stanzaSpool := filepath.Join(spool, "archive", e.Stanza)
	stale := []string{"out/" + seg + ".ok", "out/000000010000000000000099.error", "out/00000002.history.ok",
		"in/000000010000000000000042", "in/000000010000000000000043.ok", "in/000000010000000000000044.error"}
	for _, f := range stale {
		p := filepath.Join(stanzaSpool, f)
		os.MkdirAll(filepath.Dir(p), 0o750)
		if err := os.WriteFile(p, nil, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Chown(t, spool)

	data := filepath.Join(testenv.Dir(t, "restore-spool-target"), "pg")
	e.MustRun("restore", "--pg1-path="+data)
	for _, f := range stale {
		if _, err := os.Lstat(filepath.Join(stanzaSpool, f)); !os.IsNotExist(err) {
			t.Fatalf("restore left %s in the spool (%v):\n%s", f, err, testenv.Tree(spool))
		}
	}
	if _, err := os.Lstat(stanzaSpool); !os.IsNotExist(err) {
		t.Fatalf("restore left the stanza spool: %v\n%s", err, testenv.Tree(spool))
	}

	// PostgreSQL marks the segment ready and calls archive_command; the
	// stale .ok is gone, so the push really happens.
	wal := filepath.Join(e.Cluster.Data, "pg_wal")
	if err := os.WriteFile(filepath.Join(wal, "archive_status", seg+".ready"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	testenv.Chown(t, filepath.Join(wal, "archive_status"))
	if matches, _ := filepath.Glob(filepath.Join(e.Repo, "archive", e.Stanza, "*", seg[:16], seg+"-*")); len(matches) != 0 {
		t.Fatalf("%s is in the archive before the push: %v", seg, matches)
	}
	e.MustRun("archive-push", filepath.Join(wal, seg))
	if matches, _ := filepath.Glob(filepath.Join(e.Repo, "archive", e.Stanza, "*", seg[:16], seg+"-*")); len(matches) != 1 {
		t.Fatalf("%s was acknowledged but not pushed: %v", seg, matches)
	}
	if _, err := os.Stat(filepath.Join(stanzaSpool, "out", seg+".ok")); err != nil {
		t.Fatalf("no .ok after the push: %v", err)
	}
}
