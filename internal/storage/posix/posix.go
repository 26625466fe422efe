// Package posix is the local filesystem storage driver (repo1-type=posix).
package posix

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/pgbr-dev/pgbr/internal/storage"
	"github.com/pgbr-dev/pgbr/internal/storage/direct"
)

// File and path modes used for the repository (pgBackRest: 0640 / 0750).
const (
	FileMode = 0o640
	PathMode = 0o750
)

// tmpSuffix is the suffix pgBackRest uses for files being written.
const tmpSuffix = ".pgbackrest.tmp"

// Storage is a repository rooted at a local directory.
type Storage struct {
	root string

	mu sync.Mutex
	// unsynced holds the directories that received NoSync writes since the
	// last SyncAll: each filesystem among them is flushed by SyncAll (a
	// backup/ or stanza directory may be a mount of its own).
	unsynced map[string]struct{}

	// syncfs and fsync do the flushing; tests replace them to observe or
	// fail the calls.
	syncfs func(fd int) error
	fsync  func(f *os.File) error

	// dirs holds directories known to exist (created or seen by Create),
	// so that writing many files into one directory stats it once.
	dirs sync.Map
}

// New returns storage rooted at root (an absolute path).
func New(root string) *Storage {
	return &Storage{root: filepath.Clean(root), unsynced: map[string]struct{}{},
		syncfs: unix.Syncfs, fsync: (*os.File).Sync}
}

func (s *Storage) Root() string { return s.root }

// Full returns the absolute path of a repository path.
func (s *Storage) Full(p string) string {
	p = strings.TrimLeft(p, "/")
	if p == "" {
		return s.root
	}
	return filepath.Join(s.root, filepath.FromSlash(p))
}

func wrap(op string, full string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("unable to %s missing file '%s': %w", op, full, storage.ErrNotFound)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("unable to %s file '%s': %w", op, full, storage.ErrPermission)
	}
	return fmt.Errorf("unable to %s file '%s': %w", op, full, err)
}

func (s *Storage) Open(ctx context.Context, p string) (io.ReadCloser, error) {
	full := s.Full(p)
	// A bare descriptor: an os.File costs several more system calls per
	// open, which add up over the many small files of a restore.
	f, err := direct.OpenPlain(full)
	if err != nil {
		return nil, wrap("open", full, err)
	}
	return f, nil
}

type section struct {
	io.Reader
	f *direct.Plain
}

func (r section) Close() error { return r.f.Close() }

func (s *Storage) OpenRange(ctx context.Context, p string, offset, length int64) (io.ReadCloser, error) {
	full := s.Full(p)
	f, err := direct.OpenPlain(full)
	if err != nil {
		return nil, wrap("open", full, err)
	}
	if length < 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			f.Close()
			return nil, wrap("seek", full, err)
		}
		return f, nil
	}
	return section{io.NewSectionReader(f, offset, length), f}, nil
}

var tmpSeq atomic.Uint64

type writer struct {
	s      *Storage
	f      *direct.Plain
	tmp    string
	final  string
	noSync bool
	done   bool
	n      int64 // bytes written
}

// writebackMin is the size from which a NoSync file starts its write-back
// at commit; smaller ones are left to SyncAll (one call for many files).
const writebackMin = 1 << 20

func (w *writer) Write(b []byte) (int, error) {
	n, err := w.f.Write(b)
	w.n += int64(n)
	if err != nil {
		return n, wrap("write", w.final, err)
	}
	return n, nil
}

func (w *writer) Commit() error {
	if w.done {
		return fmt.Errorf("file '%s' already committed or aborted", w.final)
	}
	w.done = true
	if w.noSync {
		// Start writing a large file to disk now (sync_file_range WRITE
		// does not wait), so the SyncAll that makes it durable finds
		// little left to do. A hint only: SyncAll reports any write-back
		// error.
		if w.n >= writebackMin {
			unix.SyncFileRange(w.f.Fd(), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
		}
		if err := w.f.Close(); err != nil {
			os.Remove(w.tmp)
			return wrap("close", w.final, err)
		}
	} else if err := w.syncClose(); err != nil {
		return err
	}
	if w.tmp == w.final {
		// Written in place: nothing to rename.
	} else if err := os.Rename(w.tmp, w.final); err != nil {
		os.Remove(w.tmp)
		return wrap("move", w.final, err)
	}
	if w.noSync {
		// Made durable (data and the rename) by the next SyncAll.
		w.s.track(filepath.Dir(w.final))
		return nil
	}
	return w.s.syncDir(filepath.Dir(w.final))
}

// CanCommitAs reports that this storage's writers have CommitAs.
func (s *Storage) CanCommitAs() bool { return true }

// CommitAs commits the file, as Commit, under p instead of the name it was
// created with; p must be in the same directory. archive-push names a WAL
// segment's file after the checksum it computes while writing the file.
func (w *writer) CommitAs(p string) error {
	full := w.s.Full(p)
	if w.done || w.tmp == w.final || filepath.Dir(full) != filepath.Dir(w.final) {
		w.Abort()
		return fmt.Errorf("file '%s' cannot be committed as '%s'", w.final, full)
	}
	w.final = full
	return w.Commit()
}

func (w *writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.f.Close()
	return os.Remove(w.tmp)
}

// syncClose flushes the file (through an os.File, which the flush hook of
// the tests sees) and closes it; on failure the file is removed.
func (w *writer) syncClose() error {
	f := w.f.File()
	if err := w.s.fsync(f); err != nil {
		f.Close()
		os.Remove(w.tmp)
		return wrap("sync", w.final, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(w.tmp)
		return wrap("close", w.final, err)
	}
	return nil
}

// syncDir makes the entries of dir (created, renamed files and
// directories) durable.
func (s *Storage) syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return wrap("sync path", dir, err)
	}
	err = s.fsync(d)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return wrap("sync path", dir, err)
	}
	return nil
}

// track records a directory that received a NoSync write.
func (s *Storage) track(dir string) {
	s.mu.Lock()
	s.unsynced[dir] = struct{}{}
	s.mu.Unlock()
}

func (s *Storage) Create(ctx context.Context, p string, opts storage.CreateOptions) (storage.Writer, error) {
	full := s.Full(p)
	// A directory created for a NoSync file is on the filesystem of the
	// file's directory, which SyncAll flushes; otherwise the parent of each
	// new directory is synced at once.
	if err := s.mkdirAll(filepath.Dir(full), !opts.NoSync); err != nil {
		return nil, err
	}
	// A unique temporary name per writer keeps concurrent writers of the
	// same file (two processes pushing one WAL segment) from clobbering each
	// other; the last rename wins with complete content.
	tmp, flags := full+tmpSuffix, os.O_WRONLY|os.O_CREATE|os.O_EXCL
	if opts.InPlace {
		tmp, flags = full, os.O_WRONLY|os.O_CREATE|os.O_TRUNC
	}
	f, err := direct.OpenFile(tmp, flags, FileMode)
	if errors.Is(err, fs.ErrNotExist) {
		// The directory was removed since it was cached: create it again.
		s.dirs.Clear()
		if err := s.mkdirAll(filepath.Dir(full), !opts.NoSync); err != nil {
			return nil, err
		}
		f, err = direct.OpenFile(tmp, flags, FileMode)
	}
	if errors.Is(err, fs.ErrExist) {
		tmp = fmt.Sprintf("%s.%d.%d%s", full, os.Getpid(), tmpSeq.Add(1), tmpSuffix)
		f, err = direct.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, FileMode)
	}
	if err != nil {
		return nil, wrap("open", full, err)
	}
	return &writer{s: s, f: f, tmp: tmp, final: full, noSync: opts.NoSync}, nil
}

// mkdirAll creates dir and its missing parents. With sync, the parent of
// each new directory is synced so the new entry survives a power loss.
func (s *Storage) mkdirAll(dir string, sync bool) error {
	if _, ok := s.dirs.Load(dir); ok {
		return nil
	}
	if err := s.mkdirAllStat(dir, sync); err != nil {
		return err
	}
	s.dirs.Store(dir, struct{}{})
	return nil
}

func (s *Storage) mkdirAllStat(dir string, sync bool) error {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	// Create parents one by one so each new directory gets PathMode
	// regardless of the umask.
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := s.mkdirAllStat(parent, sync); err != nil {
			return err
		}
	}
	err := os.Mkdir(dir, PathMode)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		if errors.Is(err, fs.ErrPermission) {
			return fmt.Errorf("unable to create path '%s': %w", dir, storage.ErrPermission)
		}
		return fmt.Errorf("unable to create path '%s': %w", dir, err)
	}
	if err == nil {
		// A filesystem without POSIX modes (repo1-type=cifs) keeps its own.
		if err := os.Chmod(dir, PathMode); err != nil && !errors.Is(err, unix.ENOTSUP) && !errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("unable to set mode of path '%s': %w", dir, err)
		}
	}
	// ErrExist here means a concurrent writer has just created it and may
	// not have synced its parent yet: sync it as well.
	if sync {
		return s.syncDir(parent)
	}
	return nil
}

func (s *Storage) List(ctx context.Context, p string) ([]storage.Info, error) {
	full := s.Full(p)
	entries, err := os.ReadDir(full)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("unable to list path '%s': %w", full, err)
	}
	out := make([]storage.Info, 0, len(entries))
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), tmpSuffix) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		out = append(out, toInfo(e.Name(), filepath.Join(full, e.Name()), fi))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func toInfo(name, full string, fi fs.FileInfo) storage.Info {
	in := storage.Info{Name: name, Size: fi.Size(), ModTime: fi.ModTime()}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		in.Type = storage.TypeLink
		in.Link, _ = os.Readlink(full)
		in.Size = 0
	case fi.IsDir():
		in.Type = storage.TypePath
		in.Size = 0
	default:
		in.Type = storage.TypeFile
	}
	return in
}

func (s *Storage) Stat(ctx context.Context, p string) (storage.Info, error) {
	full := s.Full(p)
	fi, err := os.Lstat(full)
	if err != nil {
		return storage.Info{}, wrap("get info for", full, err)
	}
	return toInfo(strings.TrimLeft(p, "/"), full, fi), nil
}

func (s *Storage) Remove(ctx context.Context, p string) error {
	full := s.Full(p)
	s.dirs.Delete(full)
	if err := os.Remove(full); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return wrap("remove", full, err)
	}
	return nil
}

func (s *Storage) RemoveAll(ctx context.Context, p string) error {
	full := s.Full(p)
	s.dirs.Clear()
	if err := os.RemoveAll(full); err != nil {
		return fmt.Errorf("unable to remove path '%s': %w", full, err)
	}
	return nil
}

func (s *Storage) PathCreate(ctx context.Context, p string) error {
	return s.mkdirAll(s.Full(p), true)
}

func (s *Storage) Exists(ctx context.Context, p string) (bool, error) {
	full := s.Full(p)
	fi, err := os.Stat(full)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, wrap("get info for", full, err)
	}
	return !fi.IsDir(), nil
}

func (s *Storage) Symlink(ctx context.Context, target, p string) error {
	full := s.Full(p)
	tmp := full + tmpSuffix
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("unable to create symlink '%s' to '%s': %w", full, target, err)
	}
	if err := os.Rename(tmp, full); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("unable to create symlink '%s' to '%s': %w", full, target, err)
	}
	return s.syncDir(filepath.Dir(full))
}

// SyncAll flushes (syncfs) every filesystem that received NoSync writes
// since the last call, and the repository's own: one call per filesystem
// makes every such file durable, with the directories holding it. A backup/
// or stanza directory mounted apart from repo1-path is a filesystem of its
// own.
func (s *Storage) SyncAll(ctx context.Context) error {
	s.mu.Lock()
	dirs := make([]string, 0, len(s.unsynced)+1)
	for d := range s.unsynced {
		dirs = append(dirs, d)
	}
	s.mu.Unlock()
	sort.Strings(dirs)
	dirs = append([]string{s.root}, dirs...)
	seen := map[uint64]bool{}
	for i, d := range dirs {
		var st unix.Stat_t
		if err := unix.Stat(d, &st); err != nil {
			if i > 0 && errors.Is(err, fs.ErrNotExist) {
				continue // removed since (an aborted or resumed backup's file)
			}
			return fmt.Errorf("unable to open '%s' for sync: %w", d, err)
		}
		if seen[uint64(st.Dev)] {
			continue
		}
		seen[uint64(st.Dev)] = true
		if err := s.syncFS(d); err != nil {
			return err
		}
	}
	s.mu.Lock()
	for _, d := range dirs[1:] {
		delete(s.unsynced, d)
	}
	s.mu.Unlock()
	return nil
}

func (s *Storage) syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("unable to open '%s' for sync: %w", dir, err)
	}
	defer f.Close()
	if err := s.syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("unable to sync the filesystem of '%s': %w", dir, err)
	}
	return nil
}

var (
	_ storage.Storage = (*Storage)(nil)
	_ storage.Syncer  = (*Storage)(nil)
)
