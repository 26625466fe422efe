package command

import (
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/repo"
)

// The calls that make local writes durable. Tests (and the pgbr_faults
// build) replace them to prove a failed flush fails the command.
var (
	fileSync = (*os.File).Sync
	fsSync   = unix.Syncfs
)

// syncFilesystems flushes (syncfs) every distinct filesystem holding one of
// paths (symlinks followed), once each.
func syncFilesystems(paths []string) error {
	seen := map[uint64]bool{}
	for _, p := range paths {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			return errs.Wrap(errs.PathSync, err, "unable to open '%s' for sync", p)
		}
		if seen[uint64(st.Dev)] {
			continue
		}
		seen[uint64(st.Dev)] = true
		if err := syncfs(p); err != nil {
			return err
		}
	}
	return nil
}

// syncTargets makes every restored file durable: PGDATA's filesystem, each
// tablespace's and each linked directory's (pg_wal on another disk).
func (rr *restoreRun) syncTargets() error {
	paths := []string{rr.pgData}
	for name, dir := range rr.targets {
		if name != repo.TargetPgData {
			paths = append(paths, dir)
		}
	}
	for _, l := range rr.m.Links {
		// The link restore made inside PGDATA: stat and syncfs follow it
		// to the destination's filesystem (nothing is written through it).
		p := filepath.Join(rr.pgData, strings.TrimPrefix(l.Name, repo.TargetPgData+"/"))
		if _, err := os.Stat(p); err == nil {
			paths = append(paths, p)
		}
	}
	return syncFilesystems(paths)
}

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

// writebackChunk is how many bytes of a file restore writes before it asks
// the kernel to start writing them to disk.
const writebackChunk = 8 << 20

// writeback passes writes to f and, every writebackChunk bytes, starts the
// kernel's writeback of the range just written (sync_file_range WRITE, which
// does not wait). The disk then works while the next bytes are decompressed
// instead of all at the final syncfs. It is a hint only: durability still
// comes from the syncfs at the end, which reports any write-back error.
type writeback struct {
	f            *os.File
	off, started int64
}

func (w *writeback) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.off += int64(n)
	if w.off-w.started >= writebackChunk {
		unix.SyncFileRange(int(w.f.Fd()), w.started, w.off-w.started, unix.SYNC_FILE_RANGE_WRITE)
		w.started = w.off
	}
	return n, err
}

// flush starts writeback of the tail of a file of at least one chunk.
func (w *writeback) flush() {
	if w.off >= writebackChunk && w.off > w.started {
		unix.SyncFileRange(int(w.f.Fd()), w.started, w.off-w.started, unix.SYNC_FILE_RANGE_WRITE)
	}
}
