// Package readahead reads items ahead of the workers that take them: a
// bounded window of items, several reads in flight, the first items not yet
// taken read first. Backup reads small PostgreSQL files ahead of its copy
// workers and restore small repository files ahead of its restore workers
// (cold reads, or requests to an object store, are latency the workers
// would otherwise pay one after the other).
package readahead

import (
	"bytes"
	"context"
	"io"
	"sync"
	"sync/atomic"
)

// Window reads items 0..n-1 (positions in the order the workers take
// them), at most window of them read and not yet taken. Every item is
// taken at most once, in any order; Stop ends it.
type Window[T any] struct {
	n      int
	read   func(ctx context.Context, i int) T
	mu     sync.Mutex
	slots  map[int]*slot[T] // items being read, or read and not taken (about window)
	tokens chan struct{}    // one per item read (or being read) and not taken
	next   atomic.Int64
	stop   chan struct{}
	cancel context.CancelFunc
	once   sync.Once
	wg     sync.WaitGroup
}

type slot[T any] struct {
	done chan struct{}
	v    T
}

// Start starts readers goroutines reading items 0..n-1 with read, at most
// window ahead of the takes. ctx ends the reads (Stop cancels it too).
func Start[T any](ctx context.Context, n, window, readers int, read func(ctx context.Context, i int) T) *Window[T] {
	ctx, cancel := context.WithCancel(ctx)
	w := &Window[T]{n: n, read: read, slots: map[int]*slot[T]{}, tokens: make(chan struct{}, window),
		stop: make(chan struct{}), cancel: cancel}
	for range min(readers, n) {
		w.wg.Add(1)
		go w.run(ctx)
	}
	return w
}

func (w *Window[T]) run(ctx context.Context) {
	defer w.wg.Done()
	for {
		// A token first, then the next position: the items read ahead are
		// always the first ones not yet taken.
		select {
		case w.tokens <- struct{}{}:
		case <-w.stop:
			return
		case <-ctx.Done():
			return
		}
		i := int(w.next.Add(1)) - 1
		if i >= w.n {
			return
		}
		s := w.slot(i)
		s.v = w.read(ctx, i)
		close(s.done)
	}
}

// slot returns the slot of item i, made by whichever of its reader and its
// taker comes first.
func (w *Window[T]) slot(i int) *slot[T] {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.slots[i]
	if s == nil {
		s = &slot[T]{done: make(chan struct{})}
		w.slots[i] = s
	}
	return s
}

// Take waits for item i and returns it; false when the window stopped or
// ctx ended first (the caller then reads the item itself, or fails).
func (w *Window[T]) Take(ctx context.Context, i int) (T, bool) {
	s := w.slot(i)
	select {
	case <-s.done:
	case <-w.stop:
		var zero T
		return zero, false
	case <-ctx.Done():
		var zero T
		return zero, false
	}
	w.mu.Lock()
	delete(w.slots, i)
	w.mu.Unlock()
	<-w.tokens // the window moves on
	return s.v, true
}

// Stop ends the reads, waits for those under way, and gives release (when
// not nil) every item read and not taken.
func (w *Window[T]) Stop(release func(T)) {
	w.once.Do(func() {
		close(w.stop)
		w.cancel()
	})
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, s := range w.slots {
		select {
		case <-s.done:
			if release != nil {
				release(s.v)
			}
		default: // asked for by a taker, never read
		}
		delete(w.slots, i)
	}
}

// Bytes reads what was read ahead of a file, then ends as the read ahead
// ended: with io.EOF, or with the error that stopped it after those bytes
// (what the taker's own reader would have returned).
type Bytes struct {
	r   bytes.Reader
	err error
}

// Reset makes b read data, then end with err (io.EOF when nil).
func (b *Bytes) Reset(data []byte, err error) {
	b.r.Reset(data)
	b.err = err
}

func (b *Bytes) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF && b.err != nil {
		err = b.err
	}
	return n, err
}
