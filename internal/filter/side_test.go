package filter

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"
)

// TestSetSide: the side writer of a pipeline, plain or parallel, gets the
// original bytes in order, and the stored bytes are the same with it as
// without.
func TestSetSide(t *testing.T) {
	data := make([]byte, 3<<20+123)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range data {
		data[i] = byte(rng.IntN(16))
	}
	for _, conc := range []int{1, 2} {
		newPipe := func(w io.Writer) *WritePipeline {
			var p *WritePipeline
			var err error
			if conc == 1 {
				p, err = NewWritePipeline(w, Lz4, 1, "")
			} else {
				p, err = NewParallelWritePipeline(w, Lz4, 1, "", conc)
			}
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		var want, out, side bytes.Buffer
		p := newPipe(&want)
		io.Copy(p, bytes.NewReader(data))
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		p = newPipe(&out)
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
