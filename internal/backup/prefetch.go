package backup

import (
	"bytes"
	"io"
	"os"
	"sync"
	"sync/atomic"

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

type prefetchSlot struct {
	done    chan struct{}
	buf     *[]byte // pooled; nil after release
	n       int
	openErr error // the open failed (as os.Open reports it)
	readErr error // a read failed after n bytes
	tooBig  bool  // grew past prefetchMax: the worker reads it itself
}

// prefetcher reads files ahead of the workers. Every file it holds must be
// taken exactly once (take), in any order, or the prefetcher stopped.
type prefetcher struct {
	order []int32 // manifest indexes read ahead, in the order jobs take them
	pos   []int32 // position in order by manifest index, -1: not read ahead
	// slots holds the files being read, or read and not taken yet (about
	// prefetchWindow): a slot per file of a million would hold 100 MB.
	mu     sync.Mutex
	slots  map[int32]*prefetchSlot // by position in order
	tokens chan struct{}           // one per file read and not yet taken
	next   atomic.Int64
	stop   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
	path   func(idx int) string
}

// prefetchable reports whether a planned file is read ahead: copied whole
// (not a delta check or a resumed file), small, and readable now (a file
// changed in the second before the copy start waits for it: mustWait).
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
	pf := &prefetcher{order: make([]int32, 0, n), pos: make([]int32, len(b.m.Files)),
		slots: map[int32]*prefetchSlot{}, stop: make(chan struct{}), path: func(idx int) string {
			return b.SourcePath(b.m.Files[idx].Name)
		}}
	for i := range pf.pos {
		pf.pos[i] = -1
	}
	for _, idx := range order {
		if b.prefetchable(idx) {
			pf.pos[idx] = int32(len(pf.order))
			pf.order = append(pf.order, int32(idx))
		}
	}
	pf.tokens = make(chan struct{}, prefetchWindow)
	for range prefetchWindow {
		pf.tokens <- struct{}{}
	}
	for range min(prefetchReaders, len(pf.order)) {
		pf.wg.Add(1)
		go pf.run()
	}
	return pf
}

func (pf *prefetcher) run() {
	defer pf.wg.Done()
	for {
		select {
		case <-pf.tokens:
		case <-pf.stop:
			return
		}
		i := int(pf.next.Add(1)) - 1
		if i >= len(pf.order) {
			return
		}
		pf.slot(int32(i)).read(pf.path(int(pf.order[i])))
	}
}

// slot returns the slot of position p, made by the first to ask: its
// reader or the worker waiting for it.
func (pf *prefetcher) slot(p int32) *prefetchSlot {
	pf.mu.Lock()
	defer pf.mu.Unlock()
	s, ok := pf.slots[p]
	if !ok {
		s = &prefetchSlot{done: make(chan struct{})}
		pf.slots[p] = s
	}
	return s
}

// read reads the file at path into the slot.
func (s *prefetchSlot) read(path string) {
	defer close(s.done)
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
		return
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
			return
		}
		if m == 0 {
			return
		}
		s.n += m
	}
	// More than prefetchMax now: the worker reads the file itself.
	s.tooBig = true
	s.release()
}

func (s *prefetchSlot) release() {
	if s.buf != nil {
		prefetchBufPool.Put(s.buf)
		s.buf = nil
	}
}

// take returns the slot of manifest file idx once it is read, or nil when
// the file is not read ahead (or the prefetcher stopped).
func (pf *prefetcher) take(idx int) *prefetchSlot {
	if pf == nil {
		return nil
	}
	p := pf.pos[idx]
	if p < 0 {
		return nil
	}
	s := pf.slot(p)
	select {
	case <-s.done:
	case <-pf.stop:
		return nil
	}
	pf.mu.Lock()
	delete(pf.slots, p)
	pf.mu.Unlock()
	pf.tokens <- struct{}{} // the window moves on
	if s.tooBig {
		return nil
	}
	return s
}

// Stop ends the reads and releases what was read and not taken.
func (pf *prefetcher) Stop() {
	if pf == nil {
		return
	}
	pf.once.Do(func() { close(pf.stop) })
	pf.wg.Wait()
	pf.mu.Lock()
	defer pf.mu.Unlock()
	for p, s := range pf.slots {
		select {
		case <-s.done:
			s.release()
		default: // asked for by a worker, never read
		}
		delete(pf.slots, p)
	}
}

// memSource is a file read ahead, as a sourceFile.
type memSource struct {
	name string
	s    *prefetchSlot
	r    bytes.Reader
}

func (m *memSource) Name() string { return m.name }

func (m *memSource) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	if err == io.EOF && m.s.readErr != nil {
		err = m.s.readErr
	}
	return n, err
}

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
	m.r.Reset((*s.buf)[:s.n])
	return m, nil
}
