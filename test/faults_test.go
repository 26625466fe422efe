package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// Fault injection into the real binary (built with -tags pgbr_faults): the
// repository storage fails its Nth call of an operation (error, ENOSPC,
// short write, dropped read, lost reply), restore's Nth syncfs fails.
// Every faulted run either succeeds or fails with a clear error (pgBackRest
// error line, exit code = error code, no panic, no temporary file left),
// the same command run again without faults succeeds, and in the end
// verify passes, info agrees with pgBackRest 2.45 and with the backup
// directories, and a restore has the source data.

// faultPoint is a fault tried at each nth of steps (in order, stopping at
// the first not reached); op "spec" runs the schedule in kind once instead
// (seeded probabilities, slow calls).
type faultPoint struct {
	op, kind string
	steps    []int
}

type faultTally struct {
	runs, injected, succeeded, failed, unreached int
}

type faultRunner struct {
	t     *testing.T
	e     *testenv.Env
	bin   string
	tally map[string]*faultTally
	order []string
}

var (
	errorLine = regexp.MustCompile(`ERROR: \[(\d{3})\]`)
	labelDir  = regexp.MustCompile(`^\d{8}-\d{6}F(_\d{8}-\d{6}[DI])?$`)
)

// run runs the faults binary with the schedule (and restore syncfs fault)
// and returns its output, exit code and the injected faults.
func (f *faultRunner) run(stanza, spec string, syncfs int, args ...string) (string, int, []string) {
	logFile := filepath.Join(f.e.Dir, "faults.log")
	os.Remove(logFile)
	env := []string{"PGBR_FAULTS=" + spec, "PGBR_FAULTS_LOG=" + logFile}
	if syncfs > 0 {
		env = append(env, "PGBR_FAULTS_SYNCFS="+strconv.Itoa(syncfs))
	}
	out, code := testenv.AsPostgres(f.e.Dir, env, f.bin, append([]string{"--config=" + f.e.Conf, "--stanza=" + stanza}, args...)...)
	b, _ := os.ReadFile(logFile)
	var inj []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l != "" {
			inj = append(inj, l)
		}
	}
	return out, code, inj
}

// judge checks one faulted run and counts it; it reports whether a fault
// was injected.
func (f *faultRunner) judge(cmd, what, out string, code int, inj []string) bool {
	t := f.t
	t.Helper()
	tl := f.tally[cmd]
	if tl == nil {
		tl = &faultTally{}
		f.tally[cmd] = tl
		f.order = append(f.order, cmd)
	}
	tl.runs++
	noPanic(t, out)
	if strings.Contains(out, "AssertError") {
		t.Errorf("%s %s: assertion (a caught panic)\n%s", cmd, what, out)
	}
	if len(inj) == 0 {
		tl.unreached++
		if code != 0 {
			t.Errorf("%s %s: failed (exit %d) without an injected fault\n%s", cmd, what, code, out)
		}
		return false
	}
	tl.injected += len(inj)
	if code == 0 {
		tl.succeeded++
	} else {
		tl.failed++
		m := errorLine.FindStringSubmatch(out)
		if m == nil {
			t.Errorf("%s %s: exit %d without an error line\n%s", cmd, what, code, out)
		} else if n, _ := strconv.Atoi(m[1]); n != code {
			t.Errorf("%s %s: exit %d but error [%s]\n%s", cmd, what, code, m[1], out)
		}
		if !strings.Contains(out, "injected") && !strings.Contains(out, "unexpected EOF") && !strings.Contains(out, "input/output error") {
			t.Errorf("%s %s: the error does not name the failure\n%s", cmd, what, out)
		}
	}
	f.noTemp(cmd + " " + what)
	return true
}

// noTemp fails when a temporary file is left in the repository (in
// backup/<stanza> and archive/push, which only the faulted runs write:
// PostgreSQL's archiver may be writing to archive/main meanwhile).
func (f *faultRunner) noTemp(what string) {
	var left []string
	walk := func(root string) {
		filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
			if err == nil && strings.HasSuffix(p, ".tmp") {
				left = append(left, p)
			}
			return nil
		})
	}
	walk(filepath.Join(f.e.Repo, "backup", f.e.Stanza))
	walk(filepath.Join(f.e.Repo, "archive", "push"))
	if len(left) > 0 {
		f.t.Errorf("%s: temporary files left in the repository: %v", what, left)
	}
}

// loop runs cmd under each fault point (nth steps until one is not
// reached); after each run, again runs the clean command (rerun) which must
// succeed. before prepares each run.
func (f *faultRunner) loop(cmd, stanza string, points []faultPoint, before func(), args func() []string, rerun func(out string, code int)) {
	for _, p := range points {
		specs := []string{p.kind}
		if p.op != "spec" {
			specs = nil
			for _, n := range p.steps {
				specs = append(specs, fmt.Sprintf("op=%s,nth=%d,err=%s", p.op, n, p.kind))
			}
		}
		for _, spec := range specs {
			if before != nil {
				before()
			}
			t0 := time.Now()
			out, code, inj := f.run(stanza, spec, 0, args()...)
			t1 := time.Now()
			hit := f.judge(cmd, spec, out, code, inj)
			rerun(out, code)
			f.t.Logf("%s %s: exit %d, %d injected (%v + rerun %v)", cmd, spec, code, len(inj), t1.Sub(t0).Round(time.Millisecond), time.Since(t1).Round(time.Millisecond))
			if f.t.Failed() {
				f.t.FailNow()
			}
			if !hit {
				break
			}
		}
	}
}

func steps(n ...int) []int { return n }

func TestFaults(t *testing.T) {
	t.Parallel()
	start := time.Now()
	testenv.RequirePgBackRest(t)
	e := testenv.NewEnv(t, testenv.EnvOptions{Global: []string{"process-max=2", "compress-type=gz", "compress-level=1"},
		Cluster: testenv.ClusterOptions{InitdbArgs: []string{"--wal-segsize=1"}}})
	// Stanza "push" (same cluster) receives the faulted archive-push runs.
	addPush := func() {
		conf, _ := os.ReadFile(e.Conf)
		if !bytes.Contains(conf, []byte("[push]")) {
			os.WriteFile(e.Conf, append(conf, fmt.Sprintf("\n[push]\npg1-path=%s\npg1-socket-path=%s\npg1-port=%d\n", e.Cluster.Data, e.Cluster.Socket, e.Cluster.Port)...), 0o644)
		}
	}
	addPush()
	fillData(t, e)
	e.MustRun("stanza-create")
	run := func(stanza string, args ...string) (string, int) {
		return testenv.AsPostgres(e.Dir, nil, e.Pgbr, append([]string{"--config=" + e.Conf, "--stanza=" + stanza}, args...)...)
	}
	mustRun := func(what, stanza string, args ...string) string {
		t.Helper()
		out, code := run(stanza, args...)
		if code != 0 {
			t.Fatalf("%s: clean %v after the fault: exit %d\n%s", what, args, code, out)
		}
		noPanic(t, out)
		return out
	}
	if out, code := run("push", "stanza-create"); code != 0 {
		t.Fatalf("stanza-create push: %s", out)
	}
	e.MustRun("backup", "--type=full")
	f := &faultRunner{t: t, e: e, bin: testenv.PgbrFaults(t), tally: map[string]*faultTally{}}
	defer func() {
		var report []string
		for _, cmd := range f.order {
			tl := f.tally[cmd]
			report = append(report, fmt.Sprintf("%s: %d runs, %d faults injected, %d succeeded, %d failed cleanly, %d not reached",
				cmd, tl.runs, tl.injected, tl.succeeded, tl.failed, tl.unreached))
		}
		t.Logf("fault runs (%s):\n%s", time.Since(start).Round(time.Second), strings.Join(report, "\n"))
	}()
	change := 0
	touch := func() {
		change++
		e.Cluster.Exec("postgres", fmt.Sprintf("insert into t select g, md5(g::text) from generate_series(%d, %d) g", 100000+change*1000, 100000+change*1000+999))
	}

	// backup: incremental runs, then full ones.
	backupRerun := func(typ string) func(string, int) {
		return func(out string, code int) { mustRun("backup "+typ, e.Stanza, "backup", "--type="+typ) }
	}
	incrArgs := func() []string { return []string{"backup", "--type=incr"} }
	f.loop("backup incr", e.Stanza, []faultPoint{
		{"commit", "error", steps(1, 9)},
		{"commit", "after", steps(2)},
		{"write", "enospc", steps(1)},
		{"read", "drop", steps(1)},
		{"list", "error", steps(5)},
		{"stat", "error", steps(1)},
		{"sync", "error", steps(1)},
		{"spec", "op=write,prob=0.05,err=enospc,seed=1;op=open,prob=0.2,err=drop", nil},
	}, touch, incrArgs, backupRerun("incr"))
	f.loop("backup full", e.Stanza, []faultPoint{
		{"commit", "enospc", steps(20)},
		{"write", "short", steps(300)},
	}, touch, func() []string { return []string{"backup", "--type=full"} }, backupRerun("full"))
	t.Logf("backup loops done at %v", time.Since(start).Round(time.Second))

	// archive-push: a segment PostgreSQL archived (to stanza main) pushed to
	// stanza push; the clean rerun must store it intact.
	walDir := filepath.Join(e.Dir, "wal")
	os.MkdirAll(walDir, 0o700)
	testenv.Chown(t, walDir)
	stored, _ := filepath.Glob(filepath.Join(e.Repo, "archive", e.Stanza, "15-1", "0000000100000000", "*"))
	var segs []string
	for _, p := range stored {
		if n := filepath.Base(p); len(n) > 24 && n[24] == '-' && len(segs) < 10 {
			segs = append(segs, n[:24])
			mustRun("archive-get", e.Stanza, "archive-get", n[:24], filepath.Join(walDir, n[:24]))
		}
	}
	if len(segs) < 10 {
		t.Fatalf("only %d archived segments", len(segs))
	}
	segIdx := -1
	seg := func() string { return segs[segIdx%len(segs)] }
	f.loop("archive-push", "push", []faultPoint{
		{"create", "error", steps(1)},
		{"write", "short", steps(1)},
		{"write", "enospc", steps(2)},
		{"commit", "error", steps(1)},
		{"commit", "after", steps(1)},
		{"open", "error", steps(1)},
		{"read", "drop", steps(1)},
		{"list", "error", steps(1)},
		{"spec", "op=commit,nth=1,err=slow,delay=200ms;op=open,nth=1,err=slow", nil},
	}, func() { segIdx++ }, func() []string { return []string{"archive-push", filepath.Join(walDir, seg())} },
		func(out string, code int) {
			mustRun("archive-push", "push", "archive-push", filepath.Join(walDir, seg()))
			got := filepath.Join(e.Dir, "got")
			mustRun("archive-get", "push", "archive-get", seg(), got)
			a, _ := os.ReadFile(got)
			b, err := os.ReadFile(filepath.Join(walDir, seg()))
			if err != nil || !bytes.Equal(a, b) {
				t.Fatalf("segment %s from the archive differs from pg_wal (%d vs %d bytes, %v)", seg(), len(a), len(b), err)
			}
			os.Remove(got)
		})

	// expire: ad hoc, the newest incremental backup each time; the clean
	// rerun finishes it (or, when the faulted run already dropped it from
	// backup.info, a plain expire removes what is left of it).
	labels := func() []string {
		out, code := run(e.Stanza, "info", "--output=json", "--log-level-console=off")
		var v []struct {
			Backup []struct {
				Label string `json:"label"`
			} `json:"backup"`
		}
		if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil || len(v) != 1 {
			t.Fatalf("info: exit %d, %v\n%s", code, err, out)
		}
		var l []string
		for _, b := range v[0].Backup {
			l = append(l, b.Label)
		}
		return l
	}
	var label string
	f.loop("expire", e.Stanza, []faultPoint{
		{"remove", "error", steps(1, 3)},
		{"remove", "after", steps(1)},
		{"commit", "error", steps(1, 2)},
		{"commit", "after", steps(1)},
		{"list", "error", steps(1)},
	}, func() {
		labels := labels()
		label = ""
		for i := len(labels) - 1; i >= 0 && label == ""; i-- {
			if strings.HasSuffix(labels[i], "I") {
				label = labels[i]
			}
		}
		if label == "" {
			t.Fatal("no incremental backup left to expire")
		}
	}, func() []string { return []string{"expire", "--set=" + label} }, func(out string, code int) {
		var more string
		for _, l := range labels() {
			if l == label {
				more = mustRun("expire", e.Stanza, "expire", "--set="+label)
			}
		}
		more += mustRun("expire", e.Stanza, "expire")
		// A backup whose removal failed before anything was removed is
		// complete and may come back into backup.info (as with pgBackRest);
		// verify checks it at the end. Otherwise it must be gone.
		back := false
		for _, l := range labels() {
			back = back || l == label
		}
		if _, err := os.Stat(filepath.Join(e.Repo, "backup", e.Stanza, label)); !back && !os.IsNotExist(err) {
			t.Fatalf("expired backup %s still in the repository (%v)\nfaulted run:\n%s\nclean runs:\n%s\ninfo: %v", label, err, out, more, labels())
		}
	})
	// Retention: the older full backups and their WAL go.
	f.loop("expire", e.Stanza, []faultPoint{{"remove", "error", steps(3)}}, nil,
		func() []string { return []string{"expire", "--repo1-retention-full=2"} },
		func(string, int) { mustRun("expire", e.Stanza, "expire", "--repo1-retention-full=2") })

	// restore: into the same directory with --delta each time (tablespace
	// on its own tmpfs mount, so restore flushes two filesystems); every
	// clean rerun gives exactly the files of a clean restore.
	rdir := testenv.Dir(t, "faults-restore")
	data, ts := filepath.Join(rdir, "pg"), filepath.Join(rdir, "ts")
	os.MkdirAll(ts, 0o700)
	if err := unix.Mount("tmpfs", ts, "tmpfs", 0, "size=64m,mode=0700"); err != nil {
		t.Fatalf("mount tmpfs for the restored tablespace (the test runs as root): %v", err)
	}
	t.Cleanup(func() { unix.Unmount(ts, unix.MNT_DETACH) })
	testenv.Chown(t, rdir)
	restoreArgs := []string{"restore", "--delta", "--type=preserve", "--pg1-path=" + data, "--tablespace-map-all=" + ts}
	mustRun("restore", e.Stanza, restoreArgs...)
	want := testenv.TreeDigest(t, data) + testenv.TreeDigest(t, ts)
	// Each faulted restore starts from nothing (a delta restore over a
	// complete directory would read nothing from the repository).
	wipe := func() {
		os.RemoveAll(data)
		ents, _ := os.ReadDir(ts)
		for _, en := range ents {
			os.RemoveAll(filepath.Join(ts, en.Name()))
		}
	}
	restoreRerun := func(out string, code int) {
		if code != 0 {
			if _, err := os.Stat(filepath.Join(data, "global", "pg_control")); err == nil {
				t.Fatalf("failed restore left global/pg_control\n%s", out)
			}
		}
		mustRun("restore", e.Stanza, restoreArgs...)
		if got := testenv.TreeDigest(t, data) + testenv.TreeDigest(t, ts); got != want {
			t.Fatalf("restore after a fault differs from a clean restore")
		}
	}
	f.loop("restore", e.Stanza, []faultPoint{
		{"open", "error", steps(1, 9)},
		{"read", "drop", steps(1, 100)},
		{"spec", "op=read,prob=0.01,err=drop,seed=3", nil},
	}, wipe, func() []string { return restoreArgs }, restoreRerun)
	for _, n := range []int{1, 2} {
		wipe()
		out, code, inj := f.run(e.Stanza, "", n, restoreArgs...)
		hit := f.judge("restore", fmt.Sprintf("syncfs nth=%d", n), out, code, inj)
		if hit && code == 0 {
			t.Errorf("restore succeeded after a failed syncfs\n%s", out)
		}
		if !hit {
			t.Errorf("restore flushed fewer than 2 filesystems (PGDATA, tablespace on tmpfs)")
		}
		restoreRerun(out, code)
	}

	// The end: verify passes, info agrees with pgBackRest 2.45 and with the
	// backup directories, a final backup restores the source data.
	touch()
	sum := digest(t, e.Cluster)
	e.MustRun("backup", "--type=incr")
	if out, code := run(e.Stanza, "verify"); code != 0 {
		t.Fatalf("verify after the faults: exit %d\n%s", code, out)
	}
	final := backupLabels(t, e)
	ents, _ := os.ReadDir(filepath.Join(e.Repo, "backup", e.Stanza))
	var dirs []string
	for _, en := range ents {
		if en.IsDir() && labelDir.MatchString(en.Name()) {
			dirs = append(dirs, en.Name())
		}
	}
	if strings.Join(dirs, " ") != strings.Join(final, " ") {
		t.Fatalf("backup directories %v, info lists %v", dirs, final)
	}
	c := restoreWith(t, e, "pgbr", "--type=immediate", "--target-action=promote")
	if got := digest(t, c); got != sum {
		t.Fatalf("restored data %s, source %s", got, sum)
	}

}
