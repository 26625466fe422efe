package repo

import (
	"crypto/sha1"
	"encoding/hex"
	"hash"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/jsonw"
)

// RepoFormat is the only repository format pgBackRest 2.45 reads and writes.
const RepoFormat = 5

// BackrestVersion is the pgBackRest version written into new info files.
const BackrestVersion = "2.45"

const (
	sectionBackrest   = "backrest"
	keyChecksum       = "backrest-checksum"
	keyFormat         = "backrest-format"
	keyVersion        = "backrest-version"
	sectionCipher     = "cipher"
	keyCipherPass     = "cipher-pass"
	sectionDB         = "db"
	sectionDBHistory  = "db:history"
	maxErrorLineShown = 200
)

// IniValue is one key=value line of an info file. Value is the raw JSON text
// exactly as it appears in the file.
type IniValue struct {
	Section string
	Key     string
	Value   string
}

// Ini is an info file (archive.info, backup.info, backup.manifest) as a list
// of values in file order (format spec §2.1). The backrest-checksum value is
// kept in Values when it was read from a file.
type Ini struct {
	Values []IniValue
}

// ParseIni parses an info file, verifies its backrest-checksum and, when
// present, that backrest-format is 5.
func ParseIni(data []byte) (*Ini, error) {
	ini, err := parseIniText(string(data))
	if err != nil {
		return nil, err
	}
	if err := ini.verify(); err != nil {
		return nil, err
	}
	return ini, nil
}

// ParseIniUnchecked parses an info file without verifying the checksum or
// the format (for tests and tools that repair files).
func ParseIniUnchecked(data []byte) (*Ini, error) { return parseIniText(string(data)) }

func shortLine(line string) string {
	if len(line) > maxErrorLineShown {
		return line[:maxErrorLineShown] + "..."
	}
	return line
}

// parseIniText applies the strict INI rules of §2.1. Keys and values are
// substrings of text.
func parseIniText(text string) (*Ini, error) {
	ini := &Ini{Values: make([]IniValue, 0, strings.Count(text, "\n")+1)}
	var p iniLines
	err := eachLine(text, func(line string) error {
		key, value, ok, err := p.parse(line)
		if ok {
			ini.Values = append(ini.Values, IniValue{Section: p.section, Key: key, Value: value})
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return ini, nil
}

// eachLine calls fn with each line of text, without its newline.
func eachLine(text string, fn func(line string) error) error {
	for pos := 0; pos < len(text); {
		end := strings.IndexByte(text[pos:], '\n')
		var line string
		if end < 0 {
			line = text[pos:]
			pos = len(text)
		} else {
			line = text[pos : pos+end]
			pos += end + 1
		}
		if err := fn(line); err != nil {
			return err
		}
	}
	return nil
}

// iniLines applies the strict INI rules of §2.1 to one line after the
// other.
type iniLines struct {
	section string // the current section (its own copy)
	lineNo  int
}

// parse reads one line: a key and its raw JSON value (ok), or a blank or
// section line (not ok).
func (p *iniLines) parse(line string) (key, value string, ok bool, err error) {
	p.lineNo++
	if line == "" {
		return "", "", false, nil
	}
	if line[0] == '[' && line[len(line)-1] == ']' && len(line) >= 2 {
		if line[1:len(line)-1] != p.section {
			p.section = strings.Clone(line[1 : len(line)-1])
		}
		if p.section == "" {
			return "", "", false, errs.New(errs.Format, "invalid empty section at line %d: %s", p.lineNo, shortLine(line))
		}
		return "", "", false, nil
	}
	if p.section == "" {
		return "", "", false, errs.New(errs.Format, "key/value found outside of section at line %d: %s", p.lineNo, shortLine(line))
	}
	eq := strings.IndexByte(line, '=')
	if eq < 0 {
		return "", "", false, errs.New(errs.Format, "missing '=' in key/value at line %d: %s", p.lineNo, shortLine(line))
	}
	// Retrying at every '=' is quadratic on hostile lines (many '=' inside
	// an unterminated string); bound the work far above any real line.
	budget := 64*len(line) + 1<<20
	for {
		ok, cost := validJSON(line[eq+1:])
		if ok {
			break
		}
		budget -= cost
		next := strings.IndexByte(line[eq+1:], '=')
		if next < 0 || budget < 0 {
			return "", "", false, errs.New(errs.Format, "invalid JSON value at line %d: %s", p.lineNo, shortLine(line))
		}
		eq += next + 1
	}
	if eq == 0 {
		return "", "", false, errs.New(errs.Format, "key is zero-length at line %d: %s", p.lineNo, shortLine(line))
	}
	return line[:eq], line[eq+1:], true, nil
}

// verify checks backrest-format (when present) and the checksum.
func (ini *Ini) verify() error {
	v := newIniVerifier()
	for _, x := range ini.Values {
		v.add(x.Section, x.Key, x.Value)
	}
	return v.result()
}

// iniVerifier checks backrest-format and backrest-checksum of values fed
// to it in file order.
type iniVerifier struct {
	c        *checksummer
	expected string
	found    bool
	err      error // the first bad format or checksum value
}

func newIniVerifier() *iniVerifier { return &iniVerifier{c: newChecksummer()} }

func (v *iniVerifier) add(section, key, value string) {
	if section == sectionBackrest {
		switch key {
		case keyFormat:
			jv, err := parseJSON(value)
			if err != nil {
				v.fail(errs.New(errs.Format, "expected format %d but found %s", RepoFormat, value))
			} else if jv.kind != jsonNumber || jv.s != strconv.Itoa(RepoFormat) {
				if u, err := jv.asUint64(""); err != nil || u != RepoFormat {
					v.fail(errs.New(errs.Format, "expected format %d but found %s", RepoFormat, value))
				}
			}
		case keyChecksum:
			jv, err := parseJSON(value)
			if err != nil || jv.kind != jsonString {
				v.fail(errs.New(errs.Checksum, "invalid checksum value %s", shortLine(value)))
			} else {
				v.expected, v.found = strings.Clone(jv.s), true
			}
			return // not part of the checksum
		}
	}
	v.c.add(section, key, value)
}

func (v *iniVerifier) fail(err error) {
	if v.err == nil {
		v.err = err
	}
}

func (v *iniVerifier) result() error {
	if v.err != nil {
		return v.err
	}
	actual := v.c.sum()
	if !v.found {
		return errs.New(errs.Checksum, "invalid checksum, actual '%s' but no checksum found", actual)
	}
	if v.expected != actual {
		return errs.New(errs.Checksum, "invalid checksum, actual '%s' but expected '%s'", actual, v.expected)
	}
	return nil
}

// Get returns the raw value of the last occurrence of section/key.
func (ini *Ini) Get(section, key string) (string, bool) {
	for i := len(ini.Values) - 1; i >= 0; i-- {
		if v := &ini.Values[i]; v.Section == section && v.Key == key {
			return v.Value, true
		}
	}
	return "", false
}

// Set replaces the value of section/key (every occurrence) or appends it.
func (ini *Ini) Set(section, key, value string) {
	found := false
	for i := range ini.Values {
		if v := &ini.Values[i]; v.Section == section && v.Key == key {
			v.Value = value
			found = true
		}
	}
	if !found {
		ini.Values = append(ini.Values, IniValue{Section: section, Key: key, Value: value})
	}
}

// Checksum computes backrest-checksum over the values in their current order
// (format spec §2.5), skipping [backrest] backrest-checksum.
func (ini *Ini) Checksum() string {
	h := newChecksummer()
	for _, v := range ini.Values {
		if v.Section == sectionBackrest && v.Key == keyChecksum {
			continue
		}
		h.add(v.Section, v.Key, v.Value)
	}
	return h.sum()
}

// Bytes returns the canonical serialisation (§2.3): sections ascending
// bytewise (repeated sections merged), keys ascending bytewise except
// [db:history] in numeric order, a duplicate key keeps its last value, raw
// values unchanged, and a fresh trailing checksum.
func (ini *Ini) Bytes() []byte {
	type kv struct {
		key, value string
		seq        int
	}
	bySection := map[string][]kv{}
	var sections []string
	for i, v := range ini.Values {
		if v.Section == sectionBackrest && v.Key == keyChecksum {
			continue
		}
		if _, ok := bySection[v.Section]; !ok {
			sections = append(sections, v.Section)
		}
		bySection[v.Section] = append(bySection[v.Section], kv{v.Key, v.Value, i})
	}
	slices.Sort(sections)
	w := newIniWriter(0)
	for _, s := range sections {
		kvs := bySection[s]
		cmp := strings.Compare
		if s == sectionDBHistory {
			cmp = compareHistoryKey
		}
		slices.SortStableFunc(kvs, func(a, b kv) int { return cmp(a.key, b.key) })
		for i, e := range kvs {
			if i+1 < len(kvs) && kvs[i+1].key == e.key {
				continue // a later duplicate wins
			}
			w.putString(s, e.key, e.value)
		}
	}
	return w.finish()
}

// compareHistoryKey orders [db:history] keys numerically; keys that are not
// numbers sort after numbers, bytewise.
func compareHistoryKey(a, b string) int {
	ua, ea := strconv.ParseUint(a, 10, 64)
	ub, eb := strconv.ParseUint(b, 10, 64)
	switch {
	case ea == nil && eb == nil:
		if ua != ub {
			if ua < ub {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	case ea == nil:
		return -1
	case eb == nil:
		return 1
	}
	return strings.Compare(a, b)
}

// checksummer feeds the canonical checksum text of §2.5 into SHA-1.
type checksummer struct {
	h       hash.Hash
	buf     []byte
	section string
	started bool
}

func newChecksummer() *checksummer {
	c := &checksummer{h: sha1.New(), buf: make([]byte, 0, 256)}
	c.h.Write([]byte{'{'})
	return c
}

func (c *checksummer) add(section, key, value string) {
	c.addTo(section, key)
	c.flush(append(c.buf, value...))
}

func (c *checksummer) addBytes(section, key string, value []byte) {
	c.addTo(section, key)
	c.flush(append(c.buf, value...))
}

// addTo puts the separator and key text into c.buf.
func (c *checksummer) addTo(section, key string) {
	b := c.buf[:0]
	if !c.started || section != c.section {
		if c.started {
			b = append(b, "},"...)
		}
		b = append(b, '"')
		b = append(b, section...)
		b = append(b, `":{`...)
		c.section = section
		c.started = true
	} else {
		b = append(b, ',')
	}
	b = jsonw.AppendString(b, key)
	c.buf = append(b, ':')
}

func (c *checksummer) flush(b []byte) {
	c.h.Write(b)
	if cap(b) <= 1<<16 {
		c.buf = b[:0]
	} else {
		c.buf = make([]byte, 0, 256)
	}
}

func (c *checksummer) sum() string {
	c.h.Write([]byte("}}"))
	return hex.EncodeToString(c.h.Sum(nil))
}

// iniWriter writes an info file whose values arrive in canonical order and
// computes the checksum on the way.
type iniWriter struct {
	buf     []byte
	c       *checksummer
	section string
	started bool
	// out, when set, receives buf every iniFlushSize bytes (a manifest of
	// 100k files is 20 MB); err is its first error.
	out io.Writer
	err error
}

const iniFlushSize = 64 << 10

func newIniWriter(sizeHint int) *iniWriter {
	return &iniWriter{buf: make([]byte, 0, sizeHint+256), c: newChecksummer()}
}

// newIniStream writes to out as it goes; finishStream ends it.
func newIniStream(out io.Writer) *iniWriter {
	w := newIniWriter(iniFlushSize + 4096)
	w.out = out
	return w
}

func (w *iniWriter) put(section, key string, value []byte) {
	w.head(section, key)
	w.buf = append(w.buf, value...)
	w.buf = append(w.buf, '\n')
	w.c.addBytes(section, key, value)
	w.flushFull()
}

func (w *iniWriter) putString(section, key, value string) {
	w.head(section, key)
	w.buf = append(w.buf, value...)
	w.buf = append(w.buf, '\n')
	w.c.add(section, key, value)
	w.flushFull()
}

func (w *iniWriter) flushFull() {
	if w.out != nil && len(w.buf) >= iniFlushSize {
		w.flush()
	}
}

func (w *iniWriter) flush() {
	if w.err == nil && len(w.buf) > 0 {
		_, w.err = w.out.Write(w.buf)
	}
	w.buf = w.buf[:0]
}

func (w *iniWriter) head(section, key string) {
	if section != w.section || !w.started {
		if w.started {
			w.buf = append(w.buf, '\n')
		}
		w.buf = append(w.buf, '[')
		w.buf = append(w.buf, section...)
		w.buf = append(w.buf, "]\n"...)
		w.section = section
		w.started = true
	}
	w.buf = append(w.buf, key...)
	w.buf = append(w.buf, '=')
}

// finishStream writes the checksum section and what is left to out.
func (w *iniWriter) finishStream() error {
	w.finish()
	w.flush()
	return w.err
}

// finish appends the checksum section and returns the file bytes.
func (w *iniWriter) finish() []byte {
	sum := w.c.sum()
	if w.started {
		w.buf = append(w.buf, '\n')
	}
	w.buf = append(w.buf, "[backrest]\nbackrest-checksum=\""...)
	w.buf = append(w.buf, sum...)
	w.buf = append(w.buf, "\"\n"...)
	return w.buf
}

// putBackrest writes the leading [backrest] section.
func (w *iniWriter) putBackrest(version string) {
	if version == "" {
		version = BackrestVersion
	}
	w.putString(sectionBackrest, keyFormat, strconv.Itoa(RepoFormat))
	w.put(sectionBackrest, keyVersion, jsonw.AppendString(nil, version))
}

// putCipher writes [cipher] when pass is set.
func (w *iniWriter) putCipher(pass string) {
	if pass != "" {
		w.put(sectionCipher, keyCipherPass, jsonw.AppendString(nil, pass))
	}
}

// infoHeader holds what every typed info file reads from [backrest] and
// [cipher].
type infoHeader struct {
	version    string
	cipherPass string
}

// headerString reads [backrest] backrest-version (a string) or [cipher]
// cipher-pass (a string or null).
func headerString(v IniValue, orNull bool) (string, error) {
	jv, err := parseJSON(v.Value)
	if err != nil {
		return "", err
	}
	where := "[" + v.Section + "] " + v.Key
	if orNull {
		return jv.asStringOrNull(where)
	}
	return jv.asString(where)
}

// readHeader extracts backrest-version and cipher-pass.
func readHeader(ini *Ini) (infoHeader, error) {
	var h infoHeader
	var err error
	for _, v := range ini.Values {
		switch {
		case v.Section == sectionBackrest && v.Key == keyVersion:
			h.version, err = headerString(v, false)
		case v.Section == sectionCipher && v.Key == keyCipherPass:
			h.cipherPass, err = headerString(v, true)
		}
		if err != nil {
			return h, err
		}
	}
	return h, nil
}
