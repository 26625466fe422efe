package command

import (
	"os"
	"path/filepath"
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
		if err := checkSpoolName(name); errs.CodeOf(err) != errs.ParamInvalid {
			t.Errorf("checkSpoolName(%q): %v", name, err)
		}
		if err := writeStatus(spool, name, "45\nboom"); err == nil {
			t.Errorf("writeStatus(%q) accepted", name)
		}
		if err := writeStatus(spool, name+".error", "45\nboom"); err == nil && name != "" && name != "." && name != ".." {
			t.Errorf("writeStatus(%q) accepted", name+".error")
		}
		// The command entry points refuse the name before touching
		// configuration or the spool (an empty Env would panic otherwise).
		e := &Env{}
		if err := archiveGetAsync(e, "main", name); errs.CodeOf(err) != errs.ParamInvalid {
			t.Errorf("archiveGetAsync(%q): %v", name, err)
		}
		if err := archiveGetQueued(e, "main", name, filepath.Join(outside, "dest")); errs.CodeOf(err) != errs.ParamInvalid {
			t.Errorf("archiveGetQueued(%q): %v", name, err)
		}
	}
	if err := archivePushQueued(&Env{}, "main", base+"/pg_wal/.."); errs.CodeOf(err) != errs.ParamInvalid {
		t.Errorf("archivePushQueued(pg_wal/..): %v", err)
	}

	// A status name that is a planted symbolic link to a file outside:
	// the status replaces the link, the file outside is untouched.
	seg := "000000010000000000000001"
	if err := os.Symlink(victim, filepath.Join(spoolDir, seg+".error")); err != nil {
		t.Fatal(err)
	}
	if err := writeStatus(spool, seg+".error", "45\nboom"); err != nil {
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
	if err := moveFile(spool, seg, dest); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(dest); err != nil || string(b) != "wal" {
		t.Fatalf("moved segment: %q %v", b, err)
	}
	if _, err := os.Lstat(filepath.Join(spoolDir, seg)); !os.IsNotExist(err) {
		t.Fatalf("segment still in the spool: %v", err)
	}
	if err := moveFile(spool, "../../../outside/victim", dest); err == nil {
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
