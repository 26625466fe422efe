package verify

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/filter"
	"github.com/pgbr-dev/pgbr/internal/log"
	"github.com/pgbr-dev/pgbr/internal/pg"
	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/storage/posix"
)

// stored writes plain through compression and encryption as a backup does
// and returns the stored bytes, their SHA-1 and the content's SHA-1.
func stored(t *testing.T, plain []byte, ct filter.CompressType, pass string) (data []byte, repoSum, sum string) {
	t.Helper()
	var b bytes.Buffer
	p, err := filter.NewWritePipeline(&b, ct, filter.DefaultLevel(ct), pass)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), p.RepoChecksum(), p.Checksum()
}

func sha1Hex(b []byte) string {
	c := filter.NewCounter()
	c.Write(b)
	return c.Sum()
}

type failReader struct{ after int }

func (f *failReader) Read(b []byte) (int, error) {
	if f.after <= 0 {
		return 0, errors.New("connection reset by peer")
	}
	n := min(len(b), f.after)
	f.after -= n
	return n, nil
}

// checkStream compares the stored bytes with the repo checksum first
// (pgBackRest's verdict for a damaged stored file), then the decrypted and
// decompressed content, so a content change behind a matching repo
// checksum is found.
func TestVerifyCheckStream(t *testing.T) {
	plain := bytes.Repeat([]byte("pgbr verify end to end "), 4000)
	const pass = "sub-passphrase-for-the-test"
	for _, tc := range []struct {
		name string
		ct   filter.CompressType
		pass string
	}{{"none", filter.None, ""}, {"gz", filter.Gz, ""}, {"zst+cipher", filter.Zst, pass}, {"cipher", filter.None, pass}} {
		t.Run(tc.name, func(t *testing.T) {
			data, repoSum, sum := stored(t, plain, tc.ct, tc.pass)
			job := func(repoChecksum string, repoSize int64) *verifyJob {
				if repoChecksum == "" {
					repoSize = -1
				}
				return &verifyJob{sf: repo.StoredFile{Compress: tc.ct, CipherPass: tc.pass, Checksum: sum, Size: int64(len(plain)),
					RepoChecksum: repoChecksum, RepoSize: repoSize}}
			}
			check := func(what string, in io.Reader, j *verifyJob, want verifyCode, wantErr errs.Code) {
				t.Helper()
				code, err := checkStream(in, j)
				if code != want || errs.CodeOf(err) != wantErr {
					t.Errorf("%s: got %v (%v), want %v (error code %d)", what, code, err, want, wantErr)
				}
			}
			check("good", bytes.NewReader(data), job(repoSum, int64(len(data))), verifyOK, 0)
			check("good without repo checksum", bytes.NewReader(data), job("", 0), verifyOK, 0)
			check("repo size", bytes.NewReader(data), job(repoSum, int64(len(data))+1), verifySize, 0)
			j := job(repoSum, int64(len(data)))
			j.sf.Size++
			check("content size", bytes.NewReader(data), j, verifySize, 0)

			// A changed stored byte: the repo checksum says so, whatever
			// decompression makes of it.
			bad := bytes.Clone(data)
			bad[len(bad)/2] ^= 0x01
			check("flipped byte", bytes.NewReader(bad), job(repoSum, int64(len(data))), verifyChecksum, 0)
			check("truncated", bytes.NewReader(data[:len(data)/2]), job(repoSum, int64(len(data))), verifyChecksum, 0)

			// The same change with a repo checksum that matches it (a
			// backup that stored wrong content): only the content shows it.
			code, err := checkStream(bytes.NewReader(bad), job(sha1Hex(bad), int64(len(bad))))
			if code == verifyOK || (code == verifyOther) != (err != nil) {
				t.Errorf("changed content behind a matching repo checksum: %v (%v)", code, err)
			}
			other, otherRepoSum, _ := stored(t, append(bytes.Clone(plain[:len(plain)-1]), 'X'), tc.ct, tc.pass)
			check("other content", bytes.NewReader(other), job(otherRepoSum, int64(len(other))), verifyChecksum, 0)

			// A failing read is the storage's error, not a verdict.
			code, err = checkStream(io.MultiReader(bytes.NewReader(data[:10]), &failReader{}), job(repoSum, int64(len(data))))
			if code != verifyOther || !strings.Contains(fmtErr(err), "connection reset by peer") {
				t.Errorf("read error: %v (%v)", code, err)
			}
		})
	}
	// A stream that does not decompress, behind a matching repo checksum.
	data, _, sum := stored(t, plain, filter.Gz, "")
	data[len(data)-8] ^= 0x01 // the gzip trailer's CRC
	code, err := checkStream(bytes.NewReader(data), &verifyJob{sf: repo.StoredFile{Compress: filter.Gz, Checksum: sum, Size: int64(len(plain)),
		RepoChecksum: sha1Hex(data), RepoSize: int64(len(data))}})
	if code != verifyOther || errs.CodeOf(err) == 0 || errs.CodeOf(err) == errs.Unknown {
		t.Errorf("broken gz: %v (%v, code %d)", code, err, errs.CodeOf(err))
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func testVerifier(t *testing.T, root string) (*verifier, *bytes.Buffer) {
	var out bytes.Buffer
	return newVerifier(context.Background(), Options{Stanza: "main", Storage: posix.New(root), Workers: 2,
		Log: log.New(&out, &out, log.Warn, log.Off)}), &out
}

func TestVerifyWalSpans(t *testing.T) {
	const seg16 = 16 << 20
	var list []walSpan
	prev := ""
	for _, s := range []string{"000000010000000000000002", "000000010000000000000003", "000000010000000000000005"} {
		next := ""
		if prev != "" {
			next, _ = pg.WalSegmentNext(prev, seg16)
		}
		list = addSpan(list, s, next)
		prev = s
	}
	if got := spanList(list); got != "000000010000000000000002 to 000000010000000000000003, 000000010000000000000005" {
		t.Errorf("spans: %s", got)
	}
	if got := backupWal("0000000100000000000000FE", "000000010000000100000001", seg16); len(got) != 4 || got[2] != "000000010000000100000000" {
		t.Errorf("range across a log file: %v", got)
	}
	if got := backupWal("000000010000000000000002", "000000020000000000000004", seg16); len(got) != 2 {
		t.Errorf("across timelines: %v", got)
	}
	if got := backupWal("000000010000000000000002", "000000010000000000000004", 0); len(got) != 2 {
		t.Errorf("unknown segment size: %v", got)
	}
	gaps := walGaps([]*walRange{
		{start: "000000010000000000000001", stop: "000000010000000000000003"},
		{start: "000000010000000000000006", stop: "000000010000000000000007"},
		{start: "000000020000000000000007", stop: "000000020000000000000008"}, // new timeline: no gap
	})
	if len(gaps) != 1 || gaps[0] != (walSpan{"000000010000000000000003", "000000010000000000000006"}) {
		t.Errorf("gaps: %v", gaps)
	}
}

// A backup whose WAL (archive start to stop) is missing is invalid and
// counted; invalid WAL it needs is named (it was counted when checked); a
// backup taken without archive check is not checked.
func TestVerifyCheckBackupWal(t *testing.T) {
	v, out := testVerifier(t, t.TempDir())
	ar := &archiveResult{id: "15-1", walSize: 16 << 20, present: map[string]bool{}, bad: map[string]verifyCode{}}
	for _, s := range []string{"000000010000000000000002", "000000010000000000000003", "000000010000000000000006", "000000010000000000000007"} {
		ar.present[s] = true
	}
	ar.bad["000000010000000000000007"] = verifyChecksum
	v.archives = []*archiveResult{ar}
	mk := func(label, start, stop string, check bool) *backupResult {
		return &backupResult{label: label, walCheck: check, archiveID: "15-1", archiveStart: start, archiveStop: stop}
	}
	good := mk("20260101-000000F", "000000010000000000000002", "000000010000000000000003", true)
	holes := mk("20260102-000000F", "000000010000000000000003", "000000010000000000000007", true)
	unchecked := mk("20260103-000000F", "000000010000000000000009", "000000010000000000000009", false)
	other := mk("20260104-000000F", "000000010000000000000002", "000000010000000000000002", true)
	other.archiveID = "14-2"
	v.backups = []*backupResult{good, holes, unchecked, other}
	v.checkBackupWal()
	if good.status != backupValid || unchecked.status != backupValid || len(good.missingWal)+len(unchecked.missingWal) != 0 {
		t.Errorf("good: %v %v, unchecked: %v %v", good.status, good.missingWal, unchecked.status, unchecked.missingWal)
	}
	if holes.status != backupInvalid || spanList(holes.missingWal) != "000000010000000000000004 to 000000010000000000000005" ||
		spanList(holes.invalidWal) != "000000010000000000000007" {
		t.Errorf("holes: %v missing %v invalid %v", holes.status, holes.missingWal, holes.invalidWal)
	}
	if other.status != backupInvalid || spanList(other.missingWal) != "000000010000000000000002" {
		t.Errorf("other archive id: %v %v", other.status, other.missingWal)
	}
	if v.errorTotal != 3 {
		t.Errorf("errors %d, want 3", v.errorTotal)
	}
	for _, want := range []string{
		"WARN: backup '20260102-000000F' needs WAL 000000010000000000000004 to 000000010000000000000005 (archiveId 15-1) to be consistent, which is missing from the archive",
		"WARN: backup '20260102-000000F' needs WAL 000000010000000000000007 (archiveId 15-1) to be consistent, which is invalid",
		"WARN: backup '20260104-000000F' needs WAL 000000010000000000000002 (archiveId 14-2)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing %q in:\n%s", want, out.String())
		}
	}
	// The result text names the missing WAL; the summary warns about
	// each backup that is not valid and each gap.
	ar.ranges = []*walRange{{start: "000000010000000000000002", stop: "000000010000000000000003"},
		{start: "000000010000000000000006", stop: "000000010000000000000007"}}
	ar.totalWal, ar.totalValid = 4, 3
	good.totalVerify, holes.totalVerify = 1, 1
	if r := v.render(); !strings.Contains(r, "\n  backup: 20260102-000000F, status: invalid, total files checked: 1, total valid files: 0\n    WAL missing for consistency: 000000010000000000000004 to 000000010000000000000005") {
		t.Errorf("render:\n%s", r)
	}
	out.Reset()
	v.warnSummary()
	for _, want := range []string{
		"WARN: archiveId 15-1: WAL gap: no WAL between 000000010000000000000003 and 000000010000000000000006",
		"WARN: backup '20260102-000000F' is not valid: WAL 000000010000000000000004 to 000000010000000000000005 missing",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing %q in:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "20260101-000000F") {
		t.Errorf("a valid backup is reported:\n%s", out.String())
	}
}

// Backups listed in backup.info without a directory are results of their
// own, in label order.
func TestVerifyMissingBackupDirs(t *testing.T) {
	v, out := testVerifier(t, "/repo")
	v.backups = []*backupResult{{label: "20260102-000000F"}}
	v.backupIdx["20260102-000000F"] = 0
	v.missingBackupDirs(&repo.BackupInfo{Current: []repo.BackupInfoEntry{
		{Label: "20260101-000000F"}, {Label: "20260102-000000F"}, {Label: "20260102-000000F_20260103-000000I"}}})
	var got []string
	for _, br := range v.backups {
		got = append(got, br.label+":"+br.status.String())
	}
	if strings.Join(got, " ") != "20260101-000000F:directory missing 20260102-000000F:valid 20260102-000000F_20260103-000000I:directory missing" || v.errorTotal != 2 {
		t.Errorf("backups %v, errors %d", got, v.errorTotal)
	}
	if !strings.Contains(out.String(), "WARN: backup '20260101-000000F' is listed in backup.info but its directory '/repo/backup/main/20260101-000000F' is missing") {
		t.Errorf("log:\n%s", out.String())
	}
}

// A repository that cannot be read fails with the storage error; a
// repository without info files is "No usable backup.info file", with the
// reason at warn level.
func TestVerifyUnreadableRepo(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	v, _ := testVerifier(t, file)
	_, err := v.run()
	if errs.CodeOf(err) != errs.FileRead || !strings.Contains(fmtErr(err), "unable to read the repository '"+file+"'") ||
		!strings.Contains(fmtErr(err), "not a directory") {
		t.Errorf("repository is a file: %v (code %d)", err, errs.CodeOf(err))
	}

	v, out := testVerifier(t, filepath.Join(dir, "empty"))
	res, err := v.run()
	if err != nil || !strings.Contains(res, "status: error\n  No usable backup.info file\n  No usable archive.info file") || v.errorTotal != 2 {
		t.Errorf("empty repository: %v\n%s", err, res)
	}
	if !strings.Contains(out.String(), "WARN: no usable backup.info file (nor copy): unable to open missing file '"+filepath.Join(dir, "empty", "backup/main/backup.info")+"' for read") {
		t.Errorf("log:\n%s", out.String())
	}
}

// A storage failure reading a copy whose main file is fine does not make
// the repository unreadable: a missing archive.info is then reported as
// such. A backup.info that is unreadable along with its copy is.
func TestVerifyUnreadableInfoCopy(t *testing.T) {
	dir := t.TempDir()
	st := posix.New(dir)
	db := repo.BackupDB{ID: 1, Version: "15", SystemID: 7000000000000000001, CatalogVersion: 202209061, ControlVersion: 1300}
	bi := &repo.BackupInfo{BackrestVersion: "2.45", DB: db, History: []repo.BackupHistory{db}}
	if err := repo.SaveBackupInfo(context.Background(), st, "main", bi, ""); err != nil {
		t.Fatal(err)
	}
	// A directory where the copy should be: reading it fails (EISDIR).
	copyPath := filepath.Join(dir, "backup/main/backup.info.copy")
	os.Remove(copyPath)
	os.Mkdir(copyPath, 0o700)
	v, out := testVerifier(t, dir)
	res, err := v.run()
	if err != nil || !strings.Contains(res, "status: error\n  No usable archive.info file") || strings.Contains(res, "backup.info") {
		t.Errorf("unreadable copy: %v\n%s\n%s", err, res, out.String())
	}
	main := filepath.Join(dir, "backup/main/backup.info")
	os.Remove(main)
	os.Mkdir(main, 0o700)
	v, _ = testVerifier(t, dir)
	_, err = v.run()
	if errs.CodeOf(err) != errs.FileRead || !strings.Contains(fmtErr(err), "unable to read the repository '"+dir+"'") ||
		!strings.Contains(fmtErr(err), main) {
		t.Errorf("unreadable backup.info and copy: %v", err)
	}
}
