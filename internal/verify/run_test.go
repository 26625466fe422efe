package verify

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/filter"
	"github.com/pgbr-dev/pgbr/internal/log"
	"github.com/pgbr-dev/pgbr/internal/pg"
	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/storage"
	"github.com/pgbr-dev/pgbr/internal/storage/faulty"
	"github.com/pgbr-dev/pgbr/internal/storage/posix"
)

// The fixture: one stanza "main" (PostgreSQL 15, 1 MiB WAL segments, gz),
// WAL 000000010000000000000001..3 in archive id 15-1 and one full backup
// of two files that needs WAL 2 to 3.
const (
	fxLabel    = "20260101-000000F"
	fxSystemID = 7000000000000000001
	fxSegSize  = 1 << 20
	fxWalStart = "000000010000000000000002"
	fxWalStop  = "000000010000000000000003"
)

var fxFiles = []struct{ name, content string }{
	{"pg_data/PG_VERSION", "15\n"},
	{"pg_data/base/1/1259", strings.Repeat("heap page ", 3000)},
}

// fxWal is a WAL segment of the fixture: a long page header, then zeros.
func fxWal(seg int) []byte {
	b := make([]byte, fxSegSize)
	le := binary.LittleEndian
	v, _ := pg.VersionByString("15")
	le.PutUint16(b[0:], v.WalMagic)
	le.PutUint16(b[2:], 0x0002) // XLP_LONG_HEADER
	le.PutUint32(b[4:], 1)
	le.PutUint64(b[8:], uint64(seg)*fxSegSize)
	le.PutUint64(b[24:], fxSystemID)
	le.PutUint32(b[32:], fxSegSize)
	le.PutUint32(b[36:], 8192)
	return b
}

// encode stores plain as a backup or archive-push does.
func encode(t *testing.T, plain []byte, ct filter.CompressType, pass string) (data []byte, repoSum, sum string) {
	t.Helper()
	return stored(t, plain, ct, pass)
}

func put(t *testing.T, st storage.Storage, path string, data []byte) {
	t.Helper()
	if err := storage.WriteAll(context.Background(), st, path, data); err != nil {
		t.Fatal(err)
	}
}

// fixture writes the repository into a new directory and returns it.
func fixture(t *testing.T) string {
	t.Helper()
	return fixtureEnc(t, "")
}

// Passphrases of an encrypted fixture: the repository's encrypts the info
// files, which hold the archive's, the manifests' (backup.info) and the
// backup files' (manifest).
const (
	fxArchivePass  = "archive-sub-passphrase"
	fxManifestPass = "manifest-sub-passphrase"
	fxFilePass     = "backup-set-passphrase"
)

// fixtureEnc is fixture encrypted with the repository passphrase pass
// ("" = not encrypted).
func fixtureEnc(t *testing.T, pass string) string {
	t.Helper()
	archivePass, manifestPass, filePass := "", "", ""
	if pass != "" {
		archivePass, manifestPass, filePass = fxArchivePass, fxManifestPass, fxFilePass
	}
	ctx := context.Background()
	dir := t.TempDir()
	st := posix.New(dir)
	l := repo.Layout{Stanza: "main"}
	db := repo.BackupDB{ID: 1, Version: "15", SystemID: fxSystemID, CatalogVersion: 202209061, ControlVersion: 1300}
	ah := repo.ArchiveHistory{ID: 1, Version: "15", SystemID: fxSystemID}
	if err := repo.SaveArchiveInfo(ctx, st, "main", &repo.ArchiveInfo{BackrestVersion: "2.45", CipherPass: archivePass, DB: ah, History: []repo.ArchiveHistory{ah}}, pass); err != nil {
		t.Fatal(err)
	}
	for seg := 1; seg <= 3; seg++ {
		wal := fxWal(seg)
		data, _, sum := encode(t, wal, filter.Gz, archivePass)
		name := fmt.Sprintf("%08X%08X%08X", 1, 0, seg)
		put(t, st, l.ArchiveFile("15-1", repo.StoredSegmentName(name, sum, "gz")), data)
	}
	m := &repo.Manifest{BackrestVersion: "2.45", DB: db, CipherPass: filePass}
	m.Backup = repo.ManifestBackup{Label: fxLabel, Type: "full", ArchiveStart: fxWalStart, ArchiveStop: fxWalStop,
		Reference: []string{fxLabel}, TimestampStart: 1767225600, TimestampStop: 1767225610, TimestampCopyStart: 1767225601}
	m.Option = repo.ManifestOption{ArchiveCheck: true, Online: true, CompressType: "gz", CompressLevel: 6}
	m.Targets = []repo.ManifestTarget{{Name: "pg_data", Type: "path", Path: "/pgdata"}}
	m.Paths = []repo.ManifestPath{{Name: "pg_data"}, {Name: "pg_data/base"}, {Name: "pg_data/base/1"}}
	for _, f := range fxFiles {
		data, repoSum, sum := encode(t, []byte(f.content), filter.Gz, filePass)
		m.Files = append(m.Files, repo.ManifestFile{Name: f.name, Size: uint64(len(f.content)), Checksum: repo.HexDigest(sum),
			RepoChecksum: repo.HexDigest(repoSum), RepoSize: uint64(len(data)), Timestamp: 1767225600})
		put(t, st, l.BackupDir()+"/"+fxLabel+"/"+f.name+".gz", data)
	}
	m.FileDefault = repo.ManifestDefaults{Mode: "0600", User: repo.Owner{Name: "postgres"}, Group: repo.Owner{Name: "postgres"}}
	m.PathDefault = repo.ManifestDefaults{Mode: "0700", User: repo.Owner{Name: "postgres"}, Group: repo.Owner{Name: "postgres"}}
	if err := repo.SaveManifest(ctx, st, "main", m, manifestPass); err != nil {
		t.Fatal(err)
	}
	bi := &repo.BackupInfo{BackrestVersion: "2.45", CipherPass: manifestPass, DB: db, History: []repo.BackupHistory{db}}
	bi.Add(repo.NewBackupInfoEntry(m))
	if err := repo.SaveBackupInfo(ctx, st, "main", bi, pass); err != nil {
		t.Fatal(err)
	}
	return dir
}

// tree is every file of dir with its content, to prove verify writes
// nothing.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		out[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// run verifies st and checks that the repository in dir is unchanged.
func run(t *testing.T, dir string, st storage.Storage, opts Options) (Result, string, error) {
	t.Helper()
	before := tree(t, dir)
	var out bytes.Buffer
	opts.Stanza, opts.Storage, opts.Log = "main", st, log.New(&out, &out, log.Detail, log.Off)
	if opts.Workers == 0 {
		opts.Workers = 2
	}
	res, err := Run(context.Background(), opts)
	after := tree(t, dir)
	if len(after) != len(before) {
		t.Errorf("verify changed the repository: %d files before, %d after", len(before), len(after))
	}
	for p, b := range before {
		if after[p] != b {
			t.Errorf("verify changed %s", p)
		}
	}
	return res, out.String(), err
}

func wantIn(t *testing.T, what, s string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(s, w) {
			t.Errorf("%s: missing %q in:\n%s", what, w, s)
		}
	}
}

func TestRunClean(t *testing.T) {
	dir := fixture(t)
	res, logged, err := run(t, dir, posix.New(dir), Options{})
	if err != nil || res.Errors != 0 || res.Text != "" {
		t.Fatalf("clean repository: %v, %d error(s), text %q\n%s", err, res.Errors, res.Text, logged)
	}
	wantIn(t, "log", logged, "DETAIL: archiveId: 15-1, wal start: 000000010000000000000001, wal stop: 000000010000000000000003")

	res, _, err = run(t, dir, posix.New(dir), Options{Verbose: true, Workers: 1})
	if err != nil || res.Errors != 0 {
		t.Fatalf("verbose: %v, %d error(s)", err, res.Errors)
	}
	want := "stanza: main\nstatus: ok\n  archiveId: 15-1, total WAL checked: 3, total valid WAL: 3" +
		"\n    missing: 0, checksum invalid: 0, size invalid: 0, other: 0" +
		"\n  backup: " + fxLabel + ", status: valid, total files checked: 2, total valid files: 2" +
		"\n    missing: 0, checksum invalid: 0, size invalid: 0, other: 0"
	if res.Text != want {
		t.Errorf("verbose text:\n%s\nwant:\n%s", res.Text, want)
	}

	// --set: one backup and only its WAL.
	res, _, err = run(t, dir, posix.New(dir), Options{Verbose: true, Set: fxLabel})
	if err != nil || res.Errors != 0 {
		t.Fatalf("set: %v, %d error(s)", err, res.Errors)
	}
	wantIn(t, "set", res.Text, "archiveId: 15-1, total WAL checked: 2, total valid WAL: 2", "backup: "+fxLabel+", status: valid")
	for set, want := range map[string]string{"bogus": "\n  'bogus' is not a valid backup label format",
		"20250101-000000F": "\n  backup set 20250101-000000F is not valid"} {
		res, _, err = run(t, dir, posix.New(dir), Options{Set: set})
		if err != nil || res.Errors != 1 || res.Text != "stanza: main\nstatus: error"+want {
			t.Errorf("set %s: %v, %d error(s), %q", set, err, res.Errors, res.Text)
		}
	}
}

// Damaged, missing and unexpected files are problems in the result (with
// a warning each); the repository itself is left alone.
func TestRunProblems(t *testing.T) {
	dir := fixture(t)
	l := repo.Layout{Stanza: "main"}
	file := filepath.Join(dir, l.BackupDir(), fxLabel, fxFiles[1].name+".gz")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x10
	if err := os.WriteFile(file, b, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, l.BackupDir(), fxLabel, fxFiles[0].name+".gz")); err != nil {
		t.Fatal(err)
	}
	wals, _ := filepath.Glob(filepath.Join(dir, l.ArchiveDir(), "15-1", "0000000100000000", fxWalStop+"-*"))
	if len(wals) != 1 {
		t.Fatalf("WAL %v", wals)
	}
	if err := os.Remove(wals[0]); err != nil {
		t.Fatal(err)
	}
	res, logged, err := run(t, dir, posix.New(dir), Options{})
	if err != nil {
		t.Fatal(err)
	}
	// A corrupt file, a missing file, the WAL the backup needs.
	if res.Errors != 3 {
		t.Errorf("%d error(s), want 3\n%s\n%s", res.Errors, res.Text, logged)
	}
	wantIn(t, "text", res.Text, "stanza: main\nstatus: error",
		"\n  backup: "+fxLabel+", status: invalid, total files checked: 2, total valid files: 0\n    missing: 1, checksum invalid: 1",
		"\n    WAL missing for consistency: "+fxWalStop)
	wantIn(t, "log", logged,
		"WARN: invalid checksum '"+fxLabel+"/"+fxFiles[1].name+".gz'",
		"WARN: file missing '"+fxLabel+"/"+fxFiles[0].name+".gz'",
		"WARN: backup '"+fxLabel+"' needs WAL "+fxWalStop+" (archiveId 15-1) to be consistent, which is missing from the archive",
		"WARN: backup '"+fxLabel+"' is not valid: 2 of 2 file(s) invalid or missing, WAL "+fxWalStop+" missing")

	// backup.info lists a backup whose directory is gone.
	if err := os.RemoveAll(filepath.Join(dir, l.BackupDir(), fxLabel)); err != nil {
		t.Fatal(err)
	}
	res, logged, err = run(t, dir, posix.New(dir), Options{})
	if err != nil || res.Errors != 1 {
		t.Errorf("missing directory: %v, %d error(s)\n%s", err, res.Errors, logged)
	}
	wantIn(t, "missing directory", res.Text, "backup: "+fxLabel+", status: directory missing")
}

// Encrypted repository: the info files with the repository passphrase, the
// rest with the sub-passphrases they hold. A wrong passphrase makes the
// info files unusable, a damaged encrypted file is invalid.
func TestRunEncrypted(t *testing.T) {
	const pass = "repository-passphrase"
	dir := fixtureEnc(t, pass)
	res, logged, err := run(t, dir, posix.New(dir), Options{CipherPass: pass, Verbose: true})
	if err != nil || res.Errors != 0 {
		t.Fatalf("%v, %d error(s)\n%s\n%s", err, res.Errors, res.Text, logged)
	}
	wantIn(t, "text", res.Text, "total WAL checked: 3, total valid WAL: 3", "total files checked: 2, total valid files: 2")

	for _, wrong := range []string{"", "not-the-passphrase"} {
		res, logged, err = run(t, dir, posix.New(dir), Options{CipherPass: wrong})
		if err != nil || res.Errors != 2 {
			t.Fatalf("passphrase %q: %v, %d error(s)\n%s", wrong, err, res.Errors, logged)
		}
		wantIn(t, "text", res.Text, "No usable backup.info file", "No usable archive.info file")
	}

	file := filepath.Join(dir, repo.Layout{Stanza: "main"}.BackupDir(), fxLabel, fxFiles[0].name+".gz")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 0x01
	if err := os.WriteFile(file, b, 0o640); err != nil {
		t.Fatal(err)
	}
	res, logged, err = run(t, dir, posix.New(dir), Options{CipherPass: pass})
	if err != nil || res.Errors != 1 {
		t.Fatalf("damaged: %v, %d error(s)\n%s", err, res.Errors, logged)
	}
	wantIn(t, "damaged", res.Text, "total files checked: 2, total valid files: 1")
}

// Faults of the storage: a file that cannot be read is an "invalid
// result" with the storage's error; a repository that cannot be listed or
// read fails the run with a clear error. Verify writes nothing either way.
func TestRunFaults(t *testing.T) {
	dir := fixture(t)
	l := repo.Layout{Stanza: "main"}
	for _, tc := range []struct {
		name     string
		fault    faulty.Fault
		errors   int
		code     errs.Code // of Run's error; 0: Run succeeds
		text     string
		loggedRe string
	}{
		{name: "backup file open", fault: faulty.Fault{Op: faulty.OpOpen, Kind: faulty.KindError, Nth: 1, Path: "base/1/1259"},
			errors: 1, text: "other: 1", loggedRe: "WARN: invalid result " + fxLabel + "/" + fxFiles[1].name + ".gz: [41] open '"},
		{name: "backup file dropped", fault: faulty.Fault{Op: faulty.OpRead, Kind: faulty.KindDrop, Nth: 1, Path: "base/1/1259"},
			errors: 1, text: "other: 1", loggedRe: "unexpected EOF"},
		{name: "WAL dropped", fault: faulty.Fault{Op: faulty.OpRead, Kind: faulty.KindDrop, Nth: 2, Path: fxWalStart},
			errors: 1, text: "archiveId: 15-1, total WAL checked: 3, total valid WAL: 2", loggedRe: "WARN: invalid result 15-1/0000000100000000/" + fxWalStart},
		{name: "list backups", fault: faulty.Fault{Op: faulty.OpList, Kind: faulty.KindError, Nth: 1, Path: l.BackupDir()},
			code: errs.PathOpen},
		{name: "list archive", fault: faulty.Fault{Op: faulty.OpList, Kind: faulty.KindError, Nth: 1, Path: "15-1/0000000100000000"},
			code: errs.PathOpen},
		{name: "WAL header", fault: faulty.Fault{Op: faulty.OpOpen, Kind: faulty.KindError, Nth: 1, Path: "000000010000000000000001"},
			code: errs.FileOpen},
		{name: "backup.info", fault: faulty.Fault{Op: faulty.OpOpen, Kind: faulty.KindError, Prob: 1, Path: repo.BackupInfoName},
			code: errs.FileRead},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := faulty.New(posix.New(dir), 1, tc.fault)
			res, logged, err := run(t, dir, st, Options{})
			if len(st.Injected()) == 0 {
				t.Fatalf("no fault injected")
			}
			if tc.code != 0 {
				if errs.CodeOf(err) != tc.code || !errors.Is(err, faulty.ErrInjected) || !strings.Contains(err.Error(), "injected") {
					t.Fatalf("got %v (code %d), want code %d", err, errs.CodeOf(err), tc.code)
				}
				return
			}
			if err != nil || res.Errors != tc.errors {
				t.Fatalf("%v, %d error(s), want %d\n%s\n%s", err, res.Errors, tc.errors, res.Text, logged)
			}
			wantIn(t, "text", res.Text, tc.text)
			wantIn(t, "log", logged, tc.loggedRe)
		})
	}
}

// The pool comes from the caller (the command's guards panics and
// signals); its failure fails the run.
func TestRunPool(t *testing.T) {
	dir := fixture(t)
	var calls, jobs atomic.Int32
	pool := func(workers, n int, job func(ctx context.Context, proc, i int) error) error {
		calls.Add(1)
		for i := range n {
			jobs.Add(1)
			if err := job(context.Background(), 1, i); err != nil {
				return err
			}
		}
		return nil
	}
	res, _, err := run(t, dir, posix.New(dir), Options{Pool: pool})
	if err != nil || res.Errors != 0 || calls.Load() != 2 || jobs.Load() != 5 {
		t.Fatalf("%v, %d error(s), %d pool call(s), %d job(s)", err, res.Errors, calls.Load(), jobs.Load())
	}
	_, _, err = run(t, dir, posix.New(dir), Options{Pool: func(int, int, func(context.Context, int, int) error) error {
		return errs.New(errs.Term, "terminated on signal")
	}})
	if errs.CodeOf(err) != errs.Term {
		t.Fatalf("pool failure: %v", err)
	}
}

// addBlockIncr adds to the fixture's backup a file stored with block
// incremental (<name>.pgbi: one super block of three 8 KiB blocks, then
// its block map); badBlock >= 0 stores a wrong checksum for that block in
// the map (the stored bytes' checksum matches what is stored).
func addBlockIncr(t *testing.T, dir string, badBlock int) string {
	t.Helper()
	ctx := context.Background()
	st := posix.New(dir)
	m, err := repo.LoadManifest(ctx, st, "main", fxLabel, "")
	if err != nil {
		t.Fatal(err)
	}
	const bs = 8192
	plain := bytes.Repeat([]byte("block incremental content "), 3*bs/26)
	plain = plain[:2*bs+1000]
	super, err := filter.EncodeRaw(plain, filter.Gz, 6, "")
	if err != nil {
		t.Fatal(err)
	}
	var items []repo.BlockMapItem
	for b := 0; b*bs < len(plain); b++ {
		block := plain[b*bs : min((b+1)*bs, len(plain))]
		sum := repo.BlockChecksum(block, repo.BlockIncrChecksumSizeDefault)
		if b == badBlock {
			sum[0] ^= 0xff
		}
		items = append(items, repo.BlockMapItem{SuperBlockSize: uint64(len(plain)), Offset: 0,
			Size: uint64(len(super)), Block: uint64(b), Checksum: sum})
	}
	bm, err := repo.AppendBlockMap(nil, items, bs, repo.BlockIncrChecksumSizeDefault)
	if err != nil {
		t.Fatal(err)
	}
	data := append(bytes.Clone(super), bm...)
	const name = "pg_data/base/1/16384"
	m.Backup.BlockIncr = true
	m.Files = append(m.Files, repo.ManifestFile{Name: name, Size: uint64(len(plain)), Checksum: repo.HexDigest(sha1Hex(plain)),
		RepoChecksum: repo.HexDigest(sha1Hex(data)), RepoSize: uint64(len(data)), BlockIncr: 1, BlockIncrMap: uint64(len(bm)), Timestamp: 1767225600})
	m.Sort()
	put(t, st, repo.Layout{Stanza: "main"}.BlockIncrFile(fxLabel, name), data)
	if err := repo.SaveManifest(ctx, st, "main", m, ""); err != nil {
		t.Fatal(err)
	}
	return fxLabel + "/" + name + repo.BlockIncrExt
}

// A block incremental file is checked as stored and assembled from its
// block map, each block against the map's checksum.
func TestRunBlockIncr(t *testing.T) {
	dir := fixture(t)
	addBlockIncr(t, dir, -1)
	res, logged, err := run(t, dir, posix.New(dir), Options{Verbose: true})
	if err != nil || res.Errors != 0 {
		t.Fatalf("%v, %d error(s)\n%s\n%s", err, res.Errors, res.Text, logged)
	}
	wantIn(t, "text", res.Text, "total files checked: 3, total valid files: 3")

	dir = fixture(t)
	name := addBlockIncr(t, dir, 1)
	res, logged, err = run(t, dir, posix.New(dir), Options{})
	if err != nil || res.Errors != 1 {
		t.Fatalf("bad block: %v, %d error(s)\n%s\n%s", err, res.Errors, res.Text, logged)
	}
	wantIn(t, "bad block", res.Text, "total files checked: 3, total valid files: 2\n    checksum invalid: 1")
	wantIn(t, "bad block", logged, "INFO: "+name+": block 1 of 'pg_data/base/1/16384': block checksum ",
		"WARN: invalid checksum '"+name+"'")

	// A super block that cannot be read is the storage's error.
	st := faulty.New(posix.New(dir), 1, faulty.Fault{Op: faulty.OpOpen, Kind: faulty.KindError, Nth: 2, Path: "16384.pgbi"})
	res, logged, err = run(t, dir, st, Options{})
	if err != nil || res.Errors != 1 || len(st.Injected()) != 1 {
		t.Fatalf("fault: %v, %d error(s)\n%s", err, res.Errors, logged)
	}
	wantIn(t, "fault", logged, "WARN: invalid result "+name+": [41] unable to open '")
}
