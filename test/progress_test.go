package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// tmuxRun runs a pgbr command (as postgres) in a detached tmux session on
// a private tmux server, the way a person runs it in a terminal. The
// command line ends with a marker carrying the exit code.
type tmuxRun struct {
	t      *testing.T
	socket string
	name   string
}

func startTmux(t *testing.T, e *testenv.Env, name string, args ...string) *tmuxRun {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatal("tmux is required (apt-get install -y tmux)")
	}
	r := &tmuxRun{t: t, socket: "pgbr-" + strings.ReplaceAll(t.Name(), "/", "_") + "-" + name, name: name}
	cmd := []string{"runuser", "-u", "postgres", "--", e.Pgbr, "--config=" + e.Conf, "--stanza=" + e.Stanza}
	cmd = append(cmd, args...)
	shell := strings.Join(cmd, " ") + "; echo PGBR-EXIT-$?; sleep 3600"
	c := exec.Command("tmux", "-L", r.socket, "new-session", "-d", "-s", name, "-x", "250", "-y", "60", shell)
	c.Dir = e.Dir
	c.Env = append(os.Environ(), "TERM=xterm-256color")
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("tmux", "-L", r.socket, "kill-server").Run() })
	return r
}

// capture returns the visible pane with wrapped lines joined.
func (r *tmuxRun) capture() string {
	r.t.Helper()
	out, err := exec.Command("tmux", "-L", r.socket, "capture-pane", "-p", "-J", "-t", r.name).CombinedOutput()
	if err != nil {
		r.t.Fatalf("tmux capture-pane: %v\n%s", err, out)
	}
	return string(out)
}

var tmuxExit = regexp.MustCompile(`PGBR-EXIT-(\d+)`)

// exited returns the exit code once the command has ended.
func (r *tmuxRun) exited(screen string) (string, bool) {
	if m := tmuxExit.FindStringSubmatch(screen); m != nil {
		return m[1], true
	}
	return "", false
}

// progressLine is what the live line looks like: "backup 12/345 files
// 45% |████ | (12/25 MiB, 5.3 MiB/s) [2s:3s]".
var progressLine = regexp.MustCompile(`(backup|restore|verify) (\d+)/(\d+) files +\d+% \|[^|]*\| \([\d.]+ ?[KMG]?i?B?/[\d.]+ [KMG]iB`)

// watch polls the pane until the command ends. It returns the first
// screen that showed a progress line ("" if none did), the final screen
// and the exit code. during, when not nil, runs once while the line shows.
func (r *tmuxRun) watch(during func()) (seen, final, code string) {
	r.t.Helper()
	for {
		s := r.capture()
		if c, ok := r.exited(s); ok {
			return seen, s, c
		}
		if seen == "" && progressLine.MatchString(s) {
			seen = s
			if during != nil {
				during()
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkFinalScreen requires the normal output intact once the command
// ended: every line a whole log line, no progress left over.
func checkFinalScreen(t *testing.T, what, screen string) {
	t.Helper()
	if strings.Contains(screen, " files ") || strings.Contains(screen, "MiB/s") || strings.Contains(screen, "|█") {
		t.Fatalf("%s: progress line left on screen:\n%s", what, screen)
	}
	logLine := regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} P\d\d +(INFO|DETAIL|WARN): `)
	n := 0
	for _, l := range strings.Split(strings.TrimRight(screen, "\n"), "\n") {
		l = strings.TrimRight(l, " ")
		if l == "" || tmuxExit.MatchString(l) {
			continue
		}
		if !logLine.MatchString(l) {
			t.Fatalf("%s: garbled line %q on screen:\n%s", what, l, screen)
		}
		n++
	}
	if n == 0 {
		t.Fatalf("%s: no log lines on screen:\n%s", what, screen)
	}
}

// TestProgressLineInTerminal runs backup, restore and verify in a tmux
// terminal: while they run the pane shows one live line with files and
// MiB done of the total, log lines printed meanwhile stay whole, and at the
// end the line is gone and the output is the normal log. info shows the
// running backup's percentage from the lock file (pgBackRest 2.45 reads it
// too), and shows pgBackRest 2.45's running backup. With output piped
// there is no progress unless --progress=y.
func TestProgressLineInTerminal(t *testing.T) {
	t.Parallel()
	testenv.RequirePgBackRest(t)
	// bz2 is slow enough that a few tens of MiB take seconds to back up,
	// restore and verify on any machine.
	e := testenv.NewEnv(t, testenv.EnvOptions{Global: []string{"compress-type=bz2", "process-max=1"}})
	e.Cluster.Exec("postgres", "create table big as select i, (select string_agg(md5((i*j)::text), '') from generate_series(1,24) j) pad from generate_series(1,4000) i")
	e.Cluster.Exec("postgres", "checkpoint")
	e.MustRun("stanza-create")

	// Backup at detail level: a log line per file while the line shows.
	var infoOut, infoPgBackRest string
	b := startTmux(t, e, "backup", "backup", "--type=full", "--log-level-console=detail")
	running := regexp.MustCompile(`status: .*backup/expire running - \d{1,3}\.\d\d% complete\)`)
	seen, final, code := b.watch(func() {
		infoOut = e.MustRun("info")
		infoPgBackRest = e.MustPgBackRest("info")
	})
	if code != "0" {
		t.Fatalf("backup exit %s:\n%s", code, final)
	}
	if seen == "" {
		t.Fatalf("backup: no progress line seen while it ran; final screen:\n%s", final)
	}
	m := progressLine.FindStringSubmatch(seen)
	if m[1] != "backup" || m[3] == "0" {
		t.Fatalf("backup progress line %q", m[0])
	}
	t.Logf("sample progress line: %s", strings.TrimSpace(progressLineText(seen)))
	checkFinalScreen(t, "backup", final)
	if !strings.Contains(final, "backup command end: completed successfully") {
		t.Fatalf("backup: normal output missing:\n%s", final)
	}
	if !running.MatchString(infoOut) {
		t.Fatalf("pgbr info during the backup does not show its progress:\n%s", infoOut)
	}
	if !running.MatchString(infoPgBackRest) {
		t.Fatalf("pgBackRest 2.45 info during pgbr's backup does not show its progress:\n%s", infoPgBackRest)
	}
	// The log file has the per-file lines and never a progress line.
	logFile, err := os.ReadFile(filepath.Join(e.Dir, "log", e.Stanza+"-backup.log"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(logFile), " files ") || strings.Contains(string(logFile), "\x1b[") || strings.Contains(string(logFile), "\r") {
		t.Fatal("progress output reached the log file")
	}
	if !strings.Contains(string(logFile), "backup file ") {
		t.Fatal("log file lacks the per-file lines")
	}

	// Piped output: no progress at all; --progress=y forces it.
	out := e.MustRun("verify", "--log-level-console=info")
	if strings.Contains(out, " files ") || strings.Contains(out, "\x1b[") || strings.Contains(out, "\r") {
		t.Fatalf("progress printed to a pipe:\n%q", out)
	}
	out = e.MustRun("verify", "--log-level-console=info", "--progress=y")
	if !progressLine.MatchString(out) || !strings.Contains(out, "\x1b[2K\r") {
		t.Fatalf("--progress=y printed no progress line to the pipe:\n%q", out)
	}

	// verify in the terminal.
	v := startTmux(t, e, "verify", "verify", "--log-level-console=info")
	seen, final, code = v.watch(nil)
	if code != "0" || seen == "" || progressLine.FindStringSubmatch(seen)[1] != "verify" {
		t.Fatalf("verify exit %s, progress seen %q; final screen:\n%s", code, progressLineText(seen), final)
	}
	checkFinalScreen(t, "verify", final)

	// pgBackRest 2.45's backup lock file, read by pgbr info while it runs.
	pb := exec.Command("runuser", "-u", "postgres", "--", testenv.PgBackRest, "--config="+e.Conf, "--stanza="+e.Stanza,
		"backup", "--type=full", "--log-level-console=off")
	pb.Dir = e.Dir
	if err := pb.Start(); err != nil {
		t.Fatal(err)
	}
	pbDone := make(chan error, 1)
	go func() { pbDone <- pb.Wait() }()
	pbRunning := regexp.MustCompile(`status: ok \(backup/expire running( - \d{1,3}\.\d\d% complete)?\)`)
	var seenRunning string
	for seenRunning == "" {
		select {
		case err := <-pbDone:
			if seenRunning == "" {
				t.Fatalf("pgBackRest backup ended (%v) before pgbr info showed it running", err)
			}
		default:
		}
		if m := pbRunning.FindString(e.MustRun("info")); m != "" {
			seenRunning = m
		}
	}
	if err := <-pbDone; err != nil {
		t.Fatalf("pgBackRest backup: %v", err)
	}
	t.Logf("pgbr info during pgBackRest 2.45's backup: %s", seenRunning)

	// restore into a new directory in the terminal.
	dest := filepath.Join(e.Dir, "restored")
	os.MkdirAll(dest, 0o700)
	testenv.Chown(t, dest)
	rs := startTmux(t, e, "restore", "restore", "--pg1-path="+dest, "--log-level-console=info")
	seen, final, code = rs.watch(nil)
	if code != "0" || seen == "" || progressLine.FindStringSubmatch(seen)[1] != "restore" {
		t.Fatalf("restore exit %s, progress seen %q; final screen:\n%s", code, progressLineText(seen), final)
	}
	checkFinalScreen(t, "restore", final)
	if !strings.Contains(final, "restore command end: completed successfully") {
		t.Fatalf("restore: normal output missing:\n%s", final)
	}
}

// progressLineText returns the screen line holding the progress line.
func progressLineText(screen string) string {
	for _, l := range strings.Split(screen, "\n") {
		if progressLine.MatchString(l) {
			return l
		}
	}
	return fmt.Sprintf("(none in %d bytes)", len(screen))
}
