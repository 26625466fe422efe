package repo

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/filter"
	"github.com/pgbr-dev/pgbr/internal/storage"
)

// CopyExt is the extension of the second copy of every info file.
const CopyExt = ".copy"

// Info file names.
const (
	ArchiveInfoName  = "archive.info"
	BackupInfoName   = "backup.info"
	ManifestName     = "backup.manifest"
	archiveInfoHints = "\nHINT: archive.info cannot be opened but is required to push/get WAL segments." +
		"\nHINT: is archive_command configured correctly in postgresql.conf?" +
		"\nHINT: has a stanza-create been performed?" +
		"\nHINT: use --no-archive-check to disable archive checks during backup if you have an alternate archiving scheme."
	backupInfoHints = "\nHINT: backup.info cannot be opened and is required to perform a backup." +
		"\nHINT: has a stanza-create been performed?"
)

// ArchiveInfoPath returns archive/<stanza>/archive.info.
func ArchiveInfoPath(stanza string) string { return Layout{stanza}.ArchiveInfo() }

// BackupInfoPath returns backup/<stanza>/backup.info.
func BackupInfoPath(stanza string) string { return Layout{stanza}.BackupInfo() }

// BackupManifestPath returns backup/<stanza>/<label>/backup.manifest.
func BackupManifestPath(stanza, label string) string {
	return Layout{stanza}.Manifest(label)
}

// readOrStream reads one attempt: into memory and then parse, or, for a
// large local file when stream is set, to stream as it is read (and read
// again: each open starts from the beginning, decrypting). Failures map to
// pgBackRest's error types.
func readOrStream(ctx context.Context, st storage.Storage, path, cipherPass string, parse func([]byte) error,
	stream func(open func() (io.Reader, error)) error) error {
	r, err := st.Open(ctx, path)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return &errs.Error{Code: errs.FileMissing,
				Msg: "unable to open missing file '" + st.Full(path) + "' for read", Err: err}
		}
		if errs.CodeOf(err) != errs.Unknown {
			return err
		}
		return &errs.Error{Code: errs.FileOpen, Msg: err.Error(), Err: err}
	}
	readErr := func(err error) error {
		if errs.CodeOf(err) != errs.Unknown {
			return err
		}
		return errs.Wrap(errs.FileRead, err, "unable to read file '%s'", st.Full(path))
	}
	if stream != nil && streamable(r) >= streamMin {
		defer r.Close()
		seeker := r.(io.Seeker)
		var readFail error
		err := stream(func() (io.Reader, error) {
			if _, err := seeker.Seek(0, io.SeekStart); err != nil {
				return nil, readErr(err)
			}
			var in io.Reader = failNoting{r, &readFail}
			if cipherPass != "" {
				return filter.NewDecryptor(in, cipherPass)
			}
			return in, nil
		})
		if readFail != nil && errs.CodeOf(err) == errs.Unknown {
			return readErr(readFail)
		}
		return err
	}
	data, err := readAllSized(r)
	r.Close()
	if err != nil {
		return readErr(err)
	}
	if cipherPass == "" {
		return parse(data)
	}
	// Info files and manifests are whole OpenSSL aes-256-cbc files (format
	// spec §5).
	plain, err := filter.DecryptBytes(data, cipherPass)
	if err != nil {
		if errs.CodeOf(err) == errs.Crypto {
			return err
		}
		return errs.Wrap(errs.Crypto, err, "unable to decrypt '%s'", st.Full(path))
	}
	return parse(plain)
}

// failNoting notes the first error of reading r.
type failNoting struct {
	r   io.Reader
	err *error
}

func (f failNoting) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err != nil && err != io.EOF && *f.err == nil {
		*f.err = err
	}
	return n, err
}

// loadWithCopy tries path, then path.copy; parse runs on each attempt's
// bytes and its failure counts as a failed attempt. When both fail the
// error lists both causes (§2.6).
func loadWithCopy(ctx context.Context, st storage.Storage, path, cipherPass, what string,
	parse func([]byte) error, stream func(open func() (io.Reader, error)) error) error {
	_, err := loadWithCopyFrom(ctx, st, path, cipherPass, what, parse, stream)
	return err
}

// loadWithCopyFrom is loadWithCopy that also returns the path that loaded.
func loadWithCopyFrom(ctx context.Context, st storage.Storage, path, cipherPass, what string,
	parse func([]byte) error, stream func(open func() (io.Reader, error)) error) (string, error) {
	var attempts [2]error
	for i, p := range []string{path, path + CopyExt} {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		err := readOrStream(ctx, st, p, cipherPass, parse, stream)
		if err == nil {
			return p, nil
		}
		attempts[i] = err
		if c := errs.CodeOf(err); i == 0 && (c == errs.Service || c == errs.Access) {
			// The storage itself refuses (credentials, denial, service
			// down): the copy lives in the same storage, so report the
			// cause at once instead of failing twice.
			return "", err
		}
	}
	full := st.Full(path)
	code := errs.CodeOf(attempts[0])
	if c := errs.CodeOf(attempts[1]); c != code {
		if code == errs.FileMissing {
			code = c
		} else if c != errs.FileMissing {
			code = errs.FileOpen
		}
	}
	msg := "unable to load " + what + " '" + full + "' or '" + full + CopyExt + "':"
	for _, e := range attempts {
		msg += "\n" + errs.CodeOf(e).Name() + ": " + e.Error()
	}
	return "", &errs.Error{Code: code, Msg: msg, Err: errors.Join(attempts[0], attempts[1])}
}

// LoadInfoFile loads and verifies any info file (checksum, format), trying
// path then path.copy. cipherPass "" means the file is not encrypted.
func LoadInfoFile(ctx context.Context, st storage.Storage, path, cipherPass string) (*Ini, error) {
	var ini *Ini
	err := loadWithCopy(ctx, st, path, cipherPass, "info file", func(b []byte) error {
		var err error
		ini, err = ParseIni(b)
		return err
	}, nil)
	return ini, err
}

// withHints appends hint lines to a load error, keeping its code.
func withHints(err error, hints string) error {
	var e *errs.Error
	if errors.As(err, &e) {
		return &errs.Error{Code: e.Code, Msg: e.Msg + hints, Err: e.Err}
	}
	return err
}

// LoadArchiveInfo loads archive/<stanza>/archive.info (or its copy).
// cipherPass is the repository passphrase ("" = not encrypted).
func LoadArchiveInfo(ctx context.Context, st storage.Storage, stanza, cipherPass string) (*ArchiveInfo, error) {
	var a *ArchiveInfo
	err := loadWithCopy(ctx, st, ArchiveInfoPath(stanza), cipherPass, "info file", func(b []byte) error {
		var err error
		a, err = ParseArchiveInfo(b)
		return err
	}, nil)
	if err != nil {
		return nil, withHints(err, archiveInfoHints)
	}
	return a, nil
}

// LoadBackupInfo loads backup/<stanza>/backup.info (or its copy).
// cipherPass is the repository passphrase ("" = not encrypted).
func LoadBackupInfo(ctx context.Context, st storage.Storage, stanza, cipherPass string) (*BackupInfo, error) {
	var b *BackupInfo
	err := loadWithCopy(ctx, st, BackupInfoPath(stanza), cipherPass, "info file", func(data []byte) error {
		var err error
		b, err = ParseBackupInfo(data)
		return err
	}, nil)
	if err != nil {
		return nil, withHints(err, backupInfoHints)
	}
	return b, nil
}

// LoadManifest loads backup/<stanza>/<label>/backup.manifest (or its copy).
// cipherPass is the backup.info sub-passphrase ("" = not encrypted).
func LoadManifest(ctx context.Context, st storage.Storage, stanza, label, cipherPass string) (*Manifest, error) {
	return LoadManifestFile(ctx, st, BackupManifestPath(stanza, label), cipherPass)
}

// LoadManifestFile loads a manifest from any path (or its copy).
func LoadManifestFile(ctx context.Context, st storage.Storage, path, cipherPass string) (*Manifest, error) {
	var m *Manifest
	err := loadWithCopy(ctx, st, path, cipherPass, "backup manifest file", func(data []byte) error {
		var err error
		m, err = parseManifestOwned(data) // data is this call's own
		return err
	}, func(open func() (io.Reader, error)) error {
		var err error
		m, err = ParseManifestFrom(open)
		return err
	})
	return m, err
}

// streamMin is the size from which a manifest in a local file is parsed
// as it is read, twice, rather than read whole (about 25k files).
const streamMin = 4 << 20

// streamable returns r's size when it can be read again from its start (a
// local file), -1 when it cannot.
func streamable(r io.Reader) int64 {
	sr, ok := r.(interface {
		io.Seeker
		Stat() (fs.FileInfo, error)
	})
	if !ok {
		return -1
	}
	fi, err := sr.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return -1
	}
	return fi.Size()
}

func encrypt(data []byte, cipherPass string) ([]byte, error) {
	if cipherPass == "" {
		return data, nil
	}
	out, err := filter.EncryptBytes(data, cipherPass)
	return out, encryptErr(err)
}

// encryptErr gives an encryption failure without a code its code.
func encryptErr(err error) error {
	if err != nil && errs.CodeOf(err) == errs.Unknown {
		err = errs.Wrap(errs.Crypto, err, "unable to encrypt")
	}
	return err
}

// writeBoth encrypts once and writes the same bytes to each path in order.
func writeBoth(ctx context.Context, st storage.Storage, data []byte, cipherPass string, paths ...string) error {
	out, err := encrypt(data, cipherPass)
	if err != nil {
		return err
	}
	for _, p := range paths {
		if err := storage.WriteAll(ctx, st, p, out); err != nil {
			return writeErr(st, p, err)
		}
	}
	return nil
}

// SaveInfoFile writes an info file then its identical .copy.
func SaveInfoFile(ctx context.Context, st storage.Storage, path string, data []byte, cipherPass string) error {
	return writeBoth(ctx, st, data, cipherPass, path, path+CopyExt)
}

// SaveArchiveInfo writes archive.info then archive.info.copy (same bytes).
func SaveArchiveInfo(ctx context.Context, st storage.Storage, stanza string, a *ArchiveInfo, cipherPass string) error {
	return SaveInfoFile(ctx, st, ArchiveInfoPath(stanza), a.Bytes(), cipherPass)
}

// SaveBackupInfo writes backup.info then backup.info.copy (same bytes).
func SaveBackupInfo(ctx context.Context, st storage.Storage, stanza string, b *BackupInfo, cipherPass string) error {
	return SaveInfoFile(ctx, st, BackupInfoPath(stanza), b.Bytes(), cipherPass)
}

// SaveManifestCopy writes only backup.manifest.copy (saves during a backup).
func SaveManifestCopy(ctx context.Context, st storage.Storage, stanza string, m *Manifest, cipherPass string) error {
	w, err := writeRendered(ctx, st, m.Render, cipherPass, nil, BackupManifestPath(stanza, m.Backup.Label)+CopyExt)
	if err != nil {
		return err
	}
	return w.Commit()
}

// SaveManifest writes backup.manifest.copy then backup.manifest (same
// bytes): the final save that marks the backup complete.
func SaveManifest(ctx context.Context, st storage.Storage, stanza string, m *Manifest, cipherPass string) error {
	w, err := WriteManifest(ctx, st, stanza, m, cipherPass, nil)
	if err != nil {
		return err
	}
	return w.Commit()
}

// WriteManifest writes backup.manifest.copy and backup.manifest, each the
// same bytes (encrypted once when cipherPass is set), and the plain text to
// also when it is not nil, rendering the manifest once and a piece at a
// time (the text of 100k files is 20 MB). Nothing is committed: the
// caller commits (copy, then main) or aborts the result.
func WriteManifest(ctx context.Context, st storage.Storage, stanza string, m *Manifest, cipherPass string,
	also io.Writer) (*PendingWrite, error) {
	p := BackupManifestPath(stanza, m.Backup.Label)
	return writeRendered(ctx, st, m.Render, cipherPass, also, p+CopyExt, p)
}

// PendingWrite is files written and not committed yet.
type PendingWrite struct {
	st    storage.Storage
	paths []string
	ws    []storage.Writer
}

// Commit commits the files in order: each is complete and durable before
// the next one is. After an error the rest are aborted.
func (p *PendingWrite) Commit() error {
	for i, w := range p.ws {
		if err := w.Commit(); err != nil {
			p.abort(i + 1)
			return writeErr(p.st, p.paths[i], err)
		}
	}
	return nil
}

// Abort discards every file.
func (p *PendingWrite) Abort() { p.abort(0) }

func (p *PendingWrite) abort(from int) {
	for _, w := range p.ws[from:] {
		w.Abort()
	}
}

func writeErr(st storage.Storage, path string, err error) error {
	if errs.CodeOf(err) == errs.Unknown {
		err = errs.Wrap(errs.FileWrite, err, "unable to write '%s'", st.Full(path))
	}
	return err
}

// writeRendered renders once into a file at each path (and to also, plain).
func writeRendered(ctx context.Context, st storage.Storage, render func(io.Writer) error, cipherPass string,
	also io.Writer, paths ...string) (*PendingWrite, error) {
	p := &PendingWrite{st: st, paths: paths}
	outs := make([]io.Writer, 0, len(paths))
	for _, path := range paths {
		w, err := st.Create(ctx, path, storage.CreateOptions{})
		if err != nil {
			p.Abort()
			return nil, writeErr(st, path, err)
		}
		p.ws = append(p.ws, w)
		outs = append(outs, w)
	}
	// Each file (or the encryptor of them all) and also are written on a
	// goroutine of their own while the manifest is rendered.
	leaves := outs
	var enc io.WriteCloser
	if cipherPass != "" {
		var err error
		if enc, err = filter.NewEncryptor(io.MultiWriter(outs...), cipherPass); err != nil {
			p.Abort()
			return nil, encryptErr(err)
		}
		leaves = []io.Writer{enc}
	}
	if also != nil {
		leaves = append(leaves[:len(leaves):len(leaves)], also)
	}
	tee := newTeeWriter(leaves...)
	err := render(tee)
	if cerr := tee.Close(); err == nil {
		err = cerr
	}
	if enc != nil {
		if cerr := enc.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		p.Abort()
		return nil, writeErr(st, paths[0], err)
	}
	return p, nil
}

// readAllSized is io.ReadAll reading into one buffer of the file's size
// when the reader knows it (a posix file): a manifest of many files is
// tens of megabytes, and growing the buffer step by step copies it over
// and over.
func readAllSized(r io.Reader) ([]byte, error) {
	st, ok := r.(interface{ Stat() (fs.FileInfo, error) })
	if !ok {
		return io.ReadAll(r)
	}
	fi, err := st.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return io.ReadAll(r)
	}
	buf := bytes.NewBuffer(make([]byte, 0, fi.Size()+bytes.MinRead))
	_, err = buf.ReadFrom(r)
	return buf.Bytes(), err
}
