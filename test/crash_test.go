package test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// Crash consistency (issue #8): pgbr is killed with SIGKILL at random
// moments of backup (full, diff, incr; bundled or not; plain and encrypted
// repository), archive-push under a running workload (synchronous, and
// asynchronous with a spool), asynchronous archive-get, expire and restore.
// After every kill the same command run again succeeds and `pgbr verify`
// exits 0: for backup and expire both right after the kill and after the
// rerun (backup: verify --set of the new backup, the whole repository at the
// end of the phase); for archive-push after PostgreSQL pushed the killed
// segments again; for archive-get and restore, which do not write to the
// repository, once per phase. At the end the latest backup of each
// repository restores and the restored cluster replays (with the
// asynchronous archive-get) to the source's data.
//
// A kill point is a SIGKILL that reached the running process: for commands
// the test starts, the process died of SIGKILL; for the archive-push
// processes PostgreSQL's archiver starts, the process was running (not a
// zombie) when the signal was sent.
//
// Kill delays are drawn from a seeded generator and spread over the
// duration of an unkilled run of the same command; the seed and every
// delay are logged. PGBR_CRASH_SEED=<n> replays a run's choices (process
// timing still varies).

// crashKill counts, per command, kills scheduled (tried), kills delivered
// while the process ran (kill points) and kill points after which the rerun
// and verify succeeded (survived).
type crashKill struct{ tried, killed, survived int }

type crashRun struct {
	t        *testing.T
	e        *testenv.Env
	repo2    string
	archiver int // pid of PostgreSQL's archiver last seen
	rng      *rand.Rand
	uid      uint32
	gid      uint32
	mu       sync.Mutex
	stats    map[string]*crashKill
	order    []string

	verifies   int
	verifyTime time.Duration
}

func (c *crashRun) stat(cmd string) *crashKill {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.stats[cmd]
	if !ok {
		s = &crashKill{}
		c.stats[cmd] = s
		c.order = append(c.order, cmd)
	}
	return s
}

// delay draws a kill delay in [2%, 100%] of d.
func (c *crashRun) delay(d time.Duration) time.Duration {
	return d/50 + time.Duration(c.rng.Int64N(int64(d-d/50)+1))
}

// command builds a pgbr command run directly as postgres (no runuser in
// between, so a SIGKILL reaches pgbr itself) in its own process group.
func (c *crashRun) command(out *syncBuffer, args ...string) *exec.Cmd {
	cmd := exec.Command(c.e.Pgbr, append([]string{"--config=" + c.e.Conf, "--stanza=" + c.e.Stanza}, args...)...)
	cmd.Dir = c.e.Dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: &syscall.Credential{Uid: c.uid, Gid: c.gid, Groups: []uint32{}}}
	return cmd
}

// run runs pgbr to the end and returns output, exit code and duration.
func (c *crashRun) run(args ...string) (string, int, time.Duration) {
	out := &syncBuffer{}
	cmd := c.command(out, args...)
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return out.String(), ee.ExitCode(), d
		}
		c.t.Fatalf("pgbr %v: %v", args, err)
	}
	return out.String(), 0, d
}

func (c *crashRun) mustRun(args ...string) (string, time.Duration) {
	c.t.Helper()
	out, code, d := c.run(args...)
	if code != 0 {
		c.t.Fatalf("pgbr %v: exit %d\n%s", args, code, out)
	}
	return out, d
}

// killed starts pgbr, sends SIGKILL to its process group after delay
// unless it has ended, and reports whether the kill reached the running
// process (it died of SIGKILL). also, when set, is called at the kill
// moment to kill further processes (asynchronous workers); it reports
// whether it killed one.
func (c *crashRun) killed(what string, delay time.Duration, also func() bool, args ...string) (string, bool) {
	c.t.Helper()
	st := c.stat(what)
	st.tried++
	out := &syncBuffer{}
	cmd := c.command(out, args...)
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	extra := false
	select {
	case err = <-done:
	case <-time.After(delay):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if also != nil {
			extra = also()
		}
		err = <-done
	}
	hit := extra
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
		hit = true
	}
	if hit {
		st.killed++
	}
	c.t.Logf("%s: kill after %v: %s (exit: %v)", what, delay, map[bool]string{true: "delivered", false: "missed, command had ended"}[hit], err)
	return out.String(), hit
}

// verify runs pgbr verify on one repository and fails on a non-zero exit.
func (c *crashRun) verify(repoKey int, after string, extra ...string) {
	c.t.Helper()
	out, code, d := c.run(append([]string{"verify", fmt.Sprintf("--repo=%d", repoKey), "--log-level-console=warn"}, extra...)...)
	if code != 0 {
		detail, _, _ := c.run(append([]string{"verify", fmt.Sprintf("--repo=%d", repoKey), "--log-level-console=detail", "--output=text"}, extra...)...)
		c.t.Fatalf("verify %v of repo%d after %s: exit %d\n%s\nagain, in detail:\n%s\nrepository:\n%s", extra, repoKey, after, code, out, tail(detail, 6000),
			testenv.Tree(filepath.Join(c.repoPath(repoKey), "backup")))
	}
	c.mu.Lock()
	c.verifyTime += d
	c.verifies++
	c.mu.Unlock()
}

func (c *crashRun) repoPath(k int) string {
	if k == 1 {
		return c.e.Repo
	}
	return c.repo2
}

var pgbrVerifyErrors = regexp.MustCompile(`(missing|checksum invalid|size invalid|other): [1-9]|status: error`)

// pgBackRestVerify has pgBackRest 2.45 verify a repository: what pgbr left
// after the kills is a valid repository for it too.
func (c *crashRun) pgBackRestVerify(repoKey int, after string) {
	c.t.Helper()
	out := c.e.MustPgBackRest("verify", fmt.Sprintf("--repo=%d", repoKey), "--output=text", "--verbose")
	if pgbrVerifyErrors.MatchString(out) || !strings.Contains(out, "stanza: main") {
		c.t.Fatalf("pgBackRest verify of repo%d after %s:\n%s", repoKey, after, out)
	}
}

// survived records a kill point whose rerun and verify succeeded.
func (c *crashRun) survived(what string) { c.stat(what).survived++ }

// procArgs returns a process's argv (nil when gone).
func procArgs(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}

// procRunning reports whether pid is alive and not a zombie.
func procRunning(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && i+2 < len(b) && b[i+2] != 'Z'
}

func procChildren(pid int) []int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// isPgbr reports whether pid runs this test's pgbr with the given command
// word (e.g. "archive-push" or "archive-push:async").
func (c *crashRun) isPgbr(pid int, word string) bool {
	a := procArgs(pid)
	return len(a) > 0 && a[0] == c.e.Pgbr && slices.Contains(a, "--config="+c.e.Conf) && slices.Contains(a, word)
}

// killPid kills pid when it still runs this test's pgbr command word and
// reports whether the kill reached it running.
func (c *crashRun) killPid(pid int, word string) bool {
	if pid <= 0 || !c.isPgbr(pid, word) || !procRunning(pid) {
		return false
	}
	return syscall.Kill(pid, syscall.SIGKILL) == nil
}

// archiverPush returns the pid of the pgbr archive-push PostgreSQL's
// archiver runs now (child or grandchild through sh), or 0. The archiver
// exits when its command dies of a signal and the postmaster starts a new
// one, so it is looked up each time among the postmaster's children.
func (c *crashRun) archiverPush() int {
	isArchiver := func(pid int) bool {
		a := procArgs(pid)
		return len(a) > 0 && strings.HasPrefix(a[0], "postgres: archiver")
	}
	archiver := c.archiver
	if archiver == 0 || !isArchiver(archiver) {
		archiver = 0
		b, _ := os.ReadFile(filepath.Join(c.e.Cluster.Data, "postmaster.pid"))
		first, _, _ := strings.Cut(string(b), "\n")
		postmaster, _ := strconv.Atoi(strings.TrimSpace(first))
		for _, ch := range procChildren(postmaster) {
			if isArchiver(ch) {
				archiver = ch
			}
		}
		c.archiver = archiver
		if archiver == 0 {
			return 0
		}
	}
	for _, ch := range procChildren(archiver) {
		if c.isPgbr(ch, "archive-push") {
			return ch
		}
		for _, g := range procChildren(ch) {
			if c.isPgbr(g, "archive-push") {
				return g
			}
		}
	}
	return 0
}

// asyncPid returns the pid in the archive lock file when it runs the
// asynchronous pgbr command word, or 0.
func (c *crashRun) asyncPid(word string) int {
	b, err := os.ReadFile(filepath.Join(c.e.Dir, "lock", c.e.Stanza+"-archive.lock"))
	if err != nil {
		return 0
	}
	var body struct {
		Pid int `json:"pid"`
	}
	if json.Unmarshal(b, &body) != nil || !c.isPgbr(body.Pid, word) || !procRunning(body.Pid) {
		return 0
	}
	return body.Pid
}

// waitGone waits until pid has ended (at most 10s) and returns how long.
func waitGone(pid int) time.Duration {
	start := time.Now()
	for procRunning(pid) && time.Since(start) < 10*time.Second {
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

// workload inserts rows and switches WAL until stopped.
type workload struct {
	stop chan struct{}
	done chan struct{}
	rows atomic.Int64
	err  error
}

func startWorkload(t *testing.T, e *testenv.Env, rows int64) *workload {
	conn := e.Cluster.Conn("postgres")
	w := &workload{stop: make(chan struct{}), done: make(chan struct{})}
	w.rows.Store(rows)
	go func() {
		defer close(w.done)
		defer conn.Close(context.Background())
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			n := w.rows.Load()
			if _, err := conn.Exec(context.Background(), fmt.Sprintf(
				"insert into w select g, md5(g::text) from generate_series(%d, %d) g", n+1, n+100)); err != nil {
				w.err = err
				return
			}
			w.rows.Add(100)
			if i%16 == 15 {
				if _, err := conn.Exec(context.Background(), "select pg_switch_wal()"); err != nil {
					w.err = err
					return
				}
			}
		}
	}()
	return w
}

func (w *workload) Stop(t *testing.T) {
	t.Helper()
	close(w.stop)
	<-w.done
	if w.err != nil {
		t.Fatalf("workload: %v", w.err)
	}
}

func crashDigest(c *testenv.Cluster) string {
	return c.QueryOne("postgres", digestSQL+"t") + "/" + c.QueryOne("postgres", digestSQL+"w") + "/" +
		c.QueryOne("postgres", "select count(*) from w")
}

// archivedSegments lists "<segment>-<sha1>" of every segment in repo1's
// archive.
func archivedSegments(t *testing.T, e *testenv.Env) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(e.Repo, "archive", e.Stanza, "*", "*", "*"))
	var out []string
	for _, f := range files {
		b := filepath.Base(f)
		if len(b) >= 65 && !strings.Contains(b, ".pgbackrest.tmp") && !strings.Contains(b, ".partial") {
			out = append(out, b[:65])
		}
	}
	sort.Strings(out)
	return out
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha1.Sum(b)
	return hex.EncodeToString(s[:])
}

func TestCrashConsistency(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("PGBR_CRASH_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("PGBR_CRASH_SEED=%q: %v", s, err)
		}
		seed = n
	}
	t.Logf("seed %d (rerun with PGBR_CRASH_SEED=%d)", seed, seed)
	began := time.Now()

	// repo1 plain, repo2 encrypted; 1 MB WAL segments keep rounds short.
	repo2 := testenv.Dir(t, "crash-repo2")
	e := testenv.NewEnv(t, testenv.EnvOptions{
		Global: []string{"repo2-path=" + repo2, "repo2-cipher-type=aes-256-cbc",
			"repo2-cipher-pass=Crash8uJ2xQ5nV7pL1dR4tY6wZ9aC3eG", "repo2-retention-full=99", "compress-type=lz4"},
		Cluster: testenv.ClusterOptions{InitdbArgs: []string{"--wal-segsize=1"}, Conf: "checkpoint_timeout = 30min\nmax_wal_size = 512MB\n"},
	})
	uid, gid := pgIDs(t)
	c := &crashRun{t: t, e: e, repo2: repo2, rng: rand.New(rand.NewPCG(seed, 0x8c7a5)), uid: uid, gid: gid, stats: map[string]*crashKill{}}
	defer func() {
		var b strings.Builder
		total := 0
		for _, k := range c.order {
			s := c.stats[k]
			fmt.Fprintf(&b, "\n  %-22s tried %3d  kill points %3d  survived %3d", k, s.tried, s.killed, s.survived)
			total += s.killed
		}
		t.Logf("seed %d, %d kill points in %v (%d verify runs took %v):%s", seed, total, time.Since(began).Round(time.Millisecond),
			c.verifies, c.verifyTime.Round(time.Millisecond), b.String())
	}()

	e.Cluster.Exec("postgres", "create table t(id int primary key, v text); insert into t select g, md5(g::text) from generate_series(1,10000) g")
	e.Cluster.Exec("postgres", "create table w(id int primary key, v text)")
	// PostgreSQL's archiver exits when its archive_command dies of a signal
	// (exit status above 128) and the postmaster may take up to a minute to
	// start a new one; "|| exit 1" turns a killed push into a failure the
	// archiver retries one second later.
	e.Cluster.Exec("postgres", fmt.Sprintf("alter system set archive_command = '%s --config=%s --stanza=%s archive-push %%p || exit 1'",
		e.Pgbr, e.Conf, e.Stanza))
	e.Cluster.Exec("postgres", "select pg_reload_conf()")
	c.mustRun("stanza-create")
	wl := startWorkload(t, e, 0)

	phase := time.Now()
	lap := func(name string) {
		t.Logf("phase %s: %v", name, time.Since(phase).Round(time.Millisecond))
		phase = time.Now()
	}
	c.phaseArchivePush(9)
	wl.Stop(t)
	e.ArchiveCaughtUp()
	lap("archive-push")
	c.phaseBackup(12)
	lap("backup")
	spool := testenv.Dir(t, "crash-spool")
	e.Global = append(e.Global, "archive-async=y", "spool-path="+spool, "process-max=2")
	e.WriteConf()
	wl = startWorkload(t, e, wl.rows.Load())
	c.phaseArchivePushAsync(7)
	wl.Stop(t)
	lap("archive-push async")

	// The source stops (archiving its last segment) and holds the data
	// the restores must reach.
	e.Cluster.Exec("postgres", "insert into t select g, 'after the last backup' from generate_series(10001, 10500) g")
	e.Cluster.Exec("postgres", "select pg_switch_wal()")
	want := crashDigest(e.Cluster)
	e.Cluster.Stop()

	c.phaseArchiveGetAsync(9)
	lap("archive-get async")
	c.phaseExpire(9)
	lap("expire")
	dirs := c.phaseRestore(9)
	lap("restore")

	for k, dir := range dirs {
		r := testenv.StartRestored(t, dir, filepath.Join(dir, "pg"))
		if got := crashDigest(r); got != want {
			t.Fatalf("repo%d: restored cluster data %s, source %s\n%s", k, got, want, r.RestoredLog())
		}
		r.Stop()
	}
	lap("start restored clusters")
	total := 0
	for _, s := range c.stats {
		total += s.killed
		if s.survived != s.killed {
			t.Fatalf("a kill point was not survived: %+v", c.stats)
		}
	}
	if total < 50 {
		t.Fatalf("only %d kill points delivered (want at least 50)", total)
	}
}

func pgIDs(t *testing.T) (uint32, uint32) {
	t.Helper()
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uint32(uid), uint32(gid)
}

// phaseArchivePush kills the archive-push commands PostgreSQL's archiver
// runs while the workload writes WAL. PostgreSQL retries a failed
// archive_command: the same segment is pushed again and must succeed. Each
// killed segment then pushed again by hand succeeds, and a file of the same
// name with other content is refused with ArchiveDuplicateError as
// pgBackRest does.
func (c *crashRun) phaseArchivePush(target int) {
	t, e := c.t, c.e
	const what = "archive-push"
	var durs []time.Duration
	var segs []string
	seen := map[int]bool{}
	deadline := time.Now().Add(60 * time.Second)
	for c.stat(what).killed < target {
		if time.Now().After(deadline) {
			t.Fatalf("archive-push: only %d kill points in 60s\n%s", c.stat(what).killed, tail(e.Cluster.Log(), 3000))
		}
		pid := c.archiverPush()
		if pid == 0 || seen[pid] {
			time.Sleep(time.Millisecond)
			continue
		}
		seen[pid] = true
		args := procArgs(pid)
		seg := filepath.Base(args[len(args)-1])
		if len(durs) < 3 {
			// Unkilled pushes give the typical duration.
			durs = append(durs, waitGone(pid))
			continue
		}
		slices.Sort(durs)
		d := c.delay(durs[1])
		c.stat(what).tried++
		time.Sleep(d)
		hit := c.killPid(pid, "archive-push")
		if hit {
			c.stat(what).killed++
			segs = append(segs, seg)
		}
		t.Logf("%s %s (archiver's): kill after %v: %v", what, seg, d, map[bool]string{true: "delivered", false: "missed"}[hit])
	}
	// PostgreSQL pushed every killed segment again.
	e.ArchiveCaughtUp()
	dir := testenv.Dir(t, "crash-push")
	testenv.RequirePgBackRest(t)
	for i, seg := range segs {
		if !pg15Segment(seg) {
			t.Fatalf("unexpected archive-push argument %q", seg)
		}
		got := filepath.Join(dir, "got")
		c.mustRun("archive-get", seg, got)
		same := filepath.Join(dir, "same", seg)
		other := filepath.Join(dir, "other", seg)
		os.MkdirAll(filepath.Dir(same), 0o755)
		os.MkdirAll(filepath.Dir(other), 0o755)
		b, _ := os.ReadFile(got)
		os.WriteFile(same, b, 0o644)
		b[len(b)/2] ^= 0xff
		os.WriteFile(other, b, 0o644)
		testenv.Chown(t, dir)
		if out, code, _ := c.run("archive-push", same); code != 0 || !strings.Contains(out, "already exists in the repo1 archive with the same checksum") {
			t.Fatalf("archive-push of the same %s again: exit %d\n%s", seg, code, out)
		}
		if out, code, _ := c.run("archive-push", other); code != 45 || !strings.Contains(out, "already exists in the repo1 archive with a different checksum") {
			t.Fatalf("archive-push of a different %s: exit %d (want 45, ArchiveDuplicateError)\n%s", seg, code, out)
		}
		if i == 0 {
			// pgBackRest 2.45 refuses it the same way.
			if out, code := e.RunPgBackRest("archive-push", other); code != 45 || !strings.Contains(out, "already exists in the repo1 archive with a different checksum") {
				t.Fatalf("pgBackRest archive-push of a different %s: exit %d (want 45)\n%s", seg, code, out)
			}
		}
		os.RemoveAll(filepath.Join(dir, "same"))
		os.RemoveAll(filepath.Join(dir, "other"))
		os.Remove(got)
	}
	c.verify(1, what)
	c.verify(2, what)
	for range segs {
		c.survived(what)
	}
}

func pg15Segment(s string) bool {
	if len(s) != 24 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// phaseBackup: full, diff and incr backups to the plain repo1 and the
// encrypted repo2, bundled or not, with varying compression and workers,
// each killed once and run again.
func (c *crashRun) phaseBackup(target int) {
	t := c.t
	typical := map[string]time.Duration{}
	types := []string{"full", "diff", "incr"}
	compress := []string{"lz4", "zst", "gz", "none"}
	for round := 0; c.stat("backup full").killed+c.stat("backup diff").killed+c.stat("backup incr").killed < target; round++ {
		if round > 3*target {
			t.Fatalf("backup: too few kill points after %d rounds", round)
		}
		repoKey := 1 + round%2
		typ := types[(round/2)%3]
		args := []string{"backup", "--type=" + typ, fmt.Sprintf("--repo=%d", repoKey),
			"--compress-type=" + compress[c.rng.IntN(len(compress))],
			fmt.Sprintf("--repo%d-bundle=%s", repoKey, []string{"y", "n"}[c.rng.IntN(2)]),
			fmt.Sprintf("--process-max=%d", 1+c.rng.IntN(2)), "--log-level-console=info"}
		if args[5] == fmt.Sprintf("--repo%d-bundle=y", repoKey) && c.rng.IntN(2) == 0 {
			args = append(args, fmt.Sprintf("--repo%d-bundle-size=256KiB", repoKey))
		}
		// Some pages change between backups.
		c.e.Cluster.Exec("postgres", fmt.Sprintf("update t set v = md5(v) where id %% 61 = %d", round%61))
		key := typ
		if typical[key] == 0 {
			_, d := c.mustRun(args...)
			typical[key] = d
			t.Logf("backup %s to repo%d, unkilled: %v", typ, repoKey, d)
			continue
		}
		what := "backup " + typ
		d := c.delay(typical[key])
		t.Logf("round %d: %v", round, args)
		out, hit := c.killed(what, d, nil, args...)
		if !hit {
			continue
		}
		// What the kill left (an interrupted backup) is no error.
		c.verify(repoKey, what+" killed")
		out2, code, _ := c.run(args...)
		if code != 0 {
			t.Fatalf("%s after a kill at %v: exit %d\nkilled run:\n%s\nrerun:\n%s", what, d, code, out, out2)
		}
		// The new backup and its WAL; the whole repository (with what
		// the killed runs left) at the end of the phase.
		c.verify(repoKey, what, "--set="+newLabel(t, out2))
		c.survived(what)
	}
	c.verify(1, "backups")
	c.verify(2, "backups")
	c.pgBackRestVerify(1, "backups")
	c.pgBackRestVerify(2, "backups")
}

// phaseArchivePushAsync kills the asynchronous archive-push process
// (archive-async=y, spool) PostgreSQL's archive_command starts, and
// sometimes the foreground archive-push waiting for it, while the workload
// writes WAL. The foreground (or PostgreSQL's retry) starts a new
// background process that pushes the same segments again.
func (c *crashRun) phaseArchivePushAsync(target int) {
	t, e := c.t, c.e
	const what = "archive-push async"
	var durs []time.Duration
	seen := map[int]bool{}
	deadline := time.Now().Add(60 * time.Second)
	for c.stat(what).killed < target {
		if time.Now().After(deadline) {
			t.Fatalf("%s: only %d kill points in 60s", what, c.stat(what).killed)
		}
		pid := c.asyncPid("archive-push:async")
		if pid == 0 || seen[pid] {
			time.Sleep(time.Millisecond)
			continue
		}
		seen[pid] = true
		if len(durs) < 3 {
			durs = append(durs, waitGone(pid))
			continue
		}
		slices.Sort(durs)
		d := c.delay(durs[1])
		c.stat(what).tried++
		time.Sleep(d)
		fg := c.archiverPush()
		hit := c.killPid(pid, "archive-push:async")
		fgHit := false
		if c.rng.IntN(2) == 0 {
			fgHit = c.killPid(fg, "archive-push")
		}
		if hit || fgHit {
			c.stat(what).killed++
		}
		t.Logf("%s: kill after %v: background %v, foreground %v", what, d, hit, fgHit)
	}
	e.ArchiveCaughtUp()
	c.verify(1, what)
	c.verify(2, what)
	for range c.stat(what).killed {
		c.survived(what)
	}
}

// phaseArchiveGetAsync runs archive-get with archive-async=y and kills the
// foreground and the background process it started; the same archive-get
// then succeeds and the segment it returns has the checksum of its name.
func (c *crashRun) phaseArchiveGetAsync(target int) {
	t, e := c.t, c.e
	const what = "archive-get async"
	segs := archivedSegments(t, e)
	if len(segs) < 20 {
		t.Fatalf("only %d segments archived", len(segs))
	}
	dir := testenv.Dir(t, "crash-get")
	var typical time.Duration
	for round := 0; c.stat(what).killed < target; round++ {
		if round > 3*target {
			t.Fatalf("%s: too few kill points after %d rounds", what, round)
		}
		seg := segs[c.rng.IntN(len(segs)-12)]
		name, sum := seg[:24], seg[25:]
		dest := filepath.Join(dir, name)
		os.Remove(dest)
		args := []string{"archive-get", "--archive-get-queue-max=8MiB", name, dest}
		if typical == 0 {
			_, typical = c.mustRun(args...)
			t.Logf("%s unkilled: %v", what, typical)
			continue
		}
		d := c.delay(typical)
		_, hit := c.killed(what, d, func() bool { return c.killPid(c.asyncPid("archive-get:async"), "archive-get:async") }, args...)
		if hit {
			// Let a background process that escaped the kill end.
			for p := c.asyncPid("archive-get:async"); p != 0; p = c.asyncPid("archive-get:async") {
				waitGone(p)
			}
		}
		os.Remove(dest)
		out, code, _ := c.run(args...)
		if code != 0 {
			t.Fatalf("%s %s after a kill at %v: exit %d\n%s", what, name, d, code, out)
		}
		if got := fileSum(t, dest); got != sum {
			t.Fatalf("%s %s after a kill: checksum %s, want %s", what, name, got, sum)
		}
		if hit {
			c.survived(what)
		}
	}
	// archive-get does not write to the repository: one verify of each.
	c.verify(1, what)
	c.verify(2, what)
}

// phaseExpire kills expire with shrinking retention on both repositories
// (from one full backup less than each holds down to one). The kill delay
// is spread over the last unkilled run's duration: a round that has less
// left to expire is shorter.
func (c *crashRun) phaseExpire(target int) {
	t := c.t
	const what = "expire"
	retention := map[int]int{}
	for k := range 2 {
		dir := c.repoPath(k + 1)
		fulls, _ := filepath.Glob(filepath.Join(dir, "backup", c.e.Stanza, "*F"))
		retention[k+1] = max(1, len(fulls)-1)
	}
	var typical time.Duration
	for round := 0; c.stat(what).killed < target; round++ {
		if round > 3*target {
			t.Fatalf("%s: too few kill points after %d rounds", what, round)
		}
		k := 1 + round%2
		args := []string{"expire", fmt.Sprintf("--repo=%d", k), fmt.Sprintf("--repo%d-retention-full=%d", k, retention[k]),
			fmt.Sprintf("--repo%d-retention-diff=%d", k, max(1, retention[k]-1)), "--log-level-console=info"}
		if retention[k] > 1 {
			retention[k]--
		}
		if typical == 0 {
			_, typical = c.mustRun(args...)
			t.Logf("%s unkilled: %v", what, typical)
			continue
		}
		d := c.delay(typical)
		out, hit := c.killed(what, d, nil, args...)
		if hit {
			c.verify(k, what+" killed")
		}
		out2, code, d2 := c.run(args...)
		if code != 0 {
			t.Fatalf("%s after a kill at %v: exit %d\nkilled run:\n%s\nrerun:\n%s", what, d, code, out, out2)
		}
		typical = d2
		c.verify(k, what)
		if hit {
			c.survived(what)
		}
	}
}

// phaseRestore restores the latest backup of each repository into its own
// directory. Most rounds start from an empty directory, are killed and run
// again with --delta or --force; every third round kills a --delta restore
// into the complete directory of the previous round (a user restoring
// again). It returns the directories holding a complete restore.
func (c *crashRun) phaseRestore(target int) map[int]string {
	t := c.t
	const what = "restore"
	dirs := map[int]string{1: testenv.Dir(t, "crash-restore1"), 2: testenv.Dir(t, "crash-restore2")}
	scratch := testenv.Dir(t, "crash-restore0")
	_, typical := c.mustRun("restore", "--repo=2", "--pg1-path="+filepath.Join(scratch, "pg"), "--archive-mode=off")
	t.Logf("%s unkilled: %v", what, typical)
	_, typicalDelta := c.mustRun("restore", "--repo=2", "--pg1-path="+filepath.Join(scratch, "pg"), "--archive-mode=off", "--delta")
	t.Logf("%s --delta unkilled: %v", what, typicalDelta)
	os.RemoveAll(scratch)
	restored := map[int]bool{}
	for round := 0; c.stat(what).killed < target || len(restored) < 2; round++ {
		if round > 4*target {
			t.Fatalf("%s: too few kill points after %d rounds", what, round)
		}
		k := 1 + round%2
		data := filepath.Join(dirs[k], "pg")
		args := []string{"restore", fmt.Sprintf("--repo=%d", k), "--pg1-path=" + data, "--archive-mode=off"}
		again := append(slices.Clone(args), []string{"--delta", "--force"}[c.rng.IntN(2)])
		d := c.delay(typical)
		if restored[k] && round%3 == 2 {
			args = append(args, "--delta")
			d = c.delay(typicalDelta)
		} else if err := os.RemoveAll(data); err != nil {
			t.Fatal(err)
		}
		out, hit := c.killed(what, d, nil, args...)
		if out2, code, _ := c.run(again...); code != 0 {
			t.Fatalf("%s after a kill at %v: exit %d\nkilled run:\n%s\nrerun %v:\n%s\n%s:\n%s", what, d, code, out, again, out2, data, tail(testenv.Tree(data), 3000))
		}
		restored[k] = true
		if hit {
			c.survived(what)
		}
	}
	// restore does not write to the repository: one verify of each.
	c.verify(1, what)
	c.verify(2, what)
	return dirs
}

// TestVerifySetUnbundledOnBundled: a zero-length file of a non-bundled
// diff that references a bundled full is stored nowhere (a bundled backup
// keeps zero-length files in the manifest only); verify --set of the diff
// alone must not report it missing. Found by TestCrashConsistency.
func TestVerifySetUnbundledOnBundled(t *testing.T) {
	t.Parallel()
	e := testenv.NewEnv(t, testenv.EnvOptions{Global: []string{"compress-type=zst"}})
	e.Cluster.Exec("postgres", "create table t(id int primary key, v text); insert into t select g, md5(g::text) from generate_series(1,1000) g")
	e.MustRun("stanza-create")
	e.MustRun("backup", "--type=full", "--repo1-bundle=y")
	e.Cluster.Exec("postgres", "update t set v = md5(v) where id % 7 = 3")
	diff := newLabel(t, e.MustRun("backup", "--type=diff", "--repo1-bundle=n"))
	if out, code := e.Run("verify", "--set="+diff); code != 0 {
		t.Fatalf("verify --set=%s: exit %d\n%s", diff, code, out)
	}
	e.MustRun("verify")
}

// TestRestoreAgainAfterKillBeforeManifest: a restore killed while writing
// the backup.manifest it puts into an empty PGDATA first leaves only that
// file's temporary name; the restore run again (with --delta as a user
// would, or without) must treat the directory as empty. Found by
// TestCrashConsistency.
func TestRestoreAgainAfterKillBeforeManifest(t *testing.T) {
	t.Parallel()
	e := testenv.NewEnv(t, testenv.EnvOptions{})
	e.MustRun("stanza-create")
	e.MustRun("backup", "--type=full")
	for _, extra := range []string{"--delta", ""} {
		dir := testenv.Dir(t, "restore-leftover")
		data := filepath.Join(dir, "pg")
		os.MkdirAll(data, 0o700)
		os.WriteFile(filepath.Join(data, "backup.manifest.pgbackrest.tmp"), []byte("[backup]\nbackup-label="), 0o600)
		testenv.Chown(t, dir)
		args := []string{"restore", "--pg1-path=" + data}
		if extra != "" {
			args = append(args, extra)
		}
		e.MustRun(args...)
		if _, err := os.Stat(filepath.Join(data, "backup.manifest.pgbackrest.tmp")); !os.IsNotExist(err) {
			t.Fatalf("restore %s left the temporary manifest (%v)", extra, err)
		}
		if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err != nil {
			t.Fatalf("restore %s: %v", extra, err)
		}
	}
}
