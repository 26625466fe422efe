package local

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"

	"github.com/pgbr-dev/pgbr/internal/errs"
)

// WriteFileAtomic writes a small file inside r through a temporary name
// (<name>.pgbackrest.tmp), durably: sync flushes the file (nil:
// (*os.File).Sync), then it is renamed and its directory synced. uid < 0
// leaves the ownership alone. On failure the temporary file is removed and
// name is untouched; errors carry pgBackRest's codes.
func (r *Root) WriteFileAtomic(name string, data []byte, mode os.FileMode, uid, gid int, sync func(*os.File) error) error {
	return r.WriteFileAtomicFrom(name, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}, mode, uid, gid, sync)
}

// WriteFileAtomicFrom is WriteFileAtomic of what write writes (a large
// text rendered a piece at a time).
func (r *Root) WriteFileAtomicFrom(name string, write func(io.Writer) error, mode os.FileMode, uid, gid int,
	sync func(*os.File) error) error {
	if sync == nil {
		sync = (*os.File).Sync
	}
	tmp := name + ".pgbackrest.tmp"
	if err := r.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return errs.Wrap(errs.FileRemove, err, "unable to remove '%s'", r.Full(tmp))
	}
	f, err := r.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return errs.Wrap(errs.FileOpen, err, "unable to open '%s' for write", r.Full(tmp))
	}
	fail := func(code errs.Code, err error, format string) error {
		f.Close()
		r.Remove(tmp)
		return errs.Wrap(code, err, format, r.Full(tmp))
	}
	if err := write(f); err != nil {
		return fail(errs.FileWrite, err, "unable to write '%s'")
	}
	if err := f.Chmod(mode); err != nil {
		return fail(errs.FileMode, err, "unable to set mode of '%s'")
	}
	if uid >= 0 {
		if err := f.Chown(uid, gid); err != nil {
			return fail(errs.FileOwner, err, "unable to set ownership for '%s'")
		}
	}
	if err := sync(f); err != nil {
		return fail(errs.FileSync, err, "unable to sync '%s'")
	}
	if err := f.Close(); err != nil {
		r.Remove(tmp)
		return errs.Wrap(errs.FileClose, err, "unable to close '%s'", r.Full(tmp))
	}
	if err := r.Rename(tmp, name); err != nil {
		r.Remove(tmp)
		return errs.Wrap(errs.FileMove, err, "unable to move '%s' to '%s'", r.Full(tmp), r.Full(name))
	}
	if err := r.SyncDir(path.Dir(name)); err != nil {
		return errs.Wrap(errs.PathSync, err, "unable to sync path '%s'", r.Full(path.Dir(name)))
	}
	return nil
}
