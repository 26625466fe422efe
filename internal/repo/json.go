package repo

import (
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/jsonw"
)

// This file holds the JSON dialect of pgBackRest info files (format spec §2.2).
//
// Writer: compact, object keys in ascending bytewise order (callers emit
// keys in order; generic objects are sorted), only " \ \n \r \t \b \f are
// escaped, every other byte is written raw.
//
// Reader: standard JSON except that numbers are integers only (an optional
// '-' followed by digits, as pgBackRest reads them) and raw control
// characters are allowed inside strings (the writer emits them raw). A NUL
// byte is never valid. Integers keep their text, so uint64 values never go
// through float64.

// jsonKind is the type of a decoded JSON value.
type jsonKind uint8

const (
	jsonNull jsonKind = iota
	jsonBool
	jsonNumber
	jsonString
	jsonArray
	jsonObject
)

func (k jsonKind) String() string {
	switch k {
	case jsonNull:
		return "null"
	case jsonBool:
		return "boolean"
	case jsonNumber:
		return "number"
	case jsonString:
		return "string"
	case jsonArray:
		return "array"
	default:
		return "object"
	}
}

// jsonValue is a decoded JSON value. For numbers s holds the literal text.
type jsonValue struct {
	kind jsonKind
	b    bool
	s    string
	arr  []jsonValue
	obj  []jsonMember
}

type jsonMember struct {
	key string
	val jsonValue
}

// maxJSONDepth bounds nesting so hostile input cannot exhaust the stack.
const maxJSONDepth = 512

type jsonParser struct {
	s     string
	i     int
	depth int
	err   string
}

func (p *jsonParser) fail(msg string) {
	if p.err == "" {
		at := p.s[min(p.i, len(p.s)):]
		if len(at) > 40 {
			at = at[:40] + "..."
		}
		p.err = msg + " at: " + at
	}
}

func (p *jsonParser) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// value parses one value at p.i. With build false nothing is allocated and
// the returned value is meaningless (validation only).
func (p *jsonParser) value(build bool) (v jsonValue) {
	p.ws()
	if p.i >= len(p.s) {
		p.fail("expected data")
		return
	}
	switch c := p.s[p.i]; {
	case c == '"':
		s, ok := p.str(build)
		if !ok {
			return
		}
		return jsonValue{kind: jsonString, s: s}
	case c == '-' || (c >= '0' && c <= '9'):
		start := p.i
		if c == '-' {
			p.i++
		}
		d := p.i
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
		}
		if p.i == d {
			p.fail("no digits found")
			return
		}
		if p.i-d > 40 {
			p.fail("invalid number")
			return
		}
		return jsonValue{kind: jsonNumber, s: p.s[start:p.i]}
	case c == 't':
		if strings.HasPrefix(p.s[p.i:], "true") {
			p.i += 4
			return jsonValue{kind: jsonBool, b: true}
		}
	case c == 'f':
		if strings.HasPrefix(p.s[p.i:], "false") {
			p.i += 5
			return jsonValue{kind: jsonBool}
		}
	case c == 'n':
		if strings.HasPrefix(p.s[p.i:], "null") {
			p.i += 4
			return jsonValue{kind: jsonNull}
		}
	case c == '[':
		p.depth++
		if p.depth > maxJSONDepth {
			p.fail("nesting too deep")
			return
		}
		p.i++
		v.kind = jsonArray
		p.ws()
		if p.i < len(p.s) && p.s[p.i] == ']' {
			p.i++
			p.depth--
			return
		}
		for {
			e := p.value(build)
			if p.err != "" {
				return
			}
			if build {
				v.arr = append(v.arr, e)
			}
			p.ws()
			if p.i < len(p.s) && p.s[p.i] == ',' {
				p.i++
				continue
			}
			if p.i < len(p.s) && p.s[p.i] == ']' {
				p.i++
				p.depth--
				return
			}
			p.fail("expected ',' or ']'")
			return
		}
	case c == '{':
		p.depth++
		if p.depth > maxJSONDepth {
			p.fail("nesting too deep")
			return
		}
		p.i++
		v.kind = jsonObject
		p.ws()
		if p.i < len(p.s) && p.s[p.i] == '}' {
			p.i++
			p.depth--
			return
		}
		for {
			p.ws()
			if p.i >= len(p.s) || p.s[p.i] != '"' {
				p.fail("expected object key")
				return
			}
			k, ok := p.str(build)
			if !ok {
				return
			}
			p.ws()
			if p.i >= len(p.s) || p.s[p.i] != ':' {
				p.fail("expected ':' after key")
				return
			}
			p.i++
			e := p.value(build)
			if p.err != "" {
				return
			}
			if build {
				v.obj = append(v.obj, jsonMember{key: k, val: e})
			}
			p.ws()
			if p.i < len(p.s) && p.s[p.i] == ',' {
				p.i++
				continue
			}
			if p.i < len(p.s) && p.s[p.i] == '}' {
				p.i++
				p.depth--
				return
			}
			p.fail("expected ',' or '}'")
			return
		}
	}
	p.fail("invalid value")
	return
}

func hexVal(c byte) rune {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0')
	case c >= 'a' && c <= 'f':
		return rune(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return rune(c-'A') + 10
	}
	return -1
}

func (p *jsonParser) hex4(at int) rune {
	if at+4 > len(p.s) {
		return -1
	}
	var r rune
	for k := 0; k < 4; k++ {
		h := hexVal(p.s[at+k])
		if h < 0 {
			return -1
		}
		r = r<<4 | h
	}
	return r
}

// str parses a string starting at the opening quote. Strings without escapes
// are returned as substrings of the input (no allocation).
func (p *jsonParser) str(build bool) (string, bool) {
	p.i++ // opening quote
	start := p.i
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c == '"' {
			p.i++
			return p.s[start : p.i-1], true
		}
		if c == '\\' {
			break
		}
		if c == 0 {
			p.fail("NUL byte in string")
			return "", false
		}
		p.i++
	}
	if p.i >= len(p.s) {
		p.fail("unterminated string")
		return "", false
	}
	// Slow path with escapes.
	var sb []byte
	if build {
		sb = append(sb, p.s[start:p.i]...)
	}
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return string(sb), true
		case c == 0:
			p.fail("NUL byte in string")
			return "", false
		case c != '\\':
			if build {
				sb = append(sb, c)
			}
			p.i++
			continue
		}
		// escape
		if p.i+1 >= len(p.s) {
			p.fail("unterminated escape")
			return "", false
		}
		e := p.s[p.i+1]
		p.i += 2
		var out byte
		switch e {
		case '"', '\\', '/':
			out = e
		case 'n':
			out = '\n'
		case 'r':
			out = '\r'
		case 't':
			out = '\t'
		case 'b':
			out = '\b'
		case 'f':
			out = '\f'
		case 'u':
			r := p.hex4(p.i)
			if r < 0 {
				p.i -= 2
				p.fail("invalid unicode escape")
				return "", false
			}
			p.i += 4
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if p.i+1 < len(p.s) && p.s[p.i] == '\\' && p.s[p.i+1] == 'u' {
					r2 = p.hex4(p.i + 2)
				}
				if dec := utf16.DecodeRune(r, r2); r2 >= 0 && dec != utf8.RuneError {
					r = dec
					p.i += 6
				} else {
					r = utf8.RuneError
				}
			}
			if r == 0 {
				p.fail("NUL byte in string")
				return "", false
			}
			if build {
				sb = utf8.AppendRune(sb, r)
			}
			continue
		default:
			p.i -= 2
			p.fail("invalid escape character")
			return "", false
		}
		if build {
			sb = append(sb, out)
		}
	}
	p.fail("unterminated string")
	return "", false
}

// parseJSON decodes a complete JSON text (surrounding whitespace allowed).
func parseJSON(s string) (jsonValue, error) {
	p := jsonParser{s: s}
	v := p.value(true)
	if p.err == "" {
		p.ws()
		if p.i != len(p.s) {
			p.fail("characters after JSON")
		}
	}
	if p.err != "" {
		return jsonValue{}, errs.New(errs.JSONFormat, "%s", p.err)
	}
	return v, nil
}

// validJSON reports whether s is one complete JSON text, without
// allocating, and how many bytes it examined.
func validJSON(s string) (bool, int) {
	p := jsonParser{s: s}
	p.value(false)
	if p.err != "" {
		return false, p.i + 1
	}
	p.ws()
	return p.i == len(p.s), p.i + 1
}

// --- encoding -------------------------------------------------------------

// appendJSONValue appends v in canonical form: compact, object keys sorted
// ascending bytewise (duplicate keys: the last one wins), numbers as parsed
// decimal text normalised where they fit 64 bits.
func appendJSONValue(b []byte, v *jsonValue) []byte {
	switch v.kind {
	case jsonNull:
		return append(b, "null"...)
	case jsonBool:
		return strconv.AppendBool(b, v.b)
	case jsonNumber:
		return appendJSONNumber(b, v.s)
	case jsonString:
		return jsonw.AppendString(b, v.s)
	case jsonArray:
		b = append(b, '[')
		for i := range v.arr {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONValue(b, &v.arr[i])
		}
		return append(b, ']')
	default:
		m := canonicalMembers(v.obj)
		b = append(b, '{')
		for i := range m {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonw.AppendString(b, m[i].key)
			b = append(b, ':')
			b = appendJSONValue(b, &m[i].val)
		}
		return append(b, '}')
	}
}

// canonicalMembers returns the members sorted by key with duplicates
// removed (last wins). The input is not modified.
func canonicalMembers(obj []jsonMember) []jsonMember {
	if len(obj) < 2 {
		return obj
	}
	m := slices.Clone(obj)
	slices.SortStableFunc(m, func(a, b jsonMember) int { return strings.Compare(a.key, b.key) })
	out := m[:0]
	for i := range m {
		if i+1 < len(m) && m[i+1].key == m[i].key {
			continue
		}
		out = append(out, m[i])
	}
	return out
}

func appendJSONNumber(b []byte, s string) []byte {
	if u, err := strconv.ParseUint(s, 10, 64); err == nil {
		return strconv.AppendUint(b, u, 10)
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return strconv.AppendInt(b, n, 10)
	}
	// Out of 64-bit range: keep the digits, dropping leading zeros.
	neg := strings.HasPrefix(s, "-")
	d := strings.TrimLeft(strings.TrimPrefix(s, "-"), "0")
	if d == "" {
		return append(b, '0')
	}
	if neg {
		b = append(b, '-')
	}
	return append(b, d...)
}

// jsonObj is keyed shorthand over jsonw.Writer for one flat object:
// begin, then key/value pairs in ascending key order, then end.
type jsonObj struct{ w jsonw.Writer }

func (o *jsonObj) begin(b []byte) {
	o.w = jsonw.Writer{B: b}
	o.w.Obj()
}

func (o *jsonObj) str(k, v string)          { o.w.Key(k).Str(v) }
func (o *jsonObj) strOrNull(k, v string)    { o.w.Key(k).StrOrNull(v) }
func (o *jsonObj) u64(k string, v uint64)   { o.w.Key(k).Uint(v) }
func (o *jsonObj) i64(k string, v int64)    { o.w.Key(k).Int(v) }
func (o *jsonObj) boolean(k string, v bool) { o.w.Key(k).Bool(v) }
func (o *jsonObj) raw(k string, v []byte)   { o.w.Key(k).Raw(v) }

// digest writes a SHA-1 as a string of hex digits.
func (o *jsonObj) digest(k string, d Digest) {
	var b [2 + 2*len(d)]byte
	b[0], b[len(b)-1] = '"', '"'
	hex.Encode(b[1:len(b)-1], d[:])
	o.w.Key(k).Raw(b[:])
}

// owner writes a user or group: a name, or false for "no name".
func (o *jsonObj) owner(k string, v Owner) {
	if v.None {
		o.w.Key(k).Bool(false)
		return
	}
	o.w.Key(k).Str(v.Name)
}

func (o *jsonObj) end() []byte { o.w.EndObj(); return o.w.B }

// appendStringMap appends a JSON object of strings with sorted keys.
func appendStringMap(b []byte, m map[string]string) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var o jsonObj
	o.begin(b)
	for _, k := range keys {
		o.str(k, m[k])
	}
	return o.end()
}

func appendStringList(b []byte, l []string) []byte {
	b = append(b, '[')
	for i, s := range l {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonw.AppendString(b, s)
	}
	return append(b, ']')
}

// --- typed access ---------------------------------------------------------

// jsonErr builds the error for a value of the wrong type.
func jsonErr(where string, want string, v *jsonValue) error {
	return errs.New(errs.JSONFormat, "%s: expected %s but found %s", where, want, v.kind)
}

func (v *jsonValue) asString(where string) (string, error) {
	if v.kind != jsonString {
		return "", jsonErr(where, "string", v)
	}
	return v.s, nil
}

// asStringOrNull returns "" for null.
func (v *jsonValue) asStringOrNull(where string) (string, error) {
	if v.kind == jsonNull {
		return "", nil
	}
	return v.asString(where)
}

func (v *jsonValue) asBool(where string) (bool, error) {
	if v.kind != jsonBool {
		return false, jsonErr(where, "boolean", v)
	}
	return v.b, nil
}

func (v *jsonValue) asUint64(where string) (uint64, error) {
	if v.kind != jsonNumber {
		return 0, jsonErr(where, "unsigned integer", v)
	}
	u, err := strconv.ParseUint(v.s, 10, 64)
	if err != nil {
		return 0, errs.New(errs.JSONFormat, "%s: invalid unsigned integer '%s'", where, v.s)
	}
	return u, nil
}

func (v *jsonValue) asUint32(where string) (uint32, error) {
	u, err := v.asUint64(where)
	if err != nil {
		return 0, err
	}
	if u > 1<<32-1 {
		return 0, errs.New(errs.JSONFormat, "%s: value %d out of range", where, u)
	}
	return uint32(u), nil
}

func (v *jsonValue) asInt64(where string) (int64, error) {
	if v.kind != jsonNumber {
		return 0, jsonErr(where, "integer", v)
	}
	n, err := strconv.ParseInt(v.s, 10, 64)
	if err != nil {
		return 0, errs.New(errs.JSONFormat, "%s: invalid integer '%s'", where, v.s)
	}
	return n, nil
}

// asInt returns a non-negative int that fits 32 bits (ids).
func (v *jsonValue) asInt(where string) (int, error) {
	u, err := v.asUint32(where)
	return int(u), err
}

func (v *jsonValue) asStringMap(where string) (map[string]string, error) {
	if v.kind != jsonObject {
		return nil, jsonErr(where, "object", v)
	}
	m := make(map[string]string, len(v.obj))
	for i := range v.obj {
		s, err := v.obj[i].val.asString(where + " '" + v.obj[i].key + "'")
		if err != nil {
			return nil, err
		}
		m[v.obj[i].key] = s
	}
	return m, nil
}

func (v *jsonValue) asStringList(where string) ([]string, error) {
	if v.kind != jsonArray {
		return nil, jsonErr(where, "array", v)
	}
	l := make([]string, 0, len(v.arr))
	for i := range v.arr {
		s, err := v.arr[i].asString(where)
		if err != nil {
			return nil, err
		}
		l = append(l, s)
	}
	return l, nil
}

// parseObject decodes s and requires an object.
func parseObject(s, where string) (*jsonValue, error) {
	v, err := parseJSON(s)
	if err != nil {
		return nil, errs.Wrap(errs.JSONFormat, err, "%s", where)
	}
	if v.kind != jsonObject {
		return nil, jsonErr(where, "object", &v)
	}
	return &v, nil
}

// iterObject decodes s, which must be a JSON object, calling fn for each
// member in order without building the object (members are small scalars
// in the hot paths: manifest file, path and link entries).
func iterObject(s string, fn func(key string, v *jsonValue) error) error {
	p := jsonParser{s: s}
	p.ws()
	if p.i >= len(p.s) || p.s[p.i] != '{' {
		v, err := parseJSON(s)
		if err != nil {
			return err
		}
		return jsonErr("value", "object", &v)
	}
	p.i++
	p.depth = 1
	var v jsonValue // reused: one allocation per object, not per member
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
	} else {
		for {
			p.ws()
			if p.i >= len(p.s) || p.s[p.i] != '"' {
				p.fail("expected object key")
				break
			}
			k, ok := p.str(true)
			if !ok {
				break
			}
			p.ws()
			if p.i >= len(p.s) || p.s[p.i] != ':' {
				p.fail("expected ':' after key")
				break
			}
			p.i++
			v = p.value(true)
			if p.err != "" {
				break
			}
			if err := fn(k, &v); err != nil {
				return err
			}
			p.ws()
			if p.i < len(p.s) && p.s[p.i] == ',' {
				p.i++
				continue
			}
			if p.i < len(p.s) && p.s[p.i] == '}' {
				p.i++
				break
			}
			p.fail("expected ',' or '}'")
			break
		}
	}
	if p.err == "" {
		p.ws()
		if p.i != len(p.s) {
			p.fail("characters after JSON")
		}
	}
	if p.err != "" {
		return errs.New(errs.JSONFormat, "%s", p.err)
	}
	return nil
}
