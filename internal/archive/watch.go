package archive

import (
	"encoding/binary"
	"time"

	"golang.org/x/sys/unix"
)

// dirWatch wakes the foreground of an asynchronous archive command when an
// entry appears in its spool directory (inotify), instead of it looking
// every 20 ms: a status file written just after a look cost up to 20 ms of
// an archive_command that otherwise takes a few.
type dirWatch struct {
	fd  int
	wd  int // -1: the directory went away (made again later, perhaps)
	dir string
	buf [4096]byte
}

const watchMask = unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_CLOSE_WRITE | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF

// watchDir watches dir; nil when inotify is not available (the caller
// then polls).
func watchDir(dir string) *dirWatch {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil
	}
	w := &dirWatch{fd: fd, wd: -1, dir: dir}
	w.add()
	return w
}

func (w *dirWatch) add() {
	if wd, err := unix.InotifyAddWatch(w.fd, w.dir, watchMask); err == nil {
		w.wd = wd
	}
}

// wait returns after something happened in the directory or after d.
// Without a live watch (the directory is gone) it sleeps 20 ms, as the
// polling did.
func (w *dirWatch) wait(d time.Duration) {
	if w.wd < 0 {
		w.add()
		if w.wd < 0 {
			time.Sleep(min(d, 20*time.Millisecond))
			return
		}
	}
	fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
	if n, err := unix.Poll(fds, int(d.Milliseconds())); err != nil || n == 0 {
		return
	}
	// Drain the events; a removed or moved directory ends the watch.
	for {
		n, err := unix.Read(w.fd, w.buf[:])
		if err != nil || n <= 0 {
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			mask := binary.NativeEndian.Uint32(w.buf[off+4:])
			nameLen := binary.NativeEndian.Uint32(w.buf[off+12:])
			if mask&(unix.IN_IGNORED|unix.IN_DELETE_SELF|unix.IN_MOVE_SELF) != 0 && w.wd >= 0 {
				unix.InotifyRmWatch(w.fd, uint32(w.wd))
				w.wd = -1
			}
			off += unix.SizeofInotifyEvent + int(nameLen)
		}
	}
}

func (w *dirWatch) close() {
	if w != nil {
		unix.Close(w.fd)
	}
}
