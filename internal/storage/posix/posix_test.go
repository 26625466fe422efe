package posix

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/storage"
	"github.com/pgbr-dev/pgbr/internal/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Storage { return New(t.TempDir()) })
}

func TestModesAndNoTempLeft(t *testing.T) {
	root := t.TempDir()
	s := New(root)
	ctx := context.Background()
	if err := storage.WriteAll(ctx, s, "archive/main/archive.info", []byte("x")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(root, "archive/main/archive.info"))
	if err != nil || fi.Mode().Perm() != FileMode {
		t.Fatalf("file mode %v, %v", fi.Mode(), err)
	}
	di, _ := os.Stat(filepath.Join(root, "archive/main"))
	if di.Mode().Perm() != PathMode {
		t.Fatalf("dir mode %v", di.Mode())
	}
	ents, _ := os.ReadDir(filepath.Join(root, "archive/main"))
	if len(ents) != 1 {
		t.Fatalf("entries %v", ents)
	}
}

func TestUnwritable(t *testing.T) {
	if os.Geteuid() == 0 {
		// root ignores permission bits; use a path under a regular file instead.
		root := t.TempDir()
		os.WriteFile(filepath.Join(root, "file"), []byte("x"), 0o600)
		s := New(filepath.Join(root, "file"))
		if _, err := s.Create(context.Background(), "a/b", storage.CreateOptions{}); err == nil {
			t.Fatal("create under a regular file succeeded")
		}
		return
	}
	root := t.TempDir()
	os.Chmod(root, 0o500)
	s := New(root)
	_, err := s.Create(context.Background(), "a/b", storage.CreateOptions{})
	if !errors.Is(err, storage.ErrPermission) {
		t.Fatalf("err = %v", err)
	}
}

func TestSymlink(t *testing.T) {
	root := t.TempDir()
	s := New(root)
	ctx := context.Background()
	if err := s.Symlink(ctx, "20260101-000000F", "backup/main/latest"); err == nil {
		t.Fatal("symlink into missing dir should fail")
	}
	s.PathCreate(ctx, "backup/main")
	for _, target := range []string{"A", "B"} {
		if err := s.Symlink(ctx, target, "backup/main/latest"); err != nil {
			t.Fatal(err)
		}
	}
	in, err := s.Stat(ctx, "backup/main/latest")
	if err != nil || in.Type != storage.TypeLink || in.Link != "B" {
		t.Fatalf("stat latest = %+v, %v", in, err)
	}
}

// Directories are remembered once created; one removed behind the
// storage's back (another process, expire) is created again.
func TestCreateAfterDirRemoved(t *testing.T) {
	ctx := context.Background()
	s := New(t.TempDir())
	for i, remove := range []func(){
		func() {},
		func() { s.RemoveAll(ctx, "a") },
		func() { os.RemoveAll(s.Full("a")) },
	} {
		remove()
		if err := storage.WriteAll(ctx, s, "a/b/f", []byte{byte(i)}); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		got, err := storage.ReadAll(ctx, s, "a/b/f")
		if err != nil || len(got) != 1 || got[0] != byte(i) {
			t.Fatalf("round %d: read %v, %v", i, got, err)
		}
	}
}
