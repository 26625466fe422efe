package repo

import (
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/errs"
)

// streamed collects what a FileSource yields, without the mode, user and
// group a streamed entry does not carry.
func streamed(t *testing.T, files FileSource) []ManifestFile {
	t.Helper()
	var out []ManifestFile
	err := files(func(f *ManifestFile) error {
		c := *f
		c.Name = strings.Clone(c.Name)
		c.ChecksumPageError = strings.Clone(c.ChecksumPageError)
		c.Reference = strings.Clone(c.Reference)
		c.Mode, c.User, c.Group = "", Owner{}, Owner{}
		out = append(out, c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// contentOf is m's files without mode, user and group.
func contentOf(m *Manifest) []ManifestFile {
	out := make([]ManifestFile, len(m.Files))
	for i, f := range m.Files {
		f.Mode, f.User, f.Group = "", Owner{}, Owner{}
		out[i] = f
	}
	return out
}

// headOf is m without its files.
func headOf(m *Manifest) Manifest {
	h := *m
	h.Files = nil
	return h
}

// TestLoadManifestHead: the head of a manifest is the manifest without its
// files, and its source yields the files' content, from memory (small) and
// streamed from the file (large), plain and encrypted, as often as asked;
// a damaged main file loads and streams from the copy; a file replaced
// between the head and the stream fails the stream.
func TestLoadManifestHead(t *testing.T) {
	ctx := context.Background()
	for _, n := range []int{300, 40000} {
		m := bigManifest(n)
		m.Files[7].Reference = "20261124-101010F"
		m.Files[9].BundleID, m.Files[9].BundleOffset = 3, 4096
		m.Files[11].ChecksumPageError = "[[3,5],10]"
		for _, pass := range []string{"", "manifest-pass"} {
			st, dir := newStore(t)
			if err := SaveManifest(ctx, st, "s", m, pass); err != nil {
				t.Fatal(err)
			}
			full, err := LoadManifest(ctx, st, "s", m.Backup.Label, pass)
			if err != nil {
				t.Fatal(err)
			}
			head, files, err := LoadManifestHead(ctx, st, "s", m.Backup.Label, pass)
			if err != nil {
				t.Fatal(err)
			}
			if len(head.Files) != 0 {
				t.Fatalf("%d files, pass %q: the head holds %d files", n, pass, len(head.Files))
			}
			if h, w := headOf(head), headOf(full); !reflect.DeepEqual(h, w) {
				t.Fatalf("%d files, pass %q: head differs:\n%+v\nwant\n%+v", n, pass, h, w)
			}
			want := contentOf(full)
			for range 2 {
				if got := streamed(t, files); !reflect.DeepEqual(got, want) {
					t.Fatalf("%d files, pass %q: streamed files differ (%d, want %d)", n, pass, len(got), len(want))
				}
			}

			// A damaged main file: the head comes from the copy, and so do
			// the files.
			flipByte(t, filepath.Join(dir, BackupManifestPath("s", m.Backup.Label)))
			head, files, err = LoadManifestHead(ctx, st, "s", m.Backup.Label, pass)
			if err != nil {
				t.Fatalf("%d files, pass %q: head with a damaged main file: %v", n, pass, err)
			}
			if got := streamed(t, files); !reflect.DeepEqual(got, want) {
				t.Fatalf("%d files, pass %q: files streamed with a damaged main file differ", n, pass)
			}

			// The copy replaced by another valid manifest after the head
			// was loaded: the stream fails on the checksum.
			other := *m
			other.Files = append([]ManifestFile(nil), m.Files...)
			other.Files[0].Size++
			if err := SaveManifestCopy(ctx, st, "s", &other, pass); err != nil {
				t.Fatal(err)
			}
			err = files(func(*ManifestFile) error { return nil })
			if errs.CodeOf(err) != errs.Checksum || !strings.Contains(err.Error(), "changed while it was read") {
				t.Fatalf("%d files, pass %q: replaced manifest: %v", n, pass, err)
			}
			if head.Backup.Label != m.Backup.Label {
				t.Fatalf("%d files, pass %q: head from the copy has label %q", n, pass, head.Backup.Label)
			}
		}
	}
}

// TestLoadManifestHeadUnsorted: a manifest whose files are not in order is
// valid for pgBackRest; its head loads it whole, and its source yields the
// files sorted.
func TestLoadManifestHeadUnsorted(t *testing.T) {
	ctx := context.Background()
	m := bigManifest(50)
	ini, err := ParseIniUnchecked(m.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	var first, second = -1, -1
	for i, v := range ini.Values {
		if v.Section == manifestFileKey {
			if first < 0 {
				first = i
			} else if second < 0 {
				second = i
			}
		}
	}
	ini.Values[first], ini.Values[second] = ini.Values[second], ini.Values[first]
	w := newIniWriter(0)
	for _, v := range ini.Values {
		if v.Section != sectionBackrest || v.Key != keyChecksum {
			w.putString(v.Section, v.Key, v.Value)
		}
	}
	data := w.finish()
	st, dir := newStore(t)
	path := BackupManifestPath("s", m.Backup.Label)
	writeRaw(t, dir, path, data)
	writeRaw(t, dir, path+CopyExt, data)
	full, err := LoadManifest(ctx, st, "s", m.Backup.Label, "")
	if err != nil {
		t.Fatal(err)
	}
	head, files, err := LoadManifestHead(ctx, st, "s", m.Backup.Label, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(head.Files) != 50 {
		t.Fatalf("unsorted files: the head holds %d files, want them all", len(head.Files))
	}
	if got := streamed(t, files); !reflect.DeepEqual(got, contentOf(full)) {
		t.Fatal("unsorted files: the source differs from the sorted files")
	}
}

// TestLoadManifestHeadReferences: a manifest without backup-reference
// (before 2.42) gets its references from its files, head or whole.
func TestLoadManifestHeadReferences(t *testing.T) {
	ctx := context.Background()
	m := bigManifest(20)
	m.Backup.Label = "20261125-143852F_20261126-010101I"
	m.Backup.Type = BackupTypeIncr
	m.Files[3].Reference = "20261125-143852F"
	m.Files[5].Reference = "20261125-143852F_20261125-200000I"
	ini, err := ParseIniUnchecked(m.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	kept := ini.Values[:0]
	for _, v := range ini.Values {
		if v.Section != "backup" || v.Key != "backup-reference" {
			kept = append(kept, v)
		}
	}
	ini.Values = kept
	st, dir := newStore(t)
	writeRaw(t, dir, BackupManifestPath("s", m.Backup.Label), ini.Bytes())
	full, err := LoadManifest(ctx, st, "s", m.Backup.Label, "")
	if err != nil {
		t.Fatal(err)
	}
	head, _, err := LoadManifestHead(ctx, st, "s", m.Backup.Label, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(full.Backup.Reference) != 3 || !reflect.DeepEqual(head.Backup.Reference, full.Backup.Reference) {
		t.Fatalf("references: head %v, whole %v", head.Backup.Reference, full.Backup.Reference)
	}
}
