package restore

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/filter"
	"github.com/pgbr-dev/pgbr/internal/log"
	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/storage"
	"github.com/pgbr-dev/pgbr/internal/storage/faulty"
	"github.com/pgbr-dev/pgbr/internal/storage/posix"
)

const (
	testStanza = "demo"
	testLabel  = "20261206-100000F"
	testPass   = "restore-unit-test-passphrase"
)

// fixture is a repository on posix storage in a temporary directory
// holding one full backup, and an empty restore destination.
type fixture struct {
	st      storage.Storage
	m       *repo.Manifest
	content map[string][]byte // manifest file name → original content
	pgData  string
	logBuf  *bytes.Buffer
	log     *log.Logger
}

func sum(b []byte) string {
	s := sha1.Sum(b)
	return hex.EncodeToString(s[:])
}

// newFixture stores a small cluster: PG_VERSION, pg_control, a catalog
// file of postgres (oid 5), a user database app (oid 16384) with a
// 300 KiB relation, an empty file and a postgresql.auto.conf with a
// recovery target line restore must comment out.
func newFixture(t *testing.T, ct filter.CompressType, pass string) *fixture {
	t.Helper()
	return newFixtureWith(t, ct, pass, nil)
}

// newFixtureWith is newFixture with extra files (manifest name → content)
// in the backup as well.
func newFixtureWith(t *testing.T, ct filter.CompressType, pass string, extra map[string][]byte) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	fx := &fixture{st: posix.New(filepath.Join(dir, "repo")), content: map[string][]byte{},
		pgData: filepath.Join(dir, "pg"), logBuf: &bytes.Buffer{}}
	fx.log = log.New(fx.logBuf, nil, log.Detail, log.Off)
	big := make([]byte, 300<<10)
	for i := range big {
		big[i] = byte(i * 7 % 251)
	}
	control := make([]byte, 8192)
	copy(control, "pg_control of the unit test")
	files := map[string][]byte{
		"pg_data/PG_VERSION":                                   []byte("15\n"),
		"pg_data/global/pg_control":                            control,
		"pg_data/base/5/1259":                                  []byte(strings.Repeat("catalog ", 1000)),
		"pg_data/base/16384/PG_VERSION":                        []byte("15\n"),
		"pg_data/base/16384/16385":                             big,
		"pg_data/empty":                                        nil,
		"pg_data/postgresql.auto.conf":                         []byte("work_mem = '8MB'\nrecovery_target_name = 'old'\n"),
		"pg_data/pg_wal/000000010000000000000001.partial.keep": []byte("not wal"),
	}
	for name, b := range extra {
		files[name] = b
	}
	m := &repo.Manifest{BackrestVersion: "2.45", CipherPass: pass}
	m.Backup = repo.ManifestBackup{Label: testLabel, Type: "full", TimestampStart: 1765015200, TimestampStop: 1765015260,
		TimestampCopyStart: 1765015210, Reference: []string{testLabel}, ArchiveStart: "000000010000000000000002", ArchiveStop: "000000010000000000000002"}
	m.DB = repo.BackupDB{Version: "15", CatalogVersion: 202209061, ControlVersion: 1300, ID: 1, SystemID: 7000000000000000001}
	m.Option = repo.ManifestOption{CompressType: string(ct), Online: true}
	m.Targets = []repo.ManifestTarget{{Name: repo.TargetPgData, Path: "/var/lib/postgresql/15/main", Type: "path"}}
	m.Databases = []repo.ManifestDatabase{{Name: "app", OID: 16384, LastSystemID: 16383}, {Name: "postgres", OID: 5, LastSystemID: 16383},
		{Name: "template0", OID: 4, LastSystemID: 16383}, {Name: "template1", OID: 1, LastSystemID: 16383}}
	for _, p := range []string{"pg_data", "pg_data/base", "pg_data/base/16384", "pg_data/base/5", "pg_data/global", "pg_data/pg_wal"} {
		m.Paths = append(m.Paths, repo.ManifestPath{Name: p, Mode: "0700"})
	}
	l := repo.Layout{Stanza: testStanza}
	for name, b := range files {
		f := repo.ManifestFile{Name: name, Size: uint64(len(b)), Timestamp: 1765015000, Mode: "0600"}
		if len(b) > 0 {
			f.Checksum = repo.HexDigest(sum(b))
		}
		fx.content[name] = b
		var enc bytes.Buffer
		p, err := filter.NewWritePipeline(&enc, ct, filter.DefaultLevel(ct), pass)
		if err != nil {
			t.Fatal(err)
		}
		p.Write(b)
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		f.RepoSize = uint64(enc.Len())
		m.Files = append(m.Files, f)
		w, err := fx.st.Create(ctx, l.StoredPath(m, &m.Files[len(m.Files)-1]), storage.CreateOptions{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(enc.Bytes())
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	m.Sort()
	if err := m.CheckRestorable(); err != nil {
		t.Fatal(err)
	}
	fx.m = m
	return fx
}

func (fx *fixture) opts() Options {
	return Options{Stanza: testStanza, Storage: fx.st, Manifest: fx.m, PgData: fx.pgData, Workers: 2, Log: fx.log,
		Recovery: Recovery{Type: "default", RestoreCommand: "pgbr --stanza=demo archive-get %f \"%p\""},
		Now:      func() time.Time { return time.Date(2026, 12, 6, 10, 30, 0, 0, time.UTC) },
		// No flushes in unit tests (milliseconds); TestRunSyncFailures and
		// the integration tests exercise the real calls' handling.
		FileSync: func(*os.File) error { return nil }, Syncfs: func(int) error { return nil }}
}

func (fx *fixture) read(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fx.pgData, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkRestored asserts every file of the backup is in PGDATA with its
// content, mode and time, and the restore finished.
func (fx *fixture) checkRestored(t *testing.T) {
	t.Helper()
	for name, want := range fx.content {
		if name == "pg_data/postgresql.auto.conf" {
			continue
		}
		rel := strings.TrimPrefix(name, "pg_data/")
		got := fx.read(t, rel)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes restored, want %d", rel, len(got), len(want))
		}
		fi, _ := os.Stat(filepath.Join(fx.pgData, rel))
		if fi.Mode().Perm() != 0o600 || fi.ModTime().Unix() != 1765015000 {
			t.Errorf("%s: mode %v time %d", rel, fi.Mode(), fi.ModTime().Unix())
		}
	}
	for _, gone := range []string{repo.ManifestName, repo.ManifestName + ".pgbackrest.tmp", "global/pg_control.pgbackrest.tmp"} {
		if _, err := os.Lstat(filepath.Join(fx.pgData, gone)); !os.IsNotExist(err) {
			t.Errorf("%s left after the restore", gone)
		}
	}
}

// notStartable asserts a failed restore left a directory PostgreSQL
// cannot start from: no pg_control, the backup.manifest marker in place.
func (fx *fixture) notStartable(t *testing.T) {
	t.Helper()
	if _, err := os.Lstat(filepath.Join(fx.pgData, "global", "pg_control")); !os.IsNotExist(err) {
		t.Errorf("pg_control present after a failed restore (%v)", err)
	}
	if _, err := os.Lstat(filepath.Join(fx.pgData, repo.ManifestName)); err != nil {
		t.Errorf("backup.manifest marker missing after a failed restore: %v", err)
	}
}

func TestRunRestoresBackup(t *testing.T) {
	for _, c := range []struct {
		ct      filter.CompressType
		pass    string
		workers int
	}{{filter.None, "", 1}, {filter.Gz, "", 2}, {filter.Lz4, testPass, 3}, {filter.Zst, testPass, 1}} {
		t.Run(string(c.ct), func(t *testing.T) {
			fx := newFixture(t, c.ct, c.pass)
			o := fx.opts()
			o.Workers = c.workers
			res, err := Run(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			fx.checkRestored(t)
			if res.Files != len(fx.content) {
				t.Errorf("Result.Files %d, want %d", res.Files, len(fx.content))
			}
			var size uint64
			for _, b := range fx.content {
				size += uint64(len(b))
			}
			if res.Size != size {
				t.Errorf("Result.Size %d, want %d", res.Size, size)
			}
			auto := string(fx.read(t, "postgresql.auto.conf"))
			for _, want := range []string{"work_mem = '8MB'\n",
				"# Removed by pgBackRest restore on 2026-12-06 10:30:00 # recovery_target_name = 'old'\n",
				"\n# Recovery settings generated by pgBackRest restore on 2026-12-06 10:30:00\n",
				"restore_command = 'pgbr --stanza=demo archive-get %f \"%p\"'\n"} {
				if !strings.Contains(auto, want) {
					t.Errorf("postgresql.auto.conf lacks %q:\n%s", want, auto)
				}
			}
			if _, err := os.Stat(filepath.Join(fx.pgData, "recovery.signal")); err != nil {
				t.Error("no recovery.signal")
			}
			logs := fx.logBuf.String()
			for _, want := range []string{"remap data directory to '" + fx.pgData + "'",
				"restore file " + filepath.Join(fx.pgData, "base/16384/16385") + " (300KB, ",
				"restore global/pg_control (performed last to ensure aborted restores cannot be started)",
				"restore size = "} {
				if !strings.Contains(logs, want) {
					t.Errorf("log lacks %q:\n%s", want, logs)
				}
			}
		})
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	var buf bytes.Buffer
	l := log.New(&buf, nil, log.Info, log.Off)
	d, f, err := Check(dir, true, true, l)
	if err != nil || d || f || !strings.Contains(buf.String(), "--delta and --force have been disabled") {
		t.Fatalf("empty directory with delta: %v %v %v %q", d, f, err, buf.String())
	}
	os.WriteFile(filepath.Join(dir, "PG_VERSION"), []byte("15\n"), 0o600)
	if d, f, err := Check(dir, true, false, l); err != nil || !d || f {
		t.Fatalf("cluster directory with delta: %v %v %v", d, f, err)
	}
	os.WriteFile(filepath.Join(dir, "postmaster.pid"), []byte("1\n"), 0o600)
	if _, _, err := Check(dir, false, false, l); errs.CodeOf(err) != errs.PgRunning {
		t.Fatalf("running cluster: %v", err)
	}
}

// A destination with files is refused without delta/force; what only an
// interrupted restore leaves (backup.manifest.pgbackrest.tmp) is not.
func TestRunRefusesNonEmptyDestination(t *testing.T) {
	fx := newFixture(t, filter.Gz, "")
	os.MkdirAll(fx.pgData, 0o700)
	os.WriteFile(filepath.Join(fx.pgData, repo.ManifestName+".pgbackrest.tmp"), []byte("half"), 0o600)
	if _, err := Run(context.Background(), fx.opts()); err != nil {
		t.Fatalf("restore over an interrupted one: %v", err)
	}
	fx.checkRestored(t)
	fx2 := newFixture(t, filter.Gz, "")
	os.MkdirAll(fx2.pgData, 0o700)
	os.WriteFile(filepath.Join(fx2.pgData, "stray"), []byte("x"), 0o600)
	_, err := Run(context.Background(), fx2.opts())
	if errs.CodeOf(err) != errs.PathNotEmpty || !strings.Contains(err.Error(), "try using --delta") {
		t.Fatalf("restore into a non-empty directory: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(fx2.pgData, repo.ManifestName)); !os.IsNotExist(err) {
		t.Fatal("refused restore wrote into the directory")
	}
}

// Delta keeps what matches, rewrites what differs, removes what the
// backup does not have (a link in place of a directory is removed, not
// followed).
func TestRunDelta(t *testing.T) {
	fx := newFixture(t, filter.Gz, testPass)
	if _, err := Run(context.Background(), fx.opts()); err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "keep"), []byte("outside"), 0o600)
	os.WriteFile(filepath.Join(fx.pgData, "stray"), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(fx.pgData, "base/5/1259"), []byte("changed"), 0o600)
	os.RemoveAll(filepath.Join(fx.pgData, "base/16384"))
	os.Symlink(outside, filepath.Join(fx.pgData, "base/16384"))
	before, _ := os.Stat(filepath.Join(fx.pgData, "PG_VERSION"))
	o := fx.opts()
	o.Delta = true
	fx.logBuf.Reset()
	if _, err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	fx.checkRestored(t)
	if _, err := os.Lstat(filepath.Join(fx.pgData, "stray")); !os.IsNotExist(err) {
		t.Error("stray file kept by delta")
	}
	if b, err := os.ReadFile(filepath.Join(outside, "keep")); err != nil || string(b) != "outside" {
		t.Error("delta wrote through a planted link")
	}
	after, _ := os.Stat(filepath.Join(fx.pgData, "PG_VERSION"))
	if !os.SameFile(before, after) {
		t.Error("delta rewrote a matching file")
	}
	for _, want := range []string{"remove invalid file '" + filepath.Join(fx.pgData, "stray") + "'",
		"remove invalid link '" + filepath.Join(fx.pgData, "base/16384") + "'"} {
		if !strings.Contains(fx.logBuf.String(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

// Selective restore: a database left out is sparse files of the original
// sizes, its PG_VERSION kept; unknown and system databases are refused.
func TestRunSelective(t *testing.T) {
	fx := newFixture(t, filter.Gz, "")
	o := fx.opts()
	o.DBExclude = []string{"app"}
	if _, err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	rel := fx.read(t, "base/16384/16385")
	if len(rel) != 300<<10 || !bytes.Equal(rel, make([]byte, len(rel))) {
		t.Error("excluded database file is not zeroes of its size")
	}
	if string(fx.read(t, "base/16384/PG_VERSION")) != "15\n" {
		t.Error("excluded database lost its PG_VERSION")
	}
	if !bytes.Equal(fx.read(t, "base/5/1259"), fx.content["pg_data/base/5/1259"]) {
		t.Error("system database not restored")
	}
	for _, c := range []struct {
		include []string
		code    errs.Code
	}{{[]string{"nope"}, errs.DbMissing}, {[]string{"postgres"}, errs.DbInvalid}} {
		fx := newFixture(t, filter.None, "")
		o := fx.opts()
		o.DBInclude = c.include
		if _, err := Run(context.Background(), o); errs.CodeOf(err) != c.code {
			t.Errorf("db-include %v: %v", c.include, err)
		}
		fx.notStartable(t)
	}
}

// Each repository fault fails the restore with a clear error naming the
// file, and leaves a directory PostgreSQL cannot start from.
func TestRunStorageFaults(t *testing.T) {
	for _, c := range []struct {
		name  string
		fault faulty.Fault
		want  string
	}{
		{"open", faulty.Fault{Op: faulty.OpOpen, Kind: faulty.KindError, Nth: 1, Path: "16385"}, "16385"},
		{"drop", faulty.Fault{Op: faulty.OpRead, Kind: faulty.KindDrop, Nth: 2, Path: "16385"}, "unable to restore 'pg_data/base/16384/16385'"},
		{"control", faulty.Fault{Op: faulty.OpOpen, Kind: faulty.KindError, Nth: 1, Path: "pg_control"}, "pg_control"},
	} {
		t.Run(c.name, func(t *testing.T) {
			fx := newFixture(t, filter.Gz, testPass)
			f := faulty.New(fx.st, 1, c.fault)
			o := fx.opts()
			o.Storage = f
			_, err := Run(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), c.want) || errs.CodeOf(err) == errs.Unknown {
				t.Fatalf("restore with fault %s: %v", c.name, err)
			}
			if len(f.Injected()) == 0 {
				t.Fatal("fault not injected")
			}
			fx.notStartable(t)
		})
	}
	// A stored file that does not decode (wrong passphrase).
	fx := newFixture(t, filter.Gz, testPass)
	fx.m.CipherPass = "wrong"
	if _, err := Run(context.Background(), fx.opts()); err == nil || errs.CodeOf(err) == errs.Unknown {
		t.Fatalf("restore with a wrong passphrase: %v", err)
	}
	fx.notStartable(t)
	// Stored bytes that decode to other content.
	fx = newFixture(t, filter.None, "")
	fx.m.Files[0].Checksum = repo.HexDigest(strings.Repeat("1", 40))
	if _, err := Run(context.Background(), fx.opts()); errs.CodeOf(err) != errs.Checksum {
		t.Fatalf("restore of a corrupt file: %v", err)
	}
	fx.notStartable(t)
}

// A flush that fails fails the restore before pg_control is written.
func TestRunSyncFailures(t *testing.T) {
	fx := newFixture(t, filter.None, "")
	h := newSyncHooks()
	h.failFS = true
	o := fx.opts()
	o.FileSync, o.Syncfs = h.fileSync, h.fsSync
	_, err := Run(context.Background(), o)
	if errs.CodeOf(err) != errs.PathSync || !errors.Is(err, syscall.EIO) {
		t.Fatalf("restore with a failing syncfs: %v", err)
	}
	fx.notStartable(t)

	fx = newFixture(t, filter.None, "")
	h = newSyncHooks()
	h.failFile = true
	o = fx.opts()
	o.FileSync, o.Syncfs = h.fileSync, h.fsSync
	if _, err := Run(context.Background(), o); errs.CodeOf(err) != errs.FileSync {
		t.Fatalf("restore with a failing fsync: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(fx.pgData, "global", "pg_control")); !os.IsNotExist(err) {
		t.Error("pg_control written after a failed fsync")
	}
}

// The pool's error (a signal, a panic turned into an error by the
// command's pool) is the restore's.
func TestRunPoolError(t *testing.T) {
	fx := newFixture(t, filter.None, "")
	o := fx.opts()
	o.Pool = func(workers, n int, job func(ctx context.Context, proc, i int) error) error {
		return errs.New(errs.Term, "terminated on signal")
	}
	if _, err := Run(context.Background(), o); errs.CodeOf(err) != errs.Term {
		t.Fatalf("restore with a terminated pool: %v", err)
	}
	fx.notStartable(t)
	if _, err := Run(context.Background(), Options{}); errs.CodeOf(err) != errs.Assert {
		t.Fatalf("restore without a manifest: %v", err)
	}
}

// Tablespaces: mapped by oid, a link in PGDATA to the mapped directory;
// a map naming no tablespace and a relative destination are refused.
func TestRunTablespaceMap(t *testing.T) {
	build := func(t *testing.T) *fixture {
		fx := newFixture(t, filter.Gz, "")
		m := fx.m
		m.Targets = append(m.Targets, repo.ManifestTarget{Name: "pg_tblspc/16400", Path: "/srv/ts1", TablespaceID: "16400",
			TablespaceName: "ts1", Type: "link"})
		m.Links = append(m.Links, repo.ManifestLink{Name: "pg_data/pg_tblspc/16400", Destination: "/srv/ts1"})
		m.Paths = append(m.Paths, repo.ManifestPath{Name: "pg_data/pg_tblspc", Mode: "0700"},
			repo.ManifestPath{Name: "pg_tblspc", Mode: "0700"}, repo.ManifestPath{Name: "pg_tblspc/16400", Mode: "0700"},
			repo.ManifestPath{Name: "pg_tblspc/16400/PG_15_202209061", Mode: "0700"},
			repo.ManifestPath{Name: "pg_tblspc/16400/PG_15_202209061/16384", Mode: "0700"})
		b := []byte("tablespace relation")
		f := repo.ManifestFile{Name: "pg_tblspc/16400/PG_15_202209061/16384/16401", Size: uint64(len(b)), Timestamp: 1765015000,
			Mode: "0600", Checksum: repo.HexDigest(sum(b))}
		var enc bytes.Buffer
		p, _ := filter.NewWritePipeline(&enc, filter.Gz, filter.DefaultLevel(filter.Gz), "")
		p.Write(b)
		p.Close()
		f.RepoSize = uint64(enc.Len())
		m.Files = append(m.Files, f)
		w, err := fx.st.Create(context.Background(), repo.Layout{Stanza: testStanza}.StoredPath(m, &f), storage.CreateOptions{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(enc.Bytes())
		w.Commit()
		m.Sort()
		if err := m.CheckRestorable(); err != nil {
			t.Fatal(err)
		}
		fx.content[f.Name] = b
		return fx
	}
	fx := build(t)
	ts := filepath.Join(t.TempDir(), "ts1")
	o := fx.opts()
	o.TablespaceMap = [][2]string{{"16400", ts}}
	if _, err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if d, err := os.Readlink(filepath.Join(fx.pgData, "pg_tblspc/16400")); err != nil || d != ts {
		t.Fatalf("tablespace link %q %v, want %q", d, err, ts)
	}
	if b, err := os.ReadFile(filepath.Join(ts, "PG_15_202209061/16384/16401")); err != nil || string(b) != "tablespace relation" {
		t.Fatalf("tablespace file: %q %v", b, err)
	}
	if !strings.Contains(fx.logBuf.String(), "map tablespace 'pg_tblspc/16400' to '"+ts+"'") {
		t.Error("mapping not logged")
	}

	for _, c := range []struct {
		name string
		set  func(o *Options)
		code errs.Code
	}{
		{"unknown", func(o *Options) { o.TablespaceMap = [][2]string{{"99999", t.TempDir()}} }, errs.TablespaceMap},
		{"relative", func(o *Options) { o.TablespaceMap = [][2]string{{"ts1", "rel/ts"}} }, errs.LinkDestination},
		{"inside", func(o *Options) { o.TablespaceMap = [][2]string{{"ts1", filepath.Join(o.PgData, "ts")}} }, errs.LinkDestination},
		{"badlink", func(o *Options) { o.LinkMap = [][2]string{{"pg_wal", t.TempDir()}} }, errs.LinkMap},
	} {
		t.Run(c.name, func(t *testing.T) {
			fx := build(t)
			o := fx.opts()
			c.set(&o)
			if _, err := Run(context.Background(), o); errs.CodeOf(err) != c.code {
				t.Fatalf("%s: %v, want code %d", c.name, err, c.code)
			}
			if _, err := os.Lstat(fx.pgData); !os.IsNotExist(err) {
				t.Error("refused restore created PGDATA")
			}
		})
	}
}

// TestRunForce: as pgBackRest 2.45, --delta --force keeps a file on its
// size and time (not its content), --delta alone on its checksum, and
// --force alone rewrites every file.
func TestRunForce(t *testing.T) {
	fx := newFixture(t, filter.Gz, "")
	if _, err := Run(context.Background(), fx.opts()); err != nil {
		t.Fatal(err)
	}
	rel := filepath.Join(fx.pgData, "base/5/1259")
	orig := fx.read(t, "base/5/1259")
	mtime := time.Unix(1765015000, 0)
	forge := func() {
		t.Helper()
		if err := os.WriteFile(rel, bytes.Repeat([]byte{'x'}, len(orig)), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(rel, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		delta, force, forgedKept, sameFile bool
	}{{true, true, true, true}, {true, false, false, true}, {false, true, false, false}} {
		forge()
		// A second link keeps the file's inode: a rewritten file cannot
		// get it back.
		link := filepath.Join(t.TempDir(), "PG_VERSION")
		if err := os.Link(filepath.Join(fx.pgData, "PG_VERSION"), link); err != nil {
			t.Fatal(err)
		}
		before, _ := os.Stat(link)
		o := fx.opts()
		o.Delta, o.Force = c.delta, c.force
		if _, err := Run(context.Background(), o); err != nil {
			t.Fatal(err)
		}
		kept := !bytes.Equal(fx.read(t, "base/5/1259"), orig)
		after, _ := os.Stat(filepath.Join(fx.pgData, "PG_VERSION"))
		if kept != c.forgedKept || os.SameFile(before, after) != c.sameFile {
			t.Errorf("delta %v force %v: same-size same-time file kept %v, matching file left in place %v", c.delta, c.force, kept, os.SameFile(before, after))
		}
		if !c.forgedKept {
			fx.checkRestored(t)
		}
	}
}
