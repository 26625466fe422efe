package archive

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/log"
	"github.com/pgbr-dev/pgbr/internal/storage/local"
)

// The asynchronous archive commands (archive-async=y), as pgBackRest:
// PostgreSQL's archive_command / restore_command only waits for a status
// file in <spool-path>/archive/<stanza>/out/ (<wal>.ok, or <wal>.error
// holding the error code and message) or for the segment in .../in/; a
// background "<command>:async" process does the work process-max at a time
// and writes those files. Spool files are host-local.
//
// Every spool file is created, read, renamed and removed through a
// local.Root on the spool directory, by a name that must be one plain
// component (CheckSpoolName): a WAL name from PostgreSQL, from a command
// line or from the archive can never reach outside the spool, even through
// a symbolic link planted in it.

// SpoolOut is <spool-path>/archive/<stanza>/out (asynchronous push).
func SpoolOut(spoolPath, stanza string) string {
	return filepath.Join(spoolPath, "archive", stanza, "out")
}

// SpoolIn is <spool-path>/archive/<stanza>/in (asynchronous get).
func SpoolIn(spoolPath, stanza string) string {
	return filepath.Join(spoolPath, "archive", stanza, "in")
}

// WaitOptions is the foreground wait of an asynchronous archive command.
type WaitOptions struct {
	Dir     string        // the spool directory to watch
	Timeout time.Duration // archive-timeout
	// Start launches the background process (again); called at once and
	// then every second while the wait lasts.
	Start func() error
	// LogFile is the background process's log, named in the timeout HINT.
	LogFile string
	Log     *log.Logger
}

// wait waits for done to report the outcome it looks for; <errFile>
// (error code, message) is a failure the next attempt retries; the
// background process is started (again) every second until the timeout.
// It looks again whenever an entry appears in the spool directory
// (dirWatch), at least every 100 ms (every 20 ms without inotify).
// The spool directory is opened afresh for each look (it may be removed
// and made again meanwhile).
func wait(ctx context.Context, o *WaitOptions, what, errFile string, done func(spool *local.Root) (bool, error)) error {
	deadline := time.Now().Add(o.Timeout)
	var lastStart time.Time
	// Watched before the first look: nothing written after it is missed.
	watch := watchDir(o.Dir)
	defer watch.close()
	for {
		if spool, err := local.Open(o.Dir); err == nil {
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
				code, msg := ParseStatus(status)
				return errs.New(code, "%s", msg)
			}
		}
		if time.Since(lastStart) > time.Second {
			if err := o.Start(); err != nil {
				return err
			}
			lastStart = time.Now()
		}
		if time.Now().After(deadline) {
			return errs.New(errs.ArchiveTimeout, "unable to %s the archive asynchronously after %g second(s)\nHINT: check '%s' for errors.",
				what, o.Timeout.Seconds(), o.LogFile)
		}
		if ctx.Err() != nil {
			return errs.New(errs.Term, "terminated on signal")
		}
		if watch != nil {
			// Bounded, so a signal, the next start and the deadline
			// are seen in time.
			watch.wait(100 * time.Millisecond)
			continue
		}
		select {
		case <-ctx.Done():
			return errs.New(errs.Term, "terminated on signal")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// WaitPushed is the foreground of an asynchronous archive-push: it
// returns when the background process reports walPath pushed (nil) or
// failed (its error), or at the timeout.
func WaitPushed(ctx context.Context, o *WaitOptions, walPath string) error {
	name := filepath.Base(walPath)
	if err := CheckSpoolName(name); err != nil {
		return err
	}
	if err := MakeSpool(o.Dir); err != nil {
		return err
	}
	return wait(ctx, o, "push WAL file '"+name+"' to", name+".error", func(out *local.Root) (bool, error) {
		if _, err := out.Lstat(name + ".ok"); err == nil {
			o.Log.Infof("pushed WAL file '%s' to the archive asynchronously", name)
			return true, nil
		}
		return false, nil
	})
}

// WaitGot is the foreground of an asynchronous archive-get: it moves the
// segment name to dest once the background process has fetched it (nil),
// returns a *NotFoundError (Async) when it is in no repository, its error
// when it failed, or times out.
func WaitGot(ctx context.Context, o *WaitOptions, name, dest string) error {
	if err := CheckSpoolName(name); err != nil {
		return err
	}
	if err := MakeSpool(o.Dir); err != nil {
		return err
	}
	return wait(ctx, o, "get WAL file '"+name+"' from", name+".error", func(in *local.Root) (bool, error) {
		if _, err := in.Lstat(name); err == nil {
			if err := MoveFile(in, name, dest); err != nil {
				return false, err
			}
			o.Log.Infof("found %s in the archive asynchronously", name)
			return true, nil
		}
		if _, err := in.Lstat(name + ".ok"); err == nil {
			in.Remove(name + ".ok")
			return false, &NotFoundError{Name: name, Async: true}
		}
		return false, nil
	})
}

// ParseStatus reads a .error status file: the error code on the first
// line, the message after it.
func ParseStatus(b []byte) (errs.Code, string) {
	s := string(b)
	first, rest, _ := strings.Cut(s, "\n")
	code, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || code <= 0 {
		return errs.Unknown, strings.TrimSpace(s)
	}
	return errs.Code(code), strings.TrimSpace(rest)
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

// WriteStatus writes a spool status file durably through a temporary
// name (the foreground trusts it: a lost .ok after a power loss would be
// harmless, a torn .error not).
func WriteStatus(spool *local.Root, name, content string) error {
	if err := CheckSpoolName(name); err != nil {
		return err
	}
	return spool.WriteFileAtomic(name, []byte(content), 0o640, -1, -1, fileSync)
}

// errorStatus is the content of a .error status file.
func errorStatus(err error) string {
	return strconv.Itoa(int(errs.CodeOf(err))) + "\n" + err.Error()
}

// WriteError writes <name>.error for err.
func WriteError(spool *local.Root, name string, err error) error {
	return WriteStatus(spool, name+".error", errorStatus(err))
}

// CheckSpoolName refuses a WAL or status file name that is not one plain
// file name (empty, ".", "..", containing '/' or NUL).
func CheckSpoolName(name string) error {
	if name == "." || strings.IndexByte(name, '/') >= 0 || local.CheckName(name) != nil {
		return errs.New(errs.ParamInvalid, "invalid WAL file name '%s': not a plain file name", name)
	}
	return nil
}

// MakeSpool creates a spool directory.
func MakeSpool(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return errs.Wrap(errs.PathCreate, err, "unable to create spool path '%s'", dir)
	}
	return nil
}

// OpenSpool creates (when missing) and opens a spool directory.
func OpenSpool(dir string) (*local.Root, error) {
	if err := MakeSpool(dir); err != nil {
		return nil, err
	}
	r, err := local.Open(dir)
	if err != nil {
		return nil, errs.Wrap(errs.PathOpen, err, "unable to open spool path '%s'", dir)
	}
	return r, nil
}

// MoveFile moves name from the spool to dest, renaming when they are on
// the same file system, else copying (the spool and pg_wal often are on
// different ones); either way durably.
func MoveFile(spool *local.Root, name, dest string) error {
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
	if err := dst.WriteFileAtomic(base, b, 0o600, -1, -1, fileSync); err != nil {
		return err
	}
	spool.Remove(name)
	return nil
}
