package archive

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"io"
	"os"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/filter"
	"github.com/pgbr-dev/pgbr/internal/storage"
)

// committerAs is a storage writer that can commit under another name than
// the one it was created with (posix: the rename of the temporary file).
type committerAs interface {
	CommitAs(path string) error
}

// canCommitAs reports a repository whose writers can be renamed at commit
// (posix, also through the command's counting wrapper; an object store's
// upload goes to its final key from the start).
func canCommitAs(st storage.Storage) bool {
	c, ok := st.(interface{ CanCommitAs() bool })
	return ok && c.CanCommitAs()
}

// pipeChunks is how many read buffers (copyBufPool's) pushSegment keeps in
// flight between its reading and its compressing goroutine.
const pipeChunks = 4

// errNoPipe: pushSegment could not create its temporary file; push then
// pushes the segment as it does to an object store.
var errNoPipe = errors.New("no temporary file")

// chunk is n bytes read into a buffer.
type chunk struct {
	bp *[]byte
	n  int
}

// pushSegment pushes the open segment src into dir of a repository that
// can rename at commit (canCommitAs) and returns its SHA-1, which names the
// archive file: the segment is read once, hashed and compressed (and
// encrypted) into a temporary file, committed as <name>-<sha1><ext> at the
// end. With overlap one goroutine reads and hashes the segment a chunk at a
// time while this one compresses the chunks already hashed: on two cores
// the hashing and the compression of a 16 MiB segment overlap instead of
// running one after the other. Without (the background process pushing as
// many segments at once as it has workers), one goroutine does both, as
// the extra hand-offs would only cost.
//
// readErr is a failure to read src (the push fails as a whole); err one of
// the repository (that repository fails). Either way nothing is left.
func pushSegment(ctx context.Context, st storage.Storage, src *os.File, srcPath, dir, name string, ct filter.CompressType, level int, pass string, overlap bool) (sum string, readErr, err error) {
	if err := st.PathCreate(ctx, dir); err != nil {
		return "", nil, errs.OrCode(errs.PathCreate, err)
	}
	w, err := st.Create(ctx, dir+"/"+name+ct.Ext(), storage.CreateOptions{})
	if err != nil {
		// The push hashes first and fails again, naming the archive
		// file as pgBackRest does.
		return "", nil, errNoPipe
	}
	ca, ok := w.(committerAs)
	if !ok {
		w.Abort()
		return "", nil, errs.New(errs.Assert, "storage '%s' cannot rename a file at commit", st.Root())
	}
	sw, err := filter.NewStreamWriter(w, ct, level, pass, 1)
	if err != nil {
		w.Abort()
		return "", nil, err
	}

	hc := hashCompress
	if !overlap {
		hc = hashThenCompress
	}
	sum, rerr, werr := hc(src, srcPath, sw)
	if werr != nil {
		werr = errs.Wrap(errs.FileWrite, werr, "unable to write '%s'", st.Full(dir+"/"+name+ct.Ext()))
	}
	cerr := sw.Close()
	switch {
	case rerr != nil:
		w.Abort()
		return "", rerr, nil
	case werr != nil:
		w.Abort()
		return "", nil, werr
	case cerr != nil:
		w.Abort()
		return "", nil, errs.Wrap(errs.FileWrite, cerr, "unable to write '%s'", st.Full(dir+"/"+name+ct.Ext()))
	}
	dest := dir + "/" + name + "-" + sum + ct.Ext()
	if err := ca.CommitAs(dest); err != nil {
		return "", nil, errs.Wrap(errs.FileWrite, err, "unable to write '%s'", st.Full(dest))
	}
	return sum, nil, nil
}

// hashCompress reads src from its start on one goroutine, hashing it a
// chunk at a time, and writes the hashed chunks into dst on this one; it
// returns the SHA-1 of src, or the error of reading src (rerr, wrapped) or
// of writing dst (werr, as dst returned it). Either error stops both sides.
func hashCompress(src io.ReaderAt, srcPath string, dst io.Writer) (sum string, rerr, werr error) {
	free := make(chan *[]byte, pipeChunks) // buffers to read into
	full := make(chan chunk, pipeChunks)   // hashed chunks, in order
	stop := make(chan struct{})            // the compression failed
	var bufs [pipeChunks]*[]byte
	for i := range bufs {
		bufs[i] = copyBufPool.Get().(*[]byte)
		free <- bufs[i]
	}
	go func() {
		defer close(full)
		h := sha1.New()
		var off int64
		for {
			var bp *[]byte
			select {
			case bp = <-free:
			case <-stop:
				return
			}
			n, err := src.ReadAt(*bp, off)
			off += int64(n)
			if n > 0 {
				h.Write((*bp)[:n])
				full <- chunk{bp, n} // never blocks: pipeChunks buffers exist
			} else {
				free <- bp
			}
			if err == io.EOF {
				sum = hex.EncodeToString(h.Sum(nil))
				return
			}
			if err != nil {
				rerr = errs.Wrap(errs.FileRead, err, "unable to read '%s'", srcPath)
				return
			}
		}
	}()
	for c := range full {
		if werr != nil {
			continue
		}
		if _, err := dst.Write((*c.bp)[:c.n]); err != nil {
			werr = err
			close(stop) // the reader stops at its next chunk
			continue
		}
		free <- c.bp
	}
	// The reader has returned (full is closed): the buffers are idle.
	for _, bp := range bufs {
		copyBufPool.Put(bp)
	}
	return sum, rerr, werr
}

// hashThenCompress is hashCompress on one goroutine: each chunk is hashed,
// then written.
func hashThenCompress(src io.ReaderAt, srcPath string, dst io.Writer) (string, error, error) {
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	h := sha1.New()
	if rerr, werr := readInto(src, srcPath, *bp, h, dst); rerr != nil || werr != nil {
		return "", rerr, werr
	}
	return hex.EncodeToString(h.Sum(nil)), nil, nil
}
