package jsonw

import "testing"

func TestAppendString(t *testing.T) {
	got := string(AppendString([]byte("x"), "a\"b\\c\nd\re\tf\bg\fh<i>&j\x01\x7fü/"))
	if want := `x"a\"b\\c\nd\re\tf\bg\fh<i>&j` + "\x01\x7f" + `ü/"`; got != want {
		t.Fatalf("got %q want %q", got, want)
	}
	if got := string(AppendString(nil, "")); got != `""` {
		t.Fatalf("empty: got %q", got)
	}
}

func TestWriter(t *testing.T) {
	var w Writer
	w.B = []byte("pre")
	w.Arr()
	w.Obj()
	w.Key("a").Int(-1)
	w.Key("b").Uint(18446744073709551615)
	w.Key("c").Bool(true)
	w.Key("d").StrOrNull("")
	w.Key("e").StrOrNull("v")
	w.Key("f").Arr()
	w.EndArr()
	w.Key("g").Obj()
	w.EndObj()
	w.Key("h").StrList([]string{"x", "y"})
	w.Key("i").Raw([]byte(`{"k":1}`))
	w.Key("j").Null()
	w.EndObj()
	w.Str("s")
	w.Arr()
	w.Int(1)
	w.Int(2)
	w.EndArr()
	w.EndArr()
	want := `pre[{"a":-1,"b":18446744073709551615,"c":true,"d":null,"e":"v","f":[],"g":{},` +
		`"h":["x","y"],"i":{"k":1},"j":null},"s",[1,2]]`
	if got := string(w.B); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestWriterDeep(t *testing.T) {
	var w Writer
	var want []byte
	const n = 70
	for i := 0; i < n; i++ {
		w.Arr()
		w.Int(int64(i))
		want = append(want, '[')
		want = append(want, []byte(itoa(i)+",")...)
	}
	for i := 0; i < n; i++ {
		w.Str("x")
		w.EndArr()
		if i > 0 {
			want = append(want, ',')
		}
		want = append(want, []byte(`"x"]`)...)
	}
	if string(w.B) != string(want) {
		t.Fatalf("got  %s\nwant %s", w.B, want)
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

func TestWriterNoAlloc(t *testing.T) {
	buf := make([]byte, 0, 256)
	n := testing.AllocsPerRun(100, func() {
		w := Writer{B: buf[:0]}
		w.Obj()
		w.Key("a").Arr()
		w.Int(1)
		w.Obj()
		w.EndObj()
		w.EndArr()
		w.Key("b").Str("c")
		w.EndObj()
	})
	if n != 0 {
		t.Fatalf("%v allocations per object, want 0", n)
	}
}
