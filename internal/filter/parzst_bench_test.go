package filter

import (
	"io"
	"runtime"
	"runtime/metrics"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// BenchmarkParZst compresses 256 MB of pgbench-like pages (pgbenchPages;
// PGBR_BENCH_FILE: a real file) with zst at the default level, serially
// and on 2 goroutines (parZstd; and, to compare, klauspost's own jobs of
// one frame: WithConcurrentBlocks), and reports the CPU time (user+system)
// an op, the compressed size an input byte and the peak of the heap above
// what it was before (the input and the pools of earlier runs).
func BenchmarkParZst(b *testing.B) {
	benchPar(b, Zst, func(w io.Writer) (io.WriteCloser, error) {
		return zstd.NewWriter(w, zstd.WithEncoderLevel(zstdLevel(DefaultLevel(Zst))),
			zstd.WithEncoderConcurrency(2), zstd.WithConcurrentBlocks(true), zstd.WithEncoderCRC(true))
	})
}

// BenchmarkParLz4 is BenchmarkParZst for lz4 (parLz4), without a third
// encoder to compare.
func BenchmarkParLz4(b *testing.B) { benchPar(b, Lz4, nil) }

func benchPar(b *testing.B, ct CompressType, other func(io.Writer) (io.WriteCloser, error)) {
	data := benchFile(b)
	if data == nil {
		data = pgbenchPages(256<<20, 42)
	}
	for _, c := range []struct {
		name string
		conc int // 0: other
	}{{"serial", 1}, {"par2", 2}, {"other2", 0}} {
		if c.conc == 0 && other == nil {
			continue
		}
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			var size int64
			var cpu time.Duration
			var peak uint64
			runtime.GC()
			base := heapNow()
			for b.Loop() {
				stop := heapPeak(&peak)
				before := cpuTime()
				var w io.WriteCloser
				var err error
				if c.conc > 0 {
					w, err = newCompressor(countWriter{&size}, ct, DefaultLevel(ct), c.conc)
				} else {
					w, err = other(countWriter{&size})
				}
				if err != nil {
					b.Fatal(err)
				}
				size = 0
				for off := 0; off < len(data); off += BufferSize {
					w.Write(data[off:min(off+BufferSize, len(data))])
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
				cpu += cpuTime() - before
				stop()
			}
			b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
			b.ReportMetric(float64(size)/float64(len(data)), "ratio")
			b.ReportMetric(float64(peak-min(base, peak))/(1<<20), "peak-heap-MiB")
		})
	}
}

type countWriter struct{ n *int64 }

func (w countWriter) Write(p []byte) (int, error) { *w.n += int64(len(p)); return len(p), nil }

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var heapSample = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}

// heapNow is the heap's objects, live or not yet swept.
func heapNow() uint64 {
	metrics.Read(heapSample)
	return heapSample[0].Value.Uint64()
}

// heapPeak samples the live heap every millisecond into *peak (the
// largest seen) until the returned func is called.
func heapPeak(peak *uint64) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			*peak = max(*peak, heapNow())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
