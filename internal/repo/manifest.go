package repo

import (
	"bufio"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unsafe"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/jsonw"
)

// Backup types as stored in manifests and backup.info.
const (
	BackupTypeFull = "full"
	BackupTypeDiff = "diff"
	BackupTypeIncr = "incr"
)

// EmptySHA1 is the SHA-1 of empty input, the checksum of every zero-length
// file (the manifest omits it).
const EmptySHA1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709"

var emptyDigest = HexDigest(EmptySHA1)

// Manifest targets.
const (
	TargetPgData    = "pg_data"
	TargetPgTblspc  = "pg_tblspc"
	TargetTypePath  = "path"
	TargetTypeLink  = "link"
	manifestFileKey = "target:file"
)

// ManifestBackup is the [backup] section (format spec §3.2).
type ManifestBackup struct {
	ArchiveStart string // "" = absent (offline backup)
	ArchiveStop  string
	// BlockIncr marks a block incremental backup (pgBackRest 2.46+,
	// repo-block=y): its files may carry a block map (bi/bic/bim).
	BlockIncr          bool
	Bundle             bool
	BundleRaw          bool // written only together with Bundle
	Label              string
	LsnStart           string
	LsnStop            string
	Prior              string
	Reference          []string // oldest first, ending with Label; a comma-separated string in the file
	TimestampCopyStart int64
	TimestampStart     int64
	TimestampStop      int64
	Type               string // BackupTypeFull, BackupTypeDiff or BackupTypeIncr
}

// ManifestOption is [backup:option] (§3.4).
type ManifestOption struct {
	ArchiveCheck         bool
	ArchiveCopy          bool
	BackupStandby        bool
	BufferSize           uint64
	ChecksumPage         bool
	CompressLevel        int
	CompressLevelNetwork int
	CompressType         string // "none", "gz", "bz2", "lz4", "zst"; written as "none" when ""
	Delta                bool
	Hardlink             bool
	Online               bool
	ProcessMax           int
}

// Compress reports whether files are compressed (option-compress).
func (o *ManifestOption) Compress() bool { return o.CompressType != "" && o.CompressType != "none" }

// ManifestTarget is one [backup:target] entry (§3.5).
type ManifestTarget struct {
	Name           string // "pg_data", "pg_tblspc/16384", "pg_data/pg_wal", ...
	Path           string
	File           string // file links only
	TablespaceID   string // tablespace oid as a string, "" when not a tablespace
	TablespaceName string
	Type           string // TargetTypePath or TargetTypeLink
}

// ManifestDatabase is one [db] entry (§3.7).
type ManifestDatabase struct {
	Name         string
	OID          uint32
	LastSystemID uint32
}

// Owner is a user or group name, or None when the id had no name (stored
// as false). The zero value means "not known" and is never written.
type Owner struct {
	Name string
	None bool
}

// IsSet reports whether the owner is a name or the explicit "no name".
func (o Owner) IsSet() bool { return o.None || o.Name != "" }

func (o Owner) appendJSON(b []byte) []byte {
	if o.None {
		return append(b, "false"...)
	}
	return jsonw.AppendString(b, o.Name)
}

// ManifestFile is one [target:file] entry (§3.9). Mode/User/Group are the
// effective values (defaults applied).
type ManifestFile struct {
	Name      string
	Size      uint64
	Timestamp int64
	// Checksum is the SHA-1 of the original content, zero when absent
	// (zero length files, files not yet copied in a partial manifest). Use
	// EffectiveChecksum for the value a reader must compare with.
	Checksum     Digest
	RepoChecksum Digest // rck: SHA-1 of the stored bytes, zero when absent
	ChecksumPage *bool  // nil: page checksums were not checked
	// ChecksumPageError is the compact JSON array of bad pages/ranges, e.g.
	// `[[3,5],10]`, "" when absent; see PageErrors/FormatPageErrors.
	ChecksumPageError string
	Reference         string // label of the backup holding the bytes, "" = this backup
	// RepoSize is the number of stored bytes. A file entry without repo-size
	// has RepoSize == Size; repo-size is written only when it differs.
	RepoSize     uint64
	BundleID     uint64 // bni, 0 = not bundled
	BundleOffset uint64 // bno
	Mode         string // 4-digit octal, e.g. "0600"
	User         Owner
	Group        Owner
	// Block incremental keys: block size in units of 8192 (bi), checksum
	// size (bic, 0 = default 6), size of the block map stored at the end of
	// the file's RepoSize bytes (bim). See blockmap.go.
	BlockIncr         uint64
	BlockIncrChecksum uint64
	BlockIncrMap      uint64
}

// EffectiveChecksum returns Checksum, or the empty-input SHA-1 for a
// zero-length file without one.
func (f *ManifestFile) EffectiveChecksum() string {
	if f.Checksum.IsZero() && f.Size == 0 {
		return EmptySHA1
	}
	return f.Checksum.String()
}

// PageRange is a bad page (First == Last) or an inclusive range of pages.
type PageRange struct{ First, Last uint64 }

// PageErrors decodes ChecksumPageError.
func (f *ManifestFile) PageErrors() ([]PageRange, error) {
	if f.ChecksumPageError == "" {
		return nil, nil
	}
	v, err := parseJSON(f.ChecksumPageError)
	if err != nil {
		return nil, err
	}
	where := "checksum-page-error of '" + f.Name + "'"
	if v.kind != jsonArray {
		return nil, jsonErr(where, "array", &v)
	}
	var out []PageRange
	for i := range v.arr {
		e := &v.arr[i]
		switch e.kind {
		case jsonNumber:
			p, err := e.asUint64(where)
			if err != nil {
				return nil, err
			}
			out = append(out, PageRange{p, p})
		case jsonArray:
			if len(e.arr) != 2 {
				return nil, errs.New(errs.JSONFormat, "%s: a range must have two pages", where)
			}
			a, err := e.arr[0].asUint64(where)
			if err != nil {
				return nil, err
			}
			b, err := e.arr[1].asUint64(where)
			if err != nil {
				return nil, err
			}
			out = append(out, PageRange{a, b})
		default:
			return nil, jsonErr(where, "page number or range", e)
		}
	}
	return out, nil
}

// FormatPageErrors encodes page ranges the way pgBackRest does: a single
// page as a number, a range as [first,last]. nil/empty gives "".
func FormatPageErrors(r []PageRange) string {
	if len(r) == 0 {
		return ""
	}
	b := []byte{'['}
	for i, p := range r {
		if i > 0 {
			b = append(b, ',')
		}
		if p.First == p.Last {
			b = strconv.AppendUint(b, p.First, 10)
			continue
		}
		b = append(b, '[')
		b = strconv.AppendUint(b, p.First, 10)
		b = append(b, ',')
		b = strconv.AppendUint(b, p.Last, 10)
		b = append(b, ']')
	}
	return string(append(b, ']'))
}

// ManifestPath is one [target:path] entry (§3.11).
type ManifestPath struct {
	Name  string
	Mode  string
	User  Owner
	Group Owner
}

// ManifestLink is one [target:link] entry.
type ManifestLink struct {
	Name        string
	Destination string
	User        Owner
	Group       Owner
}

// ManifestDefaults is a [target:*:default] section. Mode is unused for
// links. A zero field was absent and is not written.
type ManifestDefaults struct {
	Mode  string
	User  Owner
	Group Owner
}

// Manifest is backup.manifest (format spec §3). Targets, Databases, Files,
// Paths and Links are sorted by name after parsing; code that appends to
// them must call Sort before using the Find methods.
type Manifest struct {
	BackrestVersion string
	Backup          ManifestBackup
	DB              BackupDB // [backup:db]
	Option          ManifestOption
	Targets         []ManifestTarget
	CipherPass      string // backup set passphrase, "" = not encrypted
	Databases       []ManifestDatabase
	Annotation      map[string]string // [metadata] annotation; nil = none
	Files           []ManifestFile
	Paths           []ManifestPath
	Links           []ManifestLink
	FileDefault     ManifestDefaults
	LinkDefault     ManifestDefaults
	PathDefault     ManifestDefaults
}

// nameSorter sorts a slice by an entry name without copying or escaping
// elements (manifests hold up to ~100k entries).
type nameSorter[T any] struct {
	s    []T
	name func(*T) string
}

func (x nameSorter[T]) Len() int           { return len(x.s) }
func (x nameSorter[T]) Less(i, j int) bool { return x.name(&x.s[i]) < x.name(&x.s[j]) }
func (x nameSorter[T]) Swap(i, j int)      { x.s[i], x.s[j] = x.s[j], x.s[i] }

// sortedNoDup reports whether s is strictly ascending by name.
func sortedNoDup[T any](s []T, name func(*T) string) bool {
	for i := 1; i < len(s); i++ {
		if name(&s[i-1]) >= name(&s[i]) {
			return false
		}
	}
	return true
}

func fileName(f *ManifestFile) string         { return f.Name }
func pathName(p *ManifestPath) string         { return p.Name }
func linkName(l *ManifestLink) string         { return l.Name }
func targetName(t *ManifestTarget) string     { return t.Name }
func databaseName(d *ManifestDatabase) string { return d.Name }

// sortDedup sorts by name (stable) and keeps the last of equal names.
func sortDedup[T any](s []T, name func(*T) string) []T {
	if sortedNoDup(s, name) {
		return s
	}
	sort.Stable(nameSorter[T]{s, name})
	out := s[:0]
	for i := range s {
		if i+1 < len(s) && name(&s[i+1]) == name(&s[i]) {
			continue
		}
		out = append(out, s[i])
	}
	clear(s[len(out):])
	return out
}

func find[T any](s []T, n string, name func(*T) string) (*T, bool) {
	i := sort.Search(len(s), func(i int) bool { return name(&s[i]) >= n })
	if i < len(s) && name(&s[i]) == n {
		return &s[i], true
	}
	return nil, false
}

// Sort sorts every list by name, dropping earlier duplicates. O(n log n).
func (m *Manifest) Sort() {
	m.Targets = sortDedup(m.Targets, targetName)
	m.Databases = sortDedup(m.Databases, databaseName)
	m.Files = sortDedup(m.Files, fileName)
	m.Paths = sortDedup(m.Paths, pathName)
	m.Links = sortDedup(m.Links, linkName)
}

// FindFile returns the file entry with the given manifest name.
func (m *Manifest) FindFile(name string) (*ManifestFile, bool) { return find(m.Files, name, fileName) }

// FindPath returns the path entry with the given manifest name.
func (m *Manifest) FindPath(name string) (*ManifestPath, bool) { return find(m.Paths, name, pathName) }

// FindLink returns the link entry with the given manifest name.
func (m *Manifest) FindLink(name string) (*ManifestLink, bool) { return find(m.Links, name, linkName) }

// FindTarget returns the target with the given name.
func (m *Manifest) FindTarget(name string) (*ManifestTarget, bool) {
	return find(m.Targets, name, targetName)
}

// FindDatabase returns the database with the given name.
func (m *Manifest) FindDatabase(name string) (*ManifestDatabase, bool) {
	return find(m.Databases, name, databaseName)
}

// SetDefaultsFromPgData sets the default sections from the pg_data path
// entry as pgBackRest does (§3.10): path mode = pg_data mode, file mode =
// pg_data mode & 0640, owners = pg_data owners.
func (m *Manifest) SetDefaultsFromPgData() error {
	p, ok := m.FindPath(TargetPgData)
	if !ok {
		return errs.New(errs.Format, "manifest has no '%s' path", TargetPgData)
	}
	mode, ok := parseMode(p.Mode)
	if !ok {
		return errs.New(errs.Format, "invalid mode '%s' for path '%s'", p.Mode, TargetPgData)
	}
	m.PathDefault = ManifestDefaults{Mode: p.Mode, User: p.User, Group: p.Group}
	m.FileDefault = ManifestDefaults{Mode: FormatMode(mode & 0o640), User: p.User, Group: p.Group}
	m.LinkDefault = ManifestDefaults{User: p.User, Group: p.Group}
	return nil
}

// FormatMode formats a permission mode as pgBackRest stores it ("0640").
func FormatMode(mode uint32) string {
	s := strconv.FormatUint(uint64(mode&0o7777), 8)
	for len(s) < 4 {
		s = "0" + s
	}
	return s
}

// ParseMode parses a stored mode string ("0600").
func ParseMode(s string) (uint32, error) {
	m, ok := parseMode(s)
	if !ok {
		return 0, errs.New(errs.Format, "invalid mode '%s'", s)
	}
	return m, nil
}

func parseMode(s string) (uint32, bool) {
	if s == "" || len(s) > 8 {
		return 0, false
	}
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m > 0o7777 {
		return 0, false
	}
	return uint32(m), true
}

// CompressExt returns the file extension of a compress type ("gz" → ".gz",
// "none" → "").
func CompressExt(compressType string) string {
	switch compressType {
	case "", "none":
		return ""
	}
	return "." + compressType
}

// FileRepoPath returns where a file's bytes are stored, relative to
// backup/<stanza>/: "<label>/<name><ext>", or "<label>/bundle/<id>" for a
// bundled file (read RepoSize bytes at BundleOffset). <label> is the
// file's reference or this backup's label.
func (m *Manifest) FileRepoPath(f *ManifestFile) string {
	label := f.Reference
	if label == "" {
		label = m.Backup.Label
	}
	if f.BundleID != 0 {
		return label + "/bundle/" + strconv.FormatUint(f.BundleID, 10)
	}
	return label + "/" + f.Name + CompressExt(m.Option.CompressType)
}

// CheckRestorable refuses manifests pgbr must not or cannot restore: names
// that could leave the restore directories (see CheckNames), block
// incremental files with inconsistent keys (see blockmap.go).
func (m *Manifest) CheckRestorable() error {
	if err := m.CheckNames(); err != nil {
		return err
	}
	for i := range m.Files {
		f := &m.Files[i]
		if f.BlockIncr == 0 || f.BlockIncrMap == 0 {
			continue // no map (e.g. truncated to zero during the backup): stored as a normal file
		}
		if f.BlockIncrMap > f.RepoSize || f.BlockIncrChecksum > blockIncrChecksumSizeMax ||
			f.BlockIncr > 1<<40/BlockIncrSizeFactor {
			return errs.New(errs.Format, "backup '%s': file '%s' has invalid block incremental keys (bi %d, bic %d, bim %d, repo-size %d)",
				m.Backup.Label, f.Name, f.BlockIncr, f.BlockIncrChecksum, f.BlockIncrMap, f.RepoSize)
		}
	}
	return nil
}

// Validate checks what pgBackRest checks before the final save (§3.13):
// every file has a checksum (zero-length files count as having the empty
// one); with strict, zero-length files have the empty SHA-1 and files with
// data have a repo size. It also rejects file names an info file cannot
// hold (empty, or containing a newline).
func (m *Manifest) Validate(strict bool) error {
	var msg strings.Builder
	for i := range m.Files {
		f := &m.Files[i]
		if strings.ContainsRune(f.Name, '\n') || f.Name == "" {
			msg.WriteString("\ninvalid file name '" + f.Name + "' (a manifest cannot store it)")
			continue
		}
		// Compared as digests: a hex string per file is 40 MB of garbage at
		// a million files.
		if f.Checksum.IsZero() && f.Size != 0 {
			msg.WriteString("\nmissing checksum for file '" + f.Name + "'")
			continue
		}
		if strict {
			if f.Size == 0 && !f.Checksum.IsZero() && f.Checksum != emptyDigest {
				msg.WriteString("\ninvalid checksum '" + f.Checksum.String() + "' for zero size file '" + f.Name + "'")
			}
			if f.RepoSize == 0 && f.Size != 0 {
				msg.WriteString("\nrepo size must be > 0 for file '" + f.Name + "'")
			}
		}
	}
	if msg.Len() > 0 {
		return errs.New(errs.Format, "manifest validation failed:%s", msg.String())
	}
	return nil
}

// --- parse ------------------------------------------------------------------

// presence bits for user/group/mode of entries, to apply defaults after load
const (
	hasUser = 1 << iota
	hasGroup
	hasMode
)

func (v *jsonValue) asSHA1(where string) (Digest, error) {
	s, err := v.asString(where)
	if err != nil {
		return Digest{}, err
	}
	d, ok := ParseDigest(s)
	if !ok || d.IsZero() { // zero stands for "absent", and no content hashes to it
		return Digest{}, errs.New(errs.Format, "%s: invalid SHA-1 '%s'", where, shortLine(s))
	}
	return d, nil
}

func (v *jsonValue) asOwner(where string) (Owner, error) {
	switch v.kind {
	case jsonString:
		return Owner{Name: v.s}, nil
	case jsonBool:
		if v.b {
			return Owner{}, errs.New(errs.Format, "%s: owner bool must be false", where)
		}
		return Owner{None: true}, nil
	}
	return Owner{}, jsonErr(where, "string or false", v)
}

func (v *jsonValue) asMode(where string) (string, error) {
	s, err := v.asString(where)
	if err != nil {
		return "", err
	}
	if _, ok := parseMode(s); !ok {
		return "", errs.New(errs.Format, "%s: invalid mode '%s'", where, shortLine(s))
	}
	return s, nil
}

// ParseManifest parses and verifies backup.manifest.
func ParseManifest(data []byte) (*Manifest, error) {
	return parseManifest(string(data))
}

// parseManifestOwned is ParseManifest on bytes that nobody changes while it
// runs: the text is not copied (a manifest of 100k files is about 20 MB) and,
// as with ParseManifest, the result keeps nothing of it.
func parseManifestOwned(data []byte) (*Manifest, error) {
	return parseManifest(bytesString(data))
}

// parseManifest parses and verifies a manifest's text in one pass, without
// a list of its values.
func parseManifest(text string) (*Manifest, error) {
	var files fileLineCounter
	eachLine(text, files.line)
	mp := newManifestParse(files.n, false)
	if err := eachLine(text, mp.line); err != nil {
		return nil, err
	}
	return mp.result()
}

// ParseManifestFrom parses and verifies a manifest read from r (each pass
// from its start). A file twice read holds less than its text: a first pass
// counts the files, so that their list is allocated once; the second
// parses. Neither holds more than a line.
func ParseManifestFrom(open func() (io.Reader, error)) (*Manifest, error) {
	r, err := open()
	if err != nil {
		return nil, err
	}
	var files fileLineCounter
	if err := eachReadLine(r, files.line); err != nil {
		return nil, err
	}
	if r, err = open(); err != nil {
		return nil, err
	}
	mp := newManifestParse(files.n, true)
	if err := eachReadLine(r, mp.line); err != nil {
		return nil, err
	}
	return mp.result()
}

// manifestParse feeds each value to the checksum verifier and the builder.
// The checksum is reported before what the builder found: a damaged file
// is damaged, whatever its content then says.
type manifestParse struct {
	lines  iniLines
	ver    *iniVerifier
	b      *manifestBuilder
	err    error
	stream bool // lines do not outlive the call: what the builder keeps is copied
}

func newManifestParse(nFiles int, stream bool) *manifestParse {
	return &manifestParse{ver: newIniVerifier(), b: newManifestBuilder(nFiles), stream: stream}
}

func (p *manifestParse) line(line string) error {
	key, value, ok, err := p.lines.parse(line)
	if err != nil || !ok {
		return err
	}
	section := p.lines.section
	p.ver.add(section, key, value)
	if p.err != nil {
		return nil
	}
	if p.stream && !detachedAsParsed[section] {
		key, value = strings.Clone(key), strings.Clone(value)
	}
	p.err = p.b.value(IniValue{Section: section, Key: key, Value: value})
	return nil
}

func (p *manifestParse) result() (*Manifest, error) {
	if err := p.ver.result(); err != nil {
		return nil, err
	}
	if p.err != nil {
		return nil, p.err
	}
	return p.b.finish()
}

// detachedAsParsed are the sections whose entries the builder copies as
// it parses them (strStore file, path, link): the many. The values of the
// others are kept until finish (strStore.rest).
var detachedAsParsed = map[string]bool{manifestFileKey: true, "target:path": true, "target:link": true}

// fileLineCounter counts the lines of [target:file] sections.
type fileLineCounter struct {
	in bool
	n  int
}

func (c *fileLineCounter) line(line string) error {
	switch {
	case line == "":
	case line[0] == '[':
		c.in = line == "["+manifestFileKey+"]"
	case c.in:
		c.n++
	}
	return nil
}

// eachReadLine calls fn with each line read from r, without its newline;
// the line is valid only during the call.
func eachReadLine(r io.Reader, fn func(line string) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var long []byte
	for {
		b, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = append(long, b...)
			continue
		}
		if err != nil && err != io.EOF {
			return err
		}
		if long != nil {
			b = append(long, b...)
			long = nil
		}
		if len(b) > 0 && b[len(b)-1] == '\n' {
			b = b[:len(b)-1]
		}
		if len(b) > 0 || err == nil {
			if ferr := fn(unsafe.String(unsafe.SliceData(b), len(b))); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			return nil
		}
	}
}

// manifestBuilder builds a manifest from its values in file order (§3).
// The values need to live only during value: what is kept is copied.
type manifestBuilder struct {
	m                         *Manifest
	st                        *strStore
	fileHas, pathHas, linkHas []uint8
	haveLabel, haveType       bool
	haveRef                   bool
	compress                  *bool
	compressType              string
	head                      *headFiles // set: file entries are checked, not kept
}

// newManifestBuilder starts a manifest of about nFiles files.
func newManifestBuilder(nFiles int) *manifestBuilder {
	return &manifestBuilder{m: &Manifest{Files: make([]ManifestFile, 0, nFiles)}, fileHas: make([]uint8, 0, nFiles),
		st: newStrStore()}
}

// manifestFromIni builds a manifest from parsed values (not verified).
func manifestFromIni(ini *Ini) (*Manifest, error) {
	nFiles := 0
	for i := range ini.Values {
		if ini.Values[i].Section == manifestFileKey {
			nFiles++
		}
	}
	b := newManifestBuilder(nFiles)
	for _, v := range ini.Values {
		if err := b.value(v); err != nil {
			return nil, err
		}
	}
	return b.finish()
}

// value adds one value.
func (b *manifestBuilder) value(v IniValue) error {
	var err error
	switch {
	case v.Section == sectionBackrest && v.Key == keyVersion:
		b.m.BackrestVersion, err = headerString(v, false)
		return err
	case v.Section == sectionCipher && v.Key == keyCipherPass:
		b.m.CipherPass, err = headerString(v, true)
		return err
	}
	if v.Section == manifestFileKey {
		if b.head != nil {
			return b.head.add(v.Key, v.Value, b.haveRef)
		}
		f, has, err := parseManifestFile(v.Key, v.Value)
		if err != nil {
			return err
		}
		b.st.file(&f)
		b.m.Files = append(b.m.Files, f)
		b.fileHas = append(b.fileHas, has)
		return nil
	}
	where := "[" + v.Section + "] " + v.Key
	switch v.Section {
	case "target:path":
		p := ManifestPath{Name: v.Key}
		var has uint8
		err := iterObject(v.Value, func(key string, jv *jsonValue) error {
			var err error
			switch key {
			case "group":
				p.Group, err = jv.asOwner(key)
				has |= hasGroup
			case "mode":
				p.Mode, err = jv.asMode(key)
				has |= hasMode
			case "user":
				p.User, err = jv.asOwner(key)
				has |= hasUser
			}
			return err
		})
		if err != nil {
			return entryErr(v.Section, v.Key, err)
		}
		b.st.path(&p)
		b.m.Paths = append(b.m.Paths, p)
		b.pathHas = append(b.pathHas, has)
	case "target:link":
		l := ManifestLink{Name: v.Key}
		var has uint8
		haveDest := false
		err := iterObject(v.Value, func(key string, jv *jsonValue) error {
			var err error
			switch key {
			case "destination":
				l.Destination, err = jv.asString(key)
				haveDest = true
			case "group":
				l.Group, err = jv.asOwner(key)
				has |= hasGroup
			case "user":
				l.User, err = jv.asOwner(key)
				has |= hasUser
			}
			return err
		})
		if err != nil {
			return entryErr(v.Section, v.Key, err)
		}
		if !haveDest {
			return errs.New(errs.Format, "%s: missing key 'destination'", where)
		}
		b.st.link(&l)
		b.m.Links = append(b.m.Links, l)
		b.linkHas = append(b.linkHas, has)
	case "target:file:default", "target:path:default", "target:link:default":
		d := &b.m.FileDefault
		if v.Section == "target:path:default" {
			d = &b.m.PathDefault
		} else if v.Section == "target:link:default" {
			d = &b.m.LinkDefault
		}
		jv, err := parseJSON(v.Value)
		if err != nil {
			return err
		}
		switch v.Key {
		case "group":
			d.Group, err = jv.asOwner(where)
		case "user":
			d.User, err = jv.asOwner(where)
		case "mode":
			if v.Section != "target:link:default" {
				d.Mode, err = jv.asMode(where)
			}
		}
		if err != nil {
			return err
		}
	case "backup:target":
		t, err := parseManifestTarget(v.Key, v.Value, where)
		if err != nil {
			return err
		}
		b.m.Targets = append(b.m.Targets, t)
	case "db":
		obj, err := parseObject(v.Value, where)
		if err != nil {
			return err
		}
		d := ManifestDatabase{Name: v.Key}
		var haveID, haveLast bool
		for i := range obj.obj {
			e := &obj.obj[i]
			switch e.key {
			case "db-id":
				d.OID, err = e.val.asUint32(where + " db-id")
				haveID = true
			case "db-last-system-id":
				d.LastSystemID, err = e.val.asUint32(where + " db-last-system-id")
				haveLast = true
			}
			if err != nil {
				return err
			}
		}
		if !haveID || !haveLast {
			return errs.New(errs.Format, "%s: missing key 'db-id' or 'db-last-system-id'", where)
		}
		b.m.Databases = append(b.m.Databases, d)
	case "metadata":
		if v.Key != "annotation" {
			return nil
		}
		jv, err := parseJSON(v.Value)
		if err != nil {
			return err
		}
		if jv.kind == jsonNull {
			b.m.Annotation = nil
			return nil
		}
		if b.m.Annotation, err = jv.asStringMap(where); err != nil {
			return err
		}
	case "backup":
		jv, err := parseJSON(v.Value)
		if err != nil {
			return err
		}
		bk := &b.m.Backup
		switch v.Key {
		case "backup-archive-start":
			bk.ArchiveStart, err = jv.asStringOrNull(where)
		case "backup-archive-stop":
			bk.ArchiveStop, err = jv.asStringOrNull(where)
		case "backup-block-incr":
			bk.BlockIncr, err = jv.asBool(where)
		case "backup-bundle":
			bk.Bundle, err = jv.asBool(where)
		case "backup-bundle-raw":
			bk.BundleRaw, err = jv.asBool(where)
		case "backup-label":
			bk.Label, err = jv.asString(where)
			b.haveLabel = true
		case "backup-lsn-start":
			bk.LsnStart, err = jv.asStringOrNull(where)
		case "backup-lsn-stop":
			bk.LsnStop, err = jv.asStringOrNull(where)
		case "backup-prior":
			bk.Prior, err = jv.asStringOrNull(where)
		case "backup-reference":
			var s string
			s, err = jv.asString(where)
			bk.Reference = nil
			if s != "" {
				bk.Reference = strings.Split(s, ",")
			}
			b.haveRef = true
		case "backup-timestamp-copy-start":
			bk.TimestampCopyStart, err = jv.asInt64(where)
		case "backup-timestamp-start":
			bk.TimestampStart, err = jv.asInt64(where)
		case "backup-timestamp-stop":
			bk.TimestampStop, err = jv.asInt64(where)
		case "backup-type":
			bk.Type, err = jv.asString(where)
			b.haveType = true
			if err == nil && bk.Type != BackupTypeFull && bk.Type != BackupTypeDiff && bk.Type != BackupTypeIncr {
				err = errs.New(errs.Format, "%s: invalid backup type '%s'", where, shortLine(bk.Type))
			}
		}
		if err != nil {
			return err
		}
	case "backup:db":
		jv, err := parseJSON(v.Value)
		if err != nil {
			return err
		}
		d := &b.m.DB
		switch v.Key {
		case "db-catalog-version":
			d.CatalogVersion, err = jv.asUint32(where)
		case "db-control-version":
			d.ControlVersion, err = jv.asUint32(where)
		case "db-id":
			d.ID, err = jv.asInt(where)
		case "db-system-id":
			d.SystemID, err = jv.asUint64(where)
		case "db-version":
			d.Version, err = jv.asString(where)
		}
		if err != nil {
			return err
		}
	case "backup:option":
		jv, err := parseJSON(v.Value)
		if err != nil {
			return err
		}
		o := &b.m.Option
		var n int64
		switch v.Key {
		case "option-archive-check":
			o.ArchiveCheck, err = jv.asBool(where)
		case "option-archive-copy":
			o.ArchiveCopy, err = jv.asBool(where)
		case "option-backup-standby":
			o.BackupStandby, err = jv.asBool(where)
		case "option-buffer-size":
			o.BufferSize, err = jv.asUint64(where)
		case "option-checksum-page":
			o.ChecksumPage, err = jv.asBool(where)
		case "option-compress":
			var c bool
			c, err = jv.asBool(where)
			b.compress = &c
		case "option-compress-level":
			n, err = jv.asInt64(where)
			o.CompressLevel = int(int32(n))
		case "option-compress-level-network":
			n, err = jv.asInt64(where)
			o.CompressLevelNetwork = int(int32(n))
		case "option-compress-type":
			b.compressType, err = jv.asString(where)
			if err == nil && b.compressType == "" {
				err = errs.New(errs.Format, "%s: empty compress type", where)
			}
		case "option-delta":
			o.Delta, err = jv.asBool(where)
		case "option-hardlink":
			o.Hardlink, err = jv.asBool(where)
		case "option-online":
			o.Online, err = jv.asBool(where)
		case "option-process-max":
			n, err = jv.asInt64(where)
			o.ProcessMax = int(int32(n))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// finish applies what needs the whole file and checks the result.
func (b *manifestBuilder) finish() (*Manifest, error) {
	m := b.m
	if !b.haveLabel {
		return nil, errs.New(errs.Format, "manifest is missing [backup] backup-label")
	}
	if !b.haveType {
		return nil, errs.New(errs.Format, "manifest is missing [backup] backup-type")
	}
	switch {
	case b.compressType != "":
		m.Option.CompressType = b.compressType
	case b.compress != nil && *b.compress:
		m.Option.CompressType = "gz"
	default:
		m.Option.CompressType = "none"
	}

	b.st.rest(m)
	// Defaults apply after the whole file is read (§3.10).
	for i := range m.Files {
		applyDefaults(&m.Files[i].Mode, &m.Files[i].User, &m.Files[i].Group, b.fileHas[i], &m.FileDefault, true)
	}
	for i := range m.Paths {
		applyDefaults(&m.Paths[i].Mode, &m.Paths[i].User, &m.Paths[i].Group, b.pathHas[i], &m.PathDefault, true)
	}
	for i := range m.Links {
		applyDefaults(nil, &m.Links[i].User, &m.Links[i].Group, b.linkHas[i], &m.LinkDefault, false)
	}
	m.Sort()
	if _, ok := m.FindTarget(TargetPgData); !ok {
		return nil, errs.New(errs.Format, "manifest is missing the '%s' target", TargetPgData)
	}
	if err := m.CheckNames(); err != nil {
		return nil, err
	}
	if !b.haveRef {
		// Manifests before 2.42: the distinct file references, then the own label.
		seen := map[string]bool{}
		if b.head != nil {
			// The head kept the files' references in file order (sorted, or
			// the files are loaded whole).
			for _, r := range b.head.refs {
				seen[r] = true
			}
			m.Backup.Reference = append(m.Backup.Reference, b.head.refs...)
		}
		for i := range m.Files {
			if r := m.Files[i].Reference; r != "" && !seen[r] {
				seen[r] = true
				m.Backup.Reference = append(m.Backup.Reference, r)
			}
		}
		if !seen[m.Backup.Label] {
			m.Backup.Reference = append(m.Backup.Reference, m.Backup.Label)
		}
	}
	return m, nil
}

func applyDefaults(mode *string, user, group *Owner, has uint8, d *ManifestDefaults, withMode bool) {
	if has&hasUser == 0 {
		*user = d.User
	}
	if has&hasGroup == 0 {
		*group = d.Group
	}
	if withMode && has&hasMode == 0 {
		*mode = d.Mode
	}
}

func parseManifestTarget(name, value, where string) (ManifestTarget, error) {
	t := ManifestTarget{Name: name}
	obj, err := parseObject(value, where)
	if err != nil {
		return t, err
	}
	var havePath, haveType, haveID, haveName bool
	for i := range obj.obj {
		e := &obj.obj[i]
		w := where + " " + e.key
		switch e.key {
		case "file":
			t.File, err = e.val.asString(w)
		case "path":
			t.Path, err = e.val.asString(w)
			havePath = true
		case "tablespace-id":
			t.TablespaceID, err = e.val.asString(w)
			if err == nil {
				if _, perr := strconv.ParseUint(t.TablespaceID, 10, 32); perr != nil || t.TablespaceID == "0" {
					err = errs.New(errs.Format, "%s: invalid tablespace id '%s'", w, shortLine(t.TablespaceID))
				}
			}
			haveID = true
		case "tablespace-name":
			t.TablespaceName, err = e.val.asString(w)
			haveName = true
		case "type":
			t.Type, err = e.val.asString(w)
			haveType = true
		}
		if err != nil {
			return t, err
		}
	}
	switch {
	case !havePath:
		return t, errs.New(errs.Format, "%s: missing key 'path'", where)
	case !haveType:
		return t, errs.New(errs.Format, "%s: missing key 'type'", where)
	case haveID && !haveName:
		return t, errs.New(errs.Format, "%s: missing key 'tablespace-name'", where)
	case !haveID:
		t.TablespaceName = "" // read only together with tablespace-id, as pgBackRest does
	}
	return t, nil
}

func parseManifestFile(name, value string) (ManifestFile, uint8, error) {
	f := ManifestFile{Name: name}
	var has uint8
	var haveSize, haveTimestamp, haveRepoSize bool
	err := iterObject(value, func(key string, v *jsonValue) error {
		var err error
		switch key {
		case "bi":
			f.BlockIncr, err = v.asUint64(key)
		case "bic":
			f.BlockIncrChecksum, err = v.asUint64(key)
		case "bim":
			f.BlockIncrMap, err = v.asUint64(key)
		case "bni":
			f.BundleID, err = v.asUint64(key)
		case "bno":
			f.BundleOffset, err = v.asUint64(key)
		case "checksum":
			f.Checksum, err = v.asSHA1(key)
		case "checksum-page":
			var b bool
			b, err = v.asBool(key)
			f.ChecksumPage = &b
		case "checksum-page-error":
			if v.kind != jsonArray {
				err = jsonErr(key, "array", v)
			} else {
				f.ChecksumPageError = string(appendJSONValue(nil, v))
			}
		case "group":
			f.Group, err = v.asOwner(key)
			has |= hasGroup
		case "mode":
			f.Mode, err = v.asMode(key)
			has |= hasMode
		case "rck":
			f.RepoChecksum, err = v.asSHA1(key)
		case "reference":
			f.Reference, err = v.asString(key)
		case "repo-size":
			f.RepoSize, err = v.asUint64(key)
			haveRepoSize = true
		case "size":
			f.Size, err = v.asUint64(key)
			haveSize = true
		case "timestamp":
			f.Timestamp, err = v.asInt64(key)
			haveTimestamp = true
		case "user":
			f.User, err = v.asOwner(key)
			has |= hasUser
		}
		return err
	})
	if err != nil {
		return f, 0, entryErr("target:file", name, err)
	}
	if !haveSize {
		return f, 0, errs.New(errs.Format, "missing size for file '%s'", name)
	}
	if !haveTimestamp {
		return f, 0, errs.New(errs.Format, "missing timestamp for file '%s'", name)
	}
	if !haveRepoSize {
		f.RepoSize = f.Size
	}
	// Keys that pgBackRest reads only together with their parent key.
	if f.BlockIncr == 0 {
		f.BlockIncrChecksum, f.BlockIncrMap = 0, 0
	}
	if f.BundleID == 0 {
		f.BundleOffset = 0
	}
	if f.ChecksumPage == nil {
		f.ChecksumPageError = ""
	}
	return f, has, nil
}

// entryErr prefixes an entry's section and key to err, keeping its code.
func entryErr(section, key string, err error) error {
	code := errs.CodeOf(err)
	if code == errs.Unknown {
		code = errs.Format
	}
	return &errs.Error{Code: code, Msg: "[" + section + "] " + key + ": " + err.Error(), Err: err}
}

// --- save -------------------------------------------------------------------

func (f *ManifestFile) appendJSON(b []byte, d *ManifestDefaults) []byte {
	var o jsonObj
	o.begin(b)
	if f.BlockIncr != 0 {
		o.u64("bi", f.BlockIncr)
		if f.BlockIncrChecksum != 0 {
			o.u64("bic", f.BlockIncrChecksum)
		}
		if f.BlockIncrMap != 0 {
			o.u64("bim", f.BlockIncrMap)
		}
	}
	if f.BundleID != 0 {
		o.u64("bni", f.BundleID)
		if f.BundleOffset != 0 {
			o.u64("bno", f.BundleOffset)
		}
	}
	if f.Size != 0 && !f.Checksum.IsZero() {
		o.digest("checksum", f.Checksum)
	}
	if f.ChecksumPage != nil {
		o.boolean("checksum-page", *f.ChecksumPage)
		if f.ChecksumPageError != "" {
			o.raw("checksum-page-error", []byte(f.ChecksumPageError))
		}
	}
	if f.Group != d.Group && f.Group.IsSet() {
		o.owner("group", f.Group)
	}
	if f.Mode != d.Mode && f.Mode != "" {
		o.str("mode", f.Mode)
	}
	if !f.RepoChecksum.IsZero() {
		o.digest("rck", f.RepoChecksum)
	}
	if f.Reference != "" {
		o.str("reference", f.Reference)
	}
	if f.RepoSize != f.Size {
		o.u64("repo-size", f.RepoSize)
	}
	o.u64("size", f.Size)
	o.i64("timestamp", f.Timestamp)
	if f.User != d.User && f.User.IsSet() {
		o.owner("user", f.User)
	}
	return o.end()
}

func appendOwnerMode(o *jsonObj, mode string, user, group Owner, d *ManifestDefaults) {
	if group != d.Group && group.IsSet() {
		o.owner("group", group)
	}
	if mode != d.Mode && mode != "" {
		o.str("mode", mode)
	}
	if user != d.User && user.IsSet() {
		o.owner("user", user)
	}
}

func putDefaults(w *iniWriter, section string, d *ManifestDefaults, withMode bool) {
	if d.Group.IsSet() {
		w.put(section, "group", d.Group.appendJSON(nil))
	}
	if withMode && d.Mode != "" {
		w.put(section, "mode", jsonw.AppendString(nil, d.Mode))
	}
	if d.User.IsSet() {
		w.put(section, "user", d.User.appendJSON(nil))
	}
}

// sortedView returns s sorted by name without modifying s (a copy is made
// only when s is not sorted). Duplicates keep the last one.
func sortedView[T any](s []T, name func(*T) string) []T {
	if sortedNoDup(s, name) {
		return s
	}
	return sortDedup(slices.Clone(s), name)
}

// Bytes returns the canonical manifest content (§2.3, §3). It does not
// modify m.
func (m *Manifest) Bytes() []byte {
	w := newIniWriter(2048 + 200*len(m.Files) + 32*len(m.Paths))
	m.render(w)
	return w.finish()
}

// Render writes what Bytes returns to out, a piece at a time (Bytes of a
// manifest of 100k files is a 20 MB buffer).
func (m *Manifest) Render(out io.Writer) error {
	w := newIniStream(out)
	m.render(w)
	return w.finishStream()
}

func (m *Manifest) render(w *iniWriter) {
	files := sortedView(m.Files, fileName)
	w.putBackrest(m.BackrestVersion)

	b := &m.Backup
	str := func(section, key, v string) { w.put(section, key, jsonw.AppendString(nil, v)) }
	if b.ArchiveStart != "" {
		str("backup", "backup-archive-start", b.ArchiveStart)
	}
	if b.ArchiveStop != "" {
		str("backup", "backup-archive-stop", b.ArchiveStop)
	}
	if b.BlockIncr {
		w.putString("backup", "backup-block-incr", "true")
	}
	if b.Bundle {
		w.putString("backup", "backup-bundle", "true")
		if b.BundleRaw {
			w.putString("backup", "backup-bundle-raw", "true")
		}
	}
	str("backup", "backup-label", b.Label)
	if b.LsnStart != "" {
		str("backup", "backup-lsn-start", b.LsnStart)
	}
	if b.LsnStop != "" {
		str("backup", "backup-lsn-stop", b.LsnStop)
	}
	if b.Prior != "" {
		str("backup", "backup-prior", b.Prior)
	}
	str("backup", "backup-reference", strings.Join(b.Reference, ","))
	w.putString("backup", "backup-timestamp-copy-start", strconv.FormatInt(b.TimestampCopyStart, 10))
	w.putString("backup", "backup-timestamp-start", strconv.FormatInt(b.TimestampStart, 10))
	w.putString("backup", "backup-timestamp-stop", strconv.FormatInt(b.TimestampStop, 10))
	str("backup", "backup-type", b.Type)

	d := &m.DB
	w.putString("backup:db", "db-catalog-version", strconv.FormatUint(uint64(d.CatalogVersion), 10))
	w.putString("backup:db", "db-control-version", strconv.FormatUint(uint64(d.ControlVersion), 10))
	w.putString("backup:db", "db-id", strconv.Itoa(max(d.ID, 0)))
	w.putString("backup:db", "db-system-id", strconv.FormatUint(d.SystemID, 10))
	str("backup:db", "db-version", d.Version)

	o := &m.Option
	boolean := func(key string, v bool) { w.putString("backup:option", key, strconv.FormatBool(v)) }
	boolean("option-archive-check", o.ArchiveCheck)
	boolean("option-archive-copy", o.ArchiveCopy)
	boolean("option-backup-standby", o.BackupStandby)
	w.putString("backup:option", "option-buffer-size", strconv.FormatUint(o.BufferSize, 10))
	boolean("option-checksum-page", o.ChecksumPage)
	boolean("option-compress", o.Compress())
	w.putString("backup:option", "option-compress-level", strconv.Itoa(o.CompressLevel))
	w.putString("backup:option", "option-compress-level-network", strconv.Itoa(o.CompressLevelNetwork))
	ct := o.CompressType
	if ct == "" {
		ct = "none"
	}
	str("backup:option", "option-compress-type", ct)
	boolean("option-delta", o.Delta)
	boolean("option-hardlink", o.Hardlink)
	boolean("option-online", o.Online)
	w.putString("backup:option", "option-process-max", strconv.Itoa(o.ProcessMax))

	var buf []byte
	for _, t := range sortedView(m.Targets, targetName) {
		var j jsonObj
		j.begin(buf[:0])
		if t.File != "" {
			j.str("file", t.File)
		}
		j.str("path", t.Path)
		if t.TablespaceID != "" {
			j.str("tablespace-id", t.TablespaceID)
			j.str("tablespace-name", t.TablespaceName)
		}
		j.str("type", t.Type)
		buf = j.end()
		w.put("backup:target", t.Name, buf)
	}

	w.putCipher(m.CipherPass)

	for _, db := range sortedView(m.Databases, databaseName) {
		var j jsonObj
		j.begin(buf[:0])
		j.u64("db-id", uint64(db.OID))
		j.u64("db-last-system-id", uint64(db.LastSystemID))
		buf = j.end()
		w.put("db", db.Name, buf)
	}

	if m.Annotation != nil {
		w.put("metadata", "annotation", appendStringMap(nil, m.Annotation))
	}

	for i := range files {
		buf = files[i].appendJSON(buf[:0], &m.FileDefault)
		w.put(manifestFileKey, files[i].Name, buf)
	}
	putDefaults(w, "target:file:default", &m.FileDefault, true)

	links := sortedView(m.Links, linkName)
	for i := range links {
		l := &links[i]
		var j jsonObj
		j.begin(buf[:0])
		j.str("destination", l.Destination)
		appendOwnerMode(&j, "", l.User, l.Group, &m.LinkDefault)
		buf = j.end()
		w.put("target:link", l.Name, buf)
	}
	if len(links) > 0 {
		putDefaults(w, "target:link:default", &m.LinkDefault, false)
	}

	for _, p := range sortedView(m.Paths, pathName) {
		var j jsonObj
		j.begin(buf[:0])
		appendOwnerMode(&j, p.Mode, p.User, p.Group, &m.PathDefault)
		buf = j.end()
		w.put("target:path", p.Name, buf)
	}
	putDefaults(w, "target:path:default", &m.PathDefault, true)
}
