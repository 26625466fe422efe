package direct

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Plain reads a small file through the page cache on a bare descriptor:
// an os.File costs several more system calls per open (poller
// registration, blocking-mode changes), which add up over the thousands of
// small files of a cluster.
type Plain struct {
	fd   int
	name string
}

// OpenPlain opens path for reading. Errors are those of os.Open.
func OpenPlain(path string) (*Plain, error) {
	for {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
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
