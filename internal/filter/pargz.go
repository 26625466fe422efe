package filter

import (
	"encoding/binary"
	"hash/crc32"
	"io"
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
	parStream
	level int
	dict  []byte // the last parGzDict bytes of input dispatched
	crc   uint32
	size  uint32
}

var gzChunkPool = sync.Pool{New: func() any { return &parChunk{in: make([]byte, 0, parGzChunk), dict: make([]byte, 0, parGzDict)} }}

func newParGzip(dst io.Writer, level, conc int) (*parGzip, error) {
	// The level is checked as the serial writer checks it.
	fw, err := flate.NewWriter(io.Discard, level)
	if err != nil {
		return nil, err
	}
	chunkPool(Gz, level).Put(fw)
	z := &parGzip{level: level, dict: make([]byte, 0, parGzDict)}
	z.init(z, conc, parGzChunk, &gzChunkPool)
	z.Reset(dst)
	return z, nil
}

// Reset makes z write a new stream to dst.
func (z *parGzip) Reset(dst io.Writer) {
	z.reset(dst)
	z.crc, z.size, z.dict = 0, 0, z.dict[:0]
}

// take gives c the input before it as its dictionary and adds c's input to
// the trailer's CRC-32 and size.
func (z *parGzip) take(c *parChunk) {
	z.crc = crc32.Update(z.crc, crc32.IEEETable, c.in)
	z.size += uint32(len(c.in)) // ISIZE is the size modulo 2^32
	c.dict = append(c.dict[:0], z.dict...)
	if len(c.in) >= parGzDict {
		z.dict = append(z.dict[:0], c.in[len(c.in)-parGzDict:]...)
	} else {
		z.dict = append(z.dict, c.in...)
		z.dict = z.dict[max(len(z.dict)-parGzDict, 0):]
	}
}

func (z *parGzip) compress(c *parChunk) error {
	pool := chunkPool(Gz, z.level)
	var fw *flate.Writer
	if v := pool.Get(); v != nil {
		fw = v.(*flate.Writer)
	} else {
		var err error
		if fw, err = flate.NewWriter(nil, z.level); err != nil {
			return err
		}
	}
	if len(c.dict) > 0 {
		fw.ResetDict(&c.out, c.dict)
	} else {
		fw.ResetDict(&c.out, nil)
	}
	if _, err := fw.Write(c.in); err != nil {
		return err
	}
	var err error
	if c.final {
		err = fw.Close()
	} else {
		err = fw.Flush()
	}
	if err == nil {
		pool.Put(fw)
	}
	return err
}

// head is the serial writer's header: no name, no time, XFL 0 (2 at level
// 9, 4 at level 1), OS 3 (Unix).
func (z *parGzip) head() []byte {
	h := []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3}
	switch z.level {
	case flate.BestCompression:
		h[8] = 2
	case flate.BestSpeed:
		h[8] = 4
	}
	return h
}

// tail is the trailer: CRC-32 and size of the input.
func (z *parGzip) tail() []byte {
	t := make([]byte, 8)
	binary.LittleEndian.PutUint32(t[:4], z.crc)
	binary.LittleEndian.PutUint32(t[4:], z.size)
	return t
}

// emptyLast: the final deflate block ends the stream, with or without input.
func (z *parGzip) emptyLast() bool { return true }
