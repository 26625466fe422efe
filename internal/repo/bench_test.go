package repo

import (
	"fmt"
	"io"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/filter"
	"github.com/pgbr-dev/pgbr/internal/storage/posix"
)

func bigManifest(n int) *Manifest {
	tr := true
	m := &Manifest{
		BackrestVersion: "2.45",
		Backup:          ManifestBackup{Label: "20261125-143852F", Type: BackupTypeFull, Reference: []string{"20261125-143852F"}},
		DB:              BackupDB{CatalogVersion: 202209061, ControlVersion: 1300, ID: 1, SystemID: 7712118519663905687, Version: "15"},
		Option:          ManifestOption{CompressType: "gz", Online: true, ChecksumPage: true},
		Targets:         []ManifestTarget{{Name: "pg_data", Path: "/pg", Type: "path"}},
		Paths:           []ManifestPath{{Name: "pg_data", Mode: "0700", User: Owner{Name: "postgres"}, Group: Owner{Name: "postgres"}}},
	}
	for i := n - 1; i >= 0; i-- { // reverse order: Bytes must sort
		m.Files = append(m.Files, ManifestFile{
			Name: fmt.Sprintf("pg_data/base/%d/%d", i%50, 16384+i), Size: 8192, RepoSize: 200, Timestamp: 1795617518,
			Checksum: HexDigest("587b596f04f7db9c2cad3d6b87dd2b3a05de4f35"), RepoChecksum: HexDigest("b8b3ecfaf3ed3d6865df5807d66c5fd8cde3289e"),
			ChecksumPage: &tr, Mode: "0600", User: Owner{Name: "postgres"}, Group: Owner{Name: "postgres"},
		})
	}
	_ = m.SetDefaultsFromPgData()
	return m
}

func TestManifestLarge(t *testing.T) {
	m := bigManifest(100000)
	data := m.Bytes()
	back, err := ParseManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Files) != 100000 {
		t.Fatal(len(back.Files))
	}
	if _, ok := back.FindFile("pg_data/base/7/16391"); !ok {
		t.Fatal("lookup failed")
	}
	if string(back.Bytes()) != string(data) {
		t.Fatal("round trip differs")
	}
}

func BenchmarkParseManifest100k(b *testing.B) {
	data := bigManifest(100000).Bytes()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := ParseManifest(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkManifestBytes100k(b *testing.B) {
	m := bigManifest(100000)
	m.Sort()
	for b.Loop() {
		_ = m.Bytes()
	}
}

// BenchmarkWriteManifest100k: a backup's final save without the syncs:
// the manifest and its copy written, and the gz of backup.history.
func BenchmarkWriteManifest100k(b *testing.B) {
	m := bigManifest(100000)
	m.Sort()
	st := posix.New(b.TempDir())
	for b.Loop() {
		cw, err := filter.NewCompressor(io.Discard, filter.Gz, 3)
		if err != nil {
			b.Fatal(err)
		}
		w, err := WriteManifest(b.Context(), st, "bench", m, "", cw)
		if err != nil {
			b.Fatal(err)
		}
		w.Abort()
		if err := cw.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
