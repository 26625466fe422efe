package log

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFormat(t *testing.T) {
	var out, errw bytes.Buffer
	l := New(&out, &errw, Info, Warn)
	l.now = func() time.Time { return time.Date(2026, 11, 25, 14, 48, 15, 671000000, time.Local) }
	l.Infof("backup command begin")
	l.Errorf(55, "unable to load\nHINT: x")
	l.Detailf("hidden")
	want := "2026-11-25 14:48:15.671 P00   INFO: backup command begin\n"
	if out.String() != want {
		t.Fatalf("stdout = %q, want %q", out.String(), want)
	}
	wantErr := "ERROR: [055]: unable to load\n       HINT: x\n"
	if errw.String() != wantErr {
		t.Fatalf("stderr = %q, want %q", errw.String(), wantErr)
	}
}

func TestFileAndRedact(t *testing.T) {
	dir := t.TempDir()
	l := New(&bytes.Buffer{}, &bytes.Buffer{}, Off, Off)
	l.Timestamp = false
	if err := l.OpenFile(dir, "main-backup.log", Detail); err != nil {
		t.Fatal(err)
	}
	l.Redact("s3cr3t-passphrase")
	l.Detailf("pass is s3cr3t-passphrase")
	l.Debugf("not written")
	l.Close()
	b, _ := os.ReadFile(filepath.Join(dir, "main-backup.log"))
	s := string(b)
	if strings.Contains(s, "s3cr3t") || !strings.Contains(s, "P00 DETAIL: pass is <redacted>") || strings.Contains(s, "not written") {
		t.Fatalf("file = %q", s)
	}
	if !strings.HasPrefix(s, "-------------------PROCESS START-------------------\n") {
		t.Fatalf("file = %q", s)
	}
}

func TestParseLevel(t *testing.T) {
	if l, err := ParseLevel("detail"); err != nil || l != Detail {
		t.Fatal(l, err)
	}
	if _, err := ParseLevel("loud"); err == nil {
		t.Fatal("accepted bad level")
	}
}
