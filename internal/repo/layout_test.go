package repo

import "testing"

func TestLayoutPaths(t *testing.T) {
	l := Layout{Stanza: "demo"}
	const full, incr = "20261125-143955F", "20261125-143955F_20261125-143958I"
	cases := []struct{ got, want string }{
		{l.ArchiveDir(), "archive/demo"},
		{l.ArchiveInfo(), "archive/demo/archive.info"},
		{l.ArchiveInfo() + CopyExt, "archive/demo/archive.info.copy"},
		{l.ArchiveIDDir("15-1"), "archive/demo/15-1"},
		{l.SegmentDir("15-1", "000000010000000000000003"), "archive/demo/15-1/0000000100000000"},
		{l.SegmentDir("15-1", "000000010000000000000003.partial"), "archive/demo/15-1/0000000100000000"},
		{l.SegmentDir("15-1", "000000010000000000000003.00000028.backup"), "archive/demo/15-1/0000000100000000"},
		{l.SegmentDir("15-1", "00000002.history"), "archive/demo/15-1"},
		{l.ArchiveFile("15-1", StoredSegmentName("000000010000000000000003", "f54245a217f038118ec662de456d45bfe957fff3", "gz")),
			"archive/demo/15-1/0000000100000000/000000010000000000000003-f54245a217f038118ec662de456d45bfe957fff3.gz"},
		{l.ArchiveFile("15-1", "00000002.history"), "archive/demo/15-1/00000002.history"},
		{l.BackupDir(), "backup/demo"},
		{l.BackupInfo(), "backup/demo/backup.info"},
		{l.Latest(), "backup/demo/latest"},
		{l.HistoryDir(), "backup/demo/backup.history"},
		{l.HistoryManifest(incr), "backup/demo/backup.history/2026/" + incr + ".manifest.gz"},
		{l.LabelDir(full), "backup/demo/" + full},
		{l.Manifest(full), "backup/demo/" + full + "/backup.manifest"},
		{l.Manifest(full) + CopyExt, "backup/demo/" + full + "/backup.manifest.copy"},
		{l.BackupFile(full, "pg_data/base/1/1259", CompressExt("gz")), "backup/demo/" + full + "/pg_data/base/1/1259.gz"},
		{l.BackupFile(full, "pg_data/PG_VERSION", CompressExt("none")), "backup/demo/" + full + "/pg_data/PG_VERSION"},
		{l.BackupFile(full, "pg_tblspc/16384/PG_15_202209061/5/16385", ".zst"),
			"backup/demo/" + full + "/pg_tblspc/16384/PG_15_202209061/5/16385.zst"},
		{l.BlockIncrFile(incr, "pg_data/base/5/16390"), "backup/demo/" + incr + "/pg_data/base/5/16390.pgbi"},
		{l.Bundle(incr, 12), "backup/demo/" + incr + "/bundle/12"},
		// The old helpers are wrappers.
		{ArchiveInfoPath("demo"), l.ArchiveInfo()},
		{BackupInfoPath("demo"), l.BackupInfo()},
		{BackupManifestPath("demo", full), l.Manifest(full)},
		{HistoryManifestPath("demo", full), l.HistoryManifest(full)},
		{ArchiveDir("demo", "15-1"), l.ArchiveIDDir("15-1")},
		{ArchiveSegmentDir("demo", "15-1", "000000010000000000000003"), l.SegmentDir("15-1", "000000010000000000000003")},
	}
	for i, c := range cases {
		if c.got != c.want {
			t.Errorf("case %d: got %q, want %q", i, c.got, c.want)
		}
	}
}

func TestLayoutStoredPath(t *testing.T) {
	l := Layout{Stanza: "demo"}
	m := &Manifest{}
	m.Backup.Label = "20261125-143955F_20261125-143958I"
	m.Option.CompressType = "lz4"
	cases := []struct {
		f    ManifestFile
		want string
	}{
		{ManifestFile{Name: "pg_data/base/1/1259"}, "backup/demo/20261125-143955F_20261125-143958I/pg_data/base/1/1259.lz4"},
		{ManifestFile{Name: "pg_data/base/1/1259", Reference: "20261125-143955F"}, "backup/demo/20261125-143955F/pg_data/base/1/1259.lz4"},
		{ManifestFile{Name: "pg_data/base/1/1259", BundleID: 3, Reference: "20261125-143955F"}, "backup/demo/20261125-143955F/bundle/3"},
		{ManifestFile{Name: "pg_data/base/1/1259", BlockIncr: 1, BlockIncrMap: 40}, "backup/demo/20261125-143955F_20261125-143958I/pg_data/base/1/1259.pgbi"},
		{ManifestFile{Name: "pg_data/base/1/1259", BlockIncr: 1, BlockIncrMap: 40, BundleID: 2}, "backup/demo/20261125-143955F_20261125-143958I/bundle/2"},
	}
	for i, c := range cases {
		if got := l.StoredPath(m, &c.f); got != c.want {
			t.Errorf("case %d: got %q, want %q", i, got, c.want)
		}
		if c.f.BlockIncrMap == 0 {
			if got := "backup/demo/" + m.FileRepoPath(&c.f); got != c.want {
				t.Errorf("case %d: FileRepoPath %q, want %q", i, got, c.want)
			}
		}
	}
}
