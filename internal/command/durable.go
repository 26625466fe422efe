package command

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/pgbr-dev/pgbr/internal/errs"
)

// The calls that make local writes durable. Tests (and the pgbr_faults
// build) replace them to prove a failed flush fails the command; restore
// gets them in its Options.
var (
	fileSync = (*os.File).Sync
	fsSync   = unix.Syncfs
)

// writeFileAtomic writes a small local file durably through a temp name:
// data, mode and owner set and synced, renamed, the directory synced. Any
// failure is returned and leaves the previous file (if any) in place.
func writeFileAtomic(path string, data []byte, mode os.FileMode, uid, gid int) error {
	tmp := path + ".pgbackrest.tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return errs.Wrap(errs.FileOpen, err, "unable to open '%s' for write", tmp)
	}
	fail := func(code errs.Code, err error, format string, a ...any) error {
		f.Close()
		os.Remove(tmp)
		return errs.Wrap(code, err, format, a...)
	}
	if _, err := f.Write(data); err != nil {
		return fail(errs.FileWrite, err, "unable to write '%s'", tmp)
	}
	if err := f.Chmod(mode); err != nil {
		return fail(errs.FileMode, err, "unable to set mode of '%s'", tmp)
	}
	if uid >= 0 {
		if err := f.Chown(uid, gid); err != nil {
			return fail(errs.FileOwner, err, "unable to set ownership for '%s'", tmp)
		}
	}
	if err := fileSync(f); err != nil {
		return fail(errs.FileSync, err, "unable to sync '%s'", tmp)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return errs.Wrap(errs.FileClose, err, "unable to close '%s'", tmp)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return errs.Wrap(errs.FileMove, err, "unable to move '%s' to '%s'", tmp, path)
	}
	return syncDirPath(filepath.Dir(path))
}

func syncDirPath(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return errs.Wrap(errs.PathSync, err, "unable to open path '%s' for sync", dir)
	}
	defer d.Close()
	if err := fileSync(d); err != nil {
		return errs.Wrap(errs.PathSync, err, "unable to sync path '%s'", dir)
	}
	return nil
}
