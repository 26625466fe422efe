//go:build integration

package restore

// Tests that need root (they mount a tmpfs): run by scripts/test.sh with
// -tags integration, not by the fast lane (go test ./internal/...).

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/repo"
)

// Restore flushes PGDATA's filesystem and a tablespace's on another mount,
// each once, and fails when a flush fails.
func TestRestoreSyncTargets(t *testing.T) {
	h := newSyncHooks()
	base := t.TempDir()
	pgData := filepath.Join(base, "pg")
	ts := filepath.Join(base, "ts")
	os.MkdirAll(pgData, 0o700)
	os.MkdirAll(ts, 0o700)
	if err := unix.Mount("tmpfs", ts, "tmpfs", 0, "size=8m"); err != nil {
		t.Fatalf("mount tmpfs (the test needs root): %v", err)
	}
	t.Cleanup(func() { unix.Unmount(ts, unix.MNT_DETACH) })
	wal := filepath.Join(ts, "wal")
	os.MkdirAll(wal, 0o700)
	os.Symlink(wal, filepath.Join(pgData, "pg_wal"))
	rr := &restoreRun{pgData: pgData, targets: map[string]string{repo.TargetPgData: pgData, "pg_tblspc/16385": filepath.Join(base, "ts2")},
		m:        &repo.Manifest{Links: []repo.ManifestLink{{Name: "pg_data/pg_wal", Destination: wal}}},
		fileSync: h.fileSync, fsSync: h.fsSync}
	os.MkdirAll(filepath.Join(base, "ts2"), 0o700)
	if err := rr.syncTargets(); err != nil {
		t.Fatal(err)
	}
	var a, b unix.Stat_t
	unix.Stat(pgData, &a)
	unix.Stat(ts, &b)
	if len(h.devs) != 2 || h.devs[uint64(a.Dev)] != 1 || h.devs[uint64(b.Dev)] != 1 {
		t.Fatalf("syncfs per device %v (pgdata %d, linked pg_wal %d)", h.devs, a.Dev, b.Dev)
	}
	h.failFS = true
	if err := rr.syncTargets(); errs.CodeOf(err) != errs.PathSync || !errors.Is(err, syscall.EIO) {
		t.Fatalf("restore sync with a failing syncfs: %v", err)
	}
	h.failFS = false
	// A tablespace that vanished cannot be flushed: an error, not success.
	os.RemoveAll(filepath.Join(base, "ts2"))
	if err := rr.syncTargets(); errs.CodeOf(err) != errs.PathSync {
		t.Fatalf("restore sync of a missing tablespace: %v", err)
	}
}
