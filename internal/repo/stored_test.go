package repo

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/filter"
	"github.com/pgbr-dev/pgbr/internal/storage"
	"github.com/pgbr-dev/pgbr/internal/storage/posix"
)

const storedPass = "set-passphrase-for-the-stored-test"

func hexSHA1(b []byte) string {
	s := sha1.Sum(b)
	return hex.EncodeToString(s[:])
}

// encode stores plain as a backup does (or in the raw format of 2.46+
// block incremental bundles).
func encode(t *testing.T, plain []byte, ct filter.CompressType, pass string, raw bool) []byte {
	t.Helper()
	if raw {
		out, err := filter.EncodeRaw(plain, ct, filter.DefaultLevel(ct), pass)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	var b bytes.Buffer
	p, err := filter.NewWritePipeline(&b, ct, filter.DefaultLevel(ct), pass)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

type storedCase struct {
	name    string
	ct      filter.CompressType
	pass    string
	bundled bool
	raw     bool
}

// storeOne writes one file of a backup as pgbr or pgBackRest stores it and
// returns the storage, its manifest and the file entry.
func storeOne(t *testing.T, c storedCase, plain []byte) (storage.Storage, *Manifest, *ManifestFile) {
	t.Helper()
	ctx := context.Background()
	st := posix.New(t.TempDir())
	l := Layout{Stanza: "demo"}
	m := &Manifest{CipherPass: c.pass}
	m.Backup.Label = "20261125-143955F"
	m.Backup.BundleRaw = c.raw
	m.Option.CompressType = string(c.ct)
	data := encode(t, plain, c.ct, c.pass, c.raw)
	f := ManifestFile{Name: "pg_data/base/5/16390", Size: uint64(len(plain)), Checksum: HexDigest(hexSHA1(plain)),
		RepoSize: uint64(len(data)), RepoChecksum: HexDigest(hexSHA1(data))}
	if c.bundled {
		// Another file before it and one after it in the bundle.
		head := encode(t, []byte("other file"), c.ct, c.pass, c.raw)
		tail := encode(t, []byte("next file"), c.ct, c.pass, c.raw)
		f.BundleID, f.BundleOffset = 7, uint64(len(head))
		data = append(append(head, data...), tail...)
	}
	m.Files = []ManifestFile{f}
	if err := storage.WriteAll(ctx, st, l.StoredPath(m, &m.Files[0]), data); err != nil {
		t.Fatal(err)
	}
	return st, m, &m.Files[0]
}

func TestStoredReader(t *testing.T) {
	ctx := context.Background()
	l := Layout{Stanza: "demo"}
	plain := bytes.Repeat([]byte("pgbr stored file read path "), 5000)
	for _, c := range []storedCase{
		{name: "plain", ct: filter.None},
		{name: "gz", ct: filter.Gz},
		{name: "lz4+cipher", ct: filter.Lz4, pass: storedPass},
		{name: "cipher", ct: filter.None, pass: storedPass},
		{name: "bundled zst", ct: filter.Zst, bundled: true},
		{name: "bundled gz+cipher", ct: filter.Gz, pass: storedPass, bundled: true},
		{name: "raw bundle gz+cipher", ct: filter.Gz, pass: storedPass, bundled: true, raw: true},
		{name: "raw bundle lz4", ct: filter.Lz4, bundled: true, raw: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, m, f := storeOne(t, c, plain)
			sf := l.StoredFile(m, f, false)
			if sf.Bundled != c.bundled || sf.Raw != c.raw || sf.RepoChecksum != "" || sf.RepoSize != -1 {
				t.Fatalf("StoredFile = %+v", sf)
			}
			// Restore: read the content, then Verify.
			r, err := OpenStored(ctx, st, sf)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, plain) {
				t.Fatalf("read %d bytes, want the %d original bytes", len(got), len(plain))
			}
			if err := r.Verify(); err != nil {
				t.Fatal(err)
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}

			// Verify: drain, stored bytes compared too.
			drain := func(sf StoredFile) (Mismatch, error) {
				t.Helper()
				r, err := OpenStored(ctx, st, sf)
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				return r.Drain()
			}
			full := l.StoredFile(m, f, true)
			if full.RepoChecksum != f.RepoChecksum.String() || full.RepoSize != int64(f.RepoSize) {
				t.Fatalf("StoredFile with checkStored = %+v", full)
			}
			if mm, err := drain(full); mm != MatchOK || err != nil {
				t.Fatalf("drain: %v, %v", mm, err)
			}

			// The manifest expects another size or checksum.
			bad := sf
			bad.Size++
			r, err = OpenStored(ctx, st, bad)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, r)
			err = r.Verify()
			r.Close()
			want := "error verifying '" + st.Full(sf.Path) + "': expected checksum " + f.Checksum.String()
			if errs.CodeOf(err) != errs.Checksum || !strings.HasPrefix(fmtErr(err), want) {
				t.Errorf("size mismatch: %v (code %d)", err, errs.CodeOf(err))
			}
			if mm, err := drain(bad); mm != MismatchSize || err != nil {
				t.Errorf("drain, size mismatch: %v, %v", mm, err)
			}
			bad = sf
			bad.Checksum = strings.Repeat("0", 40)
			if mm, err := drain(bad); mm != MismatchChecksum || err != nil {
				t.Errorf("drain, checksum mismatch: %v, %v", mm, err)
			}
			bad = full
			bad.RepoSize++
			if mm, err := drain(bad); mm != MismatchSize || err != nil {
				t.Errorf("drain, stored size mismatch: %v, %v", mm, err)
			}
			bad = full
			bad.RepoChecksum = strings.Repeat("0", 40)
			if mm, err := drain(bad); mm != MismatchChecksum || err != nil {
				t.Errorf("drain, stored checksum mismatch: %v, %v", mm, err)
			}

			// Truncated stored bytes (a short bundle range, or the file cut).
			short := full
			if short.Bundled {
				short.Length /= 2
			} else {
				data, err := storage.ReadAll(ctx, st, sf.Path)
				if err != nil {
					t.Fatal(err)
				}
				if err := storage.WriteAll(ctx, st, sf.Path, data[:len(data)/2]); err != nil {
					t.Fatal(err)
				}
			}
			// verify: the stored bytes' checksum tells first.
			if mm, err := drain(short); mm != MismatchChecksum || err != nil {
				t.Errorf("drain, truncated: %v, %v", mm, err)
			}
			// restore: an error (decompression, decryption) or a checksum
			// error from Verify, never a success.
			short.RepoChecksum, short.RepoSize = "", -1
			r, err = OpenStored(ctx, st, short)
			if err != nil {
				t.Fatal(err)
			}
			_, cerr := io.Copy(io.Discard, r)
			verr := r.Verify()
			r.Close()
			if cerr == nil && verr == nil {
				t.Errorf("truncated file read back without an error")
			}
			if cerr == nil && errs.CodeOf(verr) != errs.Checksum {
				t.Errorf("truncated: Verify %v (code %d), want a ChecksumError", verr, errs.CodeOf(verr))
			}
			if cerr != nil && errs.CodeOf(cerr) == errs.Unknown && !errors.Is(cerr, io.ErrUnexpectedEOF) {
				t.Errorf("truncated: read error without a code: %v", cerr)
			}
		})
	}
}

func TestStoredReaderErrors(t *testing.T) {
	ctx := context.Background()
	l := Layout{Stanza: "demo"}
	plain := []byte("some content")
	st, m, f := storeOne(t, storedCase{ct: filter.Gz, pass: storedPass}, plain)

	// Missing file: FileOpenError naming it, still a storage.ErrNotFound.
	missing := l.StoredFile(m, f, false)
	missing.Path += ".gone"
	_, err := OpenStored(ctx, st, missing)
	if errs.CodeOf(err) != errs.FileOpen || !errors.Is(err, storage.ErrNotFound) ||
		!strings.HasPrefix(fmtErr(err), "unable to open '"+st.Full(missing.Path)+"' for read: ") {
		t.Errorf("missing: %v (code %d)", err, errs.CodeOf(err))
	}
	if _, err := missing.Open(ctx, st); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Open of a missing file: %v", err)
	}

	// Wrong passphrase: a read error with pgBackRest's code, not a verdict.
	sf := l.StoredFile(m, f, true)
	sf.CipherPass = "another passphrase"
	r, err := OpenStored(ctx, st, sf)
	if err == nil {
		_, err = io.ReadAll(r)
		r.Close()
	}
	if err == nil || errs.CodeOf(err) == errs.Unknown {
		t.Errorf("wrong passphrase: %v (code %d)", err, errs.CodeOf(err))
	}

	// A storage read failure is kept apart (StorageErr) and returned by
	// Drain with a code.
	data, err := storage.ReadAll(ctx, st, sf.Path)
	if err != nil {
		t.Fatal(err)
	}
	sf = l.StoredFile(m, f, true)
	in := io.MultiReader(bytes.NewReader(data[:10]), errReader{})
	r, err = NewStoredReader(in, sf, "stored file")
	if err != nil {
		t.Fatal(err)
	}
	mm, err := r.Drain()
	if mm != MatchOK || errs.CodeOf(err) != errs.FileRead || !strings.Contains(fmtErr(err), "connection reset") ||
		r.StorageErr() == nil {
		t.Errorf("storage error: %v, %v (code %d)", mm, err, errs.CodeOf(err))
	}
	r.Close()

	// Block incremental with a map: the stored bytes are compared as they
	// are (no decompression, no decryption).
	bi := ManifestFile{Name: "pg_data/base/5/16391", Size: 1 << 20, Checksum: HexDigest(strings.Repeat("a", 40)),
		RepoSize: 100, RepoChecksum: HexDigest(strings.Repeat("b", 40)), BlockIncr: 1, BlockIncrMap: 40}
	sf = l.StoredFile(m, &bi, true)
	if sf.Compress != filter.None || sf.CipherPass != "" || sf.Checksum != bi.RepoChecksum.String() || sf.Size != 100 ||
		sf.Path != l.BlockIncrFile(m.Backup.Label, bi.Name) {
		t.Errorf("block incremental StoredFile = %+v", sf)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset by peer") }

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
