package repo

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
)

// teeWriter writes what it is given to each of its writers, each on a
// goroutine of its own: rendering a large manifest (100k files: 22 MB)
// overlaps writing it to its files and to the gz of backup.history. Write
// copies p into one of teeChunks buffers shared by the writers (the caller
// reuses p), and waits when all are in flight. A writer's error is
// returned by a later Write and by Close; the writers that fail are given
// nothing more.
type teeWriter struct {
	outs []chan *teeChunk
	free chan *teeChunk
	wg   sync.WaitGroup
	err  atomic.Pointer[error] // the first error of any writer
	done bool
}

// teeChunks is how many buffers are in flight at most.
const teeChunks = 8

type teeChunk struct {
	b    []byte
	refs atomic.Int32 // writers yet to write it
}

func newTeeWriter(ws ...io.Writer) *teeWriter {
	t := &teeWriter{free: make(chan *teeChunk, teeChunks)}
	for range teeChunks {
		t.free <- &teeChunk{}
	}
	for _, w := range ws {
		ch := make(chan *teeChunk, teeChunks)
		t.outs = append(t.outs, ch)
		t.wg.Add(1)
		go t.run(w, ch)
	}
	return t
}

func (t *teeWriter) run(w io.Writer, ch <-chan *teeChunk) {
	defer t.wg.Done()
	var err error
	for c := range ch {
		if err == nil {
			var n int
			n, err = w.Write(c.b)
			if err == nil && n < len(c.b) {
				err = io.ErrShortWrite
			}
			if err != nil {
				t.err.CompareAndSwap(nil, &err)
			}
		}
		if c.refs.Add(-1) == 0 {
			t.free <- c
		}
	}
}

func (t *teeWriter) failed() error {
	if p := t.err.Load(); p != nil {
		return *p
	}
	return nil
}

func (t *teeWriter) Write(p []byte) (int, error) {
	if t.done {
		return 0, errors.New("write after close")
	}
	if err := t.failed(); err != nil {
		return 0, err
	}
	if len(p) == 0 || len(t.outs) == 0 {
		return len(p), nil
	}
	c := <-t.free
	c.b = append(c.b[:0], p...)
	c.refs.Store(int32(len(t.outs)))
	for _, ch := range t.outs {
		ch <- c
	}
	return len(p), nil
}

// Close waits for the writers to write everything given and returns the
// first error of any; it closes none of them.
func (t *teeWriter) Close() error {
	if !t.done {
		t.done = true
		for _, ch := range t.outs {
			close(ch)
		}
		t.wg.Wait()
	}
	return t.failed()
}
