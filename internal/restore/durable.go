package restore

import (
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/repo"
)

// syncfs flushes the whole filesystem holding path (one call instead of
// an fsync per restored file).
func (rr *restoreRun) syncfs(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return errs.Wrap(errs.PathSync, err, "unable to open '%s' for sync", path)
	}
	defer f.Close()
	if err := rr.fsSync(int(f.Fd())); err != nil {
		return errs.Wrap(errs.PathSync, err, "unable to sync filesystem of '%s'", path)
	}
	return nil
}

func (rr *restoreRun) syncDirPath(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return errs.Wrap(errs.PathSync, err, "unable to open path '%s' for sync", dir)
	}
	defer d.Close()
	if err := rr.fileSync(d); err != nil {
		return errs.Wrap(errs.PathSync, err, "unable to sync path '%s'", dir)
	}
	return nil
}

// syncFilesystems flushes (syncfs) every distinct filesystem holding one of
// paths (symlinks followed), once each.
func (rr *restoreRun) syncFilesystems(paths []string) error {
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
		if err := rr.syncfs(p); err != nil {
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
	return rr.syncFilesystems(paths)
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
