package posix

import (
	"os"

	"golang.org/x/sys/unix"
)

// openFile opens path for writing on a bare descriptor. An os.File costs
// five more system calls per file here (two blocking-mode changes either
// side of a poller registration that a regular file refuses), which add up
// over the thousands of small files of a backup. Errors are those of
// os.OpenFile.
func openFile(path string, flags int, mode os.FileMode) (int, error) {
	for {
		fd, err := unix.Open(path, flags|unix.O_CLOEXEC, uint32(mode.Perm()))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return fd, nil
	}
}

// writeFD writes all of b to fd, as os.File.Write does.
func writeFD(fd int, name string, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := unix.Write(fd, b[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, &os.PathError{Op: "write", Path: name, Err: err}
		}
		if m == 0 {
			return n, &os.PathError{Op: "write", Path: name, Err: unix.EIO}
		}
		n += m
	}
	return n, nil
}

// closeFD closes fd, as os.File.Close does (EINTR is not retried: the
// descriptor is gone either way on Linux).
func closeFD(fd int, name string) error {
	if err := unix.Close(fd); err != nil {
		return &os.PathError{Op: "close", Path: name, Err: err}
	}
	return nil
}
