package restore

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/storage/local"
)

func TestRecoveryBlock(t *testing.T) {
	for _, c := range []struct {
		s    Recovery
		want []string
	}{
		{Recovery{Type: "default", RestoreCommand: "rc"}, []string{"restore_command = 'rc'"}},
		{Recovery{Type: "immediate", RestoreCommand: "rc", TargetAction: "promote"},
			[]string{"restore_command = 'rc'", "recovery_target = 'immediate'", "recovery_target_action = 'promote'",
				"recovery_target_timeline = 'current'"}},
		{Recovery{Type: "time", Target: "2026-12-06 10:00:00+00", TargetExcl: true, RestoreCommand: "rc", ArchiveModeOff: true},
			[]string{"archive_mode = 'off'", "restore_command = 'rc'", "recovery_target_time = '2026-12-06 10:00:00+00'",
				"recovery_target_inclusive = 'false'"}},
		{Recovery{Type: "standby", RestoreCommand: "rc", TargetAction: "promote", TargetTimeline: "latest",
			Options: [][2]string{{"primary-conninfo", "host=x"}, {"restore_command", "mine"}}},
			[]string{"primary_conninfo = 'host=x'", "restore_command = 'mine'", "recovery_target_timeline = 'latest'"}},
	} {
		got, err := recoveryBlock(c.s)
		if err != nil || strings.Join(got, "\n") != strings.Join(c.want, "\n") {
			t.Errorf("%+v:\n got %q %v\nwant %q", c.s, got, err, c.want)
		}
	}
	if _, err := recoveryBlock(Recovery{Type: "default", Options: [][2]string{{"standby_mode", "on"}}}); errs.CodeOf(err) != errs.OptionInvalid {
		t.Errorf("standby_mode: %v", err)
	}
}

// The signal file each type leaves, and preserve touching nothing.
func TestWriteRecoverySignals(t *testing.T) {
	for _, c := range []struct {
		typ    string
		online bool
		signal string // "" none
		auto   bool
	}{
		{"default", true, "recovery.signal", true},
		{"standby", true, "standby.signal", true},
		{"none", false, "", true},
		{"none", true, "recovery.signal", true},
		{"preserve", true, "", false},
	} {
		dir := t.TempDir()
		root, err := local.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		rr := &restoreRun{pg: root, fileSync: func(*os.File) error { return nil }}
		s := Recovery{Type: c.typ, Online: c.online, RestoreCommand: "rc", FileMode: 0o600, UID: -1, GID: -1, Now: time.Unix(0, 0)}
		if err := rr.writeRecovery(s); err != nil {
			t.Fatal(err)
		}
		root.Close()
		ents, _ := os.ReadDir(dir)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		want := []string{}
		if c.auto {
			want = append(want, "postgresql.auto.conf")
		}
		if c.signal != "" {
			want = append(want, c.signal)
		}
		if strings.Join(names, ",") != strings.Join(want, ",") {
			t.Errorf("type %s online %v: %v, want %v", c.typ, c.online, names, want)
		}
		if c.auto {
			b, _ := os.ReadFile(filepath.Join(dir, "postgresql.auto.conf"))
			if has := strings.Contains(string(b), "restore_command"); has != (c.typ != "none") {
				t.Errorf("type %s: postgresql.auto.conf %q", c.typ, b)
			}
		}
	}
}
