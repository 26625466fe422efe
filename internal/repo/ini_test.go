package repo

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pgbr-dev/pgbr/internal/errs"
)

func TestChecksumWorkedExample(t *testing.T) {
	data, err := os.ReadFile("testdata/archive.info")
	if err != nil {
		t.Fatal(err)
	}
	ini, err := ParseIni(data)
	if err != nil {
		t.Fatalf("ParseIni: %v", err)
	}
	if got, want := ini.Checksum(), "dbabca0b7e8f9ab1a7290d6dfc08da88b459898d"; got != want {
		t.Fatalf("checksum %s, want %s", got, want)
	}
	if got := ini.Bytes(); !bytes.Equal(got, data) {
		t.Fatalf("canonical bytes differ:\n%s\nwant\n%s", got, data)
	}
}

func TestChecksumText(t *testing.T) {
	// The hashed text must be exactly the §2.5 example.
	want := `{"backrest":{"backrest-format":5,"backrest-version":"2.45"},"db":{"db-id":1,"db-system-id":7712118519663905687,"db-version":"15"},"db:history":{"1":{"db-id":7712118519663905687,"db-version":"15"}}}`
	if len(want) != 197 {
		t.Fatalf("example length %d", len(want))
	}
	ini := &Ini{Values: []IniValue{
		{"backrest", "backrest-format", "5"},
		{"backrest", "backrest-version", `"2.45"`},
		{"db", "db-id", "1"},
		{"db", "db-system-id", "7712118519663905687"},
		{"db", "db-version", `"15"`},
		{"db:history", "1", `{"db-id":7712118519663905687,"db-version":"15"}`},
		{"backrest", "backrest-checksum", `"x"`},
	}}
	if got := ini.Checksum(); got != "dbabca0b7e8f9ab1a7290d6dfc08da88b459898d" {
		t.Fatalf("checksum %s", got)
	}
}

func TestParseIniErrors(t *testing.T) {
	good, _ := os.ReadFile("testdata/archive.info")
	tests := []struct {
		name string
		data string
		code errs.Code
		msg  string
	}{
		{"empty", "", errs.Checksum, "invalid checksum, actual '"},
		{"no checksum", "[backrest]\nbackrest-format=5\n", errs.Checksum, "but no checksum found"},
		{"mismatch", strings.Replace(string(good), `"15"`, `"16"`, 1), errs.Checksum, "invalid checksum, actual '"},
		{"format", strings.Replace(string(good), "backrest-format=5", "backrest-format=6", 1), errs.Format, "expected format 5 but found 6"},
		{"empty section", "[]\n", errs.Format, "invalid empty section at line 1"},
		{"outside section", "a=1\n", errs.Format, "key/value found outside of section at line 1"},
		{"missing eq", "[a]\nabc\n", errs.Format, "missing '=' in key/value at line 2"},
		{"bad json", "[a]\nk=x\n", errs.Format, "invalid JSON value at line 2"},
		{"comment", "[a]\n# comment\n", errs.Format, "missing '='"},
		{"zero key", "[a]\n=1\n", errs.Format, "key is zero-length at line 2"},
		{"cr", "[a]\nk=x\r\n", errs.Format, "invalid JSON value"},
		{"float", "[a]\nk=1.5\n", errs.Format, "invalid JSON value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseIni([]byte(tt.data))
			if err == nil {
				t.Fatal("no error")
			}
			if errs.CodeOf(err) != tt.code {
				t.Fatalf("code %d (%v), want %d", errs.CodeOf(err), err, tt.code)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error %q does not contain %q", err, tt.msg)
			}
		})
	}
}

func TestParseIniKeys(t *testing.T) {
	// Keys may contain '='; the key ends at the first '=' after which the rest is valid JSON.
	data := "[target:file]\npg_data/we=ird \"q\".txt={\"size\":1}\npg_data/a=1={\"x\":\"=\"}\nk==1\n[x]y]\nz=\"a=b\"\n"
	ini, err := ParseIniUnchecked([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	want := []IniValue{
		{"target:file", `pg_data/we=ird "q".txt`, `{"size":1}`},
		{"target:file", "pg_data/a=1", `{"x":"="}`},
		{"target:file", "k=", "1"},
		{"x]y", "z", `"a=b"`},
	}
	if len(ini.Values) != len(want) {
		t.Fatalf("got %q", ini.Values)
	}
	for i := range want {
		if ini.Values[i] != want[i] {
			t.Errorf("value %d = %q, want %q", i, ini.Values[i], want[i])
		}
	}
}

func TestIniCanonicalOrder(t *testing.T) {
	ini := &Ini{Values: []IniValue{
		{"db:history", "10", "{}"},
		{"db:history", "2", "{}"},
		{"db", "b", "1"},
		{"backrest", "backrest-format", "5"},
		{"db", "a", "1"},
		{"db", "a", "2"},
		{"db:history", "1", "{}"},
	}}
	got := string(ini.Bytes())
	wantPrefix := "[backrest]\nbackrest-format=5\n\n[db]\na=2\nb=1\n\n[db:history]\n1={}\n2={}\n10={}\n\n[backrest]\nbackrest-checksum=\""
	if !strings.HasPrefix(got, wantPrefix) {
		t.Fatalf("got\n%s", got)
	}
	if _, err := ParseIni([]byte(got)); err != nil {
		t.Fatalf("reparse: %v", err)
	}
}

func TestKeyEscapingInChecksum(t *testing.T) {
	// A key with a tab is hashed JSON-escaped; the file keeps it raw.
	ini := &Ini{Values: []IniValue{{"target:file", "pg_data/a\tb", `{"size":0}`}}}
	out := ini.Bytes()
	if !bytes.Contains(out, []byte("pg_data/a\tb={")) {
		t.Fatalf("raw key not kept: %q", out)
	}
	c := newChecksummer()
	c.add("target:file", "pg_data/a\tb", `{"size":0}`)
	_ = c
	back, err := ParseIni(out)
	if err != nil {
		t.Fatal(err)
	}
	if back.Values[0].Key != "pg_data/a\tb" {
		t.Fatalf("key %q", back.Values[0].Key)
	}
}

func TestParseIniPathologicalLine(t *testing.T) {
	// Many '=' inside an unterminated string: must fail fast, not quadratically.
	line := "[a]\nk=\"" + strings.Repeat("=", 200000) + "\n"
	start := time.Now()
	_, err := ParseIniUnchecked([]byte(line))
	if errs.CodeOf(err) != errs.Format {
		t.Fatalf("%v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
	// Many '=' that do resolve stay accepted.
	key := strings.Repeat("a=", 1000)
	ini, err := ParseIniUnchecked([]byte("[a]\n" + key + "={}\n"))
	if err != nil || ini.Values[0].Key != key {
		t.Fatalf("%v", err)
	}
}
