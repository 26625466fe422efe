package test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// Restore removes the stanza's whole archive spool (out and in), as
// pgBackRest 2.45 does, so a stale <segment>.ok left by an earlier cluster
// does not acknowledge a segment that was never pushed. TestWalLinkBackup
// (an asynchronously archiving cluster) runs these checks around its
// restore.

// plantStaleSpool writes stale status files and prefetched WAL into the
// stanza's spool, among them <seg>.ok for a segment never pushed, and
// returns their spool-relative names.
func plantStaleSpool(t *testing.T, e *testenv.Env, spool, seg string) []string {
	t.Helper()
	stale := []string{"out/" + seg + ".ok", "out/000000010000000000000099.error", "out/00000002.history.ok",
		"in/000000010000000000000042", "in/000000010000000000000043.ok", "in/000000010000000000000044.error"}
	for _, f := range stale {
		p := filepath.Join(spool, "archive", e.Stanza, f)
		os.MkdirAll(filepath.Dir(p), 0o750)
		if err := os.WriteFile(p, nil, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Chown(t, spool)
	return stale
}

// checkSpoolCleared: after a restore, nothing of the stanza's spool is left.
func checkSpoolCleared(t *testing.T, e *testenv.Env, spool string, stale []string) {
	t.Helper()
	stanzaSpool := filepath.Join(spool, "archive", e.Stanza)
	for _, f := range stale {
		if _, err := os.Lstat(filepath.Join(stanzaSpool, f)); !os.IsNotExist(err) {
			t.Fatalf("restore left %s in the spool (%v):\n%s", f, err, testenv.Tree(spool))
		}
	}
	if _, err := os.Lstat(stanzaSpool); !os.IsNotExist(err) {
		t.Fatalf("restore left the stanza spool: %v\n%s", err, testenv.Tree(spool))
	}
}

// checkPushAfterRestore: PostgreSQL marks seg (of the stopped cluster) ready
// and calls archive_command; with its stale .ok gone, the asynchronous push
// really stores it in the repository.
func checkPushAfterRestore(t *testing.T, e *testenv.Env, spool, seg string) {
	t.Helper()
	wal := filepath.Join(e.Cluster.Data, "pg_wal")
	inRepo := func() []string {
		m, _ := filepath.Glob(filepath.Join(e.Repo, "archive", e.Stanza, "*", seg[:16], seg+"-*"))
		return m
	}
	if m := inRepo(); len(m) != 0 {
		t.Fatalf("%s is in the archive before the push: %v", seg, m)
	}
	if err := os.WriteFile(filepath.Join(wal, "archive_status", seg+".ready"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	testenv.Chown(t, filepath.Join(wal, "archive_status"))
	e.MustRun("archive-push", filepath.Join(wal, seg))
	if m := inRepo(); len(m) != 1 {
		t.Fatalf("%s was acknowledged but not pushed: %v", seg, m)
	}
	if _, err := os.Stat(filepath.Join(spool, "archive", e.Stanza, "out", seg+".ok")); err != nil {
		t.Fatalf("no .ok after the push: %v", err)
	}
}
