package filter

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"io"
	"math/rand"
	"testing"
)

// TestBz2ReaderAbandonedMidStream reads only the start of one bz2 stream
// (as verify reads a WAL header), closes it, then decodes another stream
// in full: the pooled decoder must not hand over the first one's pending
// output.
func TestBz2ReaderAbandonedMidStream(t *testing.T) {
	data := make([]byte, 4<<20)
	r := rand.New(rand.NewSource(7))
	for i := 0; i < 1<<20; i++ {
		data[i] = byte(r.Intn(4))
	}
	var comp bytes.Buffer
	w, err := NewWritePipeline(&comp, Bz2, 6, "")
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%x", sha1.Sum(data))
	for i := 0; i < 3; i++ {
		p, err := NewReadPipeline(bytes.NewReader(comp.Bytes()), Bz2, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(p, make([]byte, 512)); err != nil {
			t.Fatal(err)
		}
		p.Close()
		p, err = NewReadPipeline(bytes.NewReader(comp.Bytes()), Bz2, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, p); err != nil {
			t.Fatal(err)
		}
		p.Close()
		if p.Checksum() != want || p.Size() != int64(len(data)) {
			t.Fatalf("round %d: decoded %d bytes with sha1 %s, want %d bytes %s", i, p.Size(), p.Checksum(), len(data), want)
		}
	}
}
