package command

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/pgbr-dev/pgbr/internal/config"
	"github.com/pgbr-dev/pgbr/internal/errs"
)

// stopFileName is <lock-path>/<stanza>.stop, or all.stop without a stanza.
func stopFileName(e *Env) string {
	name := e.Cfg.String(config.Stanza)
	if name == "" {
		name = "all"
	}
	return filepath.Join(e.Cfg.String(config.LockPath), name+".stop")
}

// stopCommand creates the stop file that keeps backup, expire,
// archive-push, archive-get, stanza-create and stanza-upgrade of the stanza
// (or of all stanzas) from running, as pgBackRest's stop. With --force it
// also sends SIGTERM to the processes holding the stanza's locks (every
// lock in lock-path without --stanza).
func stopCommand(e *Env) error {
	stopFile := stopFileName(e)
	stanza := e.Cfg.String(config.Stanza)
	if _, err := os.Stat(stopFile); err == nil {
		what := "all stanzas"
		if stanza != "" {
			what = "stanza " + stanza
		}
		e.Log.Warnf("stop file already exists for %s", what)
		return nil
	}
	lockPath := e.Cfg.String(config.LockPath)
	if err := os.MkdirAll(lockPath, 0o770); err != nil {
		return errs.Wrap(errs.PathCreate, err, "unable to create path '%s'", lockPath)
	}
	f, err := os.OpenFile(stopFile, os.O_WRONLY|os.O_CREATE, 0o640)
	if err != nil {
		return errs.Wrap(errs.FileOpen, err, "unable to open '%s' for write", stopFile)
	}
	if err := f.Close(); err != nil {
		return errs.Wrap(errs.FileClose, err, "unable to close '%s'", stopFile)
	}
	if !e.Cfg.Bool(config.Force) {
		return nil
	}
	entries, err := os.ReadDir(lockPath)
	if err != nil {
		return errs.Wrap(errs.PathOpen, err, "unable to list files for path '%s'", lockPath)
	}
	var names []string
	for _, d := range entries {
		names = append(names, d.Name())
	}
	slices.Sort(names)
	for _, name := range names {
		if !strings.HasSuffix(name, ".lock") ||
			stanza != "" && name != stanza+"-archive.lock" && name != stanza+"-backup.lock" {
			continue
		}
		path := filepath.Join(lockPath, name)
		pid, ok := readHeldLock(path)
		if !ok {
			e.Log.Warnf("unable to read lock file %s", path)
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
			e.Log.Warnf("unable to send term signal to process %d", pid)
		} else {
			e.Log.Infof("sent term signal to process %d", pid)
		}
	}
	return nil
}

// readHeldLock reads the pid from a lock file that a running process holds,
// and removes the file (as pgBackRest: a lock nobody holds is stale).
func readHeldLock(path string) (int, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	defer os.Remove(path)
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		return 0, false
	}
	var body struct {
		ExecID *string `json:"execId"`
		Pid    *int    `json:"pid"`
	}
	buf := make([]byte, 8192)
	n, _ := f.Read(buf)
	if err := json.Unmarshal(buf[:n], &body); err != nil || body.ExecID == nil || body.Pid == nil {
		return 0, false
	}
	return *body.Pid, true
}

// startCommand removes the stop file (pgBackRest's start).
func startCommand(e *Env) error {
	stopFile := stopFileName(e)
	if _, err := os.Stat(stopFile); err != nil {
		what := ""
		if s := e.Cfg.String(config.Stanza); s != "" {
			what = " for stanza " + s
		}
		e.Log.Warnf("stop file does not exist%s", what)
		return nil
	}
	if err := os.Remove(stopFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return errs.Wrap(errs.FileRemove, err, "unable to remove file '%s'", stopFile)
	}
	return nil
}
