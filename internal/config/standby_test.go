package config

import (
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/errs"
)

// TestBackupStandbyPrefer: backup-standby is a boolean that also takes
// "prefer" (newer pgBackRest) from the command line, the environment and
// the config file; other booleans do not.
func TestBackupStandbyPrefer(t *testing.T) {
	base := []string{"--stanza=main", "--pg1-path=/pg", "--repo1-path=/repo"}
	conf := writeConf(t, "[global]\nbackup-standby=prefer\n")
	cases := []struct {
		name string
		args []string
		env  []string
		want string
		log  string
	}{
		{"cli prefer", []string{"--no-config", "--backup-standby=prefer"}, nil, "prefer", "--backup-standby=prefer"},
		{"cli y", []string{"--no-config", "--backup-standby=y"}, nil, "y", "--backup-standby"},
		{"cli flag", []string{"--no-config", "--backup-standby"}, nil, "y", "--backup-standby"},
		{"cli n", []string{"--no-config", "--backup-standby=n"}, nil, "n", "--no-backup-standby"},
		{"env prefer", []string{"--no-config"}, []string{"PGBACKREST_BACKUP_STANDBY=prefer"}, "prefer", "--backup-standby=prefer"},
		{"file prefer", []string{"--config=" + conf}, nil, "prefer", "--backup-standby=prefer"},
		{"default", []string{"--no-config"}, nil, "n", ""},
	}
	for _, c := range cases {
		cfg := mustParse(t, append(append(append([]string(nil), c.args...), base...), "backup"), c.env)
		if got := cfg.String(BackupStandby); got != c.want {
			t.Errorf("%s: backup-standby = %q, want %q", c.name, got, c.want)
		}
		if got := cfg.Bool(BackupStandby); got != (c.want != "n") {
			t.Errorf("%s: Bool = %v", c.name, got)
		}
		if c.log != "" && !strings.Contains(cfg.LogParams(), c.log) {
			t.Errorf("%s: log params %q lack %q", c.name, cfg.LogParams(), c.log)
		}
	}
	for _, args := range [][]string{{"--backup-standby=maybe"}, {"--delta=prefer"}} {
		_, err := Parse(append(append([]string{"--no-config"}, args...), append(base, "backup")...), nil)
		if errs.CodeOf(err) != errs.OptionInvalidValue {
			t.Errorf("%v: err %v, want OptionInvalidValueError", args, err)
		}
	}
}
