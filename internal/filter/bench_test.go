package filter

import (
	"bytes"
	"io"
	"os"
	"testing"
)

// benchData is 16 MiB of data that compresses about like a database
// (PGBR_BENCH_FILE overrides it with a real file).
func benchData(b *testing.B) []byte {
	if d := benchFile(b); d != nil {
		return d
	}
	return testData(16<<20, 42)
}

// benchFile is the content of PGBR_BENCH_FILE, or nil.
func benchFile(b *testing.B) []byte {
	f := os.Getenv("PGBR_BENCH_FILE")
	if f == "" {
		return nil
	}
	d, err := os.ReadFile(f)
	if err != nil {
		b.Fatal(err)
	}
	return d
}

func benchWrite(b *testing.B, ct CompressType, pass string) { benchWriteMode(b, ct, pass, false) }

func benchWriteMode(b *testing.B, ct CompressType, pass string, async bool) {
	data := benchData(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var ratio float64
	for b.Loop() {
		conc := 1
		if async {
			conc = 2
		}
		p, err := newWritePipeline(io.Discard, ct, DefaultLevel(ct), pass, conc)
		if err != nil {
			b.Fatal(err)
		}
		for off := 0; off < len(data); off += BufferSize {
			p.Write(data[off:min(off+BufferSize, len(data))])
		}
		if err := p.Close(); err != nil {
			b.Fatal(err)
		}
		ratio = float64(p.RepoSize()) / float64(len(data))
	}
	b.ReportMetric(ratio, "ratio")
}

func benchRead(b *testing.B, ct CompressType, pass string) {
	data := benchData(b)
	var repo bytes.Buffer
	p, _ := NewWritePipeline(&repo, ct, DefaultLevel(ct), pass)
	p.Write(data)
	p.Close()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	buf := make([]byte, BufferSize)
	for b.Loop() {
		r, err := NewReadPipeline(bytes.NewReader(repo.Bytes()), ct, pass)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, buf); err != nil {
			b.Fatal(err)
		}
		r.Close()
	}
}

func BenchmarkWriteNone(b *testing.B)     { benchWrite(b, None, "") }
func BenchmarkWriteGz(b *testing.B)       { benchWrite(b, Gz, "") }
func BenchmarkWriteBz2(b *testing.B)      { benchWrite(b, Bz2, "") }
func BenchmarkWriteLz4(b *testing.B)      { benchWrite(b, Lz4, "") }
func BenchmarkWriteZst(b *testing.B)      { benchWrite(b, Zst, "") }
func BenchmarkWriteLz4Crypt(b *testing.B) { benchWrite(b, Lz4, "pass") }
func BenchmarkReadNone(b *testing.B)      { benchRead(b, None, "") }
func BenchmarkReadGz(b *testing.B)        { benchRead(b, Gz, "") }
func BenchmarkReadBz2(b *testing.B)       { benchRead(b, Bz2, "") }
func BenchmarkReadLz4(b *testing.B)       { benchRead(b, Lz4, "") }
func BenchmarkReadZst(b *testing.B)       { benchRead(b, Zst, "") }
func BenchmarkReadLz4Crypt(b *testing.B)  { benchRead(b, Lz4, "pass") }

// The write pipeline with compression on a second goroutine (large files).
func BenchmarkWriteAsyncLz4(b *testing.B)  { benchWriteMode(b, Lz4, "", true) }
func BenchmarkWriteAsyncZst(b *testing.B)  { benchWriteMode(b, Zst, "", true) }
func BenchmarkWriteAsyncGz(b *testing.B)   { benchWriteMode(b, Gz, "", true) }
func BenchmarkWriteAsyncNone(b *testing.B) { benchWriteMode(b, None, "", true) }
