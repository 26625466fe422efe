package filter

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/errs"
)

// testData returns n bytes that compress somewhat (like database pages).
func testData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := 0; i < n; {
		run := r.IntN(64) + 1
		c := byte(r.IntN(8))
		if r.IntN(4) == 0 {
			for j := 0; j < run && i < n; j++ {
				b[i] = byte(r.Uint32())
				i++
			}
			continue
		}
		for j := 0; j < run && i < n; j++ {
			b[i] = c
			i++
		}
	}
	return b
}

func sha1hex(b []byte) string { s := sha1.Sum(b); return hex.EncodeToString(s[:]) }

var allTypes = []CompressType{None, Gz, Bz2, Lz4, Zst}

func TestPipelineRoundTrip(t *testing.T) {
	sizes := []int{0, 1, 15, 16, 17, 8192, 65535, 65536, 65537, 1 << 20, 3<<20 + 7}
	for _, ct := range allTypes {
		for _, pass := range []string{"", "x3Y/abc+def"} {
			for _, size := range sizes {
				data := testData(size, uint64(size))
				var dst bytes.Buffer
				w, err := NewWritePipeline(&dst, ct, DefaultLevel(ct), pass)
				if err != nil {
					t.Fatal(err)
				}
				// Write in odd pieces.
				for off := 0; off < len(data); {
					n := min(len(data)-off, 1+off%70001)
					if _, err := w.Write(data[off : off+n]); err != nil {
						t.Fatal(err)
					}
					off += n
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				if w.Checksum() != sha1hex(data) || w.Size() != int64(size) {
					t.Fatalf("%s/%q/%d: checksum/size mismatch", ct, pass, size)
				}
				if w.RepoChecksum() != sha1hex(dst.Bytes()) || w.RepoSize() != int64(dst.Len()) {
					t.Fatalf("%s/%q/%d: repo checksum/size mismatch", ct, pass, size)
				}
				if (ct != None || pass != "") && dst.Len() == 0 {
					t.Fatalf("%s/%q/%d: empty stream", ct, pass, size)
				}
				repo := dst.Bytes()
				r, err := NewReadPipeline(bytes.NewReader(repo), ct, pass)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(r)
				if err != nil {
					t.Fatalf("%s/%q/%d: read: %v", ct, pass, size, err)
				}
				if !bytes.Equal(got, data) {
					t.Fatalf("%s/%q/%d: data mismatch", ct, pass, size)
				}
				if err := r.Verify("f", sha1hex(data), int64(size)); err != nil {
					t.Fatal(err)
				}
				if err := r.Verify("f", sha1hex(data), int64(size)+1); !errs.Is(err, errs.Checksum) {
					t.Fatalf("verify mismatch: %v", err)
				}
				r.Close()
			}
		}
	}
}

func TestPipelineCopy(t *testing.T) {
	data := testData(1<<20+5, 9)
	for _, ct := range allTypes {
		var dst bytes.Buffer
		w, err := NewWritePipeline(&dst, ct, DefaultLevel(ct), "pw")
		if err != nil {
			t.Fatal(err)
		}
		if n, err := io.Copy(w, struct{ io.Reader }{bytes.NewReader(data)}); err != nil || n != int64(len(data)) {
			t.Fatalf("%s: copy in %d, %v", ct, n, err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		r, err := NewReadPipeline(bytes.NewReader(dst.Bytes()), ct, "pw")
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		n, err := io.Copy(struct{ io.Writer }{&out}, r)
		if err != nil || n != int64(len(data)) || !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("%s: copy out %d, %v", ct, n, err)
		}
		if err := r.Verify("x", sha1hex(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		r.Close()
		// A corrupt repo file fails the copy with a coded error.
		bad := bytes.Clone(dst.Bytes())
		bad[len(bad)/2] ^= 0xFF
		r, _ = NewReadPipeline(bytes.NewReader(bad), ct, "pw")
		_, err = io.Copy(io.Discard, r)
		if err == nil {
			err = r.Verify("x", sha1hex(data), int64(len(data)))
		}
		if errs.CodeOf(err) == errs.Unknown || err == nil {
			t.Errorf("%s: corrupt copy: %v", ct, err)
		}
		r.Close()
	}
}

type closeRecorder struct {
	bytes.Buffer
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

type readCloseRecorder struct {
	io.Reader
	closed bool
}

func (c *readCloseRecorder) Close() error { c.closed = true; return nil }

func TestCloseLeavesUnderlyingOpen(t *testing.T) {
	for _, ct := range allTypes {
		var dst closeRecorder
		w, err := NewCompressor(&dst, ct, DefaultLevel(ct))
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("some data"))
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Errorf("%s: second Close: %v", ct, err)
		}
		if ct != None {
			if _, err := w.Write([]byte("x")); err == nil {
				t.Errorf("%s: Write after Close succeeded", ct)
			}
		}
		src := &readCloseRecorder{Reader: bytes.NewReader(dst.Bytes())}
		r, err := NewDecompressor(src, ct)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(r); err != nil || string(got) != "some data" {
			t.Errorf("%s: %q %v", ct, got, err)
		}
		r.Close()
		if dst.closed || src.closed {
			t.Errorf("%s: Close closed the underlying writer/reader", ct)
		}
	}
	var dst closeRecorder
	e, _ := NewEncryptor(&dst, "p")
	e.Close()
	p, _ := NewWritePipeline(&dst, Lz4, 1, "p")
	p.Close()
	if dst.closed {
		t.Error("encryptor or pipeline closed the destination")
	}
}

func TestConcurrentPipelines(t *testing.T) {
	data := testData(200000, 11)
	done := make(chan error)
	for g := 0; g < 8; g++ {
		go func(g int) {
			var err error
			defer func() { done <- err }()
			for i := 0; i < 6; i++ {
				ct := allTypes[(g+i)%len(allTypes)]
				var dst bytes.Buffer
				w, _ := NewWritePipeline(&dst, ct, DefaultLevel(ct), "pw")
				w.Write(data[:len(data)-g*1000])
				if err = w.Close(); err != nil {
					return
				}
				r, _ := NewReadPipeline(&dst, ct, "pw")
				var got []byte
				got, err = io.ReadAll(r)
				r.Close()
				if err == nil && !bytes.Equal(got, data[:len(data)-g*1000]) {
					err = errs.New(errs.Assert, "data mismatch %s", ct)
				}
				if err != nil {
					return
				}
			}
		}(g)
	}
	for g := 0; g < 8; g++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
