package local

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
)

// CreateExcl creates only new files inside the root, never through a link,
// with the mode asked (umask cleared here), and keeps working when the
// directory handles it caches are dropped and the directory made anew.
func TestCreateExcl(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	in, out := escapeTree(t)
	os.Symlink(filepath.Join(out, "victim"), filepath.Join(in, "d", "abs"))
	os.Symlink(filepath.Join(out, "new"), filepath.Join(in, "d", "dangling"))
	r, err := Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	for _, name := range []string{"../x", "d/../../x", "/etc/passwd", "", "d//x", "./x", "d/.", "a\x00b", "."} {
		if f, err := r.CreateExcl(name, 0o600); err == nil {
			f.Close()
			t.Errorf("CreateExcl(%q) accepted", name)
		}
	}
	for _, name := range []string{"d/abs", "d/dangling"} {
		if f, err := r.CreateExcl(name, 0o600); !errors.Is(err, fs.ErrExist) {
			if f != nil {
				f.Close()
			}
			t.Errorf("CreateExcl(%q) through a link: %v, want exists", name, err)
		}
	}
	if f, err := r.CreateExcl("d/escape/new", 0o600); err == nil {
		f.Close()
		t.Error("created through d/escape")
	}
	if b, _ := os.ReadFile(filepath.Join(out, "victim")); string(b) != "keep" {
		t.Error("victim changed")
	}
	if _, err := os.Lstat(filepath.Join(out, "new")); err == nil {
		t.Error("created outside the root")
	}

	for _, name := range []string{"top", "d/f"} {
		f, err := r.CreateExcl(name, 0o640)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte(name)); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Lstat(filepath.Join(in, name))
		if err != nil || fi.Mode() != 0o640 {
			t.Fatalf("%s: %v %v", name, fi, err)
		}
		if b, _ := os.ReadFile(filepath.Join(in, name)); string(b) != name {
			t.Errorf("%s holds %q", name, b)
		}
		if _, err := r.CreateExcl(name, 0o600); !errors.Is(err, fs.ErrExist) {
			t.Errorf("second CreateExcl(%q): %v", name, err)
		}
	}
	if err := r.RemoveAll("d"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.CreateExcl("d/g", 0o600); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("create in a removed directory: %v", err)
	}
	if err := r.MkdirAll("d", 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := r.CreateExcl("d/g", 0o600)
	if err != nil {
		t.Fatalf("create in the directory made anew: %v", err)
	}
	f.Close()
	if _, err := os.Lstat(filepath.Join(in, "d", "g")); err != nil {
		t.Fatal(err)
	}
}

// Creates race with forgetting the directory handles: every create either
// succeeds in the right directory or fails cleanly.
func TestCreateExclConcurrentForget(t *testing.T) {
	in := t.TempDir()
	os.MkdirAll(filepath.Join(in, "a"), 0o700)
	r, err := Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				r.forget(".")
			}
		}
	}()
	for i := range 500 {
		f, err := r.CreateExcl(filepath.Join("a", "f"+strconv.Itoa(i)), 0o600)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	close(stop)
	wg.Wait()
	ents, _ := os.ReadDir(filepath.Join(in, "a"))
	if len(ents) != 500 {
		t.Fatalf("%d files in a, want 500", len(ents))
	}
}
