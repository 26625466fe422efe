package filter

import (
	"bytes"
	stdgzip "compress/gzip"
	"errors"
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
				var out bytes.Buffer
				w, err := newCompressor(&out, Gz, level, 3)
				if err != nil {
					t.Fatal(err)
				}
				for off := 0; off < len(in); off += 70000 {
					if _, err := w.Write(in[off:min(off+70000, len(in))]); err != nil {
						t.Fatal(err)
					}
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				r, err := stdgzip.NewReader(bytes.NewReader(out.Bytes()))
				if err != nil {
					t.Fatalf("level %d size %d: %v", level, size, err)
				}
				back, err := io.ReadAll(r)
				if err != nil || !bytes.Equal(back, in) {
					t.Fatalf("level %d size %d: compress/gzip read %d bytes (%v)", level, size, len(back), err)
				}
				if size == len(data) {
					if got := run(t, out.Bytes(), "gzip", "-dc"); !bytes.Equal(got, in) {
						t.Fatalf("level %d: gzip -dc read %d bytes, want %d", level, len(got), len(in))
					}
					serial := compressBytes(t, in, Gz, level)
					if out.Len() > len(serial)+len(serial)/50 {
						t.Errorf("level %d: %d bytes, serial %d", level, out.Len(), len(serial))
					}
				}
			}
		}
	}
}

// A failing destination fails the stream with its error, on a Write or
// at Close.
func TestParGzipWriteError(t *testing.T) {
	data := testData(5*parGzChunk, 3)
	w, err := newCompressor(&failWriter{after: 100_000}, Gz, 6, 2)
	if err != nil {
		t.Fatal(err)
	}
	var werr error
	for off := 0; off < len(data) && werr == nil; off += 65536 {
		_, werr = w.Write(data[off : off+65536])
	}
	cerr := w.Close()
	if err := errors.Join(werr, cerr); err == nil || !bytes.Contains([]byte(err.Error()), []byte("disk full")) {
		t.Fatalf("error %v does not name the cause", err)
	}
}

// More large streams at once than CPUs: the chunks that find no free slot
// are compressed by their stream itself, in order, and every stream still
// reads back; afterwards every slot is free again.
func TestParGzipManyStreams(t *testing.T) {
	data := testData(3*parGzChunk+999, 13)
	n := 3*cap(parGzSlots) + 1
	outs := make([]bytes.Buffer, n)
	errc := make(chan error, n)
	for i := range n {
		go func() {
			w, err := newCompressor(&outs[i], Gz, 6, 4)
			if err == nil {
				_, err = w.Write(data)
				err = errors.Join(err, w.Close())
			}
			errc <- err
		}()
	}
	for range n {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	for i := range outs {
		r, err := stdgzip.NewReader(&outs[i])
		if err != nil {
			t.Fatal(err)
		}
		if back, err := io.ReadAll(r); err != nil || !bytes.Equal(back, data) {
			t.Fatalf("stream %d read back %d bytes (%v)", i, len(back), err)
		}
	}
	if len(parGzSlots) != 0 {
		t.Fatalf("%d slots still taken", len(parGzSlots))
	}
}
