package repo

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

// failAfter takes n bytes, then fails every write.
type failAfter struct {
	bytes.Buffer
	n int
}

var errFull = errors.New("device full")

func (f *failAfter) Write(p []byte) (int, error) {
	if f.Len()+len(p) > f.n {
		return 0, errFull
	}
	return f.Buffer.Write(p)
}

// shortWriter takes half of each write without an error.
type shortWriter struct{}

func (shortWriter) Write(p []byte) (int, error) { return len(p) / 2, nil }

// TestTeeWriter: each writer gets every byte in order although the caller
// overwrites its buffer after each Write; many more writes than buffers.
func TestTeeWriter(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var want bytes.Buffer
	outs := []*bytes.Buffer{{}, {}, {}}
	tee := newTeeWriter(outs[0], outs[1], outs[2])
	buf := make([]byte, 0, 70<<10)
	for i := range 20 * teeChunks {
		buf = buf[:r.IntN(70<<10)]
		for j := range buf {
			buf[j] = byte(i + j)
		}
		if n, err := tee.Write(buf); n != len(buf) || err != nil {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
		want.Write(buf)
		for j := range buf {
			buf[j] = 0xff // the tee has its own copy
		}
	}
	if err := tee.Close(); err != nil {
		t.Fatal(err)
	}
	for i, o := range outs {
		if !bytes.Equal(o.Bytes(), want.Bytes()) {
			t.Fatalf("writer %d: %d bytes differ from the %d written", i, o.Len(), want.Len())
		}
	}
	if _, err := tee.Write([]byte("x")); err == nil {
		t.Fatal("write after close succeeded")
	}
	if err := newTeeWriter().Close(); err != nil {
		t.Fatalf("no writers: %v", err)
	}
}

// TestTeeWriterFails: a writer's error comes back from a later Write and
// from Close, the other writers go on, and nothing blocks.
func TestTeeWriterFails(t *testing.T) {
	good, bad := &bytes.Buffer{}, &failAfter{n: 100 << 10}
	tee := newTeeWriter(good, bad)
	chunk := make([]byte, 64<<10)
	var werr error
	for range 100 * teeChunks {
		if _, werr = tee.Write(chunk); werr != nil {
			break
		}
	}
	if !errors.Is(werr, errFull) {
		t.Fatalf("writes after the failure: %v", werr)
	}
	if err := tee.Close(); !errors.Is(err, errFull) {
		t.Fatalf("close: %v", err)
	}
	if bad.Len() > 100<<10 || good.Len() < bad.Len() {
		t.Fatalf("failing writer took %d bytes, the other %d", bad.Len(), good.Len())
	}
	tee = newTeeWriter(io.Discard, shortWriter{})
	tee.Write([]byte("abcd"))
	if err := tee.Close(); !errors.Is(err, io.ErrShortWrite) {
		t.Fatalf("short write: %v", err)
	}
}
