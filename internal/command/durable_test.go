package command

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/pgbr-dev/pgbr/internal/errs"
)

// hookSync replaces the flush calls for one test: fsync of a file (or a
// directory) fails with EIO when failFile (failDir) says so; syncfs calls
// are counted per device and fail when failFS is set.
type syncHooks struct {
	failFile, failDir, failFS bool
	devs                      map[uint64]int
}

func hookSync(t *testing.T) *syncHooks {
	h := &syncHooks{devs: map[uint64]int{}}
	oldFile, oldFS := fileSync, fsSync
	t.Cleanup(func() { fileSync, fsSync = oldFile, oldFS })
	fileSync = func(f *os.File) error {
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if (fi.IsDir() && h.failDir) || (!fi.IsDir() && h.failFile) {
			return syscall.EIO
		}
		return f.Sync()
	}
	fsSync = func(fd int) error {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return err
		}
		h.devs[uint64(st.Dev)]++
		if h.failFS {
			return syscall.EIO
		}
		return unix.Syncfs(fd)
	}
	return h
}

func TestWriteFileAtomicErrors(t *testing.T) {
	h := hookSync(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "postgresql.auto.conf")
	if err := writeFileAtomic(path, []byte("old\n"), 0o600, -1, -1); err != nil {
		t.Fatal(err)
	}

	h.failFile = true
	err := writeFileAtomic(path, []byte("new\n"), 0o600, -1, -1)
	if errs.CodeOf(err) != errs.FileSync || !errors.Is(err, syscall.EIO) {
		t.Fatalf("failed file sync: %v", err)
	}
	h.failFile = false
	if b, _ := os.ReadFile(path); string(b) != "old\n" {
		t.Fatalf("content after a failed write: %q", b)
	}
	if _, err := os.Stat(path + ".pgbackrest.tmp"); !os.IsNotExist(err) {
		t.Fatalf("temp file left: %v", err)
	}

	h.failDir = true
	if err := writeFileAtomic(path, []byte("new\n"), 0o600, -1, -1); errs.CodeOf(err) != errs.PathSync {
		t.Fatalf("failed directory sync after rename: %v", err)
	}
	h.failDir = false

	// Rename onto a non-empty directory fails: error, no temp file left.
	os.MkdirAll(filepath.Join(dir, "d", "x"), 0o700)
	if err := writeFileAtomic(filepath.Join(dir, "d"), []byte("x"), 0o600, -1, -1); errs.CodeOf(err) != errs.FileMove {
		t.Fatalf("failed rename: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "d.pgbackrest.tmp")); !os.IsNotExist(err) {
		t.Fatalf("temp file left after a failed rename: %v", err)
	}

	// Mode is set whatever the umask; ownership errors surface.
	if err := writeFileAtomic(path, []byte("new\n"), 0o640, -1, -1); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v", fi.Mode())
	}
	if os.Geteuid() != 0 {
		if err := writeFileAtomic(path, []byte("x"), 0o640, 0, 0); errs.CodeOf(err) != errs.FileOwner {
			t.Fatalf("chown to root as non-root: %v", err)
		}
	}
}
