package command

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/lock"
)

// Asynchronous archive-push (archive-async=y), as pgBackRest: PostgreSQL's
// archive_command only waits for a status file in
// <spool-path>/archive/<stanza>/out/ (<wal>.ok, or <wal>.error holding the
// error code and message); a background "archive-push:async" process pushes
// every WAL file PostgreSQL has marked ready, process-max at a time, and
// writes those status files. Spool files are host-local.

func spoolOut(e *Env, stanza string) string {
	return filepath.Join(e.Cfg.String("spool-path"), "archive", stanza, "out")
}

// archivePushQueued is the foreground side.
func archivePushQueued(e *Env, stanza, walPath string) error {
	name := filepath.Base(walPath)
	out := spoolOut(e, stanza)
	if err := os.MkdirAll(out, 0o750); err != nil {
		return errs.Wrap(errs.PathCreate, err, "unable to create spool path '%s'", out)
	}
	okFile, errFile := filepath.Join(out, name+".ok"), filepath.Join(out, name+".error")
	timeout := e.Cfg.Duration("archive-timeout")
	deadline := time.Now().Add(timeout)
	var lastStart time.Time
	for {
		if _, err := os.Stat(okFile); err == nil {
			e.Log.Infof("pushed WAL file '%s' to the archive asynchronously", name)
			return nil
		}
		if b, err := os.ReadFile(errFile); err == nil {
			// The next archive_command attempt retries the push.
			os.Remove(errFile)
			code, msg := parseStatus(b)
			return errs.New(code, "%s", msg)
		}
		if time.Since(lastStart) > time.Second {
			if err := startAsync(e, walPath); err != nil {
				return err
			}
			lastStart = time.Now()
		}
		if time.Now().After(deadline) {
			return errs.New(errs.ArchiveTimeout, "unable to push WAL file '%s' to the archive asynchronously after %g second(s)\nHINT: check '%s' for errors.",
				name, timeout.Seconds(), filepath.Join(e.Cfg.String("log-path"), stanza+"-archive-push-async.log"))
		}
		select {
		case <-e.Ctx.Done():
			return errs.New(errs.Term, "terminated on signal")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// startAsync launches the background pusher (it exits at once when another
// one holds the archive lock).
func startAsync(e *Env, walPath string) error {
	self := e.Self
	if self == "" {
		return errs.New(errs.Execute, "unable to find the pgbr executable to start the asynchronous archive-push process")
	}
	args := append(e.Cfg.CommandLineArgs(), "archive-push:async", walPath)
	c := exec.Command(self, args...)
	c.Dir = e.Cwd
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := c.Start(); err != nil {
		return errs.Wrap(errs.Execute, err, "unable to start the asynchronous archive-push process")
	}
	go c.Wait() // reap it if it ends while we still wait
	return nil
}

func parseStatus(b []byte) (errs.Code, string) {
	s := string(b)
	first, rest, _ := strings.Cut(s, "\n")
	code, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || code <= 0 {
		return errs.Unknown, strings.TrimSpace(s)
	}
	return errs.Code(code), strings.TrimSpace(rest)
}

// archivePushAsync is the background side: push every ready WAL file.
func archivePushAsync(e *Env, stanza, walPath string) error {
	l, err := lock.Acquire(e.Cfg.String("lock-path"), stanza, lock.Archive, e.ExecID)
	if err != nil {
		e.Log.Debugf("asynchronous archive-push already running: %v", err)
		return nil
	}
	defer l.Release()
	out := spoolOut(e, stanza)
	if err := os.MkdirAll(out, 0o750); err != nil {
		return errs.Wrap(errs.PathCreate, err, "unable to create spool path '%s'", out)
	}
	walDir := filepath.Dir(walPath)
	workers := max(int(e.Cfg.Int("process-max")), 1)
	for round := 0; ; round++ {
		ready, err := readyWAL(walDir)
		if err != nil {
			return err
		}
		readySet := map[string]bool{}
		for _, r := range ready {
			readySet[r] = true
		}
		// Status files of WAL PostgreSQL no longer waits for are stale.
		if round == 0 {
			if ents, err := os.ReadDir(out); err == nil {
				for _, en := range ents {
					n := strings.TrimSuffix(strings.TrimSuffix(en.Name(), ".ok"), ".error")
					if !readySet[n] {
						os.Remove(filepath.Join(out, en.Name()))
					}
				}
			}
		}
		var todo []string
		for _, r := range ready {
			if _, err := os.Stat(filepath.Join(out, r+".ok")); err == nil {
				continue
			}
			if _, err := os.Stat(filepath.Join(out, r+".error")); err == nil && round > 0 {
				continue // failed in this run: the foreground reports it
			}
			todo = append(todo, r)
		}
		if len(todo) == 0 {
			return nil
		}
		e.Log.Infof("push %d WAL file(s) to the archive: %s%s", len(todo), todo[0],
			map[bool]string{true: "...", false: ""}[len(todo) > 1])
		ch := make(chan string)
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for name := range ch {
					err := guardErr(e, func() error { return pushWAL(e, stanza, filepath.Join(walDir, name)) })
					if err == nil {
						writeStatus(filepath.Join(out, name+".ok"), "")
						continue
					}
					writeStatus(filepath.Join(out, name+".error"), fmt.Sprintf("%d\n%s", errs.CodeOf(err), err.Error()))
					e.Log.Warnf("could not push WAL file %s to the archive: [%03d] %s", name, errs.CodeOf(err), err.Error())
				}
			}()
		}
		for _, n := range todo {
			ch <- n
		}
		close(ch)
		wg.Wait()
		if e.Ctx.Err() != nil {
			return errs.New(errs.Term, "terminated on signal")
		}
	}
}

// readyWAL lists the WAL files PostgreSQL marked ready, oldest first.
func readyWAL(walDir string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(walDir, "archive_status"))
	if err != nil {
		return nil, errs.Wrap(errs.PathOpen, err, "unable to list '%s'", filepath.Join(walDir, "archive_status"))
	}
	var out []string
	for _, en := range ents {
		if n, ok := strings.CutSuffix(en.Name(), ".ready"); ok {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, nil
}

// writeStatus writes a spool status file through a temporary name.
func writeStatus(path, content string) {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o640); err == nil {
		os.Rename(tmp, path)
	}
}
