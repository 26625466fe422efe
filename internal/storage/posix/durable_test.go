package posix

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/pgbr-dev/pgbr/internal/storage"
)

// recorder replaces the storage's flush calls and records what they flush.
type recorder struct {
	mu      sync.Mutex
	devs    map[uint64]int // syncfs calls per filesystem
	synced  []string       // fsynced files and directories
	failFS  error
	failDir string // fsync of this directory fails
	failAny error  // every file fsync fails
}

func record(s *Storage) *recorder {
	r := &recorder{devs: map[uint64]int{}}
	s.syncfs = func(fd int) error {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return err
		}
		r.mu.Lock()
		r.devs[uint64(st.Dev)]++
		r.mu.Unlock()
		if r.failFS != nil {
			return r.failFS
		}
		return unix.Syncfs(fd)
	}
	s.fsync = func(f *os.File) error {
		r.mu.Lock()
		r.synced = append(r.synced, f.Name())
		r.mu.Unlock()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if fi.IsDir() && f.Name() == r.failDir {
			return syscall.EIO
		}
		if !fi.IsDir() && r.failAny != nil {
			return r.failAny
		}
		return f.Sync()
	}
	return r
}

func devOf(t *testing.T, p string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return uint64(st.Dev)
}

func TestSyncAllError(t *testing.T) {
	root := t.TempDir()
	s := New(root)
	r := record(s)
	ctx := context.Background()
	w, _ := s.Create(ctx, "backup/main/f", storage.CreateOptions{NoSync: true})
	w.Commit()
	r.failFS = syscall.EIO
	if err := s.SyncAll(ctx); !errors.Is(err, syscall.EIO) {
		t.Fatalf("SyncAll with a failing syncfs = %v", err)
	}
	// The directory stays pending: a retry flushes it again.
	r.failFS = nil
	if err := s.SyncAll(ctx); err != nil {
		t.Fatal(err)
	}
	if len(s.unsynced) != 0 {
		t.Fatalf("pending after a good SyncAll: %v", s.unsynced)
	}
}

// New directories are synced in their parents; a renamed file in its
// directory; a symlink in its directory.
func TestDirectorySync(t *testing.T) {
	root := t.TempDir()
	s := New(root)
	r := record(s)
	ctx := context.Background()
	os.MkdirAll(filepath.Join(root, "archive/main/15-1"), 0o750)
	if err := storage.WriteAll(ctx, s, "archive/main/15-1/0000000100000000/000000010000000000000001-abc", []byte("wal")); err != nil {
		t.Fatal(err)
	}
	seg := filepath.Join(root, "archive/main/15-1/0000000100000000")
	want := []string{filepath.Join(root, "archive/main/15-1"), seg + "/000000010000000000000001-abc.pgbackrest.tmp", seg}
	if len(r.synced) != 3 || r.synced[0] != want[0] || r.synced[1] != want[1] || r.synced[2] != want[2] {
		t.Fatalf("synced %v, want %v", r.synced, want)
	}
	r.synced = nil
	if err := s.PathCreate(ctx, "x/y/z"); err != nil {
		t.Fatal(err)
	}
	got := append([]string(nil), r.synced...)
	sort.Strings(got)
	want = []string{root, filepath.Join(root, "x"), filepath.Join(root, "x/y")}
	if len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("PathCreate synced %v, want %v", got, want)
	}
	r.synced = nil
	if err := s.Symlink(ctx, "A", "x/latest"); err != nil {
		t.Fatal(err)
	}
	if len(r.synced) != 1 || r.synced[0] != filepath.Join(root, "x") {
		t.Fatalf("Symlink synced %v", r.synced)
	}
}

// Every failed flush is an error and leaves nothing under the final name.
func TestSyncErrorsSurface(t *testing.T) {
	root := t.TempDir()
	s := New(root)
	r := record(s)
	ctx := context.Background()

	r.failAny = syscall.EIO
	if err := storage.WriteAll(ctx, s, "a/f", []byte("x")); !errors.Is(err, syscall.EIO) {
		t.Fatalf("file fsync failure: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "a")); len(ents) != 0 {
		t.Fatalf("left %v", ents)
	}
	r.failAny = nil

	r.failDir = filepath.Join(root, "a")
	if err := storage.WriteAll(ctx, s, "a/g", []byte("x")); !errors.Is(err, syscall.EIO) {
		t.Fatalf("directory fsync failure after rename: %v", err)
	}
	if err := s.PathCreate(ctx, "a/new"); !errors.Is(err, syscall.EIO) {
		t.Fatalf("parent fsync failure of a new directory: %v", err)
	}
	if err := s.Symlink(ctx, "B", "a/latest"); !errors.Is(err, syscall.EIO) {
		t.Fatalf("directory fsync failure after symlink: %v", err)
	}
}
