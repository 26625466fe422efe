// Package lock takes pgBackRest-compatible stanza locks: an flock on
// <lock-path>/<stanza>-<type>.lock holding a small JSON body, so pgbr and
// pgBackRest 2.45 on one host never run a backup of the same stanza at once.
package lock

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"

	"github.com/pgbr-dev/pgbr/internal/errs"
)

// Type is the lock type.
type Type string

const (
	Backup  Type = "backup"
	Archive Type = "archive"
)

// Lock is a held lock.
type Lock struct {
	f      *os.File
	path   string
	execID string
	size   int // bytes of the file: a body never leaves it shorter
}

// ExecID returns a pgBackRest-style exec id: <pid>-<8 hex>.
// The random part only tells runs apart (it need not be secret), so it
// comes from the runtime's generator: crypto/rand's first read cost every
// archive-push about a quarter of a millisecond (perf).
func ExecID() string {
	return fmt.Sprintf("%d-%08x", os.Getpid(), rand.Uint32())
}

// Acquire takes the lock or fails at once with LockAcquireError.
func Acquire(lockPath, stanza string, t Type, execID string) (*Lock, error) {
	if err := os.MkdirAll(lockPath, 0o770); err != nil {
		return nil, errs.Wrap(errs.PathCreate, err, "unable to create lock path '%s'", lockPath)
	}
	path := filepath.Join(lockPath, fmt.Sprintf("%s-%s.lock", stanza, t))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, errs.Wrap(errs.LockAcquire, err, "unable to acquire lock on file '%s'", path)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		msg := err.Error()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			msg = "Resource temporarily unavailable"
		}
		return nil, errs.New(errs.LockAcquire, "unable to acquire lock on file '%s': %s\nHINT: is another pgBackRest process running?", path, msg)
	}
	l := &Lock{f: f, path: path, execID: execID}
	if fi, err := f.Stat(); err == nil {
		l.size = int(fi.Size()) // a dead process's body, overwritten below
	}
	l.Progress(-1)
	return l, nil
}

// Progress rewrites the lock body; pct is hundredths of a percent, or -1
// for none.
func (l *Lock) Progress(pct int) {
	body := fmt.Sprintf(`{"execId":"%s","pid":%d}`, l.execID, os.Getpid())
	if pct >= 0 {
		body = fmt.Sprintf(`{"execId":"%s","pctCplt":%d,"pid":%d}`, l.execID, pct, os.Getpid())
	}
	l.write(body)
}

// write replaces the body in one write at offset 0, padded with spaces to
// the file's length, and never truncates: info (pgbr's or pgBackRest's)
// reading the file meanwhile sees the old body or the new one, never an
// empty file, which both count as no backup running.
func (l *Lock) write(body string) {
	b := []byte(body)
	for len(b) < l.size {
		b = append(b, ' ')
	}
	l.f.WriteAt(b, 0)
	l.size = len(b)
}

// ProgressSize rewrites the lock body with the progress of a backup as
// pgBackRest 2.48 and later write it: percent complete in hundredths
// ("pctCplt", which 2.45 reads too), then the bytes done ("szCplt") of the
// total ("sz").
func (l *Lock) ProgressSize(done, total int64) {
	pct := uint64(0)
	if total > 0 && done >= 0 {
		pct = Percent(uint64(min(done, total)), uint64(total))
	}
	body := fmt.Sprintf(`{"execId":"%s","pctCplt":%d,"pid":%d,"sz":%d,"szCplt":%d}`, l.execID, pct, os.Getpid(), total, done)
	l.write(body)
}

// Release removes the lock file and unlocks.
func (l *Lock) Release() {
	if l == nil || l.f == nil {
		return
	}
	os.Remove(l.path)
	l.f.Close()
	l.f = nil
}

// Percent is done of total in hundredths of a percent, rounded as
// pgBackRest rounds it (10000 only when done == total).
func Percent(done, total uint64) uint64 {
	if total == 0 || done >= total {
		return 10000
	}
	return (uint64(float64(done)/float64(total)*100000) + 5) / 10
}

// Held reports whether another process holds the lock (used by info).
func Held(lockPath, stanza string, t Type) bool {
	return HeldFile(filepath.Join(lockPath, fmt.Sprintf("%s-%s.lock", stanza, t)))
}

// HeldFile reports whether another process holds the lock file path.
func HeldFile(path string) bool {
	f, err := os.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return true
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}

// CheckStop fails with StopError when a stop file exists for the stanza.
func CheckStop(lockPath, stanza string) error {
	for _, name := range []string{stanza + ".stop", "all.stop"} {
		if _, err := os.Stat(filepath.Join(lockPath, name)); err == nil {
			if name == "all.stop" {
				return errs.New(errs.Stop, "stop file exists for all stanzas")
			}
			return errs.New(errs.Stop, "stop file exists for stanza %s", stanza)
		}
	}
	return nil
}
