package archive

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/storage/local"
)

// The asynchronous archive commands write, rename and remove spool files
// only through a rooted spool directory, by plain file names: a WAL or
// status name with ".." or "/" is refused, and a symbolic link planted in
// the spool is replaced or moved, never followed.
func TestArchiveSpoolNames(t *testing.T) {
	base := t.TempDir()
	spoolDir := filepath.Join(base, "spool", "archive", "main", "in")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{spoolDir, outside} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	victim := filepath.Join(outside, "victim")
	if err := os.WriteFile(victim, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	spool, err := local.Open(spoolDir)
	if err != nil {
		t.Fatal(err)
	}
	defer spool.Close()

	bad := []string{"", ".", "..", "../../../outside/victim", "../x.ok", "sub/000000010000000000000001", "/tmp/x", "a\x00b"}
	for _, name := range bad {
		if err := CheckSpoolName(name); errs.CodeOf(err) != errs.ParamInvalid {
			t.Errorf("CheckSpoolName(%q): %v", name, err)
		}
		if err := WriteStatus(spool, name, "45\nboom"); err == nil {
			t.Errorf("WriteStatus(%q) accepted", name)
		}
		if err := WriteStatus(spool, name+".error", "45\nboom"); err == nil && name != "" && name != "." && name != ".." {
			t.Errorf("WriteStatus(%q) accepted", name+".error")
		}
		if err := GetAsync(context.Background(), &GetAsyncOptions{Name: name}); errs.CodeOf(err) != errs.ParamInvalid {
			t.Errorf("GetAsync(%q): %v", name, err)
		}
		if err := WaitGot(context.Background(), &WaitOptions{}, name, filepath.Join(outside, "dest")); errs.CodeOf(err) != errs.ParamInvalid {
			t.Errorf("WaitGot(%q): %v", name, err)
		}
	}
	if err := WaitPushed(context.Background(), &WaitOptions{}, base+"/pg_wal/.."); errs.CodeOf(err) != errs.ParamInvalid {
		t.Errorf("WaitPushed(pg_wal/..): %v", err)
	}

	// A status name that is a planted symbolic link to a file outside:
	// the status replaces the link, the file outside is untouched.
	seg := "000000010000000000000001"
	if err := os.Symlink(victim, filepath.Join(spoolDir, seg+".error")); err != nil {
		t.Fatal(err)
	}
	if err := WriteStatus(spool, seg+".error", "45\nboom"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(spoolDir, seg+".error")); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("status file: %v %v", fi, err)
	}

	// A fetched segment moves from the spool to pg_wal; a planted link
	// in the spool is moved as a link (its destination is not copied or
	// written).
	pgWal := filepath.Join(base, "pg_wal")
	if err := os.MkdirAll(pgWal, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(spoolDir, seg), []byte("wal"), 0o600); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(pgWal, "RECOVERYXLOG")
	if err := MoveFile(spool, seg, dest); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(dest); err != nil || string(b) != "wal" {
		t.Fatalf("moved segment: %q %v", b, err)
	}
	if _, err := os.Lstat(filepath.Join(spoolDir, seg)); !os.IsNotExist(err) {
		t.Fatalf("segment still in the spool: %v", err)
	}
	if err := MoveFile(spool, "../../../outside/victim", dest); err == nil {
		t.Fatal("moveFile of an escaping name accepted")
	}

	if b, err := os.ReadFile(victim); err != nil || string(b) != "keep" {
		t.Fatalf("file outside the spool changed: %q %v", b, err)
	}
	ents, _ := os.ReadDir(outside)
	if len(ents) != 1 {
		t.Fatalf("files appeared outside the spool: %v", ents)
	}
	if ents, _ := os.ReadDir(filepath.Join(base, "spool", "archive", "main")); len(ents) != 1 {
		t.Fatalf("files appeared next to the spool: %v", ents)
	}
}

// The status files of the asynchronous archive processes are written
// durably and a failure is returned.
func TestWriteStatusErrors(t *testing.T) {
	failSync := false
	old := fileSync
	t.Cleanup(func() { fileSync = old })
	fileSync = func(f *os.File) error {
		if failSync {
			return syscall.EIO
		}
		return f.Sync()
	}
	out := t.TempDir()
	spool, err := local.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer spool.Close()
	if err := WriteStatus(spool, "000000010000000000000001.ok", ""); err != nil {
		t.Fatal(err)
	}
	failSync = true
	err = WriteStatus(spool, "000000010000000000000002.error", "45\nboom")
	if errs.CodeOf(err) != errs.FileSync {
		t.Fatalf("status write with a failing sync: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "000000010000000000000002.error")); !os.IsNotExist(err) {
		t.Fatal("status file visible after a failed write")
	}
	failSync = false
	missing := filepath.Join(out, "missing")
	os.Mkdir(missing, 0o700)
	gone, err := local.Open(missing)
	if err != nil {
		t.Fatal(err)
	}
	defer gone.Close()
	os.Remove(missing)
	if err := WriteStatus(gone, "000000010000000000000002.ok", ""); errs.CodeOf(err) != errs.FileOpen {
		t.Fatalf("status write into a removed spool: %v", err)
	}
}

// A .error status holds the code on its first line and the message after;
// anything else is an unknown error with the whole text.
func TestParseStatus(t *testing.T) {
	for _, c := range []struct {
		in   string
		code errs.Code
		msg  string
	}{
		{"45\nboom\nmore\n", 45, "boom\nmore"},
		{"garbage", errs.Unknown, "garbage"},
		{"0\nzero", errs.Unknown, "0\nzero"},
		{errorStatus(errs.New(errs.ArchiveTimeout, "late")), errs.ArchiveTimeout, "late"},
	} {
		code, msg := ParseStatus([]byte(c.in))
		if code != c.code || msg != c.msg {
			t.Errorf("ParseStatus(%q) = %d %q, want %d %q", c.in, code, msg, c.code, c.msg)
		}
	}
}
