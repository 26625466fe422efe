package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/testenv"
)

func TestStanzaCreateArchivePushGet(t *testing.T) {
	e := testenv.NewEnv(t, testenv.EnvOptions{})
	out := e.MustRun("stanza-create")
	if !strings.Contains(out, "stanza-create for stanza 'main' on repo1") {
		t.Fatalf("stanza-create output:\n%s", out)
	}
	// Second run: valid.
	out = e.MustRun("stanza-create")
	if !strings.Contains(out, "already exists on repo1 and is valid") {
		t.Fatalf("second stanza-create:\n%s", out)
	}
	// Force a WAL switch; PostgreSQL archives through pgbr.
	seg := e.Cluster.QueryOne("postgres", "select pg_walfile_name(pg_switch_wal())")
	e.WaitArchived(seg)
	// archive-get into a temp file.
	dest := filepath.Join(e.Dir, "got")
	out, code := e.Run("archive-get", seg, dest)
	if code != 0 {
		t.Fatalf("archive-get exit %d:\n%s", code, out)
	}
	want, _ := os.ReadFile(filepath.Join(e.Cluster.Data, "pg_wal", seg))
	got, _ := os.ReadFile(dest)
	if len(want) == 0 || string(want) != string(got) {
		t.Fatalf("archive-get returned %d bytes, segment has %d", len(got), len(want))
	}
	// Missing segment: exit 1.
	out, code = e.Run("archive-get", "0000000100000000000000FF", dest)
	if code != 1 || !strings.Contains(out, "unable to find 0000000100000000000000FF in the archive") {
		t.Fatalf("archive-get missing: exit %d\n%s", code, out)
	}
	// Same segment pushed again: warning, exit 0.
	out, code = e.Run("archive-push", filepath.Join(e.Cluster.Data, "pg_wal", seg))
	if code != 0 || !strings.Contains(out, "already exists in the repo1 archive with the same checksum") {
		t.Fatalf("re-push: exit %d\n%s", code, out)
	}
	// Different content under the same name: error 45, nothing written.
	bad := filepath.Join(e.Dir, seg)
	b := append([]byte(nil), want...)
	b[len(b)-1] ^= 0xff
	os.WriteFile(bad, b, 0o644)
	before := testenv.TreeDigest(t, e.Repo)
	out, code = e.Run("archive-push", bad)
	if code != 45 || !strings.Contains(out, "already exists in the repo1 archive with a different checksum") {
		t.Fatalf("push different: exit %d\n%s", code, out)
	}
	if after := testenv.TreeDigest(t, e.Repo); after != before {
		t.Fatalf("repository changed by a failed push")
	}
}
