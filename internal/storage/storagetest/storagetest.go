// Package storagetest is the conformance suite every storage driver runs:
// the same tests against posix and S3.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/storage"
)

// Run runs the suite against a fresh, empty storage from newStorage.
func Run(t *testing.T, newStorage func(t *testing.T) storage.Storage) {
	ctx := context.Background()

	t.Run("WriteReadCommit", func(t *testing.T) {
		s := newStorage(t)
		data := bytes.Repeat([]byte("pgbr"), 100000)
		if err := storage.WriteAll(ctx, s, "a/b/c.dat", data); err != nil {
			t.Fatal(err)
		}
		got, err := storage.ReadAll(ctx, s, "a/b/c.dat")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("read %d bytes, want %d identical bytes", len(got), len(data))
		}
		in, err := s.Stat(ctx, "a/b/c.dat")
		if err != nil || in.Size != int64(len(data)) || in.Type != storage.TypeFile {
			t.Fatalf("stat = %+v, %v", in, err)
		}
	})

	t.Run("NothingVisibleBeforeCommit", func(t *testing.T) {
		s := newStorage(t)
		w, err := s.Create(ctx, "x/file", storage.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("partial"))
		if ok, _ := s.Exists(ctx, "x/file"); ok {
			t.Fatal("file visible before commit")
		}
		if err := w.Abort(); err != nil {
			t.Fatal(err)
		}
		if ok, _ := s.Exists(ctx, "x/file"); ok {
			t.Fatal("file visible after abort")
		}
		list, _ := s.List(ctx, "x")
		for _, e := range list {
			if e.Name != "" && e.Type == storage.TypeFile {
				t.Fatalf("leftover after abort: %q", e.Name)
			}
		}
	})

	t.Run("OverwriteReplacesWhole", func(t *testing.T) {
		s := newStorage(t)
		storage.WriteAll(ctx, s, "f", []byte("long old content"))
		storage.WriteAll(ctx, s, "f", []byte("new"))
		got, _ := storage.ReadAll(ctx, s, "f")
		if string(got) != "new" {
			t.Fatalf("got %q", got)
		}
	})

	t.Run("Missing", func(t *testing.T) {
		s := newStorage(t)
		if _, err := s.Open(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("open missing: %v", err)
		}
		if _, err := s.Stat(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("stat missing: %v", err)
		}
		if ok, err := s.Exists(ctx, "nope"); ok || err != nil {
			t.Fatalf("exists missing = %v, %v", ok, err)
		}
		if l, err := s.List(ctx, "nope"); len(l) != 0 || err != nil {
			t.Fatalf("list missing = %v, %v", l, err)
		}
		if err := s.Remove(ctx, "nope"); err != nil {
			t.Fatalf("remove missing: %v", err)
		}
		if err := s.RemoveAll(ctx, "nope"); err != nil {
			t.Fatalf("remove all missing: %v", err)
		}
	})

	t.Run("ListSortedDirect", func(t *testing.T) {
		s := newStorage(t)
		for _, p := range []string{"d/b", "d/a", "d/sub/c", "d/c"} {
			if err := storage.WriteAll(ctx, s, p, []byte(p)); err != nil {
				t.Fatal(err)
			}
		}
		l, err := s.List(ctx, "d")
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range l {
			names = append(names, e.Name)
		}
		want := []string{"a", "b", "c", "sub"}
		if len(names) != len(want) {
			t.Fatalf("list = %v, want %v", names, want)
		}
		for i := range want {
			if names[i] != want[i] {
				t.Fatalf("list = %v, want %v", names, want)
			}
		}
		if l[3].Type != storage.TypePath {
			t.Fatalf("sub type = %v", l[3].Type)
		}
	})

	t.Run("Range", func(t *testing.T) {
		s := newStorage(t)
		storage.WriteAll(ctx, s, "r", []byte("0123456789"))
		r, err := s.OpenRange(ctx, "r", 3, 4)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(r)
		r.Close()
		if string(got) != "3456" {
			t.Fatalf("range = %q", got)
		}
		r, _ = s.OpenRange(ctx, "r", 7, -1)
		got, _ = io.ReadAll(r)
		r.Close()
		if string(got) != "789" {
			t.Fatalf("range to end = %q", got)
		}
	})

	t.Run("NoSyncThenSyncAll", func(t *testing.T) {
		s := newStorage(t)
		paths := []string{"backup/s/L/pg_data/a", "backup/s/L/pg_data/base/1/b", "archive/s/c"}
		for _, p := range paths {
			w, err := s.Create(ctx, p, storage.CreateOptions{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write([]byte(p)); err != nil {
				t.Fatal(err)
			}
			if err := w.Commit(); err != nil {
				t.Fatal(err)
			}
		}
		if err := storage.SyncAll(ctx, s); err != nil {
			t.Fatalf("SyncAll: %v", err)
		}
		// Nothing written since: still fine.
		if err := storage.SyncAll(ctx, s); err != nil {
			t.Fatalf("second SyncAll: %v", err)
		}
		for _, p := range paths {
			if got, err := storage.ReadAll(ctx, s, p); err != nil || string(got) != p {
				t.Fatalf("read %s = %q, %v", p, got, err)
			}
		}
	})

	t.Run("InPlace", func(t *testing.T) {
		s := newStorage(t)
		write := func(content string, commit bool) {
			t.Helper()
			w, err := s.Create(ctx, "d/in-place", storage.CreateOptions{NoSync: true, InPlace: true})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write([]byte(content)); err != nil {
				t.Fatal(err)
			}
			if commit {
				err = w.Commit()
			} else {
				err = w.Abort()
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		write("first, longer content", true)
		write("second", true)
		// NoSync writes are complete once SyncAll returns (S3 may still be
		// uploading them before).
		if err := storage.SyncAll(ctx, s); err != nil {
			t.Fatalf("SyncAll: %v", err)
		}
		if got, err := storage.ReadAll(ctx, s, "d/in-place"); err != nil || string(got) != "second" {
			t.Fatalf("after rewrite: %q, %v", got, err)
		}
		// An aborted write leaves no partial content: the file is gone
		// (written in place) or still the last committed one.
		write("aborted", false)
		if err := storage.SyncAll(ctx, s); err != nil {
			t.Fatalf("SyncAll: %v", err)
		}
		got, err := storage.ReadAll(ctx, s, "d/in-place")
		if err == nil && string(got) != "second" {
			t.Fatalf("after abort: %q", got)
		}
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("after abort: %v", err)
		}
		if err := storage.SyncAll(ctx, s); err != nil {
			t.Fatalf("SyncAll: %v", err)
		}
	})

	t.Run("CommitOnce", func(t *testing.T) {
		s := newStorage(t)
		w, err := s.Create(ctx, "once", storage.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("1"))
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(); err == nil {
			t.Fatal("second Commit succeeded")
		}
		if err := w.Abort(); err != nil {
			t.Fatalf("Abort after Commit: %v", err)
		}
		if got, err := storage.ReadAll(ctx, s, "once"); err != nil || string(got) != "1" {
			t.Fatalf("after Abort of a committed writer: %q, %v", got, err)
		}
	})

	t.Run("RemoveAll", func(t *testing.T) {
		s := newStorage(t)
		storage.WriteAll(ctx, s, "t/1", []byte("1"))
		storage.WriteAll(ctx, s, "t/u/2", []byte("2"))
		storage.WriteAll(ctx, s, "keep", []byte("k"))
		if err := s.RemoveAll(ctx, "t"); err != nil {
			t.Fatal(err)
		}
		if ok, _ := s.Exists(ctx, "t/u/2"); ok {
			t.Fatal("t/u/2 survived RemoveAll")
		}
		if ok, _ := s.Exists(ctx, "keep"); !ok {
			t.Fatal("RemoveAll removed a sibling")
		}
		if err := s.Remove(ctx, "keep"); err != nil {
			t.Fatal(err)
		}
		if ok, _ := s.Exists(ctx, "keep"); ok {
			t.Fatal("Remove left the file")
		}
	})
}
