package filter

import (
	"bytes"
	stdgzip "compress/gzip"
	"io"
	"testing"
)

// A gz stream compressed in chunks on several goroutines is one gzip
// stream: Go's own gzip reader (not the one pgbr reads with) and the gzip
// command read it back whole, at every level and around the chunk size,
// and it compresses about as well as the serial writer. A reused encoder
// writes a second stream as good as the first.
func TestParGzip(t *testing.T) {
	data := testData(3*parGzChunk+parGzDict+5, 11)
	sizes := []int{0, 1, parGzDict - 1, parGzChunk - 1, parGzChunk, parGzChunk + 1, len(data)}
	for _, level := range []int{1, 6, 9} {
		for _, size := range sizes {
			in := data[:size]
			for range 2 { // the second time from the pool (Reset)
				out := parCompress(t, Gz, in, level, 3)
				r, err := stdgzip.NewReader(bytes.NewReader(out))
				if err != nil {
					t.Fatalf("level %d size %d: %v", level, size, err)
				}
				back, err := io.ReadAll(r)
				if err != nil || !bytes.Equal(back, in) {
					t.Fatalf("level %d size %d: compress/gzip read %d bytes (%v)", level, size, len(back), err)
				}
				if size == len(data) {
					if got := run(t, out, "gzip", "-dc"); !bytes.Equal(got, in) {
						t.Fatalf("level %d: gzip -dc read %d bytes, want %d", level, len(got), len(in))
					}
					serial := compressBytes(t, in, Gz, level)
					if len(out) > len(serial)+len(serial)/50 {
						t.Errorf("level %d: %d bytes, serial %d", level, len(out), len(serial))
					}
				}
			}
		}
	}
}
