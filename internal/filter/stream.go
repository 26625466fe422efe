package filter

import (
	"bufio"
	"io"

	"github.com/pgbr-dev/pgbr/internal/errs"
)

// StreamWriter is the write side of the data path without its checksums:
//
//	original → compress → encrypt → dst
//
// for callers that already know the checksum of what they write
// (archive-push hashes a segment first: the checksum is part of the
// archive file's name). WritePipeline hashes the original and the stored
// bytes on the way; on a 16 MiB WAL segment those two SHA-1 passes cost
// more than the compression.
type StreamWriter struct {
	bw     *bufio.Writer
	comp   io.WriteCloser // nil for none
	enc    io.WriteCloser // nil without encryption
	head   io.Writer
	err    error
	closed bool
}

// NewStreamWriter returns a writer that compresses with t at level (as
// NewCompressor) on up to conc goroutines where the format allows it (lz4's
// independent blocks) and, when cipherPass is not empty, encrypts with it.
// The stored bytes are those NewWritePipeline writes. Close flushes
// everything into dst but does not close dst.
func NewStreamWriter(dst io.Writer, t CompressType, level int, cipherPass string, conc int) (*StreamWriter, error) {
	if err := checkType(t); err != nil {
		return nil, err
	}
	if err := checkLevel(t, level); err != nil {
		return nil, err
	}
	s := &StreamWriter{}
	s.bw = bufWriterPool.Get().(*bufio.Writer)
	s.bw.Reset(dst)
	var w io.Writer = s.bw
	if cipherPass != "" {
		enc, err := NewEncryptor(w, cipherPass)
		if err != nil {
			s.release()
			return nil, err
		}
		s.enc = enc
		w = enc
	}
	if t != None {
		comp, err := newCompressor(w, t, level, max(conc, 1))
		if err != nil {
			s.release()
			return nil, err
		}
		s.comp = comp
		w = comp
	}
	s.head = w
	return s, nil
}

func (s *StreamWriter) release() {
	if s.bw != nil {
		s.bw.Reset(nil)
		bufWriterPool.Put(s.bw)
		s.bw = nil
	}
}

// Write passes original bytes into the stream.
func (s *StreamWriter) Write(b []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.closed {
		return 0, errs.New(errs.Assert, "write to a closed stream")
	}
	n, err := s.head.Write(b)
	if err != nil {
		s.err = err
	}
	return n, err
}

// Close ends the compressed and encrypted streams and flushes them into
// dst. It must be called also after a failed Write, to release pooled
// resources.
func (s *StreamWriter) Close() error {
	if s.closed {
		return s.err
	}
	s.closed = true
	if s.comp != nil {
		if err := s.comp.Close(); err != nil && s.err == nil {
			s.err = err
		}
	}
	if s.enc != nil && s.err == nil {
		if err := s.enc.Close(); err != nil {
			s.err = err
		}
	}
	if s.err == nil {
		if err := s.bw.Flush(); err != nil {
			s.err = err
		}
	}
	s.release()
	return s.err
}
