package filter

import (
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// parZstChunk is how much input one goroutine of a parallel zst stream
// compresses at a time: one frame each.
const parZstChunk = 4 << 20

// parZstd writes a zst stream compressed on up to conc goroutines: the
// input is cut into chunks and each chunk becomes a complete zstd frame of
// its own (content size, no content checksum), compressed without the
// input before it. The frames are written in input order. Concatenated frames
// are one stream to a zstd decoder (RFC 8878): zstd -d and pgbr's decoder
// read on into the next frame, and libzstd's ZSTD_decompressStream, which
// pgBackRest 2.45 calls until its input ends, returns at the end of a
// frame and goes on with the next at the next call (a debug build of
// pgBackRest asserts there that its output buffer is full; release builds
// have no assertions).
type parZstd struct {
	frameStream
	level zstd.EncoderLevel
}

var zstChunkPool = sync.Pool{New: func() any { return &parChunk{in: make([]byte, 0, parZstChunk)} }}

// newChunkZstd returns an encoder of single frames (EncodeAll) with a
// window of one chunk: a frame never looks further back. Its history then
// holds one chunk and a block (WithLowerEncoderMem; two windows
// otherwise), which is all a frame of one chunk needs: the same bytes,
// less memory.
//
// The frames carry no content checksum. pgBackRest writes none either
// (libzstd's default), and these frames are only ever the large files of
// a backup, whose content the manifest's SHA-1 covers and every restore
// and verify checks. The checksum's xxhash64 cost 5 % of the compression
// (a pgbench table, 4 MiB frames: 953 → 1,005 MB/s on one core).
func newChunkZstd(level zstd.EncoderLevel) (*zstd.Encoder, error) {
	return zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(false), zstd.WithZeroFrames(true), zstd.WithWindowSize(parZstChunk),
		zstd.WithLowerEncoderMem(true))
}

func newParZstd(dst io.Writer, level zstd.EncoderLevel, conc int) (*parZstd, error) {
	enc, err := newChunkZstd(level)
	if err != nil {
		return nil, err
	}
	chunkPool(Zst, int(level)).Put(enc)
	z := &parZstd{level: level}
	z.init(z, conc, parZstChunk, &zstChunkPool)
	z.Reset(dst)
	return z, nil
}

func (z *parZstd) compress(c *parChunk) (err error) {
	pool := chunkPool(Zst, int(z.level))
	var enc *zstd.Encoder
	if v := pool.Get(); v != nil {
		enc = v.(*zstd.Encoder)
	} else if enc, err = newChunkZstd(z.level); err != nil {
		return err
	}
	defer func() {
		// EncodeAll panics where the streaming encoder returns an error.
		if r := recover(); r != nil {
			err = fmt.Errorf("zst compression failed: %v", r)
		}
	}()
	c.out.Write(enc.EncodeAll(c.in, c.out.AvailableBuffer()))
	pool.Put(enc)
	return nil
}
