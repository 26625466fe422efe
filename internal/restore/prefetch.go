package restore

import (
	"bytes"
	"context"
	"io"
	"slices"

	"github.com/pgbr-dev/pgbr/internal/readahead"
	"github.com/pgbr-dev/pgbr/internal/repo"
)

// Small files are read from the repository ahead of the workers, several
// at once: restoring a small file is dominated by the latency of its cold
// read (opening and reading a file not in the page cache, or a request to
// an object store), which one worker pays file after file. The prefetch
// goroutines keep several reads in flight; the worker then decodes the
// bytes from memory. Only reading is done ahead: decrypting, decompressing,
// checking and writing stay with the worker, in the same order and with
// the same messages: an open that failed ahead fails the worker as its own
// open would, a read that failed ahead gives the worker the bytes read and
// then the error, as its own reader would have.
const (
	prefetchMax     = 512 << 10 // stored bytes of a file read ahead, at most
	prefetchWindow  = 64        // files read ahead of the workers, at most
	prefetchReaders = 8         // reads in flight
)

// prefetchSlot is what was read ahead of one stored file.
type prefetchSlot struct {
	skip    bool // not read ahead after all (larger than the manifest said)
	data    []byte
	openErr error // the repository's open failed
	readErr error // a read failed after data
}

// reader gives the stored bytes read ahead, then the read error if any.
func (s *prefetchSlot) reader() io.Reader {
	var b readahead.Bytes
	b.Reset(s.data, s.readErr)
	return &b
}

// prefetcher reads the stored bytes of the jobs it was given ahead of the
// workers (readahead.Window). Every job index it holds must be taken
// (take) exactly once, in any order, by the worker restoring it.
type prefetcher struct {
	order []int32 // job indexes read ahead, ascending
	w     *readahead.Window[*prefetchSlot]
}

// prefetchable reports whether the stored bytes of f are read ahead: a
// plain stream of the repository (not block incremental) small enough.
func (rr *restoreRun) prefetchable(f *repo.ManifestFile) bool {
	if f.BlockIncrMap != 0 || rr.zeroed(f.Name) || (f.Size == 0 && f.RepoSize == 0) {
		return false
	}
	stored := f.RepoSize
	if stored == 0 {
		stored = f.Size
	}
	return stored <= prefetchMax
}

// startPrefetch starts reading ahead the jobs that qualify; nil when none
// does. Stop must be called when the workers are done.
func (rr *restoreRun) startPrefetch(ctx context.Context, jobs []restoreJob) *prefetcher {
	p := &prefetcher{}
	for i, j := range jobs {
		if rr.prefetchable(j.f) {
			p.order = append(p.order, int32(i))
		}
	}
	if len(p.order) < 2 {
		return nil
	}
	layout := repo.Layout{Stanza: rr.stanza}
	p.w = readahead.Start(ctx, len(p.order), prefetchWindow, prefetchReaders, func(ctx context.Context, k int) *prefetchSlot {
		s := &prefetchSlot{}
		s.read(ctx, rr, layout.StoredFile(rr.m, jobs[p.order[k]].f, false))
		return s
	})
	return p
}

// read reads a stored file whole. A file larger than prefetchMax is left to
// the worker (skip).
func (s *prefetchSlot) read(ctx context.Context, rr *restoreRun, sf repo.StoredFile) {
	in, err := sf.Open(ctx, rr.st)
	if err != nil {
		s.openErr = err
		return
	}
	defer in.Close()
	var b bytes.Buffer
	if sf.RepoSize > 0 && sf.RepoSize <= prefetchMax {
		b.Grow(int(sf.RepoSize) + bytes.MinRead)
	}
	n, err := b.ReadFrom(io.LimitReader(in, prefetchMax+1))
	if n > prefetchMax {
		s.skip = true
		return
	}
	s.data, s.readErr = b.Bytes(), err
}

// take returns what was read ahead for job i (nil: the worker reads the
// file itself), waiting for the read if it is under way.
func (p *prefetcher) take(ctx context.Context, i int) *prefetchSlot {
	if p == nil {
		return nil
	}
	k, ok := slices.BinarySearch(p.order, int32(i))
	if !ok {
		return nil
	}
	s, ok := p.w.Take(ctx, k)
	if !ok || s.skip {
		return nil
	}
	return s
}

// Stop ends the read-ahead and waits for the reads under way.
func (p *prefetcher) Stop() {
	if p != nil {
		p.w.Stop(nil)
	}
}
