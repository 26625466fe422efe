package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A tool is one of the two programs under comparison.
type tool struct {
	name string // "pgbr" or "pgBackRest"
	bin  string
}

func (t tool) isPgbr() bool { return t.name == "pgbr" }

// sample is one timed run of a tool.
type sample struct {
	dur   time.Duration
	rssKB int64         // peak RSS (max over the process and its waited-for children)
	cpu   time.Duration // user + system CPU of the process and its children
}

// meas collects the samples of one tool in one case.
type meas struct{ s []sample }

func (m *meas) add(s sample) { m.s = append(m.s, s) }

func (m *meas) ok() bool { return m != nil && len(m.s) > 0 }

// median returns the median duration (the mean of the two middle ones for
// an even count).
func (m *meas) median() time.Duration {
	return m.medianOf(func(s sample) time.Duration { return s.dur })
}

// maxRSS returns the largest peak RSS over the samples, in KiB.
func (m *meas) maxRSS() int64 {
	var r int64
	if m != nil {
		for _, s := range m.s {
			r = max(r, s.rssKB)
		}
	}
	return r
}

// medianCPU is median for the CPU time.
func (m *meas) medianCPU() time.Duration {
	return m.medianOf(func(s sample) time.Duration { return s.cpu })
}

func (m *meas) medianOf(get func(sample) time.Duration) time.Duration {
	if !m.ok() {
		return 0
	}
	d := make([]time.Duration, len(m.s))
	for i, s := range m.s {
		d[i] = get(s)
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	n := len(d)
	if n%2 == 1 {
		return d[n/2]
	}
	return (d[n/2-1] + d[n/2]) / 2
}

var pgUID, pgGID uint32

func lookupPostgres() error {
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("user postgres: %v (install postgresql-15)", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	pgUID, pgGID = uint32(uid), uint32(gid)
	return nil
}

// asPostgres returns a command that runs as the postgres user directly (no
// runuser in between, so the rusage is the tool's own).
func asPostgres(name string, args ...string) *exec.Cmd {
	c := exec.Command(name, args...)
	c.Dir = *dir
	c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: pgUID, Gid: pgGID}}
	env := []string{"HOME=" + *dir, "PATH=" + os.Getenv("PATH"), "LANG=C"}
	for _, e := range os.Environ() {
		if strings.HasPrefix(e, "TZ=") {
			env = append(env, e)
		}
	}
	c.Env = env
	return c
}

// pg runs a command as postgres and fails with its output.
func pg(name string, args ...string) error {
	_, err := pgOut(name, args...)
	return err
}

func pgOut(name string, args ...string) (string, error) {
	c := asPostgres(name, args...)
	out, err := c.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// runTool runs one timed command of a tool as postgres. For pgbr with
// -profile, it writes CPU and allocation profiles named after the case.
//
// The tool runs under a small copy of this program (wrapMode): a child
// started by a big process inherits that process's peak RSS as its own
// ru_maxrss (Linux carries the old mm's high-water mark over exec, and Go
// starts children with CLONE_VM), so the bench's own memory would show up
// as the tool's. The wrapper is a few MiB (rssFloor) and reports the tool's
// rusage and wall time through a pipe. The wall time is the wrapper's, from
// just before it starts the tool to its exit, so the wrapper's own start
// (a Go program, about 10 ms here) is in neither tool's time: it would
// otherwise dilute the ratio of the short commands (archive-push).
func runTool(t tool, caseName string, args ...string) (sample, error) {
	self, err := os.Executable()
	if err != nil {
		return sample{}, err
	}
	c := asPostgres(self, append([]string{t.bin}, args...)...)
	c.SysProcAttr = nil // the wrapper drops to postgres for the tool
	c.Env = append(c.Env, fmt.Sprintf("%s=%d:%d", wrapEnv, pgUID, pgGID))
	if t.isPgbr() && *profileDir != "" && !strings.Contains(caseName, "stanza-create") && caseName != "expire" {
		base := filepath.Join(*profileDir, sanitize(caseName))
		c.Env = append(c.Env, "PGBR_CPUPROFILE="+base+".cpu.pprof", "PGBR_MEMPROFILE="+base+".mem.pprof")
		profiled[sanitize(caseName)] = true
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return sample{}, err
	}
	defer pr.Close()
	c.ExtraFiles = []*os.File{pw}
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	start := time.Now()
	err = c.Start()
	pw.Close()
	if err == nil {
		err = c.Wait()
	}
	d := time.Since(start)
	if err != nil {
		return sample{}, fmt.Errorf("%s (%s) %s: %v\n%s", t.name, caseName, strings.Join(args, " "), err, out.String())
	}
	s := sample{dur: d}
	var ru []byte
	ru, err = io.ReadAll(pr)
	if err != nil {
		return s, err
	}
	var rss, cpu, wall int64
	if _, err := fmt.Sscanf(string(ru), "%d %d %d", &rss, &cpu, &wall); err != nil {
		return s, fmt.Errorf("%s (%s): no rusage from the wrapper (%q)", t.name, caseName, ru)
	}
	s.rssKB, s.cpu, s.dur = rss, time.Duration(cpu), time.Duration(wall)
	return s, nil
}

const wrapEnv = "PGBR_BENCH_WRAP"

// wrapMode runs os.Args[1:] as uid:gid (the value of PGBR_BENCH_WRAP) and
// writes its peak RSS (KiB), CPU time (ns) and wall time (ns, start to
// exit) to file descriptor 3. It returns the tool's exit code.
func wrapMode(ids string) int {
	var uid, gid uint32
	if _, err := fmt.Sscanf(ids, "%d:%d", &uid, &gid); err != nil || len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "bench wrapper: bad invocation")
		return 2
	}
	// The rusage pipe is for this wrapper only: inherited by the tool it
	// would be inherited by the tool's detached async archive process too
	// (pgBackRest's forked one keeps it), and the bench would wait for that
	// process to exit after the first call of a burst, where PostgreSQL's
	// archiver waits only for the command.
	syscall.CloseOnExec(3)
	c := exec.Command(os.Args[1], os.Args[2:]...)
	c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, wrapEnv+"=") {
			c.Env = append(c.Env, e)
		}
	}
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	start := time.Now()
	err := c.Run()
	wall := time.Since(start)
	if c.ProcessState == nil {
		fmt.Fprintln(os.Stderr, "bench wrapper:", err)
		return 2
	}
	if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
		f := os.NewFile(3, "rusage")
		fmt.Fprintf(f, "%d %d %d\n", ru.Maxrss, ru.Utime.Nano()+ru.Stime.Nano(), wall.Nanoseconds())
		f.Close()
	}
	return c.ProcessState.ExitCode()
}

// measureRSSFloor is the peak RSS the wrapper gives a tool that uses
// almost nothing (/bin/true): the floor of the RSS columns.
func measureRSSFloor() (int64, error) {
	s, err := runTool(tool{name: "true", bin: "/bin/true"}, "rss-floor")
	return s.rssKB, err
}

var profiled = map[string]bool{}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '-'
	}, s)
}

var dropWarned bool

// dropCaches syncs and empties the page cache so that a timed run reads
// from disk. Without permission it warns once and goes on (warm cache).
func dropCaches() {
	syscall.Sync()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0o200); err != nil && !dropWarned {
		dropWarned = true
		warnings = append(warnings, fmt.Sprintf("cannot drop caches (%v): timed runs read a warm page cache", err))
		fmt.Println("warning:", warnings[len(warnings)-1])
	}
}

var warnings []string

// order returns the two tools in the order of the n-th timed pair:
// alternating, so neither tool always runs on a cache or disk state the
// other left behind.
func order(n int) []tool {
	if n%2 == 0 {
		return []tool{brTool, pgbrTool}
	}
	return []tool{pgbrTool, brTool}
}

var pairCount int

func nextOrder() []tool {
	pairCount++
	return order(pairCount)
}

var pgbrTool, brTool tool

// mkdirPG makes a directory owned by postgres (mode 0700 as PGDATA wants).
func mkdirPG(p string) error {
	if err := os.MkdirAll(p, 0o700); err != nil {
		return err
	}
	return os.Chown(p, int(pgUID), int(pgGID))
}

// dirStats returns the size and count of regular files under root,
// without pg_wal (WAL is not part of a backup's data).
func dirStats(root string) (int64, int) {
	var size int64
	var n int
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.IsDir() && fi.Name() == "pg_wal" {
			return filepath.SkipDir
		}
		if err == nil && fi.Mode().IsRegular() {
			size += fi.Size()
			n++
		}
		return nil
	})
	return size, n
}

func secs(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	if d < 10*time.Second {
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

func mib(kb int64) string {
	if kb == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", float64(kb)/1024)
}
