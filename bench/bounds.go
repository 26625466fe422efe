package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/pgbr-dev/pgbr/internal/filter"
)

// machine holds the bounds measured on this machine, in bytes per second.
type machine struct {
	ncpu       int
	comp       map[string]float64 // read from memory + SHA-1 + compress (+ repo size count), one core
	decomp     map[string]float64 // decompress + SHA-1, one core
	ratio      map[string]float64 // compressed / original on the sample
	diskWrite  float64            // write + fsync of one large file
	diskRead   float64            // cold read of that file
	pgFixed    time.Duration      // pg_backup_start + pg_backup_stop with WAL archived (PostgreSQL's share of a backup)
	sampleSize int64
	rssFloorKB int64 // peak RSS the bench's wrapper gives /bin/true
}

var mach = machine{comp: map[string]float64{}, decomp: map[string]float64{}, ratio: map[string]float64{}}

// workers is the parallelism a process-max can use on this machine.
func workers(pm int) float64 { return float64(min(pm, mach.ncpu)) }

// measureDisk writes n MiB with fsync in the bench directory, then reads it
// back cold.
func measureDisk(n int) error {
	p := filepath.Join(*dir, "disk-probe")
	defer os.Remove(p)
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i*7 + i>>9) // not all zeros (some file systems compress)
	}
	dropCaches()
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, err := f.Write(buf); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	mach.diskWrite = float64(n<<20) / time.Since(start).Seconds()
	dropCaches()
	f, err = os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	start = time.Now()
	if _, err := io.CopyBuffer(io.Discard, f, buf); err != nil {
		return err
	}
	mach.diskRead = float64(n<<20) / time.Since(start).Seconds()
	return nil
}

// loadSample reads about n MiB of the cluster's relation files (base/):
// from every file its share of the sample in proportion to its size (its
// first pages; small files take a page when their shares add up to one), so the big tables, their indexes and the small tables are in
// it as they are in the cluster.
func loadSample(data string, n int) ([]byte, error) {
	type file struct {
		path string
		size int64
	}
	var files []file
	var total int64
	filepath.Walk(filepath.Join(data, "base"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && fi.Size() > 0 {
			files = append(files, file{p, fi.Size()})
			total += fi.Size()
		}
		return nil
	})
	if len(files) == 0 {
		return nil, fmt.Errorf("no relation files under %s/base", data)
	}
	limit := min(int64(n)<<20, total)
	buf := make([]byte, 0, limit+8192)
	var owed int64 // sample bytes owed by the files so far (whole pages are taken)
	for _, f := range files {
		owed += f.size * limit / total
		share := min(f.size, owed/8192*8192, int64(cap(buf)-len(buf)))
		owed -= share
		if share <= 0 {
			continue
		}
		fh, err := os.Open(f.path)
		if err != nil {
			return nil, err
		}
		start := len(buf)
		buf = buf[:start+int(share)]
		_, err = io.ReadFull(fh, buf[start:])
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %v", f.path, err)
		}
	}
	return buf, nil
}

// measureCodecs measures, on one core, the cost per byte of what a backup
// does with each byte (SHA-1 of the original, compress, count and SHA-1 of
// the repository bytes: filter.WritePipeline at pgbr's default level) and
// what a restore does (filter.ReadPipeline: decompress + SHA-1).
//
// Each is measured twice and the faster pass kept: the bound is what the
// machine can do.
func measureCodecs(sample []byte, types []string) error {
	mach.sampleSize = int64(len(sample))
	runtime.GC()
	for _, name := range types {
		for pass := 0; pass < 2; pass++ {
			if err := measureCodec(sample, name); err != nil {
				return err
			}
		}
	}
	return nil
}

func measureCodec(sample []byte, name string) error {
	ct, err := filter.ParseCompressType(name)
	if err != nil {
		return err
	}
	level := filter.DefaultLevel(ct)
	// One pipeline per 8 MiB, like files of a cluster (a pipeline per
	// file), so the per-stream set-up is in the cost too.
	const chunk = 8 << 20
	// The streams go one after the other into one buffer whose pages are
	// touched before the clock starts. With a fresh 8 MiB buffer per
	// stream, the first type measured paid for the heap's growth (a page
	// fault per 4 KiB, in this VM about 3 ms per MiB) and the later ones
	// reused the memory it freed: lz4, measured first, showed 180-230
	// MiB/s instead of 780-950, and its bound was three times too long. A
	// backup pays no such cost: its output goes through reused buffers.
	arena := make([]byte, len(sample)+len(sample)/8+(len(sample)/chunk+1)<<16)
	for i := 0; i < len(arena); i += 4096 {
		arena[i] = 1
	}
	var streams [][]byte
	var repoLen int64
	pos := 0
	start := time.Now()
	for off := 0; off < len(sample); off += chunk {
		repo := bytes.NewBuffer(arena[pos:pos])
		p, err := filter.NewWritePipeline(repo, ct, level, "")
		if err != nil {
			return err
		}
		end := min(off+chunk, len(sample))
		for o := off; o < end; o += filter.BufferSize {
			if _, err := p.Write(sample[o:min(o+filter.BufferSize, end)]); err != nil {
				return err
			}
		}
		if err := p.Close(); err != nil {
			return err
		}
		repoLen += p.RepoSize()
		streams = append(streams, repo.Bytes())
		if n := repo.Len(); n > 0 && pos+n <= len(arena) && &repo.Bytes()[0] == &arena[pos] {
			pos += n
		}
	}
	el := time.Since(start)
	mach.comp[name] = max(mach.comp[name], float64(len(sample))/el.Seconds())
	mach.ratio[name] = float64(repoLen) / float64(len(sample))

	// Decompress the same streams.
	buf := make([]byte, filter.BufferSize)
	start = time.Now()
	var total int64
	for _, st := range streams {
		p, err := filter.NewReadPipeline(bytes.NewReader(st), ct, "")
		if err != nil {
			return err
		}
		n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{p}, buf)
		if err != nil {
			return fmt.Errorf("decompress %s: %v", name, err)
		}
		p.Close()
		total += n
	}
	if total != int64(len(sample)) {
		return fmt.Errorf("decompress %s: %d bytes, want %d", name, total, len(sample))
	}
	mach.decomp[name] = max(mach.decomp[name], float64(len(sample))/time.Since(start).Seconds())
	return nil
}

// measurePgFixed times what PostgreSQL alone makes a backup wait for:
// pg_backup_start (fast checkpoint) and pg_backup_stop until the last WAL
// segment is archived (by pgbr's archive-push, the archive_command). The
// stop does not wait for the archive itself (pg_backup_stop(true) looks
// once a second, as neither tool does): the segment's .done file is
// polled for, as the tools poll the repository.
func measurePgFixed(reps int) error {
	var m meas
	for i := 0; i < reps; i++ {
		start := time.Now()
		out, err := psql("select pg_backup_start('bench', true)", "select pg_walfile_name(lsn) from pg_backup_stop(false)")
		if err != nil {
			return err
		}
		lines := strings.Fields(out)
		if len(lines) == 0 {
			return fmt.Errorf("pg_backup_stop returned no segment")
		}
		done := filepath.Join(dataDir, "pg_wal", "archive_status", lines[len(lines)-1]+".done")
		for {
			if _, err := os.Stat(done); err == nil {
				break
			}
			if time.Since(start) > time.Minute {
				return fmt.Errorf("%s not archived within a minute", lines[len(lines)-1])
			}
			time.Sleep(2 * time.Millisecond)
		}
		m.add(sample{dur: time.Since(start)})
	}
	mach.pgFixed = m.median()
	return nil
}

func (m *machine) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "machine: %d CPUs; disk write+fsync %.0f MiB/s, cold read %.0f MiB/s; PostgreSQL start/stop backup + WAL archived %s\n",
		m.ncpu, m.diskWrite/(1<<20), m.diskRead/(1<<20), secs(m.pgFixed))
	fmt.Fprintf(&b, "RSS floor (the bench's wrapper running /bin/true): %d KiB\n", m.rssFloorKB)
	fmt.Fprintf(&b, "per core on a %.0f MiB sample of the cluster (default levels):\n", float64(m.sampleSize)/(1<<20))
	for _, name := range compressTypes {
		if _, ok := m.comp[name]; !ok {
			continue
		}
		ct, _ := filter.ParseCompressType(name)
		fmt.Fprintf(&b, "  %-4s level %-2d  backup (SHA-1 + compress) %7.0f MiB/s   restore (decompress + SHA-1) %7.0f MiB/s   ratio %.2f\n",
			name, filter.DefaultLevel(ct), m.comp[name]/(1<<20), m.decomp[name]/(1<<20), m.ratio[name])
	}
	return b.String()
}

// Bounds, as durations.

// fullBound is the fixed cost plus the larger of the CPU time of the bytes
// spread over the workers and the time to read them cold.
func fullBound(fixed time.Duration, bytes int64, ct string, pm int) time.Duration {
	cpu := float64(bytes) / (mach.comp[ct] * workers(pm))
	rd := float64(bytes) / mach.diskRead
	return fixed + time.Duration(max(cpu, rd)*float64(time.Second))
}

// restoreBound is the larger of writing the bytes (with fsync) and
// decompressing them over the workers.
func restoreBound(bytes int64, ct string, pm int) time.Duration {
	cpu := float64(bytes) / (mach.decomp[ct] * workers(pm))
	wr := float64(bytes) / mach.diskWrite
	return time.Duration(max(cpu, wr) * float64(time.Second))
}

// perFileGoal is the budget for walking and stat-ing an unchanged
// file in an incremental backup.
const perFileGoal = 10 * time.Microsecond
