package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pgbr-dev/pgbr/internal/lock"
	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/storage/posix"
	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// fillBig adds n tables of about 5 MB each (one relation file per table,
// so a backup copies them one after the other) and returns their digest.
func fillBig(t *testing.T, c *testenv.Cluster, n int) string {
	t.Helper()
	for i := 1; i <= n; i++ {
		c.Exec("postgres", fmt.Sprintf("create table big%d with (autovacuum_enabled = off) as select g as id, md5(g::text) || md5((g + %d)::text) as v from generate_series(1, 50000) g", i, i))
	}
	return bigDigest(t, c, n)
}

func bigDigest(t *testing.T, c *testenv.Cluster, n int) string {
	t.Helper()
	var parts []string
	for i := 1; i <= n; i++ {
		parts = append(parts, fmt.Sprintf("select %d as i, count(*) || ':' || md5(string_agg(v, ',' order by id)) as d from big%d", i, i))
	}
	return c.QueryOne("postgres", "select string_agg(d, ',' order by i) from ("+strings.Join(parts, " union all ")+") s")
}

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// killedBackup starts pgbr backup as postgres, waits until the lock file
// reports at least pct hundredths of a percent done, kills the pgbr process
// (pid from the lock file) with SIGKILL and returns what it logged.
func killedBackup(t *testing.T, e *testenv.Env, pct int, args ...string) string {
	t.Helper()
	return killedBackupWith(t, e, e.Pgbr, pct, args...)
}

// killedBackupWith is killedBackup for pgbr or pgBackRest (bin).
func killedBackupWith(t *testing.T, e *testenv.Env, bin string, pct int, args ...string) string {
	t.Helper()
	full := append([]string{"--config=" + e.Conf, "--stanza=" + e.Stanza, "--log-level-console=detail", "backup"}, args...)
	var c *exec.Cmd
	if os.Geteuid() == 0 {
		c = exec.Command("runuser", append([]string{"-u", "postgres", "--", bin}, full...)...)
	} else {
		c = exec.Command(bin, full...)
	}
	c.Dir = e.Dir
	out := &syncBuffer{}
	c.Stdout, c.Stderr = out, out
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	lockFile := filepath.Join(e.Dir, "lock", e.Stanza+"-backup.lock")
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case err := <-done:
			t.Fatalf("backup ended (%v) before reaching %d.%02d%%:\n%s", err, pct/100, pct%100, out.String())
		default:
		}
		if time.Now().After(deadline) {
			c.Process.Kill()
			t.Fatalf("backup did not reach %d.%02d%% in time:\n%s", pct/100, pct%100, out.String())
		}
		var body struct {
			Pct *int `json:"pctCplt"`
			Pid int  `json:"pid"`
		}
		if b, err := os.ReadFile(lockFile); err == nil && json.Unmarshal(b, &body) == nil && body.Pct != nil && *body.Pct >= pct {
			// The process and its children (pgBackRest's local workers),
			// as a crash of the host would stop them.
			kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", body.Pid, body.Pid))
			if err := syscall.Kill(body.Pid, syscall.SIGKILL); err != nil {
				t.Fatalf("kill %d: %v", body.Pid, err)
			}
			for _, k := range strings.Fields(string(kids)) {
				if pid, err := strconv.Atoi(k); err == nil {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			<-done
			// pgBackRest's local worker process holds the lock until it
			// sees its parent gone.
			for wait := time.Now().Add(60 * time.Second); lock.Held(filepath.Dir(lockFile), e.Stanza, lock.Backup); {
				if time.Now().After(wait) {
					t.Fatalf("lock still held 60s after the kill")
				}
				time.Sleep(50 * time.Millisecond)
			}
			return out.String()
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// resumableLabel returns the only backup directory that has a manifest copy
// and no manifest.
func resumableLabel(t *testing.T, e *testenv.Env) string {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(e.Repo, "backup", e.Stanza, "2*"))
	var found []string
	for _, d := range dirs {
		_, errM := os.Stat(filepath.Join(d, "backup.manifest"))
		_, errC := os.Stat(filepath.Join(d, "backup.manifest.copy"))
		if os.IsNotExist(errM) && errC == nil {
			found = append(found, filepath.Base(d))
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one resumable backup directory, found %v\n%s", found, testenv.Tree(filepath.Join(e.Repo, "backup")))
	}
	return found[0]
}

func currentLabels(t *testing.T, e *testenv.Env) []string {
	t.Helper()
	bi, err := repo.LoadBackupInfo(context.Background(), posix.New(e.Repo), e.Stanza, "")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range bi.Current {
		out = append(out, c.Label)
	}
	return out
}

func countLines(out, s string) int { return strings.Count(out, s) }

// loggedBytes sums the manifest sizes of the PGDATA files named in log
// lines "<what><path> (".
func loggedBytes(t *testing.T, e *testenv.Env, m *repo.Manifest, out, what string) uint64 {
	t.Helper()
	var n uint64
	for _, line := range strings.Split(out, "\n") {
		i := strings.Index(line, what)
		if i < 0 {
			continue
		}
		path, _, _ := strings.Cut(line[i+len(what):], " (")
		rel, err := filepath.Rel(e.Cluster.Data, path)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue
		}
		if f, ok := m.FindFile("pg_data/" + rel); ok {
			n += f.Size
		}
	}
	return n
}

// TestBackupResume interrupts a full backup twice with SIGKILL; each next
// backup resumes the same directory, verifies what was stored instead of
// copying it again, and the result restores with pgbr and pgBackRest 2.45.
// Then an interrupted backup that cannot be resumed (other compress-type)
// is deleted.
func TestBackupResume(t *testing.T) {
	testenv.RequirePgBackRest(t)
	e := testenv.NewEnv(t, testenv.EnvOptions{Global: []string{"compress-type=bz2", "process-max=1", "manifest-save-threshold=1"}})
	e.MustRun("stanza-create")
	fillData(t, e)
	const nBig = 12
	wantBig := fillBig(t, e.Cluster, nBig)
	e.Cluster.Exec("postgres", "checkpoint")

	out1 := killedBackup(t, e, 2500, "--type=full")
	label := resumableLabel(t, e)
	if l := currentLabels(t, e); len(l) != 0 {
		t.Fatalf("interrupted backup listed in backup.info: %v", l)
	}
	info := e.MustPgBackRest("info")
	if strings.Contains(info, label) {
		t.Fatalf("pgBackRest info shows the interrupted backup:\n%s", info)
	}
	copied1 := countLines(out1, "backup file ")

	// Second attempt, killed later: it resumes the first one.
	out2 := killedBackup(t, e, 6000, "--type=full")
	if !strings.Contains(out2, "WARN: resumable backup "+label+" of same type exists -- invalid files will be removed then the backup will resume") {
		t.Fatalf("second attempt did not resume %s:\n%s", label, out2)
	}
	resumed2 := countLines(out2, "checksum resumed file ")
	if resumed2 == 0 {
		t.Fatalf("second attempt verified no resumed file:\n%s", out2)
	}
	if l := resumableLabel(t, e); l != label {
		t.Fatalf("resumable label %s, want %s", l, label)
	}

	// Third attempt completes.
	out3 := e.MustRun("--log-level-console=detail", "backup", "--type=full")
	if !strings.Contains(out3, "resumable backup "+label+" of same type exists") || !strings.Contains(out3, "new backup label = "+label) {
		t.Fatalf("third attempt did not complete %s:\n%s", label, out3)
	}
	resumed3 := countLines(out3, "checksum resumed file ")
	copied3 := countLines(out3, "backup file ")
	if resumed3 == 0 || copied3 == 0 {
		t.Fatalf("third attempt: %d resumed, %d copied:\n%s", resumed3, copied3, out3)
	}
	m, err := repo.LoadManifest(context.Background(), posix.New(e.Repo), e.Stanza, label, "")
	if err != nil {
		t.Fatal(err)
	}
	total := len(m.Files)
	var totalBytes uint64
	for i := range m.Files {
		totalBytes += m.Files[i].Size
	}
	t.Logf("files: %d (%d bytes); attempt 1 copied %d before the kill; attempt 2 resumed %d, copied %d; attempt 3 resumed %d (%d bytes), copied %d (%d bytes)",
		total, totalBytes, copied1, resumed2, countLines(out2, "backup file "),
		resumed3, loggedBytes(t, e, m, out3, "checksum resumed file "), copied3, loggedBytes(t, e, m, out3, "backup file "))
	if copied3 >= total {
		t.Fatalf("third attempt copied %d of %d files", copied3, total)
	}
	if l := currentLabels(t, e); len(l) != 1 || l[0] != label {
		t.Fatalf("backup.info lists %v, want [%s]", l, label)
	}
	out := e.MustPgBackRest("verify", "--output=text", "--verbose")
	if !strings.Contains(out, "backup: "+label+", status: valid") {
		t.Fatalf("pgBackRest verify:\n%s", out)
	}

	// A resume refused for another compress-type deletes the directory.
	killedBackup(t, e, 2500, "--type=full")
	stale := resumableLabel(t, e)
	out4 := e.MustRun("backup", "--type=full", "--compress-type=lz4")
	want := "WARN: backup '" + stale + "' cannot be resumed: new compression 'lz4' does not match resumable compression 'bz2'"
	if !strings.Contains(out4, want) {
		t.Fatalf("want %q in:\n%s", want, out4)
	}
	if _, err := os.Stat(filepath.Join(e.Repo, "backup", e.Stanza, stale)); !os.IsNotExist(err) {
		t.Fatalf("directory of the refused backup %s still exists (%v)", stale, err)
	}
	if l := currentLabels(t, e); len(l) != 2 || l[0] != label || l[1] == stale {
		t.Fatalf("backup.info lists %v", l)
	}

	// Both tools restore the resumed backup.
	want1 := digest(t, e.Cluster)
	e.Cluster.Stop()
	for _, tool := range []string{"pgbr", "pgbackrest"} {
		r := restoreWith(t, e, tool, "--set="+label)
		if got := digest(t, r); got != want1 {
			t.Fatalf("%s restore: data %s, want %s", tool, got, want1)
		}
		if got := bigDigest(t, r, nBig); got != wantBig {
			t.Fatalf("%s restore: big tables %s, want %s", tool, got, wantBig)
		}
		r.Stop()
	}
}

// TestBackupNoChanges: an offline incr of an unchanged, stopped cluster
// fails with [055] and leaves its directory, which the next backup of the
// same type resumes (pgbr, then pgBackRest 2.45 on pgbr's directory).
func TestBackupNoChanges(t *testing.T) {
	testenv.RequirePgBackRest(t)
	e := testenv.NewEnv(t, testenv.EnvOptions{})
	e.MustRun("stanza-create")
	e.Cluster.Exec("postgres", "create table t(id int); insert into t select generate_series(1, 1000)")
	e.Cluster.Stop()
	e.MustRun("backup", "--no-online", "--type=full")
	out, code := e.Run("backup", "--no-online", "--type=incr")
	if code != 55 || !strings.Contains(out, "ERROR: [055]: no files have changed since the last backup - this seems unlikely") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	label := resumableLabel(t, e)
	if l := currentLabels(t, e); len(l) != 1 {
		t.Fatalf("backup.info lists %v", l)
	}
	out, code = e.Run("backup", "--no-online", "--type=incr")
	if code != 55 || !strings.Contains(out, "resumable backup "+label+" of same type exists") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	out, code = e.RunPgBackRest("backup", "--no-online", "--type=incr")
	if code != 55 || !strings.Contains(out, "resumable backup "+label+" of same type exists") {
		t.Fatalf("pgBackRest: exit %d:\n%s", code, out)
	}
	if l := resumableLabel(t, e); l != label {
		t.Fatalf("resumable label %s, want %s", l, label)
	}
	// A full backup cannot resume an incr: the directory goes.
	out = e.MustRun("backup", "--no-online", "--type=full")
	if !strings.Contains(out, "backup '"+label+"' cannot be resumed: new backup type 'full' does not match resumable backup type 'incr'") {
		t.Fatalf("output:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(e.Repo, "backup", e.Stanza, label)); !os.IsNotExist(err) {
		t.Fatalf("%s still exists", label)
	}
}

// TestBackupResumeAcrossTools: pgbr resumes a bundled, encrypted full
// backup pgBackRest 2.45 was killed in, and pgBackRest 2.45 resumes one
// pgbr was killed in (large files are resumed with the interrupted
// backup's passphrase, bundles are not); both results restore.
func TestBackupResumeAcrossTools(t *testing.T) {
	testenv.RequirePgBackRest(t)
	e := testenv.NewEnv(t, testenv.EnvOptions{Global: []string{"compress-type=bz2", "process-max=1", "manifest-save-threshold=1", "repo1-bundle=y",
		"repo1-cipher-type=aes-256-cbc", "repo1-cipher-pass=Xk2u8vL0pQ3rT6yW9zB1cE4fH7jM0nP2"}})
	e.MustRun("stanza-create")
	fillData(t, e)
	const nBig = 8
	wantBig := fillBig(t, e.Cluster, nBig)
	e.Cluster.Exec("postgres", "checkpoint")

	killedBackupWith(t, e, testenv.PgBackRest, 4000, "--type=full")
	first := resumableLabel(t, e)
	out := e.MustRun("--log-level-console=detail", "backup", "--type=full")
	if !strings.Contains(out, "resumable backup "+first+" of same type exists") || !strings.Contains(out, "new backup label = "+first) {
		t.Fatalf("pgbr did not resume pgBackRest's %s:\n%s", first, out)
	}
	r1 := countLines(out, "checksum resumed file ")

	// Late enough that pgbr has committed bundles, which are not reused.
	killedBackup(t, e, 9000, "--type=full")
	second := resumableLabel(t, e)
	if b, _ := filepath.Glob(filepath.Join(e.Repo, "backup", e.Stanza, second, "bundle", "*")); len(b) == 0 {
		t.Fatalf("no bundle written before the kill:\n%s", testenv.Tree(filepath.Join(e.Repo, "backup", e.Stanza, second)))
	}
	out = e.MustPgBackRest("--log-level-console=detail", "backup", "--type=full")
	if !strings.Contains(out, "resumable backup "+second+" of same type exists") || !strings.Contains(out, "new backup label = "+second) {
		t.Fatalf("pgBackRest did not resume pgbr's %s:\n%s", second, out)
	}
	r2 := countLines(out, "checksum resumed file ")
	if !strings.Contains(out, "/"+second+"/bundle' from resumed backup") {
		t.Fatalf("pgBackRest kept pgbr's bundles:\n%s", out)
	}
	if strings.Contains(out, "does not have expected checksum") {
		t.Fatalf("pgBackRest rejected a file pgbr stored:\n%s", out)
	}
	t.Logf("pgbr resumed %d files of pgBackRest's backup, pgBackRest resumed %d of pgbr's", r1, r2)
	if r1 == 0 || r2 == 0 {
		t.Fatalf("resumed files: pgbr %d, pgBackRest %d", r1, r2)
	}

	want := digest(t, e.Cluster)
	e.Cluster.Stop()
	for _, c := range []struct{ tool, set string }{{"pgbackrest", first}, {"pgbr", second}} {
		r := restoreWith(t, e, c.tool, "--set="+c.set)
		if got := digest(t, r); got != want {
			t.Fatalf("%s restore of %s: %s, want %s", c.tool, c.set, got, want)
		}
		if got := bigDigest(t, r, nBig); got != wantBig {
			t.Fatalf("%s restore of %s: big tables %s, want %s", c.tool, c.set, got, wantBig)
		}
		r.Stop()
	}
}
