package restore

import (
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// syncHooks stands for the flush calls in one test: fsync of a file (or a
// directory) fails with EIO when failFile (failDir) says so; syncfs calls
// are counted per device and fail when failFS is set.
type syncHooks struct {
	mu                        sync.Mutex
	failFile, failDir, failFS bool
	devs                      map[uint64]int
}

func newSyncHooks() *syncHooks { return &syncHooks{devs: map[uint64]int{}} }

func (h *syncHooks) fileSync(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	h.mu.Lock()
	fail := (fi.IsDir() && h.failDir) || (!fi.IsDir() && h.failFile)
	h.mu.Unlock()
	if fail {
		return syscall.EIO
	}
	return f.Sync()
}

func (h *syncHooks) fsSync(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	h.mu.Lock()
	h.devs[uint64(st.Dev)]++
	fail := h.failFS
	h.mu.Unlock()
	if fail {
		return syscall.EIO
	}
	return unix.Syncfs(fd)
}
