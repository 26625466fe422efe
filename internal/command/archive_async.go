package command

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pgbr-dev/pgbr/internal/config"
	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/lock"
	"github.com/pgbr-dev/pgbr/internal/pg"
	"github.com/pgbr-dev/pgbr/internal/storage/local"
)

// Asynchronous archive-push (archive-async=y), as pgBackRest: PostgreSQL's
// archive_command only waits for a status file in
// <spool-path>/archive/<stanza>/out/ (<wal>.ok, or <wal>.error holding the
// error code and message); a background "archive-push:async" process pushes
// every WAL file PostgreSQL has marked ready, process-max at a time, and
// writes those status files. Spool files are host-local.
//
// Every spool file is created, read, renamed and removed through a
// local.Root on the spool directory, by a name that must be one plain
// component (checkSpoolName): a WAL name from PostgreSQL, from a command
// line or from the archive can never reach outside the spool, even through
// a symbolic link planted in it.

func spoolOut(e *Env, stanza string) string {
	return filepath.Join(e.Cfg.String(config.SpoolPath), "archive", stanza, "out")
}

// archivePushQueued is the foreground side.
func archivePushQueued(e *Env, stanza, walPath string) error {
	name := filepath.Base(walPath)
	if err := checkSpoolName(name); err != nil {
		return err
	}
	out := spoolOut(e, stanza)
	if err := makeSpool(out); err != nil {
		return err
	}
	return waitSpool(e, stanza, "push WAL file '"+name+"' to", out, name+".error", func(out *local.Root) (bool, error) {
		if _, err := out.Lstat(name + ".ok"); err == nil {
			e.Log.Infof("pushed WAL file '%s' to the archive asynchronously", name)
			return true, nil
		}
		return false, nil
	}, walPath)
}

// waitSpool is the foreground wait of an asynchronous archive command:
// done reports the outcome it looks for; <errFile> (error code, message) is
// a failure the next attempt retries; the background process is started
// (again) every second until archive-timeout. The spool directory is
// opened afresh for each look (it may be removed and made again meanwhile).
func waitSpool(e *Env, stanza, what, spoolDir, errFile string, done func(spool *local.Root) (bool, error), params ...string) error {
	timeout := e.Cfg.Duration(config.ArchiveTimeout)
	deadline := time.Now().Add(timeout)
	var lastStart time.Time
	for {
		if spool, err := local.Open(spoolDir); err == nil {
			ok, err := done(spool)
			var status []byte
			var serr error = fs.ErrNotExist
			if !ok && err == nil {
				if status, serr = spool.ReadFile(errFile); serr == nil {
					spool.Remove(errFile)
				}
			}
			spool.Close()
			if ok || err != nil {
				return err
			}
			if serr == nil {
				code, msg := parseStatus(status)
				return errs.New(code, "%s", msg)
			}
		}
		if time.Since(lastStart) > time.Second {
			if err := startAsync(e, params...); err != nil {
				return err
			}
			lastStart = time.Now()
		}
		if time.Now().After(deadline) {
			return errs.New(errs.ArchiveTimeout, "unable to %s the archive asynchronously after %g second(s)\nHINT: check '%s' for errors.",
				what, timeout.Seconds(), filepath.Join(e.Cfg.String(config.LogPath), stanza+"-"+e.Cfg.Command()+"-async.log"))
		}
		select {
		case <-e.Ctx.Done():
			return errs.New(errs.Term, "terminated on signal")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// startAsync launches a background "<command>:async" process with the
// same command-line options (it exits at once when another one holds the
// archive lock). Secrets reach it through the config file or environment,
// as they reached this process.
func startAsync(e *Env, params ...string) error {
	if e.Self == "" {
		return errs.New(errs.Execute, "unable to find the pgbr executable to start the asynchronous %s process", e.Cfg.Command())
	}
	args := append(e.Cfg.CommandLineArgs(), e.Cfg.Command()+":async")
	c := exec.Command(e.Self, append(args, params...)...)
	c.Dir = e.Cwd
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := c.Start(); err != nil {
		return errs.Wrap(errs.Execute, err, "unable to start the asynchronous %s process", e.Cfg.Command())
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
	l, err := lockAsync(e, stanza, spoolOut(e, stanza))
	if l == nil {
		return err
	}
	defer l.Release()
	out, err := openSpool(spoolOut(e, stanza))
	if err != nil {
		return err
	}
	defer out.Close()
	walDir := filepath.Dir(walPath)
	workers := e.processMax()
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
			if ents, err := out.ReadDir("."); err == nil {
				for _, en := range ents {
					n := strings.TrimSuffix(strings.TrimSuffix(en.Name(), ".ok"), ".error")
					if !readySet[n] {
						out.Remove(en.Name())
					}
				}
			}
		}
		var todo []string
		for _, r := range ready {
			if _, err := out.Lstat(r + ".ok"); err == nil {
				continue
			}
			if _, err := out.Lstat(r + ".error"); err == nil && round > 0 {
				continue // failed in this run: the foreground reports it
			}
			todo = append(todo, r)
		}
		if len(todo) == 0 {
			return nil
		}
		e.Log.Infof("push %d WAL file(s) to the archive: %s%s", len(todo), todo[0],
			map[bool]string{true: "...", false: ""}[len(todo) > 1])
		// A status file that cannot be written leaves the foreground
		// waiting until archive-timeout: the first such error ends this
		// process with it (in the async log).
		err = e.runPool(workers, len(todo), func(_ context.Context, _, i int) error {
			name := todo[i]
			err := guardErr(e, func() error { return pushWAL(e, stanza, filepath.Join(walDir, name)) })
			if err == nil {
				return logStatusErr(e, writeStatus(out, name+".ok", ""))
			}
			e.Log.Warnf("could not push WAL file %s to the archive: [%03d] %s", name, errs.CodeOf(err), err.Error())
			return logStatusErr(e, writeStatus(out, name+".error", fmt.Sprintf("%d\n%s", errs.CodeOf(err), err.Error())))
		})
		if err != nil {
			return err
		}
	}
}

// logStatusErr logs a failed status file write (the foreground cannot
// report it) and returns it.
func logStatusErr(e *Env, err error) error {
	if err != nil && e.Ctx.Err() == nil {
		e.Log.Errorf(int(errs.CodeOf(err)), "%v", err)
	}
	return err
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

// writeStatus writes a spool status file durably through a temporary
// name (the foreground trusts it: a lost .ok after a power loss would be
// harmless, a torn .error not).
func writeStatus(spool *local.Root, name, content string) error {
	if err := checkSpoolName(name); err != nil {
		return err
	}
	return writeFileAtomicIn(spool, name, []byte(content), 0o640, -1, -1)
}

// checkSpoolName refuses a WAL or status file name that is not one plain
// file name (empty, ".", "..", containing '/' or NUL).
func checkSpoolName(name string) error {
	if name == "." || strings.IndexByte(name, '/') >= 0 || local.CheckName(name) != nil {
		return errs.New(errs.ParamInvalid, "invalid WAL file name '%s': not a plain file name", name)
	}
	return nil
}

// openSpool creates (when missing) and opens a spool directory.
func openSpool(dir string) (*local.Root, error) {
	if err := makeSpool(dir); err != nil {
		return nil, err
	}
	r, err := local.Open(dir)
	if err != nil {
		return nil, errs.Wrap(errs.PathOpen, err, "unable to open spool path '%s'", dir)
	}
	return r, nil
}

// Asynchronous archive-get (archive-async=y): the foreground waits for
// <spool-path>/archive/<stanza>/in/<segment> (or <segment>.ok when it is in
// no repository, <segment>.error on failure); a background
// "archive-get:async" process fetches the requested segment and the ones
// after it (up to archive-get-queue-max) with process-max workers.

func spoolIn(e *Env, stanza string) string {
	return filepath.Join(e.Cfg.String(config.SpoolPath), "archive", stanza, "in")
}

// archiveGetQueued is the foreground side.
func archiveGetQueued(e *Env, stanza, name, dest string) error {
	if err := checkSpoolName(name); err != nil {
		return err
	}
	dir := spoolIn(e, stanza)
	if err := makeSpool(dir); err != nil {
		return err
	}
	return waitSpool(e, stanza, "get WAL file '"+name+"' from", dir, name+".error", func(in *local.Root) (bool, error) {
		if _, err := in.Lstat(name); err == nil {
			if err := moveFile(in, name, dest); err != nil {
				return false, err
			}
			e.Log.Infof("found %s in the archive asynchronously", name)
			return true, nil
		}
		if _, err := in.Lstat(name + ".ok"); err == nil {
			in.Remove(name + ".ok")
			return false, &ExitError{Code: 1, Msg: fmt.Sprintf("unable to find %s in the archive asynchronously", name)}
		}
		return false, nil
	}, name, filepath.Join(dir, name))
}

// moveFile moves name from the spool to dest, renaming when they are on
// the same file system, else copying (the spool and pg_wal often are on
// different ones); either way durably.
func moveFile(spool *local.Root, name, dest string) error {
	destDir := filepath.Dir(dest)
	dst, err := local.Open(destDir)
	if err != nil {
		return errs.Wrap(errs.FileOpen, err, "unable to open '%s' for write", dest+".pgbackrest.tmp")
	}
	defer dst.Close()
	base := filepath.Base(dest)
	if err := spool.RenameTo(name, dst, base); err == nil {
		if err := dst.SyncDir("."); err != nil {
			return errs.Wrap(errs.PathSync, err, "unable to sync path '%s'", destDir)
		}
		return nil
	}
	b, err := spool.ReadFile(name)
	if err != nil {
		return errs.Wrap(errs.FileRead, err, "unable to read '%s'", spool.Full(name))
	}
	if err := writeFileAtomicIn(dst, base, b, 0o600, -1, -1); err != nil {
		return err
	}
	spool.Remove(name)
	return nil
}

// archiveGetAsync is the background side: fetch the requested segment and
// the next ones into the spool.
func archiveGetAsync(e *Env, stanza, name string) error {
	if err := checkSpoolName(name); err != nil {
		return err
	}
	l, err := lockAsync(e, stanza, spoolIn(e, stanza))
	if l == nil {
		return err
	}
	defer l.Release()
	in, err := openSpool(spoolIn(e, stanza))
	if err != nil {
		return err
	}
	defer in.Close()
	c, err := e.readCluster()
	if err != nil {
		if serr := writeStatus(in, name+".error", fmt.Sprintf("%d\n%s", errs.CodeOf(err), err.Error())); serr != nil {
			e.Log.Errorf(int(errs.CodeOf(serr)), "%v", serr)
		}
		return err
	}
	segSize := c.Control.WalSegmentSize
	count := int(e.Cfg.Size(config.ArchiveGetQueueMax) / int64(segSize))
	count = max(count, 1)
	// Segments before the requested one were consumed (or are not wanted).
	if ents, err := in.ReadDir("."); err == nil {
		for _, en := range ents {
			if len(en.Name()) >= 24 && en.Name()[:24] < name {
				in.Remove(en.Name())
			}
		}
	}
	queue := []string{name}
	for next := name; len(queue) < count; {
		if next, err = pg.WalSegmentNext(next, segSize); err != nil {
			break
		}
		queue = append(queue, next)
	}
	workers := e.processMax()
	var mu sync.Mutex
	missing := ""
	err = e.runPool(workers, len(queue), func(_ context.Context, _, i int) error {
		seg := queue[i]
		mu.Lock()
		stop := missing != "" && seg > missing
		mu.Unlock()
		if stop {
			return nil
		}
		if _, err := in.Lstat(seg); err == nil {
			return nil
		}
		err := guardErr(e, func() error { return fetchWAL(e, stanza, seg, in, seg) })
		var ee *ExitError
		switch {
		case err == nil:
		case errorsAs(err, &ee):
			// Not in the archive: only the requested segment's answer
			// matters; later ones are simply not queued.
			mu.Lock()
			if missing == "" || seg < missing {
				missing = seg
			}
			mu.Unlock()
			if seg == name {
				return logStatusErr(e, writeStatus(in, seg+".ok", ""))
			}
		default:
			e.Log.Warnf("could not get WAL file %s from the archive: [%03d] %s", seg, errs.CodeOf(err), err.Error())
			if seg == name {
				return logStatusErr(e, writeStatus(in, seg+".error", fmt.Sprintf("%d\n%s", errs.CodeOf(err), err.Error())))
			}
		}
		return nil
	})
	// A signal fails the process (segments fetched so far stay in the
	// spool); runPool says so.
	return err
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }

// makeSpool creates a spool directory.
func makeSpool(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return errs.Wrap(errs.PathCreate, err, "unable to create spool path '%s'", dir)
	}
	return nil
}

// lockAsync takes the archive lock for a background process and creates
// its spool directory. A nil lock means: do not run (another background
// process holds the lock, nil error; or the spool cannot be made).
func lockAsync(e *Env, stanza, spool string) (*lock.Lock, error) {
	l, err := lock.Acquire(e.Cfg.String(config.LockPath), stanza, lock.Archive, e.ExecID)
	if err != nil {
		e.Log.Debugf("asynchronous %s already running: %v", e.Cfg.Command(), err)
		return nil, nil
	}
	if err := makeSpool(spool); err != nil {
		l.Release()
		return nil, err
	}
	return l, nil
}
