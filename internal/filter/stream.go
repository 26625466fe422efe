package filter

import (
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
	stages
	err    error
	closed bool
}

// NewStreamWriter returns a writer that compresses with t at level (as
// NewCompressor) on up to conc goroutines where the format allows it (gz's
// chunks, zst's frames; lz4 on one) and, when cipherPass is not
// empty, encrypts with it. The stored bytes are those NewWritePipeline
// writes (at conc 1; above, those of NewParallelWritePipeline). Close flushes
// everything into dst but does not close dst.
func NewStreamWriter(dst io.Writer, t CompressType, level int, cipherPass string, conc int) (*StreamWriter, error) {
	s := &StreamWriter{}
	if err := s.stages.init(dst, t, level, cipherPass, max(conc, 1), nil); err != nil {
		return nil, err
	}
	return s, nil
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
	s.err = s.stages.close(s.err)
	return s.err
}
