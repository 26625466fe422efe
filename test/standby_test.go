package test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/testenv"
)

func pg2Args(c *testenv.Cluster) []string {
	return []string{"--pg2-path=" + c.Data, "--pg2-port=" + strconv.Itoa(c.Port), "--pg2-socket-path=" + c.Socket}
}

// TestBackupStandby: backup-standby=y with pg1 the primary and pg2 a
// streaming standby starts and stops the backup on the primary, waits for
// the standby to replay to the start LSN, copies relation files from the
// standby and the rest from the primary; the restore is identical to the
// primary. prefer falls back to the primary with a warning; a missing,
// stopped or promoted standby, a standby of another cluster and a lagging
// standby are clear errors.
func TestBackupStandby(t *testing.T) {
	t.Parallel()
	e := testenv.NewEnv(t, testenv.EnvOptions{})
	e.MustRun("stanza-create")
	pgbench(t, e.Cluster, "-i", "-s", "1", "-q")
	e.Cluster.Exec("postgres", "create table marker(v text)")

	// No standby configured: y refuses, prefer backs up the primary.
	out, code := e.Run("backup", "--type=full", "--backup-standby=y")
	expectFail(t, out, code, 56, "unable to find standby cluster - cannot proceed", "no standby is configured")
	out = e.MustRun("backup", "--type=full", "--backup-standby=prefer")
	if !strings.Contains(out, "unable to find a standby to perform the backup, using primary instead") {
		t.Fatalf("prefer without a standby did not warn:\n%s", out)
	}
	if m := loadManifest(t, e, backupLabel(t, out), ""); m.Option.BackupStandby {
		t.Fatal("backup of the primary recorded option-backup-standby=true")
	}

	sb := testenv.NewStandby(t, e.Cluster)
	out = e.MustRun(append([]string{"check", "--backup-standby=y"}, pg2Args(sb)...)...)
	if !strings.Contains(out, "standby pg2 '"+sb.Data+"' belongs to the cluster of pg1") {
		t.Fatalf("check with a standby:\n%s", out)
	}
	load := startPgbench(t, e.Cluster)
	logFile := filepath.Join(e.Dir, "log", e.Stanza+"-backup.log")
	os.Remove(logFile)
	var labels []string
	for _, typ := range []string{"full", "incr"} {
		out := e.MustRun(append([]string{"backup", "--type=" + typ, "--backup-standby=y"}, pg2Args(sb)...)...)
		for _, want := range []string{"wait for replay on the standby to reach", "replay on the standby reached", "backup from standby pg2"} {
			if !strings.Contains(out, want) {
				t.Fatalf("%s backup from the standby: no %q in\n%s", typ, want, out)
			}
		}
		label := backupLabel(t, out)
		labels = append(labels, label)
		if m := loadManifest(t, e, label, ""); !m.Option.BackupStandby {
			t.Fatalf("%s backup from the standby recorded option-backup-standby=false", typ)
		}
	}
	if !load.running() {
		t.Fatalf("pgbench stopped during the backups:\n%s", load.out.String())
	}
	load.stop()
	// Which files came from where (the detail log names each source).
	logb, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	log := string(logb)
	for _, want := range []string{
		"backup file " + sb.Data + "/base/",
		"backup file " + sb.Data + "/global/",
		"backup file " + e.Cluster.Data + "/global/pg_control",
		"backup file " + e.Cluster.Data + "/postgresql.conf",
	} {
		if !strings.Contains(log, want) {
			t.Fatalf("backup log has no %q", want)
		}
	}
	for _, never := range []string{"backup file " + e.Cluster.Data + "/base/", "backup file " + sb.Data + "/global/pg_control",
		"backup file " + sb.Data + "/postgresql.conf"} {
		if strings.Contains(log, never) {
			t.Fatalf("backup log has %q", never)
		}
	}

	e.Cluster.Exec("postgres", "insert into marker values ('after the standby backups')")
	want := benchDigest(t, e.Cluster)
	e.ArchiveCaughtUp()
	r := restoreInto(t, e, "pgbr", testenv.Dir(t, "restore-standby"), "--set="+labels[1])
	if got := benchDigest(t, r); got != want {
		t.Fatalf("restore of the backup from the standby differs from the primary\n got %s\nwant %s\n%s", got, want, tailStr(r.RestoredLog()))
	}
	r.Stop()
	// A consistent point of the backup itself (no WAL after it).
	r = restoreInto(t, e, "pgbr", testenv.Dir(t, "restore-standby-immediate"), "--set="+labels[1], "--type=immediate", "--target-action=promote")
	if n := r.QueryOne("postgres", "select count(*) from pgbench_accounts"); n != "100000" {
		t.Fatalf("immediate restore of the standby backup: %s accounts", n)
	}
	r.Stop()

	// A standby that does not replay (paused) lags past archive-timeout.
	sb.Exec("postgres", "select pg_wal_replay_pause()")
	e.Cluster.Exec("postgres", "insert into marker values ('while paused')")
	out, code = e.Run(append([]string{"backup", "--type=incr", "--backup-standby=y", "--archive-timeout=3"}, pg2Args(sb)...)...)
	expectFail(t, out, code, 82, "timeout before standby replayed to", "disable the 'backup-standby' option")
	sb.Exec("postgres", "select pg_wal_replay_resume()")

	// Stopped standby: y fails, prefer falls back to the primary.
	sb.Stop()
	out, code = e.Run(append([]string{"backup", "--type=incr", "--backup-standby=y"}, pg2Args(sb)...)...)
	expectFail(t, out, code, 56, "unable to find standby cluster - cannot proceed", "pg2: [DbConnectError]")
	out = e.MustRun(append([]string{"backup", "--type=incr", "--backup-standby=prefer"}, pg2Args(sb)...)...)
	if !strings.Contains(out, "unable to find a standby to perform the backup, using primary instead") {
		t.Fatalf("prefer with a stopped standby did not warn:\n%s", out)
	}

	// pg2 is a cluster that is not in recovery, then a standby of another
	// cluster (another system id).
	other := testenv.NewCluster(t, testenv.Dir(t, "other"), testenv.ClusterOptions{})
	out, code = e.Run(append([]string{"backup", "--type=incr", "--backup-standby=y"}, pg2Args(other)...)...)
	expectFail(t, out, code, 56, "unable to find standby cluster - cannot proceed", "is not in recovery")
	other.Stop()
	os.WriteFile(filepath.Join(other.Data, "standby.signal"), nil, 0o600)
	testenv.Chown(t, other.Data)
	other.Start()
	for _, mode := range []string{"y", "prefer"} {
		out, code = e.Run(append([]string{"backup", "--type=incr", "--backup-standby=" + mode}, pg2Args(other)...)...)
		expectFail(t, out, code, 58, "belongs to another cluster", "system-id")
	}
	out, code = e.Run(append([]string{"check", "--backup-standby=y"}, pg2Args(other)...)...)
	expectFail(t, out, code, 58, "belongs to another cluster")
	if out := e.MustRun("verify"); !strings.Contains(out, "verify command end: completed successfully") {
		t.Fatalf("verify:\n%s", out)
	}
}

// TestBackupStandby13: backup from a standby where the primary predates
// PostgreSQL 15 (pg_start_backup/pg_stop_backup): an incremental from the
// standby on top of a full of the primary restores to the primary's data.
func TestBackupStandby13(t *testing.T) {
	t.Parallel()
	e := testenv.NewEnv(t, testenv.EnvOptions{Cluster: testenv.ClusterOptions{Major: 13}})
	e.MustRun("stanza-create")
	pgbench(t, e.Cluster, "-i", "-s", "1", "-q")
	e.Cluster.Exec("postgres", "create table marker(v text)")
	e.MustRun("backup", "--type=full")
	sb := testenv.NewStandby(t, e.Cluster)
	if sb.Major != 13 {
		t.Fatalf("standby runs PostgreSQL %d", sb.Major)
	}
	pgbench(t, e.Cluster, "-t", "200", "-c", "2", "-n")
	out := e.MustRun(append([]string{"backup", "--type=incr", "--backup-standby=y"}, pg2Args(sb)...)...)
	if !strings.Contains(out, "replay on the standby reached") {
		t.Fatalf("incr from the PostgreSQL 13 standby:\n%s", out)
	}
	label := backupLabel(t, out)
	if m := loadManifest(t, e, label, ""); !m.Option.BackupStandby || m.DB.Version != "13" {
		t.Fatalf("manifest: backup-standby %v version %s", m.Option.BackupStandby, m.DB.Version)
	}
	e.Cluster.Exec("postgres", "insert into marker values ('after')")
	want := benchDigest(t, e.Cluster)
	e.ArchiveCaughtUp()
	r := restoreInto(t, e, "pgbr", testenv.Dir(t, "restore-standby13"))
	if got := benchDigest(t, r); got != want || r.Major != 13 {
		t.Fatalf("restore of the PostgreSQL 13 standby backup on %d differs\n got %s\nwant %s\n%s", r.Major, got, want, tailStr(r.RestoredLog()))
	}
}
