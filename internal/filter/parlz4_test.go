package filter

import (
	"bytes"
	"testing"
)

// lz4FramesOf returns what a parallel lz4 stream of data must be: one
// frame per chunk, each compressed alone, in input order (an empty input
// is one empty frame).
func lz4FramesOf(t *testing.T, data []byte, level int) []byte {
	t.Helper()
	var want bytes.Buffer
	for off := 0; off == 0 || off < len(data); off += parLz4Chunk {
		enc, err := newChunkLz4(lz4Level(level))
		if err != nil {
			t.Fatal(err)
		}
		enc.Reset(&want)
		enc.Write(data[off:min(off+parLz4Chunk, len(data))])
		if err := enc.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return want.Bytes()
}

// An lz4 stream compressed on several goroutines is one frame per chunk
// (each compressed alone) without checksums, in input order, around the chunk size and at a fast
// and a high-compression level; pgbr's decoder and the lz4 command read
// the frames back as one stream, and it compresses about as well as the
// serial encoder. A reused encoder writes a second stream as good as the
// first.
func TestParLz4(t *testing.T) {
	data := testData(3*parLz4Chunk+5, 17)
	for _, level := range []int{1, 9} {
		sizes := []int{parLz4Chunk + 1}
		if level == DefaultLevel(Lz4) {
			sizes = []int{0, 1, parLz4Chunk - 1, parLz4Chunk, parLz4Chunk + 1, len(data)}
		}
		for _, size := range sizes {
			in := data[:size]
			for range 2 { // the second time from the pool (Reset)
				out := parCompress(t, Lz4, in, level, 3)
				if want := lz4FramesOf(t, in, level); !bytes.Equal(out, want) {
					t.Fatalf("level %d size %d: %d bytes, not the %d of its frames in order", level, size, len(out), len(want))
				}
				if back, err := decompressBytes(out, Lz4); err != nil || !bytes.Equal(back, in) {
					t.Fatalf("level %d size %d: read back %d bytes (%v)", level, size, len(back), err)
				}
				if flg := out[4]; flg&0x14 != 0 {
					t.Fatalf("level %d size %d: FLG %#x: want no content or block checksum", level, size, flg)
				}
			}
		}
	}
	for _, in := range [][]byte{data, pgbenchPages(3*parLz4Chunk+8192, 3)} {
		checkParCommand(t, Lz4, in, 1, "lz4", "-dc")
	}
}

// The frames are written in input order however the goroutines finish.
func TestParLz4Order(t *testing.T) {
	data := append(testData(parLz4Chunk, 23), make([]byte, parLz4Chunk+100)...)
	for range 3 {
		if out, want := parCompress(t, Lz4, data, 9, 2), lz4FramesOf(t, data, 9); !bytes.Equal(out, want) {
			t.Fatalf("%d bytes, not the %d of the frames in input order", len(out), len(want))
		}
	}
}
