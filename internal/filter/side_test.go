package filter

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"
)

// TestSetSide: the side writer of a pipeline, plain or parallel, gets the
// original bytes in order, and the stored bytes are the same with it.
func TestSetSide(t *testing.T) {
	data := make([]byte, 3<<20+123)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range data {
		data[i] = byte(rng.IntN(16))
	}
	var want bytes.Buffer
	p, err := NewWritePipeline(&want, Lz4, 1, "")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(p, bytes.NewReader(data))
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for _, conc := range []int{1, 2} {
		var out, side bytes.Buffer
		var p *WritePipeline
		if conc == 1 {
			p, err = NewWritePipeline(&out, Lz4, 1, "")
		} else {
			p, err = NewParallelWritePipeline(&out, Lz4, 1, "", conc)
		}
		if err != nil {
			t.Fatal(err)
		}
		p.SetSide(&side)
		for off := 0; off < len(data); off += 100_000 {
			if _, err := p.Write(data[off:min(off+100_000, len(data))]); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(side.Bytes(), data) {
			t.Fatalf("conc %d: side got %d bytes, not the original %d", conc, side.Len(), len(data))
		}
		if !bytes.Equal(out.Bytes(), want.Bytes()) {
			t.Fatalf("conc %d: stored bytes differ with a side writer", conc)
		}
	}
}
