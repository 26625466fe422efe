// Package filter holds the stream filters of the data path — compression
// (gz, bz2, lz4, zst), OpenSSL-compatible aes-256-cbc encryption, SHA-1 and
// size counting — and their composition into the pipelines used by backup,
// restore, archive-push and archive-get (WritePipeline, ReadPipeline).
//
// Encoders and decoders are pooled: a compressor or decompressor returns its
// codec to the pool on Close, so always Close them (also after errors).
package filter

import (
	"bufio"
	"io"
	"strings"
	"sync"

	dbzip2 "github.com/dsnet/compress/bzip2"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"

	"github.com/pgbr-dev/pgbr/internal/errs"
)

// CompressType is a repository compression type (compress-type option).
type CompressType string

// Compression types. Xz is recognised in file names only: there is no codec.
const (
	None CompressType = "none"
	Gz   CompressType = "gz"
	Bz2  CompressType = "bz2"
	Lz4  CompressType = "lz4"
	Zst  CompressType = "zst"
	Xz   CompressType = "xz"
)

// BufferSize is the size of the I/O buffers of the filters.
const BufferSize = 64 * 1024

// ParseCompressType parses a compress-type option value.
func ParseCompressType(s string) (CompressType, error) {
	switch t := CompressType(s); t {
	case None, Gz, Bz2, Lz4, Zst:
		return t, nil
	}
	return "", errs.New(errs.OptionInvalidValue,
		"'%s' is not allowed for 'compress-type' option\nHINT: allowed values are none, bz2, gz, lz4, zst", s)
}

// Ext returns the file name extension of the type, with its dot ("" for none).
func (t CompressType) Ext() string {
	switch t {
	case Gz, Bz2, Lz4, Zst, Xz:
		return "." + string(t)
	}
	return ""
}

// CompressTypeFromName returns the compression type of a repository file name
// from its extension (.gz, .bz2, .lz4, .zst, .xz), or None.
func CompressTypeFromName(name string) CompressType {
	for _, t := range [...]CompressType{Gz, Bz2, Lz4, Zst, Xz} {
		if strings.HasSuffix(name, t.Ext()) {
			return t
		}
	}
	return None
}

// compressLevels is pgBackRest 2.45's compress-level default and range per
// compression type: the one table, used by the codecs here and by the
// configuration (internal/config sets the default and checks the range).
var compressLevels = map[CompressType]struct{ dflt, lo, hi int }{
	Gz:  {6, -1, 9},
	Bz2: {9, 1, 9},
	Lz4: {1, -5, 12},
	Zst: {3, -7, 22},
}

// Levels returns pgBackRest's default compress-level and the allowed range
// for the type; ok is false for a type without levels (none, xz, unknown).
func Levels(t CompressType) (dflt, lo, hi int, ok bool) {
	l, ok := compressLevels[t]
	return l.dflt, l.lo, l.hi, ok
}

// DefaultLevel returns pgBackRest's default compress-level for the type.
func DefaultLevel(t CompressType) int {
	d, _, _, _ := Levels(t)
	return d
}

// LevelRange returns the compress-level range pgBackRest 2.45 allows.
func LevelRange(t CompressType) (lo, hi int) {
	_, lo, hi, _ = Levels(t)
	return lo, hi
}

func checkType(t CompressType) error {
	switch t {
	case None, Gz, Bz2, Lz4, Zst:
		return nil
	case Xz:
		return errs.New(errs.FeatureNotSupported,
			"compress type 'xz' is not supported\nHINT: pgBackRest recognises .xz files but has no xz codec")
	}
	return errs.New(errs.Assert, "invalid compress type '%s'", string(t))
}

func checkLevel(t CompressType, level int) error {
	if t == None {
		return nil
	}
	lo, hi := LevelRange(t)
	if level < lo || level > hi {
		return errs.New(errs.OptionInvalidValue,
			"'%d' is out of range for 'compress-level' option with compress-type '%s' (allowed %d to %d)",
			level, string(t), lo, hi)
	}
	return nil
}

// ---------------------------------------------------------------------------
// Level mappings.
//
// zst frames are written with the optional content checksum (pgBackRest
// writes none; both are standard and every decoder, 2.45's too, accepts and
// verifies it), so corruption is caught in the decoder as well.
//
// zst: pgBackRest levels -7..22 map to klauspost's four encoder levels as
// zstd.EncoderLevelFromZstd does: < 3 → SpeedFastest (≈ zstd 1), 3..5 →
// SpeedDefault (≈ zstd 3), 6..9 → SpeedBetterCompression (≈ zstd 7),
// 10..22 → SpeedBestCompression (≈ zstd 11).
//
// lz4: like liblz4's frame API, levels < 3 use the fast compressor (negative
// levels, an "acceleration" in liblz4, also map to it) and 3..12 use the high
// compression compressor: 3 → Level1 … 11 and 12 → Level9 of pierrec/lz4.
//
// gz and bz2 levels are used as they are.

func lz4Level(level int) lz4.CompressionLevel {
	if level < 3 {
		return lz4.Fast
	}
	hc := [...]lz4.CompressionLevel{lz4.Level1, lz4.Level2, lz4.Level3, lz4.Level4, lz4.Level5,
		lz4.Level6, lz4.Level7, lz4.Level8, lz4.Level9}
	i := level - 3
	if i >= len(hc) {
		i = len(hc) - 1
	}
	return hc[i]
}

func zstdLevel(level int) zstd.EncoderLevel { return zstd.EncoderLevelFromZstd(level) }

// ---------------------------------------------------------------------------
// Pools. Each key (type and effective level) has its own pool of encoders.

type poolKey struct {
	t     CompressType
	level int
	conc  int // goroutines compressing one stream (1: the caller's only; 0: a chunk's, chunkPool)
}

var encPools sync.Map // poolKey → *sync.Pool

func encPool(k poolKey) *sync.Pool {
	if p, ok := encPools.Load(k); ok {
		return p.(*sync.Pool)
	}
	p, _ := encPools.LoadOrStore(k, &sync.Pool{})
	return p.(*sync.Pool)
}

func newEncoder(w io.Writer, t CompressType, level, conc int) (io.WriteCloser, poolKey, error) {
	conc = max(conc, 1)
	if conc > 1 && (t == Gz || t == Zst || t == Lz4) {
		// A large input: chunks compressed on conc goroutines.
		return newParEncoder(w, t, level, conc)
	}
	switch t {
	case Gz:
		k := poolKey{Gz, level, 1}
		if v := encPool(k).Get(); v != nil {
			g := v.(*gzip.Writer)
			g.Reset(w)
			g.OS = 3
			return g, k, nil
		}
		g, err := gzip.NewWriterLevel(w, level)
		if err != nil {
			return nil, k, errs.Wrap(errs.Assert, err, "unable to create gz compressor")
		}
		g.OS = 3
		return g, k, nil
	case Bz2:
		k := poolKey{Bz2, level, 1}
		if v := encPool(k).Get(); v != nil {
			b := v.(*dbzip2.Writer)
			if err := b.Reset(w); err == nil {
				return b, k, nil
			}
		}
		b, err := dbzip2.NewWriter(w, &dbzip2.WriterConfig{Level: level})
		if err != nil {
			return nil, k, errs.Wrap(errs.Assert, err, "unable to create bz2 compressor")
		}
		return b, k, nil
	case Lz4:
		l := lz4Level(level)
		// One goroutine for a stream: pierrec/lz4's concurrent writer hands
		// every 64 KiB block to a goroutine of its own and writes them in
		// order on another; on two cores those handoffs cost more than the
		// compression they spread (a 820 MB relation: 1.18 s on two
		// goroutines against 0.94-1.04 s with the compression on one,
		// beside the caller's reading and SHA-1). A large input goes to
		// parLz4 instead, which hands over 1 MiB at a time.
		k := poolKey{Lz4, int(l), 1}
		if v := encPool(k).Get(); v != nil {
			z := v.(*lz4.Writer)
			z.Reset(w)
			return z, k, nil
		}
		z := lz4.NewWriter(w)
		if err := z.Apply(lz4.BlockSizeOption(lz4.Block64Kb), lz4.ChecksumOption(true),
			lz4.BlockChecksumOption(false), lz4.CompressionLevelOption(l)); err != nil {
			return nil, k, errs.Wrap(errs.Assert, err, "unable to create lz4 compressor")
		}
		return z, k, nil
	case Zst:
		l := zstdLevel(level)
		// One goroutine: the streaming encoder's own concurrency gains
		// nothing on one stream (measured).
		k := poolKey{Zst, int(l), 1}
		if v := encPool(k).Get(); v != nil {
			z := v.(*zstd.Encoder)
			z.Reset(w)
			return z, k, nil
		}
		z, err := zstd.NewWriter(w, zstd.WithEncoderLevel(l), zstd.WithEncoderConcurrency(1),
			zstd.WithEncoderCRC(true), zstd.WithZeroFrames(true))
		if err != nil {
			return nil, k, errs.Wrap(errs.Assert, err, "unable to create zst compressor")
		}
		return z, k, nil
	}
	return nil, poolKey{}, checkType(t)
}

// compressor wraps a pooled encoder. Close flushes the stream and returns the
// encoder to its pool; it never closes the destination.
type compressor struct {
	enc io.WriteCloser
	key poolKey
	err error
}

var errClosed = errs.New(errs.Assert, "write to a closed compressor")

func (c *compressor) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.enc.Write(p)
	if err != nil {
		c.err = err
	}
	return n, err
}

func (c *compressor) Close() error {
	if c.enc != nil {
		err := c.enc.Close()
		if err == nil && c.err == nil {
			encPool(c.key).Put(c.enc) // only a healthy encoder goes back
		}
		c.enc = nil
		if c.err == nil {
			c.err = err
		}
		if c.err == nil {
			c.err = errClosed
		}
	}
	if c.err == errClosed {
		return nil
	}
	return c.err
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// NewCompressor returns a writer that compresses into w with type t at level
// (pgBackRest's compress-level; see the mappings above). Type none passes the
// bytes through. Close flushes the stream but does not close w.
func NewCompressor(w io.Writer, t CompressType, level int) (io.WriteCloser, error) {
	return newCompressor(w, t, level, 1)
}

// newCompressor is NewCompressor with conc goroutines compressing where the
// format allows it (gz's chunks: parGzip, lz4's and zst's frames: parLz4,
// parZstd).
func newCompressor(w io.Writer, t CompressType, level, conc int) (io.WriteCloser, error) {
	if err := checkType(t); err != nil {
		return nil, err
	}
	if t == None {
		return nopWriteCloser{w}, nil
	}
	if err := checkLevel(t, level); err != nil {
		return nil, err
	}
	enc, k, err := newEncoder(w, t, level, conc)
	if err != nil {
		return nil, err
	}
	return &compressor{enc: enc, key: k}, nil
}

// ---------------------------------------------------------------------------
// Decompression.

// zstdMaxWindow is the largest zstd window accepted, the libzstd default
// limit (ZSTD_WINDOWLOG_LIMIT_DEFAULT = 27) that pgBackRest also has.
const zstdMaxWindow = 1 << 27

var (
	bufReaderPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, BufferSize) }}
	gzReaderPool  sync.Pool
	lz4ReaderPool sync.Pool
	zstReaderPool sync.Pool
	bz2ReaderPool sync.Pool
)

// decompressor reads the decoded stream. Close returns the decoder and its
// buffer to their pools; it does not close the source.
type decompressor struct {
	dec   io.Reader
	br    *bufio.Reader
	t     CompressType
	err   error
	close func()
}

func (d *decompressor) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	if d.dec == nil {
		if err := d.start(); err != nil {
			d.err = err
			return 0, err
		}
	}
	n, err := d.dec.Read(p)
	if err != nil {
		if err != io.EOF {
			err = decodeError(d.t, err)
		}
		d.err = err
	}
	return n, err
}

// start creates the decoder at the first Read, so that NewDecompressor does
// no I/O.
func (d *decompressor) start() error {
	// A compressed stream is never empty, not even for empty data.
	if _, err := d.br.Peek(1); err != nil {
		if err == io.EOF {
			return errs.New(errs.Format, "unable to decompress %s data: stream is empty", string(d.t))
		}
		return err
	}
	switch d.t {
	case Gz:
		var g *gzip.Reader
		if v := gzReaderPool.Get(); v != nil {
			g = v.(*gzip.Reader)
			d.close = func() { gzReaderPool.Put(g) }
			if err := g.Reset(d.br); err != nil {
				return decodeError(d.t, err)
			}
		} else {
			var err error
			if g, err = gzip.NewReader(d.br); err != nil {
				return decodeError(d.t, err)
			}
			d.close = func() { gzReaderPool.Put(g) }
		}
		g.Multistream(true)
		d.dec = g
	case Bz2:
		var z *dbzip2.Reader
		if v := bz2ReaderPool.Get(); v != nil {
			z = v.(*dbzip2.Reader)
			if err := z.Reset(d.br); err != nil {
				return decodeError(d.t, err)
			}
		} else {
			var err error
			if z, err = dbzip2.NewReader(d.br, nil); err != nil {
				return decodeError(d.t, err)
			}
		}
		d.dec = z
		// dsnet's Reset keeps the run-length decoder's pending output: a
		// reader left in the middle of a stream (a WAL header read) would
		// hand its leftovers to the next stream. Pool only finished ones.
		d.close = func() {
			if d.err == io.EOF {
				bz2ReaderPool.Put(z)
			}
		}
	case Lz4:
		var z *lz4.Reader
		if v := lz4ReaderPool.Get(); v != nil {
			z = v.(*lz4.Reader)
			z.Reset(d.br)
		} else {
			z = lz4.NewReader(d.br)
			if err := z.Apply(lz4.ConcurrencyOption(1)); err != nil {
				return errs.Wrap(errs.Assert, err, "unable to create lz4 decompressor")
			}
		}
		d.dec = z
		d.close = func() { z.Reset(nil); lz4ReaderPool.Put(z) }
	case Zst:
		var z *zstd.Decoder
		if v := zstReaderPool.Get(); v != nil {
			z = v.(*zstd.Decoder)
			d.close = func() { _ = z.Reset(nil); zstReaderPool.Put(z) }
			if err := z.Reset(d.br); err != nil {
				return decodeError(d.t, err)
			}
		} else {
			var err error
			z, err = zstd.NewReader(d.br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(zstdMaxWindow))
			if err != nil {
				return decodeError(d.t, err)
			}
			d.close = func() { _ = z.Reset(nil); zstReaderPool.Put(z) }
		}
		d.dec = z
	}
	return nil
}

// decodeError turns a codec error into a FormatError with a clear message,
// keeping errors that already carry a code (e.g. a read error of the source).
func decodeError(t CompressType, err error) error {
	if errs.CodeOf(err) != errs.Unknown {
		return err
	}
	if err == io.ErrUnexpectedEOF {
		return errs.Wrap(errs.Format, err, "unable to decompress %s data: stream is truncated", string(t))
	}
	return errs.Wrap(errs.Format, err, "unable to decompress %s data", string(t))
}

func (d *decompressor) Close() error {
	if d.close != nil {
		d.close()
		d.close = nil
	}
	if d.br != nil {
		d.br.Reset(nil)
		bufReaderPool.Put(d.br)
		d.br = nil
	}
	if d.err == nil || d.err == io.EOF {
		d.err = errClosedDecompressor
	}
	return nil
}

// errClosedDecompressor is made once: every decompressor closes.
var errClosedDecompressor = errs.New(errs.Assert, "read from a closed decompressor")

type nopReadCloser struct{ io.Reader }

func (nopReadCloser) Close() error { return nil }

// NewDecompressor returns a reader of the data decoded from r, compressed
// with type t. Concatenated gz, bz2, lz4 and zst streams are decoded as one.
// A corrupt or truncated stream gives a FormatError. Close does not close r.
func NewDecompressor(r io.Reader, t CompressType) (io.ReadCloser, error) {
	if err := checkType(t); err != nil {
		return nil, err
	}
	if t == None {
		return nopReadCloser{r}, nil
	}
	br := bufReaderPool.Get().(*bufio.Reader)
	br.Reset(r)
	return &decompressor{br: br, t: t}, nil
}
