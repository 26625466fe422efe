package backup

import (
	"context"
	"os"
	"sync"

	"github.com/pgbr-dev/pgbr/internal/readahead"
	"golang.org/x/sys/unix"
)

// Small files are read ahead of the copy workers, several at once. Copying
// a small file is dominated by the latency of its cold read: the open
// reads the inode, the first read the data, and a worker waits for both,
// file after file (a profile of 13k files: the workers spent more time
// blocked in read than working). The prefetch goroutines keep several
// reads in flight in the order the workers take the files; a worker then
// hashes, checks and compresses the bytes from memory. Only the open and
// the read are done ahead, and an error is the worker's: an open that
// failed ahead is handled as the worker's own open (a file removed by the
// database is skipped), a read that failed ahead gives the bytes read and
// then the error.
const (
	prefetchMax     = 128 << 10 // manifest size of a file read ahead, at most
	prefetchWindow  = 64        // files read and not yet taken, at most
	prefetchReaders = 6         // reads in flight
)

// prefetchBufPool holds the buffers of files read ahead.
var prefetchBufPool = sync.Pool{New: func() any { b := make([]byte, prefetchMax+1); return &b }}

// ahead is what was read ahead of one file.
type ahead struct {
	buf     *[]byte // pooled; nil after release
	n       int
	openErr error // the open failed (as os.Open reports it)
	readErr error // a read failed after n bytes
	tooBig  bool  // grew past prefetchMax: the worker reads it itself
}

// prefetcher reads files ahead of the workers (readahead.Window). Every
// file it holds must be taken exactly once (take), in any order, or the
// prefetcher stopped.
type prefetcher struct {
	order []int32 // manifest indexes read ahead, in the order jobs take them
	pos   []int32 // position in order by manifest index, -1: not read ahead
	w     *readahead.Window[*ahead]
	// ctx is the backup's: when it ends the reads stop, and so do the
	// takes (a worker would otherwise wait for a read that never comes).
	ctx context.Context
}

// prefetchable reports whether a planned file is read ahead: copied whole
// (not a delta check or a resumed file), small, and readable now (not held
// back for the second of its mtime: mustWait).
func (b *Backup) prefetchable(idx int) bool {
	f := &b.m.Files[idx]
	p := b.plan[idx]
	return p.copy && !p.delta && !p.resume && f.Size > 0 && f.Size <= prefetchMax && !b.mustWait(f)
}

// startPrefetch starts reading ahead the files of order (manifest indexes
// in the order the jobs take them) that qualify; nil when none does.
func (b *Backup) startPrefetch(order []int) *prefetcher {
	n := 0
	for _, idx := range order {
		if b.prefetchable(idx) {
			n++
		}
	}
	if n < 2 {
		return nil
	}
	pf := &prefetcher{order: make([]int32, 0, n), pos: make([]int32, len(b.m.Files)), ctx: b.ctx}
	for i := range pf.pos {
		pf.pos[i] = -1
	}
	for _, idx := range order {
		if b.prefetchable(idx) {
			pf.pos[idx] = int32(len(pf.order))
			pf.order = append(pf.order, int32(idx))
		}
	}
	pf.w = readahead.Start(pf.ctx, len(pf.order), prefetchWindow, prefetchReaders, func(_ context.Context, i int) *ahead {
		return readAhead(b.SourcePath(b.m.Files[pf.order[i]].Name))
	})
	return pf
}

// readAhead reads the file at path.
func readAhead(path string) *ahead {
	s := &ahead{}
	var fd int
	var err error
	for {
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		s.openErr = &os.PathError{Op: "open", Path: path, Err: err}
		return s
	}
	defer unix.Close(fd)
	s.buf = prefetchBufPool.Get().(*[]byte)
	b := *s.buf
	for s.n < len(b) {
		m, err := unix.Read(fd, b[s.n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			s.readErr = &os.PathError{Op: "read", Path: path, Err: err}
			return s
		}
		if m == 0 {
			return s
		}
		s.n += m
	}
	// More than prefetchMax now: the worker reads the file itself.
	s.tooBig = true
	s.release()
	return s
}

func (s *ahead) release() {
	if s.buf != nil {
		prefetchBufPool.Put(s.buf)
		s.buf = nil
	}
}

// take returns what was read of manifest file idx once it is read, or nil
// when the file is not read ahead (or the prefetcher stopped).
func (pf *prefetcher) take(idx int) *ahead {
	if pf == nil || pf.pos[idx] < 0 {
		return nil
	}
	s, ok := pf.w.Take(pf.ctx, int(pf.pos[idx]))
	if !ok || s.tooBig {
		return nil
	}
	return s
}

// Stop ends the reads and releases what was read and not taken.
func (pf *prefetcher) Stop() {
	if pf != nil {
		pf.w.Stop((*ahead).release)
	}
}

// memSource is a file read ahead, as a sourceFile.
type memSource struct {
	readahead.Bytes
	name string
	s    *ahead
}

func (m *memSource) Name() string { return m.name }

// Close returns the buffer to its pool.
func (m *memSource) Close() error {
	m.s.release()
	return nil
}

// openCopySource opens file idx for copying (openSource), from the bytes
// read ahead when it was.
func (b *Backup) openCopySource(idx int) (sourceFile, error) {
	f := &b.m.Files[idx]
	src := b.SourcePath(f.Name)
	s := b.pf.take(idx)
	if s == nil {
		return openSource(f.Name, src, f.Size)
	}
	if s.openErr != nil {
		return sourceOpenError(f.Name, src, s.openErr)
	}
	m := &memSource{name: src, s: s}
	m.Reset((*s.buf)[:s.n], s.readErr)
	return m, nil
}
