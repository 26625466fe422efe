package local

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// escapeTree makes in/d, beside it out/victim ("keep"), and the link
// in/d/escape to out: a root at in must not reach out.
func escapeTree(t *testing.T) (in, out string) {
	t.Helper()
	base := t.TempDir()
	in, out = filepath.Join(base, "in"), filepath.Join(base, "out")
	os.MkdirAll(filepath.Join(in, "d"), 0o700)
	os.MkdirAll(out, 0o700)
	os.WriteFile(filepath.Join(out, "victim"), []byte("keep"), 0o600)
	os.Symlink(out, filepath.Join(in, "d", "escape"))
	return in, out
}

func TestRootConfines(t *testing.T) {
	in, out := escapeTree(t)
	os.Symlink("../../out/victim", filepath.Join(in, "d", "rel"))
	r, err := Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	for _, name := range []string{"../x", "d/../../x", "/etc/passwd", "", "d//x", "./x", "d/.", "a\x00b"} {
		if _, err := r.OpenFile(name, os.O_CREATE|os.O_WRONLY, 0o600); !errors.Is(err, ErrName) {
			t.Errorf("OpenFile(%q): %v, want ErrName", name, err)
		}
		if err := r.MkdirAll(name, 0o700); err == nil {
			t.Errorf("MkdirAll(%q) accepted", name)
		}
	}
	// Symbolic links leaving the directory are not followed.
	if f, err := r.OpenFile("d/escape/victim", os.O_WRONLY|os.O_TRUNC, 0); err == nil {
		f.Close()
		t.Error("wrote through d/escape")
	}
	if f, err := r.OpenFile("d/rel", os.O_WRONLY|os.O_TRUNC, 0); err == nil {
		f.Close()
		t.Error("wrote through d/rel")
	}
	if err := r.MkdirAll("d/escape/new", 0o700); err == nil {
		t.Error("MkdirAll through d/escape")
	}
	if err := r.Chmod("d/escape", 0o777); err == nil {
		t.Error("Chmod through d/escape")
	}
	if err := r.Remove("d/escape/victim"); err == nil {
		t.Error("Remove through d/escape")
	}
	if err := r.RemoveAll("d/escape"); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(out, "victim")); err != nil || string(b) != "keep" {
		t.Fatalf("outside file changed: %q %v", b, err)
	}
	if _, err := os.Lstat(filepath.Join(in, "d", "escape")); !os.IsNotExist(err) {
		t.Fatal("link not removed")
	}
	// Ordinary use, including through a cached subdirectory.
	if err := r.MkdirAll("d/e/f", 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := r.OpenFile("d/e/f/x", os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("hi"))
	f.Close()
	if err := r.Rename("d/e/f/x", "d/e/f/y"); err != nil {
		t.Fatal(err)
	}
	if b, err := r.ReadFile("d/e/f/y"); err != nil || string(b) != "hi" {
		t.Fatalf("%q %v", b, err)
	}
	if err := r.Chmod(".", 0o750); err != nil {
		t.Fatal(err)
	}
	if err := r.RemoveAll("d/e"); err != nil {
		t.Fatal(err)
	}
	if err := r.MkdirAll("d/e/f", 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := r.OpenFile("d/e/f/y", os.O_RDONLY, 0); !os.IsNotExist(err) {
		t.Fatalf("stale handle after RemoveAll: %v", err)
	}
	if err := r.Symlink(out, "lnk"); err != nil {
		t.Fatal(err)
	}
	if d, err := r.Readlink("lnk"); err != nil || d != out {
		t.Fatalf("%q %v", d, err)
	}
	if _, err := r.OpenFile("lnk/victim", os.O_RDONLY, 0); err == nil {
		t.Error("read through lnk")
	}
}

func TestRenameTo(t *testing.T) {
	base := t.TempDir()
	a, b := filepath.Join(base, "a"), filepath.Join(base, "b")
	os.MkdirAll(a, 0o700)
	os.MkdirAll(b, 0o700)
	os.WriteFile(filepath.Join(a, "f"), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(base, "victim"), []byte("keep"), 0o600)
	ra, err := Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	rb, err := Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Close()
	for _, n := range [][2]string{{"../victim", "g"}, {"f", "../g"}, {"f", "d/g"}, {".", "g"}, {"f", "."}} {
		if err := ra.RenameTo(n[0], rb, n[1]); !errors.Is(err, ErrName) {
			t.Errorf("RenameTo(%q, %q): %v, want ErrName", n[0], n[1], err)
		}
	}
	if err := ra.RenameTo("f", rb, "g"); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(b, "g")); err != nil || string(got) != "x" {
		t.Fatalf("moved file: %q %v", got, err)
	}
	if _, err := os.Lstat(filepath.Join(a, "f")); !os.IsNotExist(err) {
		t.Fatalf("source still there: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(base, "victim")); string(got) != "keep" {
		t.Fatal("victim changed")
	}
}
