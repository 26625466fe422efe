package repo

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"testing/iotest"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/filter"
	"github.com/pgbr-dev/pgbr/internal/storage/faulty"
)

// TestManifestDetached parses a manifest from bytes without copying them,
// then overwrites the bytes: a field still pointing into them would change.
func TestManifestDetached(t *testing.T) {
	ini, err := ParseIniUnchecked(manifestTemplate(t))
	if err != nil {
		t.Fatal(err)
	}
	ini.Set("metadata", "annotation", `{"owner":"team-a","ticket":"T-1"}`)
	ini.Set("cipher", "cipher-pass", `"a-sub-passphrase"`)
	data := ini.Bytes()
	want, err := ParseManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	if want.Annotation["owner"] != "team-a" || want.CipherPass != "a-sub-passphrase" || len(want.Links) == 0 {
		t.Fatalf("the test manifest lacks what it should check: %+v %q %d", want.Annotation, want.CipherPass, len(want.Links))
	}
	owned := bytes.Clone(data)
	got, err := parseManifestOwned(owned)
	if err != nil {
		t.Fatal(err)
	}
	for i := range owned {
		owned[i] = 'x'
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("the parsed manifest changed with the bytes it was parsed from:\n%+v\nwant\n%+v", got, want)
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatal("the parsed manifest renders differently")
	}
}

func TestStrStore(t *testing.T) {
	st := newStrStore()
	src := []byte("0600postgres")
	a := st.shared(string(src[:4]))
	b := st.shared("0600")
	if a != "0600" || b != "0600" {
		t.Fatal(a, b)
	}
	big := string(bytes.Repeat([]byte{'n'}, strBlockSize))
	var names []string
	for i := 0; i < 3000; i++ {
		names = append(names, st.copy(big[:1+i%100]))
	}
	names = append(names, st.copy(big))
	for i, n := range names[:3000] {
		if len(n) != 1+i%100 || n != big[:1+i%100] {
			t.Fatalf("copy %d: %q", i, n)
		}
	}
	if names[3000] != big || st.copy("") != "" {
		t.Fatal("large or empty copy")
	}
}

// TestSaveManifestStreamed: a manifest rendered a piece at a time is the
// same bytes as Bytes, in both files, encrypted once; a failing write or
// commit surfaces and leaves no main file behind, and the main file is
// committed only after the copy.
func TestSaveManifestStreamed(t *testing.T) {
	ctx := context.Background()
	m := bigManifest(5000)
	plain := m.Bytes()
	if len(plain) < 4*iniFlushSize {
		t.Fatalf("manifest of %d bytes: too small to be written in pieces", len(plain))
	}
	var rendered bytes.Buffer
	if err := m.Render(&rendered); err != nil || !bytes.Equal(rendered.Bytes(), plain) {
		t.Fatalf("Render differs from Bytes (%v)", err)
	}

	inner, dir := newStore(t)
	const pass = "manifest-pass"
	if err := SaveManifest(ctx, inner, "s", m, pass); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, "backup/s", m.Backup.Label)
	a, _ := os.ReadFile(filepath.Join(base, "backup.manifest"))
	c, _ := os.ReadFile(filepath.Join(base, "backup.manifest.copy"))
	if len(a) == 0 || !bytes.Equal(a, c) {
		t.Fatal("manifest and copy differ")
	}
	if dec, err := filter.DecryptBytes(a, pass); err != nil || !bytes.Equal(dec, plain) {
		t.Fatalf("decrypted manifest differs (%v)", err)
	}

	for _, c := range []struct {
		name       string
		fault      faulty.Fault
		copyExists bool
	}{
		{"no space while writing", faulty.Fault{Op: faulty.OpWrite, Kind: faulty.KindENOSPC, Nth: 7}, false},
		{"copy commit fails", faulty.Fault{Op: faulty.OpCommit, Kind: faulty.KindError, Nth: 1}, false},
		{"main commit fails", faulty.Fault{Op: faulty.OpCommit, Kind: faulty.KindError, Nth: 2}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			inner, dir := newStore(t)
			st := faulty.New(inner, 1, c.fault)
			err := SaveManifest(ctx, st, "s", m, "")
			if err == nil || len(st.Injected()) != 1 {
				t.Fatalf("err %v after %d faults", err, len(st.Injected()))
			}
			base := filepath.Join(dir, "backup/s", m.Backup.Label)
			if _, err := os.Stat(filepath.Join(base, "backup.manifest")); !os.IsNotExist(err) {
				t.Fatalf("main manifest present after a failed save (%v)", err)
			}
			cp, err := os.ReadFile(filepath.Join(base, "backup.manifest.copy"))
			if c.copyExists != (err == nil) || c.copyExists && !bytes.Equal(cp, plain) {
				t.Fatalf("copy present %v (%d bytes), want %v, whole", err == nil, len(cp), c.copyExists)
			}
			left, _ := filepath.Glob(filepath.Join(base, "*"))
			for _, f := range left {
				if filepath.Base(f) != "backup.manifest.copy" {
					t.Errorf("left behind: %s", f)
				}
			}
		})
	}
}

// TestLoadManifestStreamed: a manifest of more than streamMin bytes in a
// local file is parsed as it is read (twice), plain and encrypted, to the
// same manifest as from its bytes; a damaged one fails on its checksum
// and loads from its copy.
func TestLoadManifestStreamed(t *testing.T) {
	ctx := context.Background()
	m := bigManifest(40000)
	plain := m.Bytes()
	if len(plain) < streamMin {
		t.Fatalf("manifest of %d bytes is not streamed", len(plain))
	}
	want, err := ParseManifest(plain)
	if err != nil {
		t.Fatal(err)
	}
	for _, pass := range []string{"", "manifest-pass"} {
		st, dir := newStore(t)
		if err := SaveManifest(ctx, st, "s", m, pass); err != nil {
			t.Fatal(err)
		}
		r, err := st.Open(ctx, BackupManifestPath("s", m.Backup.Label))
		if err != nil {
			t.Fatal(err)
		}
		if n := streamable(r); n < streamMin {
			t.Fatalf("a local manifest file is not streamable (%d)", n)
		}
		r.Close()
		got, err := LoadManifest(ctx, st, "s", m.Backup.Label, pass)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("pass %q: streamed manifest differs", pass)
		}
		// Damage the main file: the copy is loaded; damage both: the
		// checksum (or decryption) error names both files.
		main := filepath.Join(dir, BackupManifestPath("s", m.Backup.Label))
		flipByte(t, main)
		if got, err := LoadManifest(ctx, st, "s", m.Backup.Label, pass); err != nil || len(got.Files) != len(want.Files) {
			t.Fatalf("pass %q: load with a damaged main file: %v", pass, err)
		}
		flipByte(t, main+CopyExt)
		_, err = LoadManifest(ctx, st, "s", m.Backup.Label, pass)
		if code := errs.CodeOf(err); err == nil || (code != errs.Checksum && code != errs.Crypto && code != errs.Format) {
			t.Fatalf("pass %q: load with both damaged: %v", pass, err)
		}
		t.Logf("pass %q, both damaged: %v", pass, err)
	}
}

// flipByte damages the file at path in its middle byte.
func flipByte(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x20
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

// TestParseManifestFromErrors: a read error of either pass surfaces.
func TestParseManifestFromErrors(t *testing.T) {
	plain := bigManifest(2000).Bytes()
	boom := errors.New("connection dropped")
	for pass := 1; pass <= 2; pass++ {
		opened := 0
		_, err := ParseManifestFrom(func() (io.Reader, error) {
			opened++
			if opened == pass {
				return io.MultiReader(bytes.NewReader(plain[:len(plain)/2]), iotest.ErrReader(boom)), nil
			}
			return bytes.NewReader(plain), nil
		})
		if !errors.Is(err, boom) {
			t.Fatalf("read error in pass %d: %v", pass, err)
		}
	}
	m, err := ParseManifestFrom(func() (io.Reader, error) { return bytes.NewReader(plain), nil })
	if err != nil || len(m.Files) != 2000 || cap(m.Files) != 2000 {
		t.Fatalf("%v, %d files in %d", err, len(m.Files), cap(m.Files))
	}
}

// TestParseManifestFromDetached: a line read from a stream lives in a
// buffer the next read reuses (one byte at a time, it is moved at every
// read); the manifest parsed from it must keep none of it.
func TestParseManifestFromDetached(t *testing.T) {
	data := manifestTemplate(t)
	want, err := ParseManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(want.Links) == 0 || len(want.Paths) == 0 || len(want.Targets) == 0 {
		t.Fatal("the template lacks links, paths or targets")
	}
	got, err := ParseManifestFrom(func() (io.Reader, error) { return iotest.OneByteReader(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("streamed manifest differs:\n%+v\nwant\n%+v", got, want)
	}
}
