package repo

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

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
