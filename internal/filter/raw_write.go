package filter

import (
	"bytes"

	"github.com/klauspost/compress/zlib"
	"github.com/pierrec/lz4/v4"

	"github.com/pgbr-dev/pgbr/internal/errs"
)

// EncodeRaw compresses (level) and encrypts (when cipherPass is set) data
// as one object in the raw format (see raw.go): what a block incremental
// backup writes for a super block, a block map (t None) or a file in a
// bundle of a block incremental backup set.
func EncodeRaw(data []byte, t CompressType, level int, cipherPass string) ([]byte, error) {
	if err := checkType(t); err != nil {
		return nil, err
	}
	out := data
	if t != None {
		if err := checkLevel(t, level); err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		buf.Grow(len(data)/2 + 64)
		switch t {
		case Gz:
			z, err := zlib.NewWriterLevel(&buf, level)
			if err != nil {
				return nil, errs.Wrap(errs.Assert, err, "unable to create zlib compressor")
			}
			z.Write(data)
			if err := z.Close(); err != nil {
				return nil, errs.Wrap(errs.Assert, err, "unable to compress")
			}
		case Lz4:
			z := lz4.NewWriter(&buf)
			if err := z.Apply(lz4.BlockSizeOption(lz4.Block64Kb), lz4.ChecksumOption(false),
				lz4.BlockChecksumOption(false), lz4.ConcurrencyOption(1), lz4.CompressionLevelOption(lz4Level(level))); err != nil {
				return nil, errs.Wrap(errs.Assert, err, "unable to create lz4 compressor")
			}
			z.Write(data)
			if err := z.Close(); err != nil {
				return nil, errs.Wrap(errs.Assert, err, "unable to compress")
			}
		default:
			c, err := NewCompressor(&buf, t, level)
			if err != nil {
				return nil, err
			}
			if _, err := c.Write(data); err != nil {
				c.Close()
				return nil, err
			}
			if err := c.Close(); err != nil {
				return nil, err
			}
		}
		out = buf.Bytes()
	}
	if cipherPass != "" {
		enc, err := EncryptBytes(out, cipherPass)
		if err != nil {
			return nil, err
		}
		out = enc[len(cipherMagic):]
	}
	return out, nil
}
