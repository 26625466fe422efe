package command

import (
	"path/filepath"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/errs"
)

// The asynchronous archive entry points refuse a WAL name that is not one
// plain file name before touching configuration or the spool (an empty
// Env would panic otherwise).
func TestArchiveEntryNames(t *testing.T) {
	base := t.TempDir()
	for _, name := range []string{"", ".", "..", "../../../outside/victim", "../x.ok", "sub/000000010000000000000001", "/tmp/x", "a\x00b"} {
		if err := archiveGetAsync(&Env{}, "main", name); errs.CodeOf(err) != errs.ParamInvalid {
			t.Errorf("archiveGetAsync(%q): %v", name, err)
		}
		if err := archiveGetQueued(&Env{}, "main", name, filepath.Join(base, "dest")); errs.CodeOf(err) != errs.ParamInvalid {
			t.Errorf("archiveGetQueued(%q): %v", name, err)
		}
	}
	if err := archivePushQueued(&Env{}, "main", base+"/pg_wal/.."); errs.CodeOf(err) != errs.ParamInvalid {
		t.Errorf("archivePushQueued(pg_wal/..): %v", err)
	}
}
