package repo

import (
	"context"
	"io"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/filter"
	"github.com/pgbr-dev/pgbr/internal/storage"
)

// StoredFile locates one stored backup file and says how to read it back
// and what it must read back to. Build it with Layout.StoredFile, or by
// hand for a path the manifest does not name yet (resume).
type StoredFile struct {
	Path    string // repository path: the file itself or its bundle
	Bundled bool   // read Length bytes at Offset of Path
	Offset  int64
	Length  int64

	Compress   filter.CompressType // "" is none
	CipherPass string              // the backup set's passphrase; "" = not encrypted
	Raw        bool                // raw format of 2.46+ block incremental bundles (filter/raw.go)

	// The content after decryption and decompression.
	Size     int64
	Checksum string
	// The stored bytes: RepoChecksum "" is not compared (nor hashed),
	// RepoSize < 0 is not compared.
	RepoChecksum string
	RepoSize     int64
}

// StoredFile describes f of m for a whole read: plain, bundled (raw when
// the set is a 2.46+ block incremental one), encrypted with the set's
// passphrase, compressed with the set's compress type. A block incremental
// file with a map is not one stream: its stored bytes are only checked
// against the manifest's repo checksum and size (assemble it from its map
// to check the content). checkStored also compares the stored bytes with
// the manifest's repo checksum and size when it has them (verify; it costs
// a second SHA-1 of the stored bytes).
func (l Layout) StoredFile(m *Manifest, f *ManifestFile, checkStored bool) StoredFile {
	sf := StoredFile{Path: l.StoredPath(m, f), RepoSize: -1}
	if f.BundleID != 0 {
		sf.Bundled, sf.Offset, sf.Length = true, int64(f.BundleOffset), int64(f.RepoSize)
		sf.Raw = m.Backup.BundleRaw
	}
	if !f.RepoChecksum.IsZero() && f.BlockIncrMap != 0 {
		sf.Compress, sf.Checksum, sf.Size = filter.None, f.RepoChecksum.String(), int64(f.RepoSize)
		return sf
	}
	sf.Compress, sf.CipherPass = filter.CompressType(m.Option.CompressType), m.CipherPass
	sf.Checksum, sf.Size = f.EffectiveChecksum(), int64(f.Size)
	if checkStored && !f.RepoChecksum.IsZero() {
		sf.RepoChecksum, sf.RepoSize = f.RepoChecksum.String(), int64(f.RepoSize)
	}
	return sf
}

// Open opens the stored bytes (the range of a bundled file). Errors are the
// storage's own (errors.Is(err, storage.ErrNotFound) for a missing file).
func (sf StoredFile) Open(ctx context.Context, st storage.Storage) (io.ReadCloser, error) {
	if sf.Bundled {
		return st.OpenRange(ctx, sf.Path, sf.Offset, sf.Length)
	}
	return st.Open(ctx, sf.Path)
}

// OpenStored opens a stored file for reading its content. A failing open is
// a FileOpenError "unable to open '<path>' for read: <cause>".
func OpenStored(ctx context.Context, st storage.Storage, sf StoredFile) (*StoredReader, error) {
	in, err := sf.Open(ctx, st)
	if err != nil {
		return nil, errs.Wrap(errs.FileOpen, err, "unable to open '%s' for read", st.Full(sf.Path))
	}
	r, err := NewStoredReader(in, sf, st.Full(sf.Path))
	if err != nil {
		in.Close()
		return nil, err
	}
	r.owned = in
	return r, nil
}

// storedSource counts (and hashes when asked) the stored bytes and keeps
// the storage's own read error apart from decryption and decompression
// errors.
type storedSource struct {
	r   io.Reader
	n   int64
	h   *filter.Counter // nil: not hashed
	err error
}

func (s *storedSource) Read(b []byte) (int, error) {
	n, err := s.r.Read(b)
	s.n += int64(n)
	if s.h != nil {
		s.h.Write(b[:n])
	}
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// StoredReader reads a stored file's content: the stored bytes decrypted
// and decompressed. Read it to io.EOF (or Drain it), then Verify.
type StoredReader struct {
	sf    StoredFile
	name  string // for messages (st.Full(path))
	src   storedSource
	p     *filter.ReadPipeline
	owned io.Closer
}

// NewStoredReader reads the content of sf from in, the stored bytes (from
// StoredFile.Open). name names the file in messages. Close does not close
// in.
func NewStoredReader(in io.Reader, sf StoredFile, name string) (*StoredReader, error) {
	if sf.Compress == "" {
		sf.Compress = filter.None
	}
	r := &StoredReader{sf: sf, name: name}
	r.src.r = in
	if sf.RepoChecksum != "" {
		r.src.h = filter.NewCounter()
	}
	p, err := filter.NewReadPipelineRaw(&r.src, sf.Compress, sf.CipherPass, sf.Raw)
	if err != nil {
		return nil, err
	}
	r.p = p
	return r, nil
}

// Read returns content bytes.
func (r *StoredReader) Read(b []byte) (int, error) { return r.p.Read(b) }

// SetParallel hashes and writes the content on a second goroutine in
// WriteTo (filter.ReadPipeline.SetParallel): for a large file.
func (r *StoredReader) SetParallel() { r.p.SetParallel() }

// WriteTo writes the content to w (io.Copy uses it, with the pipeline's
// pooled buffer).
func (r *StoredReader) WriteTo(w io.Writer) (int64, error) { return r.p.WriteTo(w) }

// Close releases the pipeline and closes the stored file when OpenStored
// opened it.
func (r *StoredReader) Close() error {
	r.p.Close()
	if r.owned != nil {
		err := r.owned.Close()
		r.owned = nil
		return err
	}
	return nil
}

// Size and Checksum are the content's size and SHA-1 read so far.
func (r *StoredReader) Size() int64      { return r.p.Size() }
func (r *StoredReader) Checksum() string { return r.p.Checksum() }

// StorageErr is the storage's own read error, if any.
func (r *StoredReader) StorageErr() error { return r.src.err }

// Verify checks, after io.EOF, the content's size and SHA-1: a mismatch is
// a ChecksumError "error verifying '<name>': expected checksum ... ".
func (r *StoredReader) Verify() error {
	return r.p.Verify(r.name, r.sf.Checksum, r.sf.Size)
}

// Mismatch is what Drain found wrong with a stored file.
type Mismatch int

const (
	MatchOK          Mismatch = iota
	MismatchChecksum          // stored bytes or content: another SHA-1
	MismatchSize              // stored bytes or content: another size
)

// readErr keeps a coded error, else makes it a FileReadError.
func readErr(err error) error {
	if err == nil || errs.CodeOf(err) != errs.Unknown {
		return err
	}
	return &errs.Error{Code: errs.FileRead, Msg: err.Error(), Err: err}
}

// Drain reads the rest of the file and compares it with sf: first the
// stored bytes (when RepoChecksum/RepoSize are set: a damaged stored file
// is a checksum mismatch, as pgBackRest reports it, rather than a
// decompression error), then the content. An error is a failure to read
// (storage, decryption, decompression), not a verdict.
func (r *StoredReader) Drain() (Mismatch, error) {
	_, cerr := io.Copy(io.Discard, r.p)
	if r.src.err != nil {
		return MatchOK, readErr(r.src.err)
	}
	if r.sf.RepoChecksum != "" || r.sf.RepoSize >= 0 {
		if cerr != nil {
			// Count (and hash) the rest of the stored bytes.
			io.Copy(io.Discard, &r.src)
			if r.src.err != nil {
				return MatchOK, readErr(r.src.err)
			}
		}
		if r.sf.RepoChecksum != "" && r.src.h.Sum() != r.sf.RepoChecksum {
			return MismatchChecksum, nil
		}
		if r.sf.RepoSize >= 0 && r.src.n != r.sf.RepoSize {
			return MismatchSize, nil
		}
	}
	if cerr != nil {
		return MatchOK, readErr(cerr)
	}
	if r.p.Checksum() != r.sf.Checksum {
		return MismatchChecksum, nil
	}
	if r.p.Size() != r.sf.Size {
		return MismatchSize, nil
	}
	return MatchOK, nil
}
