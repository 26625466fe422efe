package filter

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/flate"
)

// parGzChunk is how much input one goroutine of a parallel gz stream
// compresses at a time, and parGzDict the dictionary each chunk starts with
// (deflate's whole window).
const (
	parGzChunk = 1 << 20
	parGzDict  = 32 << 10
)

// parGzip writes one gzip stream whose deflate data is compressed on up to
// conc goroutines, as pigz does: the input is cut into chunks, each chunk is
// compressed with the 32 KiB of input before it as its dictionary and ends
// with a sync flush (an empty stored block that ends on a byte), the last
// one with the final block. Joined in order, the chunks are one ordinary
// deflate stream, since an inflater has those 32 KiB in its window when it
// reaches the chunk: pgBackRest's zlib and any gunzip read it. The header
// is the one the serial writer writes; only where the blocks end differs.
type parGzip struct {
	dst     io.Writer
	level   int
	conc    int
	buf     []byte // input of the chunk being filled
	dict    []byte // the last parGzDict bytes of input before buf
	crc     uint32
	size    uint32
	pending []*gzChunk // compressing, in stream order (at most conc)
	header  bool
	err     error
}

// gzChunk is one chunk on its way through a goroutine.
type gzChunk struct {
	in    []byte
	dict  []byte
	final bool
	slot  bool // holds one of parGzSlots
	out   bytes.Buffer
	err   error
	done  chan struct{}
}

// parGzSlots bounds the chunks compressing on goroutines of their own, all
// streams together, to the number of CPUs: each holds about 3 MiB (input,
// output, compressor), and more of them than CPUs would only wait. A
// stream that finds none free compresses its chunk itself, after those it
// has under way, so process-max streams of large files at once cost at
// most that, not process-max squared.
var parGzSlots = make(chan struct{}, runtime.GOMAXPROCS(0))

var (
	gzChunkPool   = sync.Pool{New: func() any { return &gzChunk{in: make([]byte, 0, parGzChunk), dict: make([]byte, 0, parGzDict)} }}
	flateWriterMu sync.Mutex
	flateWriters  = map[int]*sync.Pool{} // level → pool of *flate.Writer
)

func flatePool(level int) *sync.Pool {
	flateWriterMu.Lock()
	defer flateWriterMu.Unlock()
	p := flateWriters[level]
	if p == nil {
		p = &sync.Pool{}
		flateWriters[level] = p
	}
	return p
}

func newParGzip(dst io.Writer, level, conc int) (*parGzip, error) {
	// The level is checked as the serial writer checks it.
	fw, err := flate.NewWriter(io.Discard, level)
	if err != nil {
		return nil, err
	}
	flatePool(level).Put(fw)
	z := &parGzip{level: level, conc: max(conc, 1)}
	z.Reset(dst)
	return z, nil
}

// Reset makes z write a new stream to dst.
func (z *parGzip) Reset(dst io.Writer) {
	for _, c := range z.pending { // a stream left unclosed: drop it
		<-c.done
		if c.slot {
			<-parGzSlots
		}
		gzChunkPool.Put(c)
	}
	z.pending = z.pending[:0]
	z.dst, z.crc, z.size, z.header, z.err = dst, 0, 0, false, nil
	if z.buf == nil {
		z.buf = make([]byte, 0, parGzChunk)
		z.dict = make([]byte, 0, parGzDict)
	}
	z.buf, z.dict = z.buf[:0], z.dict[:0]
}

func (z *parGzip) Write(p []byte) (int, error) {
	if z.err != nil {
		return 0, z.err
	}
	z.crc = crc32.Update(z.crc, crc32.IEEETable, p)
	z.size += uint32(len(p)) // ISIZE is the size modulo 2^32
	n := len(p)
	for len(p) > 0 {
		m := copy(z.buf[len(z.buf):cap(z.buf)], p)
		z.buf = z.buf[:len(z.buf)+m]
		p = p[m:]
		if len(z.buf) == cap(z.buf) {
			if err := z.dispatch(false); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

// dispatch starts compressing the filled chunk, first writing out the
// oldest chunks while conc are compressing.
func (z *parGzip) dispatch(final bool) error {
	if len(z.pending) == z.conc {
		if err := z.wait(1); err != nil {
			return err
		}
	}
	c := gzChunkPool.Get().(*gzChunk)
	c.dict = append(c.dict[:0], z.dict...)
	if len(z.buf) >= parGzDict {
		z.dict = append(z.dict[:0], z.buf[len(z.buf)-parGzDict:]...)
	} else {
		z.dict = append(z.dict, z.buf...)
		z.dict = z.dict[max(len(z.dict)-parGzDict, 0):]
	}
	c.in, z.buf = z.buf, c.in[:0] // the filled buffer goes, an empty one comes
	c.final, c.err, c.slot = final, nil, false
	c.out.Reset()
	c.done = make(chan struct{})
	z.pending = append(z.pending, c)
	select {
	case parGzSlots <- struct{}{}:
		c.slot = true
		go c.compress(z.level)
		return nil
	default:
		c.compress(z.level)
		return z.wait(len(z.pending))
	}
}

func (c *gzChunk) compress(level int) {
	defer close(c.done)
	pool := flatePool(level)
	var fw *flate.Writer
	if v := pool.Get(); v != nil {
		fw = v.(*flate.Writer)
	} else {
		var err error
		if fw, err = flate.NewWriter(nil, level); err != nil {
			c.err = err
			return
		}
	}
	if len(c.dict) > 0 {
		fw.ResetDict(&c.out, c.dict)
	} else {
		fw.ResetDict(&c.out, nil)
	}
	if _, c.err = fw.Write(c.in); c.err != nil {
		return
	}
	if c.final {
		c.err = fw.Close()
	} else {
		c.err = fw.Flush()
	}
	if c.err == nil {
		pool.Put(fw)
	}
}

// wait writes out the n oldest pending chunks, in order, once compressed.
// After an error it still waits for every one of them (their buffers go
// back to the pool) and keeps the first error.
func (z *parGzip) wait(n int) error {
	for range n {
		c := z.pending[0]
		z.pending = z.pending[1:]
		<-c.done
		if z.err == nil && c.err != nil {
			z.err = c.err
		}
		if z.err == nil && !z.header {
			z.header = true
			// The serial writer's header: no name, no time, XFL 0 (2 at
			// level 9, 4 at level 1), OS 3 (Unix).
			h := [10]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3}
			switch z.level {
			case flate.BestCompression:
				h[8] = 2
			case flate.BestSpeed:
				h[8] = 4
			}
			_, z.err = z.dst.Write(h[:])
		}
		if z.err == nil {
			_, z.err = z.dst.Write(c.out.Bytes())
		}
		if c.slot {
			<-parGzSlots
		}
		gzChunkPool.Put(c)
	}
	return z.err
}

// Close compresses what is left, ends the stream with its trailer (CRC-32
// and size) and returns the first error. It does not close dst.
func (z *parGzip) Close() error {
	if z.err == nil {
		z.err = z.dispatch(true)
	}
	z.wait(len(z.pending))
	if z.err != nil {
		return z.err
	}
	var t [8]byte
	binary.LittleEndian.PutUint32(t[:4], z.crc)
	binary.LittleEndian.PutUint32(t[4:], z.size)
	_, z.err = z.dst.Write(t[:])
	return z.err
}
