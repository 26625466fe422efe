package filter

import (
	"bufio"
	"io"
	"runtime"
	"strings"
	"sync"

	"github.com/pgbr-dev/pgbr/internal/errs"
)

// countingWriter hashes and counts what passes to w.
type countingWriter struct {
	c Counter
	w io.Writer
}

func (cw *countingWriter) Write(p []byte) (int, error) {
	n, err := cw.w.Write(p)
	cw.c.Write(p[:n])
	return n, err
}

var bufWriterPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, BufferSize) }}

// WritePipeline is the write side of the data path (backup, archive-push):
//
//	original → [SHA-1/size] → compress → encrypt → [SHA-1/size of repo bytes] → dst
//
// Write the original bytes, then Close; the accessors are valid after Close.
// Close flushes everything into dst but does not close dst.
type WritePipeline struct {
	stages
	orig   Counter
	repo   countingWriter
	same   bool        // repo bytes == original bytes: one hash only
	async  *asyncStage // nil: head is written on the caller's goroutine
	side   io.Writer   // also gets the original bytes (SetSide)
	err    error
	closed bool
}

// stages is compress → encrypt → buffered dst, what WritePipeline and
// StreamWriter share.
type stages struct {
	bw   *bufio.Writer
	comp io.WriteCloser // nil for none
	enc  io.WriteCloser // nil without encryption
	head io.Writer      // where original bytes go
}

// init builds the stages over dst. tap, when not nil, is put between the
// encryption and the buffered dst (what sees the stored bytes).
func (s *stages) init(dst io.Writer, t CompressType, level int, cipherPass string, conc int,
	tap func(bw io.Writer) io.Writer) error {
	if err := checkType(t); err != nil {
		return err
	}
	if err := checkLevel(t, level); err != nil {
		return err
	}
	s.bw = bufWriterPool.Get().(*bufio.Writer)
	s.bw.Reset(dst)
	var w io.Writer = s.bw
	if tap != nil {
		w = tap(s.bw)
	}
	if cipherPass != "" {
		enc, err := NewEncryptor(w, cipherPass)
		if err != nil {
			s.release()
			return err
		}
		s.enc = enc
		w = enc
	}
	if t != None {
		comp, err := newCompressor(w, t, level, conc)
		if err != nil {
			s.release()
			return err
		}
		s.comp = comp
		w = comp
	}
	s.head = w
	return nil
}

// close ends the compressed and encrypted streams and flushes them into
// dst (unless err, the first error so far, is set), releases the buffer and
// returns the first error.
func (s *stages) close(err error) error {
	if s.comp != nil {
		if cerr := s.comp.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	if s.enc != nil && err == nil {
		err = s.enc.Close()
	}
	if err == nil {
		err = s.bw.Flush()
	}
	s.release()
	return err
}

func (s *stages) release() {
	if s.bw != nil {
		s.bw.Reset(nil)
		bufWriterPool.Put(s.bw)
		s.bw = nil
	}
}

// NewWritePipeline returns a pipeline that compresses with t at level (as
// NewCompressor) and, when cipherPass is not empty, encrypts with it.
func NewWritePipeline(dst io.Writer, t CompressType, level int, cipherPass string) (*WritePipeline, error) {
	return newWritePipeline(dst, t, level, cipherPass, 1)
}

// NewParallelWritePipeline is NewWritePipeline for a large input, working
// on up to conc goroutines: compression, encryption and the writes to dst
// run beside the caller's reading and hashing, and gz, lz4 and zst
// compress chunks of the input on up to conc goroutines (parchunk.go). The
// stored bytes are one ordinary stream to any decoder of the format.
func NewParallelWritePipeline(dst io.Writer, t CompressType, level int, cipherPass string, conc int) (*WritePipeline, error) {
	// More compressing goroutines than CPUs would only wait, each with its
	// buffers: process-max pipelines at once must not cost process-max².
	return newWritePipeline(dst, t, level, cipherPass, max(min(conc, runtime.GOMAXPROCS(0)), 2))
}

// SetSide makes the pipeline pass the original bytes to side as well,
// before compressing them: on the compressing goroutine of a parallel
// pipeline, so that work on them (the page checksums of a backup) runs
// beside the caller's reading and hashing rather than after it. Call it
// before the first Write. side must not fail (its errors are ignored).
func (p *WritePipeline) SetSide(side io.Writer) { p.side = side }

func newWritePipeline(dst io.Writer, t CompressType, level int, cipherPass string, conc int) (*WritePipeline, error) {
	p := &WritePipeline{same: t == None && cipherPass == ""}
	var tap func(io.Writer) io.Writer
	if !p.same {
		tap = func(bw io.Writer) io.Writer {
			p.repo.w = bw
			return &p.repo
		}
	}
	if err := p.stages.init(dst, t, level, cipherPass, conc, tap); err != nil {
		return nil, err
	}
	if conc > 1 {
		p.async = newAsyncStage(func(b []byte) error {
			if p.side != nil {
				p.side.Write(b)
			}
			_, err := p.head.Write(b)
			return err
		})
	}
	return p, nil
}

// Write passes original bytes into the pipeline.
func (p *WritePipeline) Write(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	if p.closed {
		return 0, errs.New(errs.Assert, "write to a closed pipeline")
	}
	if p.async != nil {
		if err := p.async.write(b); err != nil {
			p.err = err
			return 0, err
		}
		p.orig.Write(b)
		return len(b), nil
	}
	if p.side != nil {
		p.side.Write(b)
	}
	n, err := p.head.Write(b)
	p.orig.Write(b[:n])
	if err != nil {
		p.err = err
	}
	return n, err
}

// WriteOwned is Write of b without a copy: a parallel pipeline hashes b and
// hands b itself to its second goroutine. release is called once the
// pipeline is done with b: at once in a pipeline without a second
// goroutine or after an error, else from that goroutine. The caller must
// not change b until then.
func (p *WritePipeline) WriteOwned(b []byte, release func()) error {
	if p.async == nil || p.err != nil || p.closed {
		_, err := p.Write(b)
		release()
		return err
	}
	// Hashed before the hand-off: b may be reused once released.
	p.orig.Write(b)
	if err := p.async.sendOwned(b, release); err != nil {
		p.err = err
		return err
	}
	return nil
}

// Close ends the compressed and encrypted streams and flushes them into dst.
// It must be called also after a failed Write, to release pooled resources.
func (p *WritePipeline) Close() error {
	if p.closed {
		return p.err
	}
	p.closed = true
	if p.async != nil {
		if err := p.async.wait(); err != nil && p.err == nil {
			p.err = err
		}
	}
	p.err = p.stages.close(p.err)
	return p.err
}

// Checksum returns the SHA-1 (40 lowercase hex) of the original bytes.
func (p *WritePipeline) Checksum() string { return p.orig.Sum() }

// Size returns the number of original bytes.
func (p *WritePipeline) Size() int64 { return p.orig.Size() }

// RepoChecksum returns the SHA-1 of the bytes written to dst.
func (p *WritePipeline) RepoChecksum() string {
	if p.same {
		return p.orig.Sum()
	}
	return p.repo.c.Sum()
}

// RepoSize returns the number of bytes written to dst.
func (p *WritePipeline) RepoSize() int64 {
	if p.same {
		return p.orig.Size()
	}
	return p.repo.c.Size()
}

// ReadPipeline is the read side of the data path (restore, archive-get):
//
//	src → decrypt → decompress → [SHA-1/size] → original
//
// Read the original bytes to io.EOF, then check Checksum/Size (or call
// Verify). Close releases pooled resources; it does not close src. The
// stored bytes are not hashed here: the readers that compare them
// (repo.StoredReader for verify) hash them below the pipeline.
type ReadPipeline struct {
	orig     Counter
	below    io.Reader // input of the decompressor (decrypted stream)
	dec      io.ReadCloser
	same     bool
	parallel bool // WriteTo hashes and writes on a second goroutine
	err      error
	closed   bool
}

// NewReadPipeline returns a pipeline that decrypts src with cipherPass (when
// not empty) and decompresses it with t.
func NewReadPipeline(src io.Reader, t CompressType, cipherPass string) (*ReadPipeline, error) {
	return newReadPipeline(src, t, cipherPass, false)
}

// newReadPipeline builds a read pipeline; raw selects the headerless format
// of block incremental sets (raw.go): encryption without the "Salted__"
// magic, gz as a bare zlib stream.
func newReadPipeline(src io.Reader, t CompressType, cipherPass string, raw bool) (*ReadPipeline, error) {
	if err := checkType(t); err != nil {
		return nil, err
	}
	p := &ReadPipeline{same: t == None && cipherPass == ""}
	r := src
	if cipherPass != "" {
		in := r
		if raw {
			in = io.MultiReader(strings.NewReader(cipherMagic), r)
		}
		d, err := NewDecryptor(in, cipherPass)
		if err != nil {
			return nil, err
		}
		r = d
	}
	p.below = r
	if raw && t == Gz {
		p.dec = &zlibReader{src: r}
		return p, nil
	}
	dec, err := NewDecompressor(r, t)
	if err != nil {
		return nil, err
	}
	p.dec = dec
	return p, nil
}

// Read returns original bytes. At the end of the stream it makes sure that
// nothing follows the compressed stream and that the encryption padding is
// valid, and returns io.EOF only then.
func (p *ReadPipeline) Read(b []byte) (int, error) {
	n, err := p.read(b)
	p.orig.Write(b[:n])
	return n, err
}

// read is Read without the hash of what it returns.
func (p *ReadPipeline) read(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	if p.closed {
		return 0, errs.New(errs.Assert, "read from a closed pipeline")
	}
	n, err := p.dec.Read(b)
	if err == io.EOF && !p.same {
		err = p.finish()
	}
	if err != nil {
		p.err = err
	}
	return n, err
}

// finish drains the stream below the decompressor: it must be at its end.
func (p *ReadPipeline) finish() error {
	var tmp [512]byte
	for {
		n, err := p.below.Read(tmp[:])
		if n > 0 {
			return errs.New(errs.Format, "unexpected data after the end of the compressed stream")
		}
		if err == io.EOF {
			return io.EOF
		}
		if err != nil {
			return err
		}
	}
}

// Close releases the decompressor. It does not close src.
func (p *ReadPipeline) Close() error {
	if !p.closed {
		p.closed = true
		p.dec.Close()
	}
	return nil
}

// Checksum returns the SHA-1 (40 lowercase hex) of the original bytes read.
func (p *ReadPipeline) Checksum() string { return p.orig.Sum() }

// Size returns the number of original bytes read.
func (p *ReadPipeline) Size() int64 { return p.orig.Size() }

// Verify checks, after io.EOF, that the original bytes have the expected
// SHA-1 and size; a mismatch is a ChecksumError naming what.
func (p *ReadPipeline) Verify(what, checksum string, size int64) error {
	if p.err != io.EOF {
		if p.err != nil {
			return p.err
		}
		return errs.New(errs.Assert, "verify of '%s' before the end of the stream", what)
	}
	if p.orig.Size() != size || p.orig.Sum() != checksum {
		return errs.New(errs.Checksum,
			"error verifying '%s': expected checksum %s and size %d but got checksum %s and size %d",
			what, checksum, size, p.orig.Sum(), p.orig.Size())
	}
	return nil
}

// copyBufSize is the read size of ReadFrom and WriteTo: large reads mean
// few system calls on files.
const copyBufSize = 256 * 1024

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// ReadFrom writes everything r returns into the pipeline (it does not Close
// the pipeline). io.Copy uses it, with a pooled buffer.
func (p *WritePipeline) ReadFrom(r io.Reader) (int64, error) {
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	buf := *bp
	var total int64
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			if _, err := p.Write(buf[:n]); err != nil {
				return total, err
			}
			total += int64(n)
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

// SetParallel makes WriteTo hash the original bytes and write them on a
// second goroutine, beside decrypting and decompressing the next ones: for
// a large file, whose one stream cannot be split between workers. Call it
// before reading.
func (p *ReadPipeline) SetParallel() { p.parallel = true }

// WriteTo writes the original bytes to w until the end of the stream. io.Copy
// uses it, with a pooled buffer.
func (p *ReadPipeline) WriteTo(w io.Writer) (int64, error) {
	if p.parallel {
		return p.writeToAsync(w)
	}
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	buf := *bp
	var total int64
	for {
		n, rerr := p.Read(buf)
		if n > 0 {
			m, err := w.Write(buf[:n])
			total += int64(m)
			if err == nil && m < n {
				err = io.ErrShortWrite
			}
			if err != nil {
				return total, err
			}
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

// writeToAsync is WriteTo with the hash and the writes on an asyncStage:
// the bytes are decompressed straight into the stage's pooled buffers.
// The hash is complete when it returns (the stage has ended).
func (p *ReadPipeline) writeToAsync(w io.Writer) (int64, error) {
	var total int64
	st := newAsyncStage(func(b []byte) error {
		p.orig.Write(b)
		m, err := w.Write(b)
		total += int64(m)
		if err == nil && m < len(b) {
			err = io.ErrShortWrite
		}
		return err
	})
	waited := false
	defer func() {
		if !waited { // a panic below: end the stage before it goes on
			st.wait()
		}
	}()
	var rerr error
	for rerr == nil {
		if rerr = st.failed(); rerr != nil {
			break
		}
		b := asyncBufPool.Get().(*[]byte)
		n, err := p.read(*b)
		rerr = err
		if n > 0 {
			st.send(b, n)
		} else {
			asyncBufPool.Put(b)
		}
	}
	waited = true
	werr := st.wait() // total and the hash are the stage's until here
	switch {
	case werr != nil:
		return total, werr
	case rerr == io.EOF:
		return total, nil
	}
	return total, rerr
}
