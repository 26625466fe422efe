package lock

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/errs"
)

func TestAcquireTwice(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(dir, "main", Backup, "1-abcd")
	if err != nil {
		t.Fatal(err)
	}
	if !Held(dir, "main", Backup) {
		// flock is per open file description: a second open sees it held.
		t.Fatal("lock not seen as held")
	}
	_, err = Acquire(dir, "main", Backup, "2-abcd")
	if errs.CodeOf(err) != errs.LockAcquire || !strings.Contains(err.Error(), "main-backup.lock") {
		t.Fatalf("second acquire: %v", err)
	}
	l.Progress(2313)
	b, _ := os.ReadFile(filepath.Join(dir, "main-backup.lock"))
	if !strings.Contains(string(b), `"pctCplt":2313`) {
		t.Fatalf("body %s", b)
	}
	l.Release()
	if _, err := os.Stat(filepath.Join(dir, "main-backup.lock")); !os.IsNotExist(err) {
		t.Fatal("lock file not removed")
	}
	l2, err := Acquire(dir, "main", Backup, "3-abcd")
	if err != nil {
		t.Fatal(err)
	}
	l2.Release()
}

func TestStop(t *testing.T) {
	dir := t.TempDir()
	if err := CheckStop(dir, "main"); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "main.stop"), nil, 0o600)
	if err := CheckStop(dir, "main"); errs.CodeOf(err) != errs.Stop {
		t.Fatalf("err %v", err)
	}
}
