package repo

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/storage"
	"github.com/pgbr-dev/pgbr/internal/storage/posix"
)

func newStore(t *testing.T) (*posix.Storage, string) {
	dir := t.TempDir()
	return posix.New(dir), dir
}

func writeRaw(t *testing.T, dir, path string, data []byte) {
	t.Helper()
	full := filepath.Join(dir, path)
	if err := os.MkdirAll(filepath.Dir(full), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, data, 0o640); err != nil {
		t.Fatal(err)
	}
}

func TestLoadBothMissing(t *testing.T) {
	st, dir := newStore(t)
	ctx := context.Background()
	_, err := LoadBackupInfo(ctx, st, "nostanza", "")
	want := "unable to load info file '" + dir + "/backup/nostanza/backup.info' or '" + dir + "/backup/nostanza/backup.info.copy':\n" +
		"FileMissingError: unable to open missing file '" + dir + "/backup/nostanza/backup.info' for read\n" +
		"FileMissingError: unable to open missing file '" + dir + "/backup/nostanza/backup.info.copy' for read\n" +
		"HINT: backup.info cannot be opened and is required to perform a backup.\n" +
		"HINT: has a stanza-create been performed?"
	if err == nil || err.Error() != want {
		t.Fatalf("got\n%v\nwant\n%s", err, want)
	}
	if errs.CodeOf(err) != errs.FileMissing || !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("code %d", errs.CodeOf(err))
	}
	_, err = LoadArchiveInfo(ctx, st, "nostanza", "")
	if errs.CodeOf(err) != errs.FileMissing || !strings.HasSuffix(err.Error(),
		"HINT: use --no-archive-check to disable archive checks during backup if you have an alternate archiving scheme.") {
		t.Fatalf("%v", err)
	}
	_, err = LoadManifest(ctx, st, "s", "20261125-143852F", "")
	if errs.CodeOf(err) != errs.FileMissing || !strings.HasPrefix(err.Error(), "unable to load backup manifest file '") {
		t.Fatalf("%v", err)
	}
}

func TestLoadFallbackAndCodes(t *testing.T) {
	good, _ := os.ReadFile("testdata/archive.info")
	corrupt := bytes.Replace(good, []byte(`"15"`), []byte(`"16"`), 1)
	badFormat := []byte("[backrest]\nbackrest-format=4\n")
	path := "archive/s/archive.info"
	tests := []struct {
		name       string
		main, copy []byte // nil = missing
		code       errs.Code
		types      []string
	}{
		{"main ok", good, nil, 0, nil},
		{"copy ok", nil, good, 0, nil},
		{"main corrupt, copy ok", corrupt, good, 0, nil},
		{"main missing, copy corrupt", nil, corrupt, errs.Checksum, []string{"FileMissingError", "ChecksumError"}},
		{"main corrupt, copy missing", corrupt, nil, errs.Checksum, []string{"ChecksumError", "FileMissingError"}},
		{"both corrupt", corrupt, corrupt, errs.Checksum, []string{"ChecksumError", "ChecksumError"}},
		{"different errors", corrupt, badFormat, errs.FileOpen, []string{"ChecksumError", "FormatError"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, dir := newStore(t)
			if tt.main != nil {
				writeRaw(t, dir, path, tt.main)
			}
			if tt.copy != nil {
				writeRaw(t, dir, path+".copy", tt.copy)
			}
			a, err := LoadArchiveInfo(context.Background(), st, "s", "")
			if tt.code == 0 {
				if err != nil || a.ArchiveID() != "15-1" {
					t.Fatalf("%v", err)
				}
				ini, err := LoadInfoFile(context.Background(), st, path, "")
				if err != nil || len(ini.Values) != 7 {
					t.Fatalf("LoadInfoFile: %v", err)
				}
				return
			}
			if errs.CodeOf(err) != tt.code {
				t.Fatalf("code %d: %v", errs.CodeOf(err), err)
			}
			lines := strings.Split(err.Error(), "\n")
			for i, typ := range tt.types {
				if !strings.HasPrefix(lines[i+1], typ+": ") {
					t.Fatalf("line %d %q, want %s", i+1, lines[i+1], typ)
				}
			}
		})
	}
}

func TestSaveLoadEncrypted(t *testing.T) {
	st, dir := newStore(t)
	ctx := context.Background()
	pass := "repo-pass"
	a := &ArchiveInfo{CipherPass: "sub", DB: ArchiveHistory{1, 42, "15"}, History: []ArchiveHistory{{1, 42, "15"}}}
	if err := SaveArchiveInfo(ctx, st, "s", a, pass); err != nil {
		t.Fatal(err)
	}
	m1, _ := os.ReadFile(filepath.Join(dir, "archive/s/archive.info"))
	m2, _ := os.ReadFile(filepath.Join(dir, "archive/s/archive.info.copy"))
	if !bytes.Equal(m1, m2) || !bytes.HasPrefix(m1, []byte("Salted__")) {
		t.Fatal("copies differ or not encrypted")
	}
	back, err := LoadArchiveInfo(ctx, st, "s", pass)
	if err != nil || back.CipherPass != "sub" {
		t.Fatalf("%v", err)
	}
	_, err = LoadArchiveInfo(ctx, st, "s", "wrong")
	if err == nil {
		t.Fatal("wrong passphrase accepted")
	}
	// Decrypt failures (or, rarely, garbage that fails to parse) on both copies.
	if c := errs.CodeOf(err); c != errs.Crypto && c != errs.Format && c != errs.FileOpen {
		t.Fatalf("code %d: %v", c, err)
	}
	// Unencrypted read of an encrypted file fails as a format error.
	if _, err := LoadArchiveInfo(ctx, st, "s", ""); err == nil {
		t.Fatal("encrypted file parsed as plain")
	}

	b := &BackupInfo{CipherPass: "bsub", DB: BackupDB{202209061, 1300, 1, 42, "15"}, History: []BackupHistory{{202209061, 1300, 1, 42, "15"}}}
	if err := SaveBackupInfo(ctx, st, "s", b, pass); err != nil {
		t.Fatal(err)
	}
	if bb, err := LoadBackupInfo(ctx, st, "s", pass); err != nil || bb.CipherPass != "bsub" {
		t.Fatalf("%v", err)
	}
}

func TestSaveManifest(t *testing.T) {
	st, dir := newStore(t)
	ctx := context.Background()
	m, err := ParseManifest(manifestTemplate(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := SaveManifestCopy(ctx, st, "s", m, ""); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, "backup/s", m.Backup.Label)
	if _, err := os.Stat(filepath.Join(base, "backup.manifest")); !os.IsNotExist(err) {
		t.Fatal("SaveManifestCopy wrote the main file")
	}
	// A partial manifest (copy only) loads through the fallback.
	if _, err := LoadManifest(ctx, st, "s", m.Backup.Label, ""); err != nil {
		t.Fatal(err)
	}
	if err := SaveManifest(ctx, st, "s", m, ""); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(base, "backup.manifest"))
	c, _ := os.ReadFile(filepath.Join(base, "backup.manifest.copy"))
	if !bytes.Equal(a, c) || !bytes.Equal(a, manifestTemplate(t)) {
		t.Fatal("manifest bytes differ")
	}

	if err := SaveManifest(ctx, st, "s", m, "sub"); err != nil {
		t.Fatal(err)
	}
	got, err := LoadManifest(ctx, st, "s", m.Backup.Label, "sub")
	if err != nil || len(got.Files) != len(m.Files) {
		t.Fatalf("%v", err)
	}
}

func TestLoadContextCanceled(t *testing.T) {
	st, _ := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := LoadBackupInfo(ctx, st, "s", ""); !errors.Is(err, context.Canceled) {
		t.Fatalf("%v", err)
	}
}

func TestArchiveNames(t *testing.T) {
	tests := []struct {
		name                   string
		segment, partial, hist bool
		dir                    string
	}{
		{"000000010000000000000003", true, false, false, "archive/s/15-1/0000000100000000"},
		{"00000002000000000000002F.partial", true, true, false, "archive/s/15-1/0000000200000000"},
		{"000000010000000000000003.00000028.backup", false, false, false, "archive/s/15-1/0000000100000000"},
		{"00000002.history", false, false, true, "archive/s/15-1"},
		{"00000001000000000000000", false, false, false, "archive/s/15-1"},
		{"0000000100000000000000030", false, false, false, "archive/s/15-1/0000000100000000"},
	}
	for _, tt := range tests {
		if IsSegment(tt.name) != tt.segment || IsPartial(tt.name) != tt.partial || IsHistoryFile(tt.name) != tt.hist {
			t.Errorf("%s: segment %v partial %v history %v", tt.name, IsSegment(tt.name), IsPartial(tt.name), IsHistoryFile(tt.name))
		}
		if d := ArchiveSegmentDir("s", "15-1", tt.name); d != tt.dir {
			t.Errorf("%s: dir %s, want %s", tt.name, d, tt.dir)
		}
	}
	sha := "f54245a217f038118ec662de456d45bfe957fff3"
	stored := []struct {
		name, seg, ext string
		ok             bool
	}{
		{"000000010000000000000003-" + sha + ".gz", "000000010000000000000003", ".gz", true},
		{"000000010000000000000003-" + sha, "000000010000000000000003", "", true},
		{"00000002000000000000002F.partial-" + sha + ".zst", "00000002000000000000002F.partial", ".zst", true},
		{"000000010000000000000003-" + sha + ".xz", "000000010000000000000003", ".xz", true},
		{"000000010000000000000003-" + sha + ".br", "", "", false},
		{"000000010000000000000003-" + sha[:39] + ".gz", "", "", false},
		{"00000002.history", "", "", false},
	}
	for _, tt := range stored {
		seg, s, ext, ok := ParseStoredSegment(tt.name)
		if ok != tt.ok || seg != tt.seg || ext != tt.ext || (ok && s != sha) {
			t.Errorf("%s: %q %q %q %v", tt.name, seg, s, ext, ok)
		}
	}
	if got := StoredSegmentName("000000010000000000000003", sha, "lz4"); got != "000000010000000000000003-"+sha+".lz4" {
		t.Error(got)
	}
	if got := StoredSegmentName("000000010000000000000003", sha, "none"); got != "000000010000000000000003-"+sha {
		t.Error(got)
	}
	if CompressTypeOfExt(".gz") != "gz" || CompressTypeOfExt("") != "none" {
		t.Error("CompressTypeOfExt")
	}
}

func TestFindSegment(t *testing.T) {
	st, dir := newStore(t)
	sha := "f54245a217f038118ec662de456d45bfe957fff3"
	d := "archive/s/15-1/0000000100000000/"
	writeRaw(t, dir, d+"000000010000000000000003-"+sha+".gz", []byte("x"))
	writeRaw(t, dir, d+"000000010000000000000003.partial-"+sha+".gz", []byte("x"))
	writeRaw(t, dir, d+"000000010000000000000004-"+sha, []byte("x"))
	got, err := FindSegment(context.Background(), st, "s", "15-1", "000000010000000000000003")
	if err != nil || len(got) != 1 || got[0] != "000000010000000000000003-"+sha+".gz" {
		t.Fatalf("%v %v", got, err)
	}
	got, _ = FindSegment(context.Background(), st, "s", "15-1", "000000010000000000000003.partial")
	if len(got) != 1 {
		t.Fatalf("%v", got)
	}
	got, _ = FindSegment(context.Background(), st, "s", "15-2", "000000010000000000000003")
	if len(got) != 0 {
		t.Fatalf("%v", got)
	}
}

func TestLabels(t *testing.T) {
	loc := time.FixedZone("X", 3600)
	start := time.Date(2026, 11, 25, 14, 38, 52, 0, loc)
	tests := []struct {
		typ, prior string
		existing   []string
		want       string
		code       errs.Code
	}{
		{"full", "", nil, "20261125-143852F", 0},
		{"diff", "20261125-143000F", nil, "20261125-143000F_20261125-143852D", 0},
		{"incr", "20261125-143000F_20261125-143500D", nil, "20261125-143000F_20261125-143852I", 0},
		{"full", "", []string{"20261125-143852F"}, "20261125-143853F", 0},
		{"full", "", []string{"20261125-143853F"}, "", errs.Clock},
		{"incr", "20261125-143852F", []string{"20261125-143852F"}, "20261125-143852F_20261125-143852I", 0},
		{"incr", "bad", nil, "", errs.Assert},
		{"weekly", "", nil, "", errs.Assert},
	}
	for _, tt := range tests {
		got, err := NewLabel(tt.typ, tt.prior, start, tt.existing)
		if got != tt.want || errs.CodeOf(err) != tt.code {
			t.Errorf("%s %s %v: %q %v", tt.typ, tt.prior, tt.existing, got, err)
		}
		if err == nil && LabelType(got) != tt.typ {
			t.Errorf("LabelType(%s) = %s", got, LabelType(got))
		}
	}
	if LabelType("20261125-143852X") != "" || IsLabel("20261125-143852F_20261125-143852F") {
		t.Error("bad label accepted")
	}

	st, dir := newStore(t)
	writeRaw(t, dir, "backup/s/20261125-143852F/backup.manifest", []byte("x"))
	writeRaw(t, dir, "backup/s/20261125-143852F_20261125-143900I/backup.manifest", []byte("x"))
	writeRaw(t, dir, "backup/s/backup.history/2025/20251125-143852F.manifest.gz", []byte("x"))
	writeRaw(t, dir, "backup/s/backup.history/2027/20270101-000000F.manifest.gz", []byte("x"))
	writeRaw(t, dir, "backup/s/backup.history/2027/junk", []byte("x"))
	got, err := ExistingLabels(context.Background(), st, "s")
	if err != nil || strings.Join(got, ",") != "20261125-143852F_20261125-143900I,20270101-000000F" {
		t.Fatalf("%v %v", got, err)
	}
	if _, err := NewLabel("full", "", start, got); errs.CodeOf(err) != errs.Clock {
		t.Fatalf("%v", err)
	}
	if HistoryManifestPath("s", "20261125-143852F") != "backup/s/backup.history/2026/20261125-143852F.manifest.gz" {
		t.Error("HistoryManifestPath")
	}
}
