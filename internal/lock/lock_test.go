package lock

import (
	"encoding/json"
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

// TestProgressNeverEmpty reads the lock file while its body is rewritten
// with shorter and longer bodies: no read may find it empty or without the
// holder's exec id, which info (pgbr's and pgBackRest's) would take for no
// backup running. A dead process's longer body left in the file is
// overwritten too, and the last body parses whole.
func TestProgressNeverEmpty(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "main-backup.lock")
	if err := os.WriteFile(path, []byte(`{"execId":"9-dead","pctCplt":5000,"pid":9,"sz":123456789012,"szCplt":12345678901}`+strings.Repeat("x", 40)), 0o640); err != nil {
		t.Fatal(err)
	}
	l, err := Acquire(dir, "main", Backup, "1-abcd")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	stop := make(chan struct{})
	bad := make(chan string, 1)
	go func() {
		defer close(bad)
		for {
			select {
			case <-stop:
				return
			default:
			}
			b, err := os.ReadFile(path)
			if err != nil || !strings.HasPrefix(string(b), `{"execId":"1-abcd",`) {
				bad <- string(b)
				return
			}
		}
	}()
	for i := 0; i < 20000; i++ {
		switch i % 3 {
		case 0:
			l.Progress(-1)
		case 1:
			l.ProgressSize(int64(i)*1000003, 1<<40)
		case 2:
			l.Progress(i % 10000)
		}
	}
	close(stop)
	if b, ok := <-bad; ok {
		t.Fatalf("a reader saw the body %q", b)
	}
	l.Progress(42)
	b, err := os.ReadFile(path)
	var body struct {
		ExecID  string `json:"execId"`
		PctCplt *int   `json:"pctCplt"`
		Pid     int    `json:"pid"`
		Size    *int64 `json:"sz"`
	}
	if err != nil || json.Unmarshal(b, &body) != nil || body.ExecID != "1-abcd" || body.PctCplt == nil || *body.PctCplt != 42 || body.Pid != os.Getpid() || body.Size != nil {
		t.Fatalf("last body %q", b)
	}
}
