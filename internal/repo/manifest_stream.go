package repo

import (
	"context"
	"io"
	"slices"
	"strings"
	"unsafe"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/storage"
)

// A prior backup's manifest is as large as the one a backup builds, and an
// incremental backup needs only one pass over its files, in name order,
// beside its own sorted list. So it loads the prior without its file
// entries (LoadManifestHead) and reads them again as it plans (a
// FileSource): it holds one manifest instead of two.

// FileSource calls fn with each file entry of a manifest in ascending name
// order; the entry is valid only during the call. Entries read from a file
// again carry what the [target:file] line holds: no defaults are applied
// to their mode, user and group.
type FileSource func(fn func(f *ManifestFile) error) error

// FilesOf is the FileSource of a manifest held in memory.
func FilesOf(m *Manifest) FileSource {
	return func(fn func(f *ManifestFile) error) error {
		for i := range m.Files {
			if err := fn(&m.Files[i]); err != nil {
				return err
			}
		}
		return nil
	}
}

// headFiles is what the parse of a manifest's head keeps of its file
// entries: whether they are in strictly ascending order, and their
// references when the [backup] section has none (before 2.42).
type headFiles struct {
	prev     []byte
	n        int
	unsorted bool
	refs     []string
}

func (h *headFiles) add(name, value string, haveRef bool) error {
	if h.n > 0 && name <= unsafe.String(unsafe.SliceData(h.prev), len(h.prev)) {
		h.unsorted = true
	}
	h.prev = append(h.prev[:0], name...)
	h.n++
	if haveRef {
		return nil
	}
	f, _, err := parseManifestFile(name, value)
	if err != nil {
		return err
	}
	if f.Reference != "" && !slices.Contains(h.refs, f.Reference) {
		h.refs = append(h.refs, strings.Clone(f.Reference))
	}
	return nil
}

// LoadManifestHead loads backup/<stanza>/<label>/backup.manifest (or its
// copy), verified as LoadManifest does, but without its file entries, and
// returns the source that reads them again from the same file. A manifest
// whose files are not in ascending order (pgBackRest and pgbr write them
// sorted) is loaded whole instead.
func LoadManifestHead(ctx context.Context, st storage.Storage, stanza, label, cipherPass string) (*Manifest, FileSource, error) {
	path := BackupManifestPath(stanza, label)
	var m *Manifest
	var mp *manifestParse
	parse := func(lines func(fn func(string) error) error) error {
		mp = newManifestParse(0, true)
		mp.b.head = &headFiles{}
		if err := lines(mp.line); err != nil {
			return err
		}
		var err error
		m, err = mp.result()
		return err
	}
	inMemory, streamed := lineReaders(parse)
	used, err := loadWithCopyFrom(ctx, st, path, cipherPass, "backup manifest file", inMemory, streamed)
	if err != nil {
		return nil, nil, err
	}
	if mp.b.head.unsorted {
		full, err := LoadManifest(ctx, st, stanza, label, cipherPass)
		if err != nil {
			return nil, nil, err
		}
		return full, FilesOf(full), nil
	}
	checksum := mp.ver.expected
	head := m
	return m, func(fn func(f *ManifestFile) error) error {
		return streamFiles(ctx, st, used, cipherPass, head, checksum, fn)
	}, nil
}

// streamFiles reads the file entries of the manifest at path again, checks
// their names and order, and calls fn with each. The file must be the one
// the head was loaded from: its checksum must verify and be the same.
func streamFiles(ctx context.Context, st storage.Storage, path, cipherPass string, head *Manifest, checksum string,
	fn func(f *ManifestFile) error) error {
	s := &fileStream{ver: newIniVerifier(), fn: fn, tsDir: head.tablespaceDir(), tablespaces: map[string]bool{}}
	for i := range head.Targets {
		if id := head.Targets[i].TablespaceID; id != "" {
			s.tablespaces[id] = true
		}
	}
	inMemory, streamed := lineReaders(func(lines func(fn func(string) error) error) error { return lines(s.line) })
	if err := readOrStream(ctx, st, path, cipherPass, inMemory, streamed); err != nil {
		return err
	}
	if err := s.ver.result(); err != nil {
		return err
	}
	if s.ver.expected != checksum {
		return errs.New(errs.Checksum, "backup manifest file '%s' changed while it was read (checksum '%s', then '%s')",
			st.Full(path), checksum, s.ver.expected)
	}
	return nil
}

// fileStream is the line handler of streamFiles.
type fileStream struct {
	lines       iniLines
	ver         *iniVerifier
	fn          func(f *ManifestFile) error
	tsDir       string
	tablespaces map[string]bool
	prev        []byte
	n           int
	f           ManifestFile
}

func (s *fileStream) line(line string) error {
	key, value, ok, err := s.lines.parse(line)
	if err != nil || !ok {
		return err
	}
	s.ver.add(s.lines.section, key, value)
	if s.lines.section != manifestFileKey {
		return nil
	}
	if s.n > 0 && key <= unsafe.String(unsafe.SliceData(s.prev), len(s.prev)) {
		return errs.New(errs.Format, "[%s] %s: out of order (the manifest changed while it was read)", manifestFileKey, shortLine(key))
	}
	s.prev = append(s.prev[:0], key...)
	s.n++
	if err := checkEntry(manifestFileKey, key, s.tsDir, s.tablespaces, false); err != nil {
		return err
	}
	if s.f, _, err = parseManifestFile(key, value); err != nil {
		return err
	}
	return s.fn(&s.f) // one entry reused: fn's pointer would make each escape
}

// lineReaders gives readOrStream's two ways of reading a file, its bytes
// in memory or a stream from its start, to a handler of all its lines.
func lineReaders(handle func(lines func(fn func(string) error) error) error) (
	inMemory func([]byte) error, streamed func(open func() (io.Reader, error)) error) {
	inMemory = func(data []byte) error {
		return handle(func(fn func(string) error) error { return eachLine(bytesString(data), fn) })
	}
	streamed = func(open func() (io.Reader, error)) error {
		r, err := open()
		if err != nil {
			return err
		}
		return handle(func(fn func(string) error) error { return eachReadLine(r, fn) })
	}
	return inMemory, streamed
}

// bytesString views data, which nobody changes while it is used, as a
// string.
func bytesString(data []byte) string {
	if len(data) == 0 {
		return ""
	}
	return unsafe.String(&data[0], len(data))
}
