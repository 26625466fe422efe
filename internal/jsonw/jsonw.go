// Package jsonw writes compact JSON the way pgBackRest does: no whitespace,
// and in strings only " \ and the control characters \n \r \t \b \f are
// escaped; every other byte (other control characters, '/', non-ASCII) is
// written raw. Both the repository files (internal/repo) and the JSON output
// of commands (internal/command) use it, so they stay byte-identical to
// pgBackRest's.
package jsonw

import "strconv"

// AppendString appends s as a JSON string with pgBackRest's escaping.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '"':
			esc = `\"`
		case '\\':
			esc = `\\`
		case '\n':
			esc = `\n`
		case '\r':
			esc = `\r`
		case '\t':
			esc = `\t`
		case '\b':
			esc = `\b`
		case '\f':
			esc = `\f`
		default:
			continue
		}
		b = append(b, s[start:i]...)
		b = append(b, esc...)
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Writer appends compact JSON to B, placing the commas itself. Callers
// write object keys in the order they want them (pgBackRest: ascending
// bytewise) with Key followed by one value.
//
//	var w jsonw.Writer
//	w.Obj()
//	w.Key("a").Int(1)
//	w.Key("b").Arr(); w.Str("x"); w.EndArr()
//	w.EndObj() // w.B == {"a":1,"b":["x"]}
type Writer struct {
	B []byte
	// Per open container, whether a value was written: bit i of first
	// for the 64 outermost levels, deep for the rest. No allocation for
	// ordinary nesting.
	depth int
	first uint64
	deep  []bool
	key   bool // a key was just written
}

func (w *Writer) sep() {
	if w.key {
		w.key = false
		return
	}
	if w.depth == 0 {
		return
	}
	if i := w.depth - 1; i < 64 {
		if w.first&(1<<i) != 0 {
			w.B = append(w.B, ',')
		}
		w.first |= 1 << i
	} else {
		if w.deep[i-64] {
			w.B = append(w.B, ',')
		}
		w.deep[i-64] = true
	}
}

func (w *Writer) open(c byte) {
	w.sep()
	w.B = append(w.B, c)
	if i := w.depth; i < 64 {
		w.first &^= 1 << i
	} else {
		w.deep = append(w.deep[:i-64], false)
	}
	w.depth++
}

func (w *Writer) close(c byte) {
	w.depth--
	w.B = append(w.B, c)
}

// Obj opens an object.
func (w *Writer) Obj() { w.open('{') }

// EndObj closes the innermost object.
func (w *Writer) EndObj() { w.close('}') }

// Arr opens an array.
func (w *Writer) Arr() { w.open('[') }

// EndArr closes the innermost array.
func (w *Writer) EndArr() { w.close(']') }

// Key writes an object key; the next call writes its value.
func (w *Writer) Key(k string) *Writer {
	w.sep()
	w.B = AppendString(w.B, k)
	w.B = append(w.B, ':')
	w.key = true
	return w
}

// Str writes a string.
func (w *Writer) Str(s string) { w.sep(); w.B = AppendString(w.B, s) }

// StrOrNull writes "" as null and any other string as a string.
func (w *Writer) StrOrNull(s string) {
	if s == "" {
		w.Null()
		return
	}
	w.Str(s)
}

// Null writes null.
func (w *Writer) Null() { w.sep(); w.B = append(w.B, "null"...) }

// Uint writes an unsigned integer.
func (w *Writer) Uint(v uint64) { w.sep(); w.B = strconv.AppendUint(w.B, v, 10) }

// Int writes a signed integer.
func (w *Writer) Int(v int64) { w.sep(); w.B = strconv.AppendInt(w.B, v, 10) }

// Bool writes true or false.
func (w *Writer) Bool(v bool) { w.sep(); w.B = strconv.AppendBool(w.B, v) }

// Raw writes v, which must be one complete JSON value, as it is.
func (w *Writer) Raw(v []byte) { w.sep(); w.B = append(w.B, v...) }

// StrList writes an array of strings.
func (w *Writer) StrList(l []string) {
	w.Arr()
	for _, s := range l {
		w.Str(s)
	}
	w.EndArr()
}
