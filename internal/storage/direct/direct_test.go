package direct

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

func TestReadSizes(t *testing.T) {
	dirs := []string{t.TempDir()}
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		// tmpfs refuses O_DIRECT: the reader falls back to the page cache.
		d, err := os.MkdirTemp("/dev/shm", "pgbr-direct")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		dirs = append(dirs, d)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, dir := range dirs {
		for _, size := range []int{0, 1, 4095, 4096, 8192 + 17, ChunkSize - 1, ChunkSize, ChunkSize + 7, 2 * ChunkSize, 3*ChunkSize + 4096, 4 * ChunkSize} {
			data := make([]byte, size)
			for i := range data {
				data[i] = byte(rng.Uint32())
			}
			p := filepath.Join(dir, "f")
			if err := os.WriteFile(p, data, 0o600); err != nil {
				t.Fatal(err)
			}
			var r interface {
				io.ReadCloser
				Name() string
			}
			var err error
			if size%2 == 0 {
				r, err = Open(p)
			} else {
				r, err = OpenPlain(p)
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Name() != p {
				t.Fatalf("Name() = %q", r.Name())
			}
			// Odd-sized reads cross chunk boundaries.
			got, err := io.ReadAll(io.LimitReader(struct{ io.Reader }{r}, int64(size)+100))
			if err != nil {
				t.Fatalf("%s size %d: %v", dir, size, err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("%s size %d: read %d bytes, content differs", dir, size, len(got))
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := r.Read(make([]byte, 1)); err == nil {
				t.Fatal("read after close succeeded")
			}
		}
	}
}

func TestOpenMissing(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "missing"))
	if !os.IsNotExist(err) {
		t.Fatalf("err = %v, want not-exist", err)
	}
	_, err = OpenPlain(filepath.Join(t.TempDir(), "missing"))
	if !os.IsNotExist(err) {
		t.Fatalf("err = %v, want not-exist", err)
	}
}

// Next hands out the file's bytes in order without a copy: after a Read
// that stopped inside a chunk it returns the rest of that chunk, then
// whole chunks, then io.EOF; the buffers it hands out stay the caller's
// until released, however far the lanes read ahead.
func TestNext(t *testing.T) {
	for _, size := range []int{0, 100, ChunkSize, 5*ChunkSize + 4096} {
		data := make([]byte, size)
		rng := rand.New(rand.NewPCG(uint64(size), 3))
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		p := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		r, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, min(size, 10))
		if _, err := io.ReadFull(r, got); err != nil {
			t.Fatal(err)
		}
		var held [][]byte // every chunk kept until the end
		var releases []func()
		for {
			b, release, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("size %d: %v", size, err)
			}
			if len(b) == 0 || len(b) > ChunkSize {
				t.Fatalf("size %d: a chunk of %d bytes", size, len(b))
			}
			held, releases = append(held, b), append(releases, release)
		}
		for _, b := range held {
			got = append(got, b...)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("size %d: %d bytes in %d chunks, content differs", size, len(got), len(held))
		}
		if _, _, err := r.Next(); err != io.EOF {
			t.Fatalf("size %d: Next after the end: %v", size, err)
		}
		for _, release := range releases {
			release()
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := r.Next(); err == nil {
			t.Fatal("Next after close succeeded")
		}
	}
}

// A reader closed before its end stops its read-ahead.
func TestCloseEarly(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, make([]byte, 5*ChunkSize), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestPlainSeekReadAtStat(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	data := []byte("0123456789abcdef")
	if err := os.WriteFile(p, data, 0o640); err != nil {
		t.Fatal(err)
	}
	f, err := OpenPlain(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() != int64(len(data)) || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o640 || fi.Name() != "f" {
		t.Fatalf("stat: %v %v", fi, err)
	}
	b := make([]byte, 4)
	if n, err := f.ReadAt(b, 10); n != 4 || err != nil || string(b) != "abcd" {
		t.Fatalf("ReadAt: %d %v %q", n, err, b)
	}
	if n, err := f.ReadAt(b, 14); n != 2 || err != io.EOF {
		t.Fatalf("ReadAt at the end: %d %v", n, err)
	}
	if _, err := f.Seek(12, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(f)
	if err != nil || string(rest) != "cdef" {
		t.Fatalf("after Seek: %q %v", rest, err)
	}
}

// TestPlainWrite creates a file with OpenFile, writes it, hands the
// descriptor over to an os.File and closes that: the bytes and the mode
// are there, and the Plain refuses use after the handover. Creating it
// again with O_EXCL fails as os.OpenFile does.
func TestPlainWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w")
	p, err := OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("pgbr"), 5000)
	if n, err := p.Write(body); err != nil || n != len(body) {
		t.Fatalf("write %d, %v", n, err)
	}
	f := p.File()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Write([]byte("x")); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("write after handover: %v", err)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", fi.Mode(), err)
	}
	if _, err := OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second exclusive create: %v", err)
	}
}
