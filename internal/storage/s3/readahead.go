package s3

import (
	"context"
	"fmt"
	"io"
	"sync"
)

// A long read is served in segments of readSegment bytes: the first from
// the stream of the GET that opened the object, the next ones by ranged
// GETs pinned to its ETag (If-Match), up to readAheadSegments of them
// fetched ahead of the reader into buffers, each holding one of the
// Storage's transfer slots while it downloads. They are handed out in
// order; the first failure ends the read. Memory: at most
// readAheadSegments + 1 segment buffers per long read (12 MiB).
const (
	readSegment       = 4 << 20
	readAheadSegments = 2
	readAheadMin      = 3 * readSegment
)

// segPool holds segment buffers (*[]byte of readSegment bytes).
var segPool = sync.Pool{New: func() any { b := make([]byte, readSegment); return &b }}

type segment struct {
	off, n int64
	pooled *[]byte
	buf    []byte
	done   chan struct{}
	err    error
}

type aheadReader struct {
	s      *Storage
	ctx    context.Context
	cancel context.CancelFunc
	key    string
	full   string
	etag   string
	first  *reader // serves the first segment from the opening GET's stream
	next   int64   // offset of the first byte not yet assigned to a segment
	end    int64
	queue  []*segment
	cur    []byte  // rest of the segment being read
	curBuf *[]byte // its buffer
	err    error
	closed bool
}

// readAhead turns r, opened on more than readAheadMin bytes, into a
// reader that fetches the following segments in parallel.
func (s *Storage) readAhead(ctx context.Context, r *reader) io.ReadCloser {
	a := &aheadReader{s: s, key: r.key, full: r.full, etag: r.etag, first: r, end: r.end}
	a.ctx, a.cancel = context.WithCancel(ctx)
	r.end = r.pos + readSegment
	a.next = r.end
	for len(a.queue) < min(readAheadSegments, s.transfers()) && a.start() {
	}
	return a
}

// start starts fetching the next segment; false when none is left.
func (a *aheadReader) start() bool {
	if a.next >= a.end {
		return false
	}
	sg := &segment{off: a.next, n: min(readSegment, a.end-a.next), done: make(chan struct{})}
	a.next += sg.n
	a.queue = append(a.queue, sg)
	go a.fetch(sg)
	return true
}

func (a *aheadReader) fetch(sg *segment) {
	defer close(sg.done)
	if err := a.s.acquire(a.ctx); err != nil {
		sg.err = fmt.Errorf("unable to read '%s': %w", a.full, err)
		return
	}
	defer a.s.release()
	sg.pooled = segPool.Get().(*[]byte)
	sg.buf = (*sg.pooled)[:sg.n]
	// A reader of exactly this range: it resumes a cut stream and reports
	// a replaced object (If-Match) as changed while being read.
	r := &reader{s: a.s, ctx: a.ctx, key: a.key, full: a.full, pos: sg.off, end: sg.off + sg.n, etag: a.etag}
	defer r.Close()
	if _, err := io.ReadFull(r, sg.buf); err != nil {
		sg.err = err
		if r.err != nil {
			sg.err = r.err
		}
	}
}

func (a *aheadReader) Read(b []byte) (int, error) {
	if a.closed {
		return 0, fmt.Errorf("read of '%s' after close", a.full)
	}
	if a.err != nil {
		return 0, a.err
	}
	if a.first != nil {
		n, err := a.first.Read(b)
		if err == io.EOF {
			a.first.Close()
			a.first = nil
			if n > 0 {
				return n, nil
			}
		} else {
			if err != nil {
				a.err = err
			}
			return n, err
		}
	}
	for len(a.cur) == 0 {
		if len(a.queue) == 0 {
			return 0, io.EOF
		}
		sg := a.queue[0]
		select {
		case <-sg.done:
		case <-a.ctx.Done():
			a.err = fmt.Errorf("unable to read '%s': %w", a.full, a.ctx.Err())
			return 0, a.err
		}
		if sg.err != nil {
			a.err = sg.err
			a.cancel()
			return 0, a.err
		}
		a.queue = a.queue[1:]
		if a.curBuf != nil {
			segPool.Put(a.curBuf)
		}
		a.cur, a.curBuf = sg.buf, sg.pooled
		a.start()
	}
	n := copy(b, a.cur)
	a.cur = a.cur[n:]
	return n, nil
}

// Close ends the read; segments still downloading are canceled.
func (a *aheadReader) Close() error {
	if a.closed {
		return nil
	}
	a.closed = true
	a.cancel()
	if a.first != nil {
		a.first.Close()
	}
	if a.curBuf != nil {
		segPool.Put(a.curBuf)
	}
	// Buffers of segments still downloading are left to the collector.
	a.queue, a.cur, a.curBuf = nil, nil, nil
	return nil
}
