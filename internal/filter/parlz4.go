package filter

import (
	"io"
	"sync"

	"github.com/pierrec/lz4/v4"
)

// parLz4Chunk is how much input one goroutine of a parallel lz4 stream
// compresses at a time: one frame each. lz4 looks back 64 KiB at most, so
// a frame of 1 MiB loses the history of one block in sixteen.
const parLz4Chunk = 1 << 20

// parLz4 writes an lz4 stream compressed on up to conc goroutines: the
// input is cut into chunks and each chunk becomes a complete lz4 frame of
// its own (64 KiB blocks, no block checksum), written in input order.
// Concatenated frames are one stream to an lz4 decoder: the lz4 command
// and pgbr's decoder read on into the next frame, and liblz4's
// LZ4F_decompress, which pgBackRest 2.45 calls until its input ends,
// returns at the end of a frame and starts the next one at the next call.
//
// The frames carry no content checksum, where pgBackRest 2.45 and the
// serial stream (newEncoder) write one per stream: these are only ever the
// large files of a backup, whose content the manifest's SHA-1 covers and
// every restore and verify, pgbr's and pgBackRest's, checks. A WAL segment
// goes through the serial stream and keeps its checksum: pgBackRest's
// archive-get decompresses it without checking its SHA-1.
type parLz4 struct {
	frameStream
	level lz4.CompressionLevel
}

var lz4ChunkPool = sync.Pool{New: func() any { return &parChunk{in: make([]byte, 0, parLz4Chunk)} }}

// newChunkLz4 returns a writer of single lz4 frames at level, on the
// caller's goroutine.
func newChunkLz4(level lz4.CompressionLevel) (*lz4.Writer, error) {
	z := lz4.NewWriter(nil)
	if err := z.Apply(lz4.BlockSizeOption(lz4.Block64Kb), lz4.ChecksumOption(false),
		lz4.BlockChecksumOption(false), lz4.CompressionLevelOption(level), lz4.ConcurrencyOption(1)); err != nil {
		return nil, err
	}
	return z, nil
}

func newParLz4(dst io.Writer, level lz4.CompressionLevel, conc int) (*parLz4, error) {
	enc, err := newChunkLz4(level)
	if err != nil {
		return nil, err
	}
	chunkPool(Lz4, int(level)).Put(enc)
	z := &parLz4{level: level}
	z.init(z, conc, parLz4Chunk, &lz4ChunkPool)
	z.Reset(dst)
	return z, nil
}

func (z *parLz4) compress(c *parChunk) error {
	pool := chunkPool(Lz4, int(z.level))
	var enc *lz4.Writer
	if v := pool.Get(); v != nil {
		enc = v.(*lz4.Writer)
	} else {
		var err error
		if enc, err = newChunkLz4(z.level); err != nil {
			return err
		}
	}
	enc.Reset(&c.out)
	if _, err := enc.Write(c.in); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	pool.Put(enc)
	return nil
}
