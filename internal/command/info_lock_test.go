package command

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/lock"
)

// holdLock writes body into path and holds an flock on it until the test ends.
func holdLock(t *testing.T, path, body string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(body); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
}

func TestInfoBackupLockLayouts(t *testing.T) {
	pct := func(held bool, p *uint64) string {
		if !held {
			return "not held"
		}
		if p == nil {
			return "held"
		}
		return "held " + itoa(int(*p))
	}
	cases := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"none", nil, "not held"},
		{"2.45 without progress", map[string]string{"main-backup.lock": `{"execId":"1-a","pid":1}`}, "held"},
		{"2.45 pctCplt", map[string]string{"main-backup.lock": `{"execId":"1-a","pctCplt":4512,"pid":1}`}, "held 4512"},
		{"2.48 sizes win", map[string]string{"main-backup.lock": `{"execId":"1-a","pctCplt":1,"pid":1,"sz":1000,"szCplt":451}`}, "held 4510"},
		{"2.55 per repo summed", map[string]string{
			"main-backup-1.lock": `{"execId":"1-a","pid":1,"sz":1000,"szCplt":500}`,
			"main-backup-2.lock": `{"execId":"1-a","pid":1,"sz":3000,"szCplt":0}`,
		}, "held 1250"},
		{"unreadable content counts as not held", map[string]string{"main-backup.lock": `garbage`}, "not held"},
		{"other stanza", map[string]string{"other-backup.lock": `{"execId":"1-a","pid":1}`}, "not held"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, body := range c.files {
				holdLock(t, filepath.Join(dir, name), body)
			}
			if got := pct(infoBackupLock(dir, "main")); got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
	// A lock file nobody holds is stale.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "main-backup.lock"), []byte(`{"execId":"1-a","pid":1}`), 0o640)
	if held, _ := infoBackupLock(dir, "main"); held {
		t.Fatal("unheld lock file reported as held")
	}
}

func TestLockProgressSizeBody(t *testing.T) {
	dir := t.TempDir()
	l, err := lock.Acquire(dir, "main", lock.Backup, "123-abcd")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	l.ProgressSize(4512, 10000)
	data, _ := os.ReadFile(filepath.Join(dir, "main-backup.lock"))
	want := `{"execId":"123-abcd","pctCplt":4512,"pid":` + itoa(os.Getpid()) + `,"sz":10000,"szCplt":4512}`
	if string(data) != want {
		t.Fatalf("lock body %s, want %s", data, want)
	}
}

// TestInfoBackupLockRewritten: a held lock met empty, as pgBackRest leaves
// it for a moment while it rewrites the body, is read again and counts as
// held once the body is back.
func TestInfoBackupLockRewritten(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "main-backup.lock")
	holdLock(t, path, "")
	var tries []int
	defer func(f func(int)) { lockReread = f }(lockReread)
	lockReread = func(try int) {
		tries = append(tries, try)
		if try == 1 {
			if err := os.WriteFile(path, []byte(`{"execId":"1-a","pctCplt":4512,"pid":1}`), 0o640); err != nil {
				t.Fatal(err)
			}
		}
	}
	held, p := infoBackupLock(dir, "main")
	if len(tries) != 2 {
		t.Fatalf("read again after tries %v", tries)
	}
	if !held || p == nil || *p != 4512 {
		t.Fatalf("held %v pct %v", held, p)
	}
}
