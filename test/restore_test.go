package test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// recoveryBlock returns postgresql.auto.conf with the parts that differ
// between tools by design (binary path, timestamps) normalised.
func recoveryBlock(t *testing.T, data string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(data, "postgresql.auto.conf"))
	if err != nil {
		t.Fatal(err)
	}
	s := regexp.MustCompile(`restore on \d{4}-\d\d-\d\d \d\d:\d\d:\d\d`).ReplaceAllString(string(b), "restore on <time>")
	s = regexp.MustCompile(`restore_command = '\S+ `).ReplaceAllString(s, "restore_command = '<tool> ")
	s = regexp.MustCompile(`--pg1-path=\S+`).ReplaceAllString(s, "--pg1-path=<data>")
	return s
}

func signals(data string) string {
	var out []string
	for _, f := range []string{"recovery.signal", "standby.signal"} {
		if _, err := os.Stat(filepath.Join(data, f)); err == nil {
			out = append(out, f)
		}
	}
	return strings.Join(out, ",")
}

// TestRestoreRecoveryTargets restores one backup with every --type through
// pgbr and through pgBackRest 2.45 and requires the same recovery settings
// and signal files; then starts clusters for the targets whose data can be
// checked.
func TestRestoreRecoveryTargets(t *testing.T) {
	testenv.RequirePgBackRest(t)
	e := testenv.NewEnv(t, testenv.EnvOptions{})
	e.Cluster.Exec("postgres", "create table t(id int)")
	e.MustRun("stanza-create")
	e.MustRun("backup", "--type=full")
	e.Cluster.Exec("postgres", "insert into t select generate_series(1,100)")
	time.Sleep(1100 * time.Millisecond)
	targetTime := e.Cluster.QueryOne("postgres", "select now()::text")
	time.Sleep(1100 * time.Millisecond)
	e.Cluster.Exec("postgres", "select pg_create_restore_point('rp1')")
	lsn := e.Cluster.QueryOne("postgres", "select pg_current_wal_lsn()::text")
	xid := e.Cluster.QueryOne("postgres", "select txid_current()::text")
	e.Cluster.Exec("postgres", "insert into t select generate_series(101,150)")
	e.Cluster.Exec("postgres", "select pg_switch_wal()")
	e.Cluster.Stop()

	cases := []struct {
		name string
		args []string
		rows string // expected count(*) after recovery, "" = do not start
	}{
		{"default", nil, "150"},
		{"immediate", []string{"--type=immediate", "--target-action=promote"}, "0"},
		{"name", []string{"--type=name", "--target=rp1", "--target-action=promote"}, "100"},
		{"time", []string{"--type=time", "--target=" + targetTime, "--target-action=promote"}, "100"},
		{"lsn", []string{"--type=lsn", "--target=" + lsn, "--target-action=promote"}, ""},
		{"xid", []string{"--type=xid", "--target=" + xid, "--target-exclusive"}, ""},
		{"standby", []string{"--type=standby"}, ""},
		{"none", []string{"--type=none"}, ""},
		{"options", []string{"--recovery-option=recovery_min_apply_delay=1s", "--archive-mode=off"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var blocks, sigs [2]string
			var pgbrData string
			for i, tool := range []string{"pgbr", "pgbackrest"} {
				dir := testenv.Dir(t, "restore-"+c.name)
				data := filepath.Join(dir, "pg")
				args := append([]string{"restore", "--pg1-path=" + data}, c.args...)
				if tool == "pgbr" {
					e.MustRun(args...)
					pgbrData = data
				} else {
					e.MustPgBackRest(args...)
				}
				blocks[i] = recoveryBlock(t, data)
				sigs[i] = signals(data)
			}
			if blocks[0] != blocks[1] {
				t.Fatalf("postgresql.auto.conf differs\npgbr:\n%s\npgbackrest:\n%s", blocks[0], blocks[1])
			}
			if sigs[0] != sigs[1] {
				t.Fatalf("signal files differ: pgbr %q, pgbackrest %q", sigs[0], sigs[1])
			}
			if c.rows == "" {
				return
			}
			// Port and socket come from the command line; no archiving.
			f, _ := os.OpenFile(filepath.Join(pgbrData, "postgresql.auto.conf"), os.O_APPEND|os.O_WRONLY, 0)
			f.WriteString("archive_mode = 'off'\n")
			f.Close()
			r := testenv.StartRestored(t, filepath.Dir(pgbrData), pgbrData)
			if got := r.QueryOne("postgres", "select count(*) from t"); got != c.rows {
				t.Fatalf("rows after recovery %s, want %s\n%s", got, c.rows, r.RestoredLog())
			}
		})
	}
}
