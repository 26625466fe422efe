package repo

import (
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/errs"
)

// namesManifest is a small valid manifest with one tablespace and one
// pg_wal link.
func namesManifest() *Manifest {
	m := &Manifest{
		BackrestVersion: "2.45",
		Backup:          ManifestBackup{Label: "20261125-144758F", Type: BackupTypeFull, Reference: []string{"20261125-144758F"}},
		DB:              BackupDB{CatalogVersion: 202209061, ControlVersion: 1300, ID: 1, SystemID: 7712118519663905687, Version: "15"},
		Option:          ManifestOption{CompressType: "gz", Online: true},
	}
	m.Targets = []ManifestTarget{
		{Name: "pg_data", Path: "/srv/pg", Type: TargetTypePath},
		{Name: "pg_data/pg_wal", Path: "/srv/wal", Type: TargetTypeLink},
		{Name: "pg_tblspc/16384", Path: "/srv/ts1", TablespaceID: "16384", TablespaceName: "ts1", Type: TargetTypeLink},
	}
	m.Files = []ManifestFile{
		{Name: "pg_data/PG_VERSION", Size: 3, Checksum: HexDigest(EmptySHA1), Mode: "0600"},
		{Name: "pg_data/base/1/1259", Size: 3, Checksum: HexDigest(EmptySHA1), Mode: "0600"},
		{Name: "pg_tblspc/16384/PG_15_202209061/5/16393", Size: 3, Checksum: HexDigest(EmptySHA1), Mode: "0600"},
	}
	m.Paths = []ManifestPath{
		{Name: "pg_data", Mode: "0700"}, {Name: "pg_data/base", Mode: "0700"}, {Name: "pg_data/pg_tblspc", Mode: "0700"},
		{Name: "pg_data/pg_wal", Mode: "0700"}, {Name: "pg_tblspc", Mode: "0700"}, {Name: "pg_tblspc/16384", Mode: "0700"},
		{Name: "pg_tblspc/16384/PG_15_202209061", Mode: "0700"},
	}
	m.Links = []ManifestLink{
		{Name: "pg_data/pg_tblspc/16384", Destination: "/srv/ts1"},
		{Name: "pg_data/pg_wal", Destination: "/srv/wal"},
	}
	m.Sort()
	return m
}

func TestCheckNames(t *testing.T) {
	if err := namesManifest().CheckNames(); err != nil {
		t.Fatalf("valid manifest refused: %v", err)
	}
	cases := []struct {
		name string
		edit func(m *Manifest)
		want string
	}{
		{"path dotdot", func(m *Manifest) { m.Paths = append(m.Paths, ManifestPath{Name: "pg_data/../x"}) }, "'..' path component"},
		{"file dotdot", func(m *Manifest) { m.Files = append(m.Files, ManifestFile{Name: "pg_data/../../etc/cron.d/x"}) }, "'..' path component"},
		{"file dot", func(m *Manifest) { m.Files = append(m.Files, ManifestFile{Name: "pg_data/./x"}) }, "'.' path component"},
		{"file empty component", func(m *Manifest) { m.Files = append(m.Files, ManifestFile{Name: "pg_data//x"}) }, "empty path component"},
		{"file trailing slash", func(m *Manifest) { m.Files = append(m.Files, ManifestFile{Name: "pg_data/x/"}) }, "empty path component"},
		{"file absolute", func(m *Manifest) { m.Files = append(m.Files, ManifestFile{Name: "/etc/passwd"}) }, "absolute name"},
		{"file nul", func(m *Manifest) { m.Files = append(m.Files, ManifestFile{Name: "pg_data/a\x00b"}) }, "NUL"},
		{"file outside targets", func(m *Manifest) { m.Files = append(m.Files, ManifestFile{Name: "etc/x"}) }, "must start with"},
		{"file is pg_data", func(m *Manifest) { m.Files = append(m.Files, ManifestFile{Name: "pg_data"}) }, "cannot replace"},
		{"file under tablespace link", func(m *Manifest) {
			m.Files = append(m.Files, ManifestFile{Name: "pg_data/pg_tblspc/16384/x"})
		}, "under a tablespace link"},
		{"file in unknown tablespace", func(m *Manifest) {
			m.Files = append(m.Files, ManifestFile{Name: "pg_tblspc/99/PG_15_202209061/x"})
		}, "no tablespace target"},
		{"file outside version dir", func(m *Manifest) {
			m.Files = append(m.Files, ManifestFile{Name: "pg_tblspc/16384/x"})
		}, "must be in 'PG_15_202209061'"},
		{"tablespace dotdot", func(m *Manifest) {
			m.Files = append(m.Files, ManifestFile{Name: "pg_tblspc/16384/../../x"})
		}, "'..' path component"},
		{"link absolute", func(m *Manifest) { m.Links = append(m.Links, ManifestLink{Name: "/etc/x", Destination: "/tmp"}) }, "absolute name"},
		{"link dotdot", func(m *Manifest) {
			m.Links = append(m.Links, ManifestLink{Name: "pg_data/pg_tblspc/../../x", Destination: "/tmp"})
		}, "'..' path component"},
		{"tablespace link not oid", func(m *Manifest) {
			m.Links = append(m.Links, ManifestLink{Name: "pg_data/pg_tblspc/16384x", Destination: "/tmp"})
		}, "'pg_data/pg_tblspc/<oid>'"},
		{"tablespace link without target", func(m *Manifest) {
			m.Links = append(m.Links, ManifestLink{Name: "pg_data/pg_tblspc/99", Destination: "/tmp"})
		}, "no tablespace target"},
		{"link without target", func(m *Manifest) {
			m.Links = append(m.Links, ManifestLink{Name: "pg_data/pg_xact", Destination: "/tmp"})
		}, "no link target"},
		{"link outside pg_data", func(m *Manifest) { m.Links = append(m.Links, ManifestLink{Name: "x/y", Destination: "/tmp"}) }, "inside PGDATA"},
		{"tablespace target name", func(m *Manifest) {
			m.Targets = append(m.Targets, ManifestTarget{Name: "pg_tblspc/../x", Path: "/tmp", TablespaceID: "1", Type: TargetTypeLink})
		}, "'..' path component"},
		{"tablespace target not digits", func(m *Manifest) {
			m.Targets = append(m.Targets, ManifestTarget{Name: "pg_tblspc/0x1", Path: "/tmp", TablespaceID: "1", Type: TargetTypeLink})
		}, "'pg_tblspc/<oid>'"},
		{"tablespace id mismatch", func(m *Manifest) {
			m.Targets = append(m.Targets, ManifestTarget{Name: "pg_tblspc/17000", Path: "/tmp", TablespaceID: "1", Type: TargetTypeLink})
		}, "does not match"},
		{"target elsewhere", func(m *Manifest) {
			m.Targets = append(m.Targets, ManifestTarget{Name: "etc", Path: "/etc", Type: TargetTypeLink})
		}, "a target must be"},
		{"file link file with slash", func(m *Manifest) {
			m.Targets = append(m.Targets, ManifestTarget{Name: "pg_data/postgresql.conf", Path: "/etc", File: "../passwd", Type: TargetTypeLink})
		}, "invalid link file"},
		{"target path nul", func(m *Manifest) {
			m.Targets = append(m.Targets, ManifestTarget{Name: "pg_data/x", Path: "/a\x00", Type: TargetTypeLink})
		}, "invalid path"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := namesManifest()
			c.edit(m)
			m.Sort()
			err := m.CheckNames()
			if err == nil || errs.CodeOf(err) != errs.Format || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want [029] %q, got %v", c.want, err)
			}
			if err := m.CheckRestorable(); err == nil {
				t.Fatal("CheckRestorable accepted it")
			}
		})
	}
}

// TestCheckNamesOnLoad: a manifest with a valid checksum but an escaping
// name does not load.
func TestCheckNamesOnLoad(t *testing.T) {
	m := namesManifest()
	good := m.Bytes()
	if _, err := ParseManifest(good); err != nil {
		t.Fatalf("valid manifest does not load: %v", err)
	}
	m.Paths = append(m.Paths, ManifestPath{Name: "pg_data/../x", Mode: "0700"})
	m.Sort()
	_, err := ParseManifest(m.Bytes())
	if err == nil || errs.CodeOf(err) != errs.Format || !strings.Contains(err.Error(), "invalid name 'pg_data/../x' in manifest section [target:path]") {
		t.Fatalf("got %v", err)
	}
}

// FuzzManifestNames adds one fuzzed name as a file, path, link or target
// to a valid manifest. Whatever CheckNames accepts must stay inside its
// target's directory (independent check with path.Clean and
// filepath.IsLocal), loads the same after a write/parse round trip, and
// whatever it refuses is refused on load too.
func FuzzManifestNames(f *testing.F) {
	for _, s := range []string{"pg_data/base/1/2", "pg_data/../x", "pg_data/../../etc/cron.d/x", "/etc/passwd",
		"pg_tblspc/16384/PG_15_202209061/5/1", "pg_tblspc/16384/../../x", "pg_data/pg_tblspc/16384", "pg_data/pg_wal",
		"pg_tblspc/16384", "pg_data/./x", "pg_data//x", "pg_data/a\x00b", "pg_tblspc/99", "pg_data/pg_tblspc/1/x"} {
		for kind := byte(0); kind < 4; kind++ {
			f.Add(kind, s, "/srv/x")
		}
	}
	f.Fuzz(func(t *testing.T, kind byte, name, dest string) {
		m := namesManifest()
		switch kind % 4 {
		case 0:
			m.Files = append(m.Files, ManifestFile{Name: name, Size: 0, Mode: "0600"})
		case 1:
			m.Paths = append(m.Paths, ManifestPath{Name: name, Mode: "0700"})
		case 2:
			m.Links = append(m.Links, ManifestLink{Name: name, Destination: dest})
		case 3:
			tsid := ""
			if strings.HasPrefix(name, "pg_tblspc/") {
				tsid = strings.TrimPrefix(name, "pg_tblspc/")
			}
			m.Targets = append(m.Targets, ManifestTarget{Name: name, Path: dest, TablespaceID: tsid, TablespaceName: "t", Type: TargetTypeLink})
		}
		m.Sort()
		err := m.CheckNames()
		if err != nil {
			if errs.CodeOf(err) != errs.Format {
				t.Fatalf("refused with code %d: %v", errs.CodeOf(err), err)
			}
		} else {
			if name != path.Clean(name) || path.IsAbs(name) || strings.ContainsRune(name, 0) {
				t.Fatalf("accepted unclean name %q", name)
			}
			for _, c := range strings.Split(name, "/") {
				if c == ".." || c == "." || c == "" {
					t.Fatalf("accepted %q", name)
				}
			}
			if kind%4 <= 1 {
				target, rel, ok := SplitName(name)
				if ok {
					if target != TargetPgData {
						if _, found := m.FindTarget(target); !found {
							t.Fatalf("%q maps to unknown target %q", name, target)
						}
					}
					if !filepath.IsLocal(rel) {
						t.Fatalf("%q maps to %q which leaves target %q", name, rel, target)
					}
					if target != TargetPgData && rel != "." && !strings.HasPrefix(rel, "PG_15_202209061") {
						t.Fatalf("%q lands outside the tablespace version directory: %q", name, rel)
					}
				} else if name != TargetPgTblspc {
					t.Fatalf("accepted %q has no place on disk", name)
				}
			}
		}
		// The same decision when the manifest is written and loaded.
		if strings.ContainsAny(name, "\n\r") || strings.ContainsAny(dest, "\n\r") || strings.ContainsRune(name, '=') ||
			strings.HasPrefix(name, "[") || strings.HasPrefix(name, "#") || strings.TrimSpace(name) != name {
			return // not representable in an info file key
		}
		_, perr := ParseManifest(m.Bytes())
		if (err == nil) != (perr == nil) {
			if err == nil && kind%4 == 3 && perr != nil {
				return // a fuzzed target may fail other target checks on load
			}
			t.Fatalf("CheckNames %v but load %v", err, perr)
		}
	})
}
