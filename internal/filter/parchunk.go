package filter

import (
	"bytes"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"

	"github.com/pgbr-dev/pgbr/internal/errs"
)

// parStream is what the compressors of a large input on several goroutines
// share (parGzip, parLz4, parZstd): the input is cut into chunks of a fixed size,
// each chunk is compressed on a goroutine of its own while the stream
// fills the next one, and the compressed chunks are written to dst in
// input order. The format's part is a parCodec.
type parStream struct {
	dst     io.Writer
	codec   parCodec
	conc    int        // chunks compressing at once for this stream, at most
	size    int        // input bytes of a chunk
	pool    *sync.Pool // of *parChunk with in of capacity size
	buf     []byte     // input of the chunk being filled
	pending []*parChunk
	chunks  int // chunks dispatched
	err     error
}

// parCodec is a format's part of a parStream.
type parCodec interface {
	// take is called on the stream's goroutine for every chunk, in
	// input order, before the chunk is compressed (a chunk's dictionary,
	// a checksum of the whole input).
	take(c *parChunk)
	// compress compresses c.in into c.out, on any goroutine.
	compress(c *parChunk) error
	// head returns the bytes written before the first chunk (nil: none).
	head() []byte
	// tail returns the bytes written after the last chunk (nil: none).
	tail() []byte
	// emptyLast reports whether Close compresses a last chunk even when
	// no input is left for it (it ends a deflate stream).
	emptyLast() bool
}

// parChunk is one chunk on its way through a goroutine.
type parChunk struct {
	in    []byte
	dict  []byte // the input before in (gz: deflate's window)
	final bool   // the last chunk of the stream
	first bool   // the first chunk of the stream
	slot  bool   // holds one of parSlots
	out   bytes.Buffer
	err   error
	done  chan struct{}
}

// parSlots bounds the chunks compressing on goroutines of their own, all
// streams and formats together, to the number of CPUs: each holds its
// input, its output and a compressor (about 3 MiB for gz, 14 for zst),
// and more of them than CPUs would only wait. A stream that finds none
// free compresses its chunk itself, after those it has under way, so
// process-max streams of large files at once cost at most that, not
// process-max squared.
var parSlots = make(chan struct{}, runtime.GOMAXPROCS(0))

// frameStream is a parStream whose chunks are whole frames of the format
// (parLz4, parZstd): nothing comes before, between or after them, and no
// chunk needs anything of the one before.
type frameStream struct{ parStream }

// Reset makes the stream write a new stream to dst.
func (f *frameStream) Reset(dst io.Writer) { f.reset(dst) }

func (*frameStream) take(*parChunk)  {}
func (*frameStream) head() []byte    { return nil }
func (*frameStream) tail() []byte    { return nil }
func (*frameStream) emptyLast() bool { return false }

// parEncoder is a parStream of its format (parGzip, parLz4, parZstd).
type parEncoder interface {
	io.WriteCloser
	Reset(dst io.Writer)
}

// newParEncoder returns a pooled gz, lz4 or zst parEncoder writing to w, or a
// new one.
func newParEncoder(w io.Writer, t CompressType, level, conc int) (io.WriteCloser, poolKey, error) {
	switch t {
	case Zst:
		level = int(zstdLevel(level)) // levels of one encoder level share a pool
	case Lz4:
		level = int(lz4Level(level))
	}
	k := poolKey{t, level, conc}
	if v := encPool(k).Get(); v != nil {
		z := v.(parEncoder)
		z.Reset(w)
		return z, k, nil
	}
	var z parEncoder
	var err error
	switch t {
	case Gz:
		z, err = newParGzip(w, level, conc)
	case Lz4:
		z, err = newParLz4(w, lz4.CompressionLevel(level), conc)
	default:
		z, err = newParZstd(w, zstd.EncoderLevel(level), conc)
	}
	if err != nil {
		return nil, k, errs.Wrap(errs.Assert, err, "unable to create %s compressor", string(t))
	}
	return z, k, nil
}

// chunkPool is the pool of the compressors of one chunk of a parStream of
// type t at level (a *flate.Writer, a *zstd.Encoder of single frames).
func chunkPool(t CompressType, level int) *sync.Pool {
	return encPool(poolKey{t: t, level: level, conc: 0})
}

func (s *parStream) init(codec parCodec, conc, size int, pool *sync.Pool) {
	s.codec, s.conc, s.size, s.pool = codec, max(conc, 1), size, pool
}

// reset makes s write a new stream to dst, dropping a stream left unclosed.
func (s *parStream) reset(dst io.Writer) {
	for _, c := range s.pending {
		<-c.done
		s.release(c)
	}
	s.pending = s.pending[:0]
	s.dst, s.chunks, s.err = dst, 0, nil
	if s.buf == nil {
		s.buf = make([]byte, 0, s.size)
	}
	s.buf = s.buf[:0]
}

func (s *parStream) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n := len(p)
	for len(p) > 0 {
		m := copy(s.buf[len(s.buf):cap(s.buf)], p)
		s.buf = s.buf[:len(s.buf)+m]
		p = p[m:]
		if len(s.buf) == cap(s.buf) {
			if err := s.dispatch(false); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

// dispatch starts compressing the filled chunk, first writing out the
// oldest chunk while conc are compressing.
func (s *parStream) dispatch(final bool) error {
	if len(s.pending) == s.conc {
		if err := s.wait(1); err != nil {
			return err
		}
	}
	c := s.pool.Get().(*parChunk)
	c.in, s.buf = s.buf, c.in[:0] // the filled buffer goes, an empty one comes
	c.final, c.first, c.err, c.slot = final, s.chunks == 0, nil, false
	c.out.Reset()
	c.done = make(chan struct{})
	s.chunks++
	s.codec.take(c)
	s.pending = append(s.pending, c)
	select {
	case parSlots <- struct{}{}:
		c.slot = true
		go s.run(c)
		return nil
	default:
		s.run(c)
		return s.wait(len(s.pending))
	}
}

func (s *parStream) run(c *parChunk) {
	defer close(c.done)
	c.err = s.codec.compress(c)
}

// wait writes out the n oldest pending chunks, in order, once compressed.
// After an error it still waits for every one of them (their buffers go
// back to the pool) and keeps the first error.
func (s *parStream) wait(n int) error {
	for range n {
		c := s.pending[0]
		s.pending = s.pending[1:]
		<-c.done
		if s.err == nil && c.err != nil {
			s.err = c.err
		}
		if s.err == nil && c.first {
			if h := s.codec.head(); h != nil {
				_, s.err = s.dst.Write(h)
			}
		}
		if s.err == nil {
			_, s.err = s.dst.Write(c.out.Bytes())
		}
		s.release(c)
	}
	return s.err
}

func (s *parStream) release(c *parChunk) {
	if c.slot {
		<-parSlots
	}
	s.pool.Put(c)
}

// Close compresses what is left, ends the stream and returns the first
// error. It does not close dst.
func (s *parStream) Close() error {
	if s.err == nil && (len(s.buf) > 0 || s.chunks == 0 || s.codec.emptyLast()) {
		s.err = s.dispatch(true)
	}
	s.wait(len(s.pending))
	if s.err != nil {
		return s.err
	}
	if t := s.codec.tail(); t != nil {
		_, s.err = s.dst.Write(t)
	}
	return s.err
}
