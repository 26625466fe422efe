package filter

import (
	"bytes"
	"io"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// framesOf returns what a parallel zst stream of data must be: one frame
// per chunk, each compressed alone, in input order (an empty input is one
// empty frame).
func framesOf(t *testing.T, data []byte, level int) []byte {
	t.Helper()
	enc, err := newChunkZstd(zstdLevel(level))
	if err != nil {
		t.Fatal(err)
	}
	if len(data) == 0 {
		return enc.EncodeAll(nil, nil)
	}
	var want []byte
	for off := 0; off < len(data); off += parZstChunk {
		want = enc.EncodeAll(data[off:min(off+parZstChunk, len(data))], want)
	}
	return want
}

// A zst stream compressed on several goroutines is one frame per chunk,
// each with its content checksum, in input order, around the chunk size
// and at every encoder level; pgbr's decoder and the zstd command read
// the frames back as one stream, and it compresses about as well as the
// serial encoder. A reused encoder writes a second stream as good as the
// first.
func TestParZstd(t *testing.T) {
	data := testData(3*parZstChunk+5, 17)
	for _, level := range []int{1, 3, 7, 19} {
		sizes := []int{parZstChunk + 1}
		if level == DefaultLevel(Zst) {
			sizes = []int{0, 1, parZstChunk - 1, parZstChunk, parZstChunk + 1, len(data)}
		}
		for _, size := range sizes {
			in := data[:size]
			for range 2 { // the second time from the pool (Reset)
				out := parCompress(t, Zst, in, level, 3)
				if want := framesOf(t, in, level); !bytes.Equal(out, want) {
					t.Fatalf("level %d size %d: %d bytes, not the %d of its frames in order", level, size, len(out), len(want))
				}
				if back, err := decompressBytes(out, Zst); err != nil || !bytes.Equal(back, in) {
					t.Fatalf("level %d size %d: read back %d bytes (%v)", level, size, len(back), err)
				}
				if size > 0 {
					var h zstd.Header
					if err := h.Decode(out); err != nil || h.HasCheckSum || (h.HasFCS && h.FrameContentSize != uint64(min(size, parZstChunk))) {
						t.Fatalf("level %d size %d: first frame %+v (%v): a checksum or a wrong content size", level, size, h, err)
					}
				}
			}
		}
	}
	for _, in := range [][]byte{data, pgbenchPages(3*parZstChunk+8192, 3)} {
		checkParCommand(t, Zst, in, 3, "zstd", "-dcq")
	}
}

// The frames are written in input order however the goroutines finish: a
// first chunk that takes long (compressible data at the best level) and a
// second one that takes no time (zeros) still come out first and second.
func TestParZstdOrder(t *testing.T) {
	data := append(testData(parZstChunk, 23), make([]byte, parZstChunk+100)...)
	for range 3 {
		if out, want := parCompress(t, Zst, data, 19, 2), framesOf(t, data, 19); !bytes.Equal(out, want) {
			t.Fatalf("%d bytes, not the %d of the frames in input order", len(out), len(want))
		}
	}
}

// pgbr's read paths (restore, verify, archive-get: the read pipeline) read
// a stream of several frames, encrypted or not, to the checksum and size
// the write pipeline gave; a stream cut after a whole frame reads to its
// end without a decoding error but fails Verify.
func TestParZstdReadPipeline(t *testing.T) {
	data := pgbenchPages(2*parZstChunk+parZstChunk/2, 5)
	for _, pass := range []string{"", "secret"} {
		var stored bytes.Buffer
		w, err := NewParallelWritePipeline(&stored, Zst, 3, pass, 2)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		if err := w.Close(); err != nil { // the first error, a Write's too
			t.Fatal(err)
		}
		if w.Checksum() != sha1hex(data) {
			t.Fatalf("%q: checksum %s, want %s", pass, w.Checksum(), sha1hex(data))
		}
		for _, parallel := range []bool{false, true} {
			r, err := NewReadPipeline(bytes.NewReader(stored.Bytes()), Zst, pass)
			if err != nil {
				t.Fatal(err)
			}
			if parallel {
				r.SetParallel()
			}
			var got bytes.Buffer
			if _, err := io.Copy(&got, r); err != nil || !bytes.Equal(got.Bytes(), data) {
				t.Fatalf("%q parallel %v: read %d bytes (%v), want %d", pass, parallel, got.Len(), err, len(data))
			}
			if err := r.Verify("f", w.Checksum(), int64(len(data))); err != nil {
				t.Fatalf("%q parallel %v: %v", pass, parallel, err)
			}
			r.Close()
		}
	}
	first := len(framesOf(t, data[:parZstChunk], 3))
	stored := framesOf(t, data, 3)
	r, _ := NewReadPipeline(bytes.NewReader(stored[:first]), Zst, "")
	if got, err := io.ReadAll(r); err != nil || len(got) != parZstChunk {
		t.Fatalf("the first frame alone read to %d bytes (%v)", len(got), err)
	}
	if err := r.Verify("f", sha1hex(data), int64(len(data))); err == nil {
		t.Fatal("a stream cut after its first frame verified")
	}
	r.Close()
}
