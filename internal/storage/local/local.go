// Package local is a directory on the local file system that every
// operation stays inside: restore writes PGDATA, each tablespace and each
// link destination through one Root each, so a name from a backup manifest
// can never create, change or remove anything outside them, even through a
// symbolic link planted inside (os.Root refuses to resolve a name outside
// its directory).
//
// Names are relative and slash-separated; "." is the directory itself.
// Names with an empty, "." or ".." component or a NUL are refused before
// any system call.
package local

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrName is returned for a name that is absolute or has an empty, "." or
// ".." component.
var ErrName = errors.New("name is not a plain relative path inside the directory")

// maxDirs bounds the subdirectory handles a Root keeps open.
const maxDirs = 256

// Root is an open directory. Its methods are safe for concurrent use.
type Root struct {
	name string
	r    *os.Root
	mu   sync.Mutex
	// dirs holds open subdirectories so that an operation on a file
	// costs one system call instead of one per path component.
	dirs map[string]*os.Root
	// files holds an open file of a directory handle (the root's or
	// one of dirs) for the system calls os.Root has no method for
	// (create.go); closed with its handle.
	files map[*os.Root]*os.File
}

// Open opens dir, which must exist and be a directory. dir itself may be
// reached through symbolic links (it is the configured location); nothing
// below it is.
func Open(dir string) (*Root, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &Root{name: filepath.Clean(dir), r: r, dirs: map[string]*os.Root{}, files: map[*os.Root]*os.File{}}, nil
}

// Name is the directory's path.
func (r *Root) Name() string { return r.name }

// Full is the path of name for messages.
func (r *Root) Full(name string) string {
	if name == "." || name == "" {
		return r.name
	}
	return filepath.Join(r.name, filepath.FromSlash(name))
}

// Close closes the directory and every cached subdirectory.
func (r *Root) Close() error {
	r.mu.Lock()
	for k, d := range r.dirs {
		r.closeDir(d)
		delete(r.dirs, k)
	}
	if f, ok := r.files[r.r]; ok {
		f.Close()
		delete(r.files, r.r)
	}
	r.mu.Unlock()
	return r.r.Close()
}

// CheckName reports whether name is "." or a relative slash-separated path
// without empty, "." or ".." components and without a NUL.
func CheckName(name string) error {
	if name == "." {
		return nil
	}
	if name == "" || name[0] == '/' || strings.IndexByte(name, 0) >= 0 {
		return ErrName
	}
	for c := range strings.SplitSeq(name, "/") {
		if c == "" || c == "." || c == ".." {
			return ErrName
		}
	}
	return nil
}

func (r *Root) pathErr(op, name string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return &fs.PathError{Op: op, Path: r.Full(name), Err: pe.Err}
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return &fs.PathError{Op: op, Path: r.Full(name), Err: le.Err}
	}
	return &fs.PathError{Op: op, Path: r.Full(name), Err: err}
}

// parent returns the directory handle holding name and name's last
// component. Subdirectories are opened through the root (so they are
// inside it) and cached.
func (r *Root) parent(name string) (*os.Root, string, error) {
	if err := CheckName(name); err != nil {
		return nil, "", err
	}
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return r.r, name, nil
	}
	dir, base := name[:i], name[i+1:]
	r.mu.Lock()
	defer r.mu.Unlock()
	if d, ok := r.dirs[dir]; ok {
		return d, base, nil
	}
	if len(r.dirs) >= maxDirs {
		return r.r, name, nil
	}
	d, err := r.r.OpenRoot(dir)
	if err != nil {
		return nil, "", err
	}
	r.dirs[dir] = d
	return d, base, nil
}

// forget drops cached handles of name and below (it is being removed,
// renamed or replaced).
func (r *Root) forget(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.dirs) == 0 {
		return
	}
	if name == "." {
		for k, d := range r.dirs {
			r.closeDir(d)
			delete(r.dirs, k)
		}
		return
	}
	for k, d := range r.dirs {
		if k == name || strings.HasPrefix(k, name) && k[len(name)] == '/' {
			r.closeDir(d)
			delete(r.dirs, k)
		}
	}
}

// do runs op on name's parent handle; "." runs on the root itself.
func (r *Root) do(op, name string, f func(d *os.Root, base string) error) error {
	if name == "." {
		if err := f(r.r, "."); err != nil {
			return r.pathErr(op, name, err)
		}
		return nil
	}
	d, base, err := r.parent(name)
	if err == nil {
		err = f(d, base)
	}
	if err != nil {
		return r.pathErr(op, name, err)
	}
	return nil
}

// OpenFile opens a file (os.OpenFile flags). The last component is not
// followed if it is a symbolic link leaving its directory.
func (r *Root) OpenFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	var f *os.File
	err := r.do("open", name, func(d *os.Root, base string) error {
		var err error
		f, err = d.OpenFile(base, flag, perm)
		return err
	})
	return f, err
}

// ReadFile reads a whole file.
func (r *Root) ReadFile(name string) ([]byte, error) {
	var b []byte
	err := r.do("read", name, func(d *os.Root, base string) error {
		var err error
		b, err = d.ReadFile(base)
		return err
	})
	return b, err
}

// Lstat describes name without following a final symbolic link.
func (r *Root) Lstat(name string) (fs.FileInfo, error) {
	var fi fs.FileInfo
	err := r.do("lstat", name, func(d *os.Root, base string) error {
		var err error
		fi, err = d.Lstat(base)
		return err
	})
	return fi, err
}

// ReadDir lists a directory (entry types are those of the entries
// themselves: a symbolic link is reported as one).
func (r *Root) ReadDir(name string) ([]fs.DirEntry, error) {
	var ents []fs.DirEntry
	err := r.do("readdir", name, func(d *os.Root, base string) error {
		f, err := d.Open(base)
		if err != nil {
			return err
		}
		defer f.Close()
		// A directory opened in an os.Root lstats every entry to report
		// its type; the entry types from the kernel are enough here, so
		// list a duplicate descriptor opened as a plain file.
		c, err := f.SyscallConn()
		if err != nil {
			return err
		}
		dup := -1
		var derr error
		if err := c.Control(func(fd uintptr) { dup, derr = unix.Dup(int(fd)) }); err != nil {
			return err
		}
		if derr != nil {
			return derr
		}
		plain := os.NewFile(uintptr(dup), r.Full(name))
		defer plain.Close()
		ents, err = plain.ReadDir(-1)
		return err
	})
	return ents, err
}

// Readlink returns the destination of a symbolic link.
func (r *Root) Readlink(name string) (string, error) {
	var s string
	err := r.do("readlink", name, func(d *os.Root, base string) error {
		var err error
		s, err = d.Readlink(base)
		return err
	})
	return s, err
}

// Mkdir creates one directory.
func (r *Root) Mkdir(name string, perm os.FileMode) error {
	return r.do("mkdir", name, func(d *os.Root, base string) error { return d.Mkdir(base, perm) })
}

// MkdirAll creates a directory and its missing parents.
func (r *Root) MkdirAll(name string, perm os.FileMode) error {
	if err := CheckName(name); err != nil {
		return r.pathErr("mkdir", name, err)
	}
	if name == "." {
		return nil
	}
	if err := r.r.MkdirAll(name, perm); err != nil {
		return r.pathErr("mkdir", name, err)
	}
	return nil
}

// Chmod sets the mode of name (following a symbolic link inside the
// directory only).
func (r *Root) Chmod(name string, mode os.FileMode) error {
	return r.do("chmod", name, func(d *os.Root, base string) error { return d.Chmod(base, mode) })
}

// Lchown sets the owner of name itself (not of a link's destination).
func (r *Root) Lchown(name string, uid, gid int) error {
	return r.do("lchown", name, func(d *os.Root, base string) error { return d.Lchown(base, uid, gid) })
}

// Chtimes sets access and modification times.
func (r *Root) Chtimes(name string, atime, mtime time.Time) error {
	return r.do("chtimes", name, func(d *os.Root, base string) error { return d.Chtimes(base, atime, mtime) })
}

// Remove removes a file, an empty directory or a symbolic link (never its
// destination).
func (r *Root) Remove(name string) error {
	if name == "." {
		return r.pathErr("remove", name, ErrName)
	}
	r.forget(name)
	return r.do("remove", name, func(d *os.Root, base string) error { return d.Remove(base) })
}

// RemoveAll removes name and everything below it; symbolic links are
// removed, never followed. A missing name is not an error.
func (r *Root) RemoveAll(name string) error {
	if name == "." {
		return r.pathErr("remove", name, ErrName)
	}
	r.forget(name)
	return r.do("remove", name, func(d *os.Root, base string) error { return d.RemoveAll(base) })
}

// Symlink creates name as a symbolic link to dest. dest is not resolved
// (it is usually outside the directory); operations through this Root
// never follow it out.
func (r *Root) Symlink(dest, name string) error {
	r.forget(name)
	return r.do("symlink", name, func(d *os.Root, base string) error { return d.Symlink(dest, base) })
}

// Rename renames oldname to newname, both inside the directory.
func (r *Root) Rename(oldname, newname string) error {
	if err := CheckName(oldname); err != nil || oldname == "." {
		return r.pathErr("rename", oldname, ErrName)
	}
	if err := CheckName(newname); err != nil || newname == "." {
		return r.pathErr("rename", newname, ErrName)
	}
	r.forget(oldname)
	r.forget(newname)
	if path.Dir(oldname) == path.Dir(newname) {
		return r.do("rename", newname, func(d *os.Root, base string) error {
			return d.Rename(path.Base(oldname), base)
		})
	}
	if err := r.r.Rename(oldname, newname); err != nil {
		return r.pathErr("rename", newname, err)
	}
	return nil
}

// RenameTo moves oldname, a file directly in r, to newname directly in
// dst (another Root): one renameat between the two directory handles, so
// neither name is resolved outside its directory and a final symbolic link
// is moved, never followed. Across file systems it fails with EXDEV (the
// caller copies instead).
func (r *Root) RenameTo(oldname string, dst *Root, newname string) error {
	if CheckName(oldname) != nil || oldname == "." || strings.IndexByte(oldname, '/') >= 0 {
		return r.pathErr("rename", oldname, ErrName)
	}
	if CheckName(newname) != nil || newname == "." || strings.IndexByte(newname, '/') >= 0 {
		return dst.pathErr("rename", newname, ErrName)
	}
	r.forget(oldname)
	dst.forget(newname)
	sd, err := r.r.Open(".")
	if err != nil {
		return r.pathErr("rename", oldname, err)
	}
	defer sd.Close()
	dd, err := dst.r.Open(".")
	if err != nil {
		return dst.pathErr("rename", newname, err)
	}
	defer dd.Close()
	if err := unix.Renameat(int(sd.Fd()), oldname, int(dd.Fd()), newname); err != nil {
		return &os.LinkError{Op: "rename", Old: r.Full(oldname), New: dst.Full(newname), Err: err}
	}
	return nil
}

// SyncDir flushes a directory's entries to disk.
func (r *Root) SyncDir(name string) error {
	return r.do("sync", name, func(d *os.Root, base string) error {
		f, err := d.Open(base)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Sync()
	})
}

// SetTimes sets the access and modification times of an open file (one
// utimensat on the descriptor, no path lookup).
func SetTimes(f *os.File, atime, mtime time.Time) error {
	ts := [2]unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	c, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := c.Control(func(fd uintptr) {
		// utimensat(fd, NULL, times, 0) changes the file fd refers to.
		_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, fd, 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
		if e != 0 {
			serr = e
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return &fs.PathError{Op: "utimensat", Path: f.Name(), Err: serr}
	}
	return nil
}
