package direct

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Plain is a file on a bare descriptor, read (or written) through the page
// cache: an os.File costs several more system calls per open (poller
// registration, blocking-mode changes), which add up over the thousands of
// small files of a cluster or a repository.
type Plain struct {
	fd   int
	name string
}

// OpenPlain opens path for reading. Errors are those of os.Open.
func OpenPlain(path string) (*Plain, error) { return OpenFile(path, os.O_RDONLY, 0) }

// OpenFile opens path with flags (os.O_* flags; close-on-exec is added)
// and, for a file it creates, perm. Errors are those of os.OpenFile.
func OpenFile(path string, flags int, perm os.FileMode) (*Plain, error) {
	for {
		fd, err := unix.Open(path, flags|unix.O_CLOEXEC, uint32(perm.Perm()))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return &Plain{fd: fd, name: path}, nil
	}
}

// Name returns the path given to OpenPlain.
func (p *Plain) Name() string { return p.name }

// Read implements io.Reader.
func (p *Plain) Read(b []byte) (int, error) {
	if p.fd < 0 {
		return 0, os.ErrClosed
	}
	if len(b) == 0 {
		return 0, nil
	}
	for {
		n, err := unix.Read(p.fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, &os.PathError{Op: "read", Path: p.name, Err: err}
		}
		if n == 0 {
			return 0, io.EOF
		}
		return n, nil
	}
}

// Write writes all of b, as os.File.Write does.
func (p *Plain) Write(b []byte) (int, error) {
	if p.fd < 0 {
		return 0, os.ErrClosed
	}
	n := 0
	for n < len(b) {
		m, err := unix.Write(p.fd, b[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, &os.PathError{Op: "write", Path: p.name, Err: err}
		}
		if m == 0 {
			return n, &os.PathError{Op: "write", Path: p.name, Err: io.ErrShortWrite}
		}
		n += m
	}
	return n, nil
}

// Fd returns the descriptor (-1 once closed or handed over).
func (p *Plain) Fd() int { return p.fd }

// File hands the descriptor over to an os.File (for the calls that take
// one); p is closed from then on and the os.File must be closed instead.
func (p *Plain) File() *os.File {
	f := os.NewFile(uintptr(p.fd), p.name)
	p.fd = -1
	return f
}

// Close closes the descriptor.
func (p *Plain) Close() error {
	if p.fd < 0 {
		return os.ErrClosed
	}
	fd := p.fd
	p.fd = -1
	if err := unix.Close(fd); err != nil {
		return &os.PathError{Op: "close", Path: p.name, Err: err}
	}
	return nil
}

// ReadAt implements io.ReaderAt (pread).
func (p *Plain) ReadAt(b []byte, off int64) (int, error) {
	if p.fd < 0 {
		return 0, os.ErrClosed
	}
	n := 0
	for n < len(b) {
		m, err := unix.Pread(p.fd, b[n:], off+int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, &os.PathError{Op: "read", Path: p.name, Err: err}
		}
		if m == 0 {
			return n, io.EOF
		}
		n += m
	}
	return n, nil
}

// Seek sets the offset of the next Read (io.Seeker).
func (p *Plain) Seek(off int64, whence int) (int64, error) {
	if p.fd < 0 {
		return 0, os.ErrClosed
	}
	n, err := unix.Seek(p.fd, off, whence)
	if err != nil {
		return 0, &os.PathError{Op: "seek", Path: p.name, Err: err}
	}
	return n, nil
}

// Stat returns the file's information (fstat).
func (p *Plain) Stat() (fs.FileInfo, error) {
	if p.fd < 0 {
		return nil, os.ErrClosed
	}
	var st unix.Stat_t
	if err := unix.Fstat(p.fd, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: p.name, Err: err}
	}
	return &fileInfo{name: filepath.Base(p.name), st: st}, nil
}

// Lstatat is lstat of name in the directory open as dirfd: no path to
// resolve again for each entry of a large directory.
func Lstatat(dirfd int, name string) (fs.FileInfo, error) {
	fi := &fileInfo{name: name}
	if err := unix.Fstatat(dirfd, name, &fi.st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, &os.PathError{Op: "lstat", Path: name, Err: err}
	}
	return fi, nil
}

type fileInfo struct {
	name string
	st   unix.Stat_t
}

func (fi *fileInfo) Name() string { return fi.name }
func (fi *fileInfo) Size() int64  { return fi.st.Size }
func (fi *fileInfo) Mode() fs.FileMode {
	m := fs.FileMode(fi.st.Mode & 0o777)
	switch fi.st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
	case unix.S_IFDIR:
		m |= fs.ModeDir
	case unix.S_IFLNK:
		m |= fs.ModeSymlink
	default:
		m |= fs.ModeIrregular
	}
	return m
}
func (fi *fileInfo) ModTime() time.Time { return time.Unix(fi.st.Mtim.Unix()) }
func (fi *fileInfo) IsDir() bool        { return fi.Mode().IsDir() }
func (fi *fileInfo) Sys() any           { return &fi.st }
