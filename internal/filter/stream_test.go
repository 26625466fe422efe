package filter

import (
	"bytes"
	"io"
	"testing"
)

// StreamWriter stores the bytes WritePipeline stores (it only leaves out
// the checksums), on one goroutine or several, and with a passphrase its
// output reads back through a ReadPipeline.
func TestStreamWriterMatchesPipeline(t *testing.T) {
	data := testData(3<<20+123, 7)
	for _, ct := range allTypes {
		lvl := DefaultLevel(ct)
		var want bytes.Buffer
		p, err := NewWritePipeline(&want, ct, lvl, "")
		if err != nil {
			t.Fatal(err)
		}
		p.Write(data)
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		for _, conc := range []int{1, 2} {
			var got bytes.Buffer
			s, err := NewStreamWriter(&got, ct, lvl, "", conc)
			if err != nil {
				t.Fatal(err)
			}
			for off := 0; off < len(data); off += 100000 {
				if _, err := s.Write(data[off:min(off+100000, len(data))]); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if (ct == Gz || ct == Zst || ct == Lz4) && conc > 1 {
				// Chunks compressed apart (parGzip, parLz4, parZstd): other
				// blocks or frames, the same content.
				if back, err := decompressBytes(got.Bytes(), ct); err != nil || !bytes.Equal(back, data) {
					t.Errorf("%s conc %d: the stream reads back to %d bytes (%v), not the %d written", ct, conc, len(back), err, len(data))
				}
			} else if !bytes.Equal(got.Bytes(), want.Bytes()) {
				t.Errorf("%s conc %d: stream writer stored %d bytes, pipeline %d (or different ones)", ct, conc, got.Len(), want.Len())
			}
			if _, err := s.Write([]byte("x")); err == nil {
				t.Errorf("%s: write after close accepted", ct)
			}
		}

		var enc bytes.Buffer
		s, err := NewStreamWriter(&enc, ct, lvl, "secret", 2)
		if err != nil {
			t.Fatal(err)
		}
		s.Write(data)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		r, err := NewReadPipeline(bytes.NewReader(enc.Bytes()), ct, "secret")
		if err != nil {
			t.Fatal(err)
		}
		back, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(back, data) {
			t.Errorf("%s encrypted: read back %d bytes, err %v", ct, len(back), err)
		}
	}
	if _, err := NewStreamWriter(io.Discard, Lz4, 99, "", 1); err == nil {
		t.Errorf("bad level accepted")
	}
}
