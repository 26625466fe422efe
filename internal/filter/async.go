package filter

import (
	"io"
	"sync"
)

// asyncChunk is the size of the pieces an asynchronous stage passes on.
const asyncChunk = 256 << 10

// asyncDepth is how many pieces may wait between the two stages.
const asyncDepth = 3

var asyncBufPool = sync.Pool{New: func() any { b := make([]byte, asyncChunk); return &b }}

// asyncStage runs a write function on its own goroutine (the compress →
// encrypt → write part of a write pipeline, or the writes of a restored
// file), so that producing the next bytes overlaps with consuming the
// previous ones, and a blocking read or write of one side does not stall
// the other.
type asyncStage struct {
	ch   chan asyncPiece
	done chan struct{}
	mu   sync.Mutex
	err  error
}

// asyncPiece is n bytes of a pooled buffer on their way to the stage, or
// a caller's bytes (own) and the function that gives them back.
type asyncPiece struct {
	buf     *[]byte
	n       int
	own     []byte
	release func()
}

func newAsyncStage(write func([]byte) error) *asyncStage {
	s := &asyncStage{ch: make(chan asyncPiece, asyncDepth), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for pc := range s.ch {
			b := pc.own
			if pc.buf != nil {
				b = (*pc.buf)[:pc.n]
			}
			if s.failed() == nil {
				if err := write(b); err != nil {
					s.mu.Lock()
					s.err = err
					s.mu.Unlock()
				}
			}
			if pc.buf != nil {
				asyncBufPool.Put(pc.buf)
			} else {
				pc.release()
			}
		}
	}()
	return s
}

func (s *asyncStage) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// write hands a copy of p to the stage; it returns an earlier error of the
// stage, if any.
func (s *asyncStage) write(p []byte) error {
	for len(p) > 0 {
		if err := s.failed(); err != nil {
			return err
		}
		b := asyncBufPool.Get().(*[]byte)
		n := copy(*b, p)
		p = p[n:]
		s.send(b, n)
	}
	return nil
}

// send hands the first n bytes of b, a buffer of asyncBufPool, to the
// stage, which puts b back into the pool.
func (s *asyncStage) send(b *[]byte, n int) {
	s.ch <- asyncPiece{buf: b, n: n}
}

// sendOwned hands p itself to the stage, which calls release once it is
// done with p (also after an error); it returns an earlier error of the
// stage, if any, after calling release itself.
func (s *asyncStage) sendOwned(p []byte, release func()) error {
	if err := s.failed(); err != nil {
		release()
		return err
	}
	s.ch <- asyncPiece{own: p, release: release}
	return nil
}

// wait ends the stage and returns its first error.
func (s *asyncStage) wait() error {
	close(s.ch)
	<-s.done
	return s.failed()
}

// AsyncWriter passes what is written to it on to w from a second goroutine.
// Write copies the bytes and returns at once (or with an earlier error of
// w); Close waits until w has everything and returns w's first error.
type AsyncWriter struct {
	s      *asyncStage
	closed bool
}

// NewAsyncWriter starts the goroutine writing to w.
func NewAsyncWriter(w io.Writer) *AsyncWriter {
	return &AsyncWriter{s: newAsyncStage(func(b []byte) error {
		_, err := w.Write(b)
		return err
	})}
}

func (a *AsyncWriter) Write(p []byte) (int, error) {
	if a.closed {
		return 0, errClosed
	}
	if err := a.s.write(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close waits for the pending writes; it does not close w.
func (a *AsyncWriter) Close() error {
	if a.closed {
		return a.s.failed()
	}
	a.closed = true
	return a.s.wait()
}

// ParallelMin is the size from which backup and restore give a file a
// second goroutine (NewParallelWritePipeline, AsyncWriter): below it the
// hand-off costs more than it saves.
const ParallelMin = 8 << 20
