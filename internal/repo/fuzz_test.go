package repo

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

func addSeeds(f *testing.F, names ...string) {
	for _, n := range names {
		b, err := os.ReadFile("testdata/" + n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzParseInfo: any bytes give no panic; whatever parses re-serialises to
// a file that verifies and is stable.
func FuzzParseInfo(f *testing.F) {
	addSeeds(f, "archive.info", "backup.info.tmpl", "manifest.tmpl")
	f.Add([]byte("[a]\nk=1\n[b]\nx=y={\"a\":[1,{\"b\":null}]}\n"))
	f.Add([]byte("[db:history]\n10={}\n2={}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ParseIni(data)
		ini, err := ParseIniUnchecked(data)
		if err != nil {
			return
		}
		out := ini.Bytes()
		back, err := ParseIni(out)
		if err != nil {
			t.Fatalf("canonical output does not parse: %v\n%q", err, out)
		}
		if out2 := back.Bytes(); !bytes.Equal(out, out2) {
			t.Fatalf("unstable:\n%q\n%q", out, out2)
		}
		// Typed loaders on the verified canonical text.
		if a, err := archiveInfoFromIni(back); err == nil {
			b1 := a.Bytes()
			a2, err := ParseArchiveInfo(b1)
			if err != nil {
				t.Fatalf("archive.info re-parse: %v\n%q", err, b1)
			}
			if b2 := a2.Bytes(); !bytes.Equal(b1, b2) {
				t.Fatalf("archive.info unstable:\n%q\n%q", b1, b2)
			}
		}
		if b, err := backupInfoFromIni(back); err == nil {
			b1 := b.Bytes()
			bi2, err := ParseBackupInfo(b1)
			if err != nil {
				t.Fatalf("backup.info re-parse: %v\n%q", err, b1)
			}
			if b2 := bi2.Bytes(); !bytes.Equal(b1, b2) {
				t.Fatalf("backup.info unstable:\n%q\n%q", b1, b2)
			}
		}
	})
}

// FuzzParseManifest: no panic; a manifest that parses (checksum not
// required, so mutations get past it) re-serialises to bytes that parse
// again and serialise identically.
func FuzzParseManifest(f *testing.F) {
	addSeeds(f, "manifest.tmpl")
	b, err := os.ReadFile("testdata/manifest.tmpl")
	if err != nil {
		f.Fatal(err)
	}
	s := string(b)
	f.Add([]byte(strings.Replace(s, "[target:file]\n", "[target:file]\npg_data/we=ird \"q\".txt={\"checksum\":\"86f7e437faa5a7fce15d1ddcb9eaeaea377667b8\",\"checksum-page\":false,\"checksum-page-error\":[[3,5],10],\"group\":false,\"mode\":\"0644\",\"size\":1,\"timestamp\":1}\n", 1)))
	f.Add([]byte(strings.Replace(s, "[backup]\n", "[backup]\nbackup-bundle=true\nbackup-block-incr=true\n", 1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ParseManifest(data)
		ini, err := ParseIniUnchecked(data)
		if err != nil {
			return
		}
		m, err := manifestFromIni(ini)
		if err != nil {
			return
		}
		_ = NewBackupInfoEntry(m)
		_ = m.Validate(true)
		for i := range m.Files {
			_, _ = m.Files[i].PageErrors()
			_ = m.FileRepoPath(&m.Files[i])
		}
		b1 := m.Bytes()
		m2, err := ParseManifest(b1)
		if err != nil {
			t.Fatalf("re-parse: %v\n%s", err, b1)
		}
		if b2 := m2.Bytes(); !bytes.Equal(b1, b2) {
			t.Fatalf("unstable:\n%s\n---\n%s", b1, b2)
		}
	})
}

// FuzzArchiveFileName: name helpers never panic and agree with each other.
func FuzzArchiveFileName(f *testing.F) {
	sha := "f54245a217f038118ec662de456d45bfe957fff3"
	for _, s := range []string{
		"000000010000000000000003-" + sha + ".gz", "00000002000000000000002F.partial-" + sha,
		"00000002.history", "000000010000000000000003.00000028.backup", "000000010000000000000003",
		"20261125-143852F_20261125-143902D", "", "-", "0000000100000000000000:3-" + sha + ".xz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		seg, s, ext, ok := ParseStoredSegment(name)
		if ok {
			if !IsSegment(seg) {
				t.Fatalf("%q: segment %q not a segment", name, seg)
			}
			if got := StoredSegmentName(seg, s, CompressTypeOfExt(ext)); got != name {
				t.Fatalf("%q: rebuilt %q", name, got)
			}
			if strings.HasSuffix(seg, ".partial") != IsPartial(seg) {
				t.Fatalf("%q: partial mismatch", name)
			}
		}
		dir := ArchiveSegmentDir("s", "15-1", name)
		if IsSegment(name) && !strings.HasSuffix(dir, "/"+name[:16]) {
			t.Fatalf("%q: dir %q", name, dir)
		}
		_ = IsHistoryFile(name)
		if typ := LabelType(name); typ != "" {
			if l, err := NewLabel(typ, name, timeOfLabel(), nil); err != nil || LabelType(l) != typ {
				t.Fatalf("%q: NewLabel %q %v", name, l, err)
			}
		}
		_ = HistoryManifestPath("s", name)
	})
}

func timeOfLabel() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
