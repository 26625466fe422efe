package filter

import (
	"bytes"
	"io"

	"github.com/klauspost/compress/zlib"

	"github.com/pgbr-dev/pgbr/internal/errs"
)

// Raw format (docs/block-incremental.md): pgBackRest 2.46+ stores the files
// of a bundle of a block incremental backup set ("backup-bundle-raw") and
// every super block of a block incremental file without the headers that
// make a stream self-describing, to save space:
//
//   - encryption: the 8-byte salt directly, without the "Salted__" magic;
//   - gz: a zlib stream (2-byte header, adler32 trailer) instead of gzip;
//   - lz4: a frame without content checksum (readable as any frame);
//   - zst, bz2: unchanged (they have no raw variant).

// NewReadPipelineRaw is NewReadPipeline for data stored in the raw format
// when raw is true.
func NewReadPipelineRaw(src io.Reader, t CompressType, cipherPass string, raw bool) (*ReadPipeline, error) {
	return newReadPipeline(src, t, cipherPass, raw)
}

// zlibReader decodes one zlib stream (raw gz), created at the first Read.
type zlibReader struct {
	src io.Reader
	z   io.ReadCloser
	err error
}

func (z *zlibReader) Read(p []byte) (int, error) {
	if z.err != nil {
		return 0, z.err
	}
	if z.z == nil {
		r, err := zlib.NewReader(z.src)
		if err != nil {
			if err == io.EOF {
				err = errs.New(errs.Format, "unable to decompress gz data: stream is empty")
			} else {
				err = decodeError(Gz, err)
			}
			z.err = err
			return 0, err
		}
		z.z = r
	}
	n, err := z.z.Read(p)
	if err != nil {
		if err != io.EOF {
			err = decodeError(Gz, err)
		}
		z.err = err
	}
	return n, err
}

func (z *zlibReader) Close() error {
	if z.z != nil {
		z.z.Close()
	}
	if z.err == nil || z.err == io.EOF {
		z.err = errs.New(errs.Assert, "read from a closed decompressor")
	}
	return nil
}

// DecodeRaw decrypts and decompresses one object stored in the raw format
// (a super block of a block incremental file), which must decode to exactly
// size bytes. It returns a FormatError or CryptoError for bad data.
func DecodeRaw(data []byte, t CompressType, cipherPass string, size int) ([]byte, error) {
	p, err := NewReadPipelineRaw(bytes.NewReader(data), t, cipherPass, true)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	out := make([]byte, size)
	n, err := io.ReadFull(p, out)
	if err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, errs.New(errs.Format, "super block decodes to %d bytes, expected %d", n, size)
		}
		return nil, err
	}
	var one [1]byte
	m, err := p.Read(one[:])
	if m > 0 {
		return nil, errs.New(errs.Format, "super block decodes to more than the expected %d bytes", size)
	}
	if err != io.EOF {
		if err == nil {
			// Read returned nothing without an end: drain once more.
			if _, err = io.ReadFull(p, one[:]); err == io.EOF {
				return out, nil
			}
			return nil, errs.New(errs.Format, "super block decodes to more than the expected %d bytes", size)
		}
		return nil, err
	}
	return out, nil
}

// DecryptRaw decrypts data encrypted in the raw format (salt without the
// "Salted__" magic), e.g. a block map.
func DecryptRaw(data []byte, cipherPass string) ([]byte, error) {
	b := make([]byte, 0, len(cipherMagic)+len(data))
	b = append(append(b, cipherMagic...), data...)
	return DecryptBytes(b, cipherPass)
}
