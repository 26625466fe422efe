package pg

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/errs"
)

// A data directory of a version pgbr does not know is refused with the
// version from PG_VERSION, the raw control/catalog versions and the list
// of supported versions.
func TestReadControlUnknownVersion(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "global"), 0o700)
	b := make([]byte, ControlFileSize)
	binary.LittleEndian.PutUint64(b[0:], 7000000000000000001)
	binary.LittleEndian.PutUint32(b[8:], 1900)
	binary.LittleEndian.PutUint32(b[12:], 202607011)
	os.WriteFile(filepath.Join(dir, "global", "pg_control"), b, 0o600)
	os.WriteFile(filepath.Join(dir, "PG_VERSION"), []byte("19\n"), 0o600)
	_, err := ReadControl(dir)
	if errs.CodeOf(err) != errs.VersionNotSupported {
		t.Fatalf("err %v, want VersionNotSupportedError", err)
	}
	for _, want := range []string{"PostgreSQL 19 (PG_VERSION)", "pg_control version 1900", "catalog version 202607011", "9.3, 9.4, 9.5, 9.6, 10, 11, 12, 13, 14, 15, 16, 17, 18"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	// Without PG_VERSION the message still names the raw versions.
	os.Remove(filepath.Join(dir, "PG_VERSION"))
	if _, err := ReadControl(dir); errs.CodeOf(err) != errs.VersionNotSupported || !strings.Contains(err.Error(), "an unknown PostgreSQL version") {
		t.Fatalf("without PG_VERSION: %v", err)
	}
}
