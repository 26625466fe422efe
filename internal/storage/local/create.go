package local

import (
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// closeDir closes a cached subdirectory handle and its file (r.mu held).
func (r *Root) closeDir(d *os.Root) {
	if f, ok := r.files[d]; ok {
		f.Close()
		delete(r.files, d)
	}
	d.Close()
}

// dirFile returns an open file of the directory handle d (cached until d
// is closed); nil when d was closed (forgotten) meanwhile.
func (r *Root) dirFile(d *os.Root) *os.File {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f, ok := r.files[d]; ok {
		return f
	}
	// A handle forgotten (closed) since parent returned it fails here.
	f, err := d.Open(".")
	if err != nil {
		return nil
	}
	r.files[d] = f
	return f
}

// CreateExcl creates the file name (O_WRONLY|O_CREATE|O_EXCL, perm before
// the umask), as OpenFile would, in fewer system calls: os.Root's open
// registers every file with the runtime's poller (four fcntl and an
// epoll_ctl that fails for a regular file), which costs more than the
// create itself for a small file. The file is created with openat(2) in
// its parent directory's handle (opened through the root, so inside it);
// with O_CREAT|O_EXCL nothing is followed, not even a link at name.
func (r *Root) CreateExcl(name string, perm os.FileMode) (*os.File, error) {
	const flag = os.O_WRONLY | os.O_CREATE | os.O_EXCL
	d, base, err := r.parent(name)
	if err != nil {
		return nil, r.pathErr("open", name, err)
	}
	var df *os.File
	if strings.IndexByte(base, '/') < 0 {
		df = r.dirFile(d)
	}
	if df == nil {
		return r.OpenFile(name, flag, perm)
	}
	rc, err := df.SyscallConn()
	if err != nil {
		return r.OpenFile(name, flag, perm)
	}
	fd := -1
	var oerr error
	// Control holds a reference to df: a concurrent forget cannot close
	// the descriptor under the openat.
	cerr := rc.Control(func(dfd uintptr) {
		for {
			fd, oerr = unix.Openat(int(dfd), base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm.Perm()))
			if oerr != syscall.EINTR {
				return
			}
		}
	})
	if cerr != nil {
		return r.OpenFile(name, flag, perm)
	}
	if oerr != nil {
		return nil, r.pathErr("open", name, oerr)
	}
	return os.NewFile(uintptr(fd), r.Full(name)), nil
}
