package filter

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
)

// A parallel pipeline stores one ordinary stream: it reads back with the
// ordinary read pipeline, with the same checksums as a serial pipeline.
func TestParallelWritePipeline(t *testing.T) {
	data := testData(1<<20+123, 7)
	for _, ct := range []CompressType{None, Gz, Lz4, Zst, Bz2} {
		for _, pass := range []string{"", "secret"} {
			var serial, par bytes.Buffer
			ps, err := NewWritePipeline(&serial, ct, DefaultLevel(ct), pass)
			if err != nil {
				t.Fatal(err)
			}
			pp, err := NewParallelWritePipeline(&par, ct, DefaultLevel(ct), pass, 3)
			if err != nil {
				t.Fatal(err)
			}
			for off := 0; off < len(data); off += 100_000 {
				chunk := data[off:min(off+100_000, len(data))]
				ps.Write(chunk)
				if _, err := pp.Write(chunk); err != nil {
					t.Fatal(err)
				}
			}
			if err := ps.Close(); err != nil {
				t.Fatal(err)
			}
			if err := pp.Close(); err != nil {
				t.Fatalf("%s: %v", ct, err)
			}
			if pp.Checksum() != ps.Checksum() || pp.Size() != int64(len(data)) {
				t.Fatalf("%s: checksum/size %s/%d, serial %s/%d", ct, pp.Checksum(), pp.Size(), ps.Checksum(), ps.Size())
			}
			if pp.RepoSize() != int64(par.Len()) {
				t.Fatalf("%s: repo size %d, wrote %d", ct, pp.RepoSize(), par.Len())
			}
			if ct == None && pass == "" && !bytes.Equal(par.Bytes(), data) {
				t.Fatal("none: stored bytes differ from the input")
			}
			r, err := NewReadPipeline(bytes.NewReader(par.Bytes()), ct, pass)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			if err != nil {
				t.Fatalf("%s: read back: %v", ct, err)
			}
			if !bytes.Equal(got, data) || r.Checksum() != ps.Checksum() {
				t.Fatalf("%s: read back %d bytes, differ", ct, len(got))
			}
			if sha1hex(par.Bytes()) != pp.RepoChecksum() {
				t.Fatalf("%s: repo checksum %s, pipeline said %s", ct, sha1hex(par.Bytes()), pp.RepoChecksum())
			}
			r.Close()
		}
	}
}

type failWriter struct{ after int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.after -= len(p); w.after < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

// A write error of the second goroutine reaches the caller: on a later
// Write or at Close, never lost.
func TestParallelWritePipelineError(t *testing.T) {
	data := testData(4<<20, 9)
	for _, ct := range []CompressType{None, Lz4, Zst} {
		p, err := NewParallelWritePipeline(&failWriter{after: 100_000}, ct, DefaultLevel(ct), "", 2)
		if err != nil {
			t.Fatal(err)
		}
		var werr error
		for off := 0; off < len(data) && werr == nil; off += 65536 {
			_, werr = p.Write(data[off : off+65536])
		}
		cerr := p.Close()
		if werr == nil && cerr == nil {
			t.Fatalf("%s: the failed write was not reported", ct)
		}
		if err := errors.Join(werr, cerr); !bytes.Contains([]byte(err.Error()), []byte("disk full")) {
			t.Fatalf("%s: error %v does not name the cause", ct, err)
		}
	}
}

// A parallel read pipeline gives the same bytes, size and checksum as an
// ordinary one; a failing writer and a damaged stream each end it with
// their own error, and Verify then refuses.
func TestParallelReadPipeline(t *testing.T) {
	data := testData(3<<20+77, 5)
	for _, ct := range []CompressType{None, Gz, Lz4, Zst, Bz2} {
		for _, pass := range []string{"", "secret"} {
			var stored bytes.Buffer
			wp, err := NewWritePipeline(&stored, ct, DefaultLevel(ct), pass)
			if err != nil {
				t.Fatal(err)
			}
			wp.Write(data)
			if err := wp.Close(); err != nil {
				t.Fatal(err)
			}
			sum := wp.Checksum()

			r, err := NewReadPipeline(bytes.NewReader(stored.Bytes()), ct, pass)
			if err != nil {
				t.Fatal(err)
			}
			r.SetParallel()
			var got bytes.Buffer
			n, err := io.Copy(&got, r)
			if err != nil || n != int64(len(data)) || !bytes.Equal(got.Bytes(), data) {
				t.Fatalf("%s/%q: copied %d bytes (err %v), want the %d written", ct, pass, n, err, len(data))
			}
			if err := r.Verify("f", sum, int64(len(data))); err != nil {
				t.Fatalf("%s/%q: %v", ct, pass, err)
			}
			r.Close()

			r, _ = NewReadPipeline(bytes.NewReader(stored.Bytes()), ct, pass)
			r.SetParallel()
			if _, err := io.Copy(&failWriter{after: 1 << 20}, r); err == nil || err.Error() != "disk full" {
				t.Fatalf("%s/%q: the failed write gave %v", ct, pass, err)
			}
			if err := r.Verify("f", sum, int64(len(data))); err == nil {
				t.Fatalf("%s/%q: verified after a failed write", ct, pass)
			}
			r.Close()

			if ct == None && pass == "" {
				continue // no stream to damage
			}
			cut := stored.Bytes()[:stored.Len()/2]
			r, _ = NewReadPipeline(bytes.NewReader(cut), ct, pass)
			r.SetParallel()
			// Encryption alone has no end marker: a cut at a block
			// boundary can decrypt, and only Verify tells.
			if _, err := io.Copy(io.Discard, r); err == nil && ct != None {
				t.Fatalf("%s/%q: a cut stream read without error", ct, pass)
			}
			if err := r.Verify("f", sum, int64(len(data))); err == nil {
				t.Fatalf("%s/%q: a cut stream verified", ct, pass)
			}
			r.Close()
		}
	}
}

// WriteOwned stores what Write stores, plain or parallel, encrypted or
// not, and the pipeline gives every buffer back exactly once and never
// reads it after that: each buffer is overwritten as soon as it is
// released. After a write error of the second goroutine the buffers still
// come back and the error reaches the caller.
func TestWriteOwned(t *testing.T) {
	data := pgbenchPages(3<<20+8192, 7)
	const piece = 1 << 20
	for _, conc := range []int{1, 2} {
		for _, pass := range []string{"", "secret"} {
			newPipe := func(w io.Writer) *WritePipeline {
				var p *WritePipeline
				var err error
				if conc == 1 {
					p, err = NewWritePipeline(w, Lz4, 1, pass)
				} else {
					p, err = NewParallelWritePipeline(w, Lz4, 1, pass, conc)
				}
				if err != nil {
					t.Fatal(err)
				}
				return p
			}
			var want bytes.Buffer
			p := newPipe(&want)
			p.Write(data)
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			p = newPipe(&got)
			var released atomic.Int32
			for off := 0; off < len(data); off += piece {
				b := bytes.Clone(data[off:min(off+piece, len(data))])
				var once atomic.Bool
				if err := p.WriteOwned(b, func() {
					if !once.CompareAndSwap(false, true) {
						t.Errorf("conc %d: a buffer released twice", conc)
					}
					clear(b)
					released.Add(1)
				}); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			pieces := int32((len(data) + piece - 1) / piece)
			if released.Load() != pieces {
				t.Fatalf("conc %d: %d of %d buffers released", conc, released.Load(), pieces)
			}
			if p.Checksum() != sha1hex(data) || p.Size() != int64(len(data)) {
				t.Fatalf("conc %d %q: checksum %s size %d", conc, pass, p.Checksum(), p.Size())
			}
			if pass == "" && !bytes.Equal(got.Bytes(), want.Bytes()) {
				t.Fatalf("conc %d: WriteOwned stored %d bytes, Write %d (or different ones)", conc, got.Len(), want.Len())
			}
			r, err := NewReadPipeline(bytes.NewReader(got.Bytes()), Lz4, pass)
			if err != nil {
				t.Fatal(err)
			}
			if back, err := io.ReadAll(r); err != nil || !bytes.Equal(back, data) {
				t.Fatalf("conc %d %q: the stored bytes read back to %d bytes (%v)", conc, pass, len(back), err)
			}
			r.Close()
		}

		p, err := NewParallelWritePipeline(&failWriter{after: 100_000}, Zst, DefaultLevel(Zst), "", conc)
		if err != nil {
			t.Fatal(err)
		}
		var released atomic.Int32
		var werr error
		n := int32(0)
		for off := 0; off < 8*piece && werr == nil; off += piece {
			n++
			werr = p.WriteOwned(testData(piece, uint64(off)), func() { released.Add(1) })
		}
		cerr := p.Close()
		if err := errors.Join(werr, cerr); err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Fatalf("conc %d: error %v does not name the cause", conc, err)
		}
		if released.Load() != n {
			t.Fatalf("conc %d: %d of %d buffers released after an error", conc, released.Load(), n)
		}
	}
}
