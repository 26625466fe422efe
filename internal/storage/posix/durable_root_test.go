//go:build integration

package posix

// Tests that need root (they mount a tmpfs): run by scripts/test.sh with
// -tags integration, not by the fast lane (go test ./internal/...).

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/pgbr-dev/pgbr/internal/storage"
)

// mountTmpfs mounts a tmpfs on dir for the test (the test runs as root).
func mountTmpfs(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=16m"); err != nil {
		t.Fatalf("mount tmpfs on %s (the test needs root): %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
}

// A backup/ directory mounted apart from repo1-path: SyncAll flushes both
// filesystems, each once.
func TestSyncAllEveryFilesystem(t *testing.T) {
	root := t.TempDir()
	mountTmpfs(t, filepath.Join(root, "backup"))
	s := New(root)
	r := record(s)
	ctx := context.Background()
	if devOf(t, root) == devOf(t, filepath.Join(root, "backup")) {
		t.Fatal("tmpfs mount has the device of its parent")
	}
	for _, p := range []string{"backup/main/20260101-000000F/pg_data/base/1/1259", "backup/main/20260101-000000F/pg_data/PG_VERSION",
		"archive/main/15-1/0000000100000000/000000010000000000000001-abc"} {
		w, err := s.Create(ctx, p, storage.CreateOptions{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("data"))
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	if len(r.synced) != 0 {
		t.Fatalf("NoSync writes fsynced %v", r.synced)
	}
	if err := s.SyncAll(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[uint64]int{devOf(t, root): 1, devOf(t, filepath.Join(root, "backup")): 1}
	if len(r.devs) != 2 || r.devs[devOf(t, root)] != 1 || r.devs[devOf(t, filepath.Join(root, "backup"))] != 1 {
		t.Fatalf("syncfs calls per device %v, want %v", r.devs, want)
	}
	// Nothing new written: only the repository's own filesystem.
	r.devs = map[uint64]int{}
	if err := s.SyncAll(ctx); err != nil {
		t.Fatal(err)
	}
	if len(r.devs) != 1 || r.devs[devOf(t, root)] != 1 {
		t.Fatalf("second SyncAll flushed %v", r.devs)
	}
}
