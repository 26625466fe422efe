package backup

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"strings"
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

const stanza = "main"

// pgData makes a small offline PGDATA: pg_control, a few relations (one
// of 20 KiB, block incremental with the default maps), an empty file and
// a root file pgBackRest never copies.
func pgData(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pg")
	big := make([]byte, 20<<10)
	rand.Read(big)
	files := map[string][]byte{
		"PG_VERSION":          []byte("15\n"),
		"global/pg_control":   bytes.Repeat([]byte{1}, 8192),
		"base/1/1259":         bytes.Repeat([]byte{2}, 8192),
		"base/1/16384":        big,
		"base/1/16385":        nil,
		"postgresql.conf":     []byte("port = 5432\n"),
		"postmaster.opts":     []byte("x"),
		"pg_wal/placeholder0": []byte("w"),
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, body, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Old enough for nothing to be mistaken for a change in the same
	// second, young enough to be block incremental.
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error { return os.Chtimes(p, old, old) })
	return dir
}

type fixture struct {
	t      *testing.T
	pg     string
	st     storage.Storage
	logBuf *log.Capture
}

func newFixture(t *testing.T) *fixture {
	return &fixture{t: t, pg: pgData(t), st: posix.New(filepath.Join(t.TempDir(), "repo")), logBuf: &log.Capture{}}
}

// opts are the options of an offline backup of the fixture.
func (fx *fixture) opts(prior *repo.Manifest) Options {
	return Options{Stanza: stanza, Storage: fx.st, PgData: fx.pg, TablespaceDir: "PG_15_202209061",
		Prior: prior, Compress: filter.Gz, Level: 1, Start: time.Now().Truncate(time.Second),
		ProcessMax: 2, SaveThreshold: 1 << 30,
		Log: log.New(fx.logBuf, fx.logBuf, log.Detail, log.Off)}
}

// manifest is the header the command sets before the engine runs.
func manifest(typ string, o Options) *repo.Manifest {
	m := &repo.Manifest{BackrestVersion: "2.45"}
	m.Backup = repo.ManifestBackup{Type: typ, TimestampStart: o.Start.Unix(), Bundle: o.Bundle}
	if o.Prior != nil {
		m.Backup.Prior = o.Prior.Backup.Label
	}
	m.DB = repo.BackupDB{CatalogVersion: 202209061, ControlVersion: 1300, ID: 1, SystemID: 7000000000000000001, Version: "15"}
	m.Option = repo.ManifestOption{CompressType: string(o.Compress), CompressLevel: o.Level, ProcessMax: o.ProcessMax}
	return m
}

// planned runs the steps before the copy (BuildManifest, Plan).
func planned(t *testing.T, ctx context.Context, b *Backup) {
	t.Helper()
	if err := b.BuildManifest(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Plan(ctx); err != nil {
		t.Fatal(err)
	}
}

// run runs every step of the engine; stop stops after that step
// ("copy": an interrupted backup, before the manifest is saved).
func run(ctx context.Context, b *Backup, stop string) error {
	if err := b.BuildManifest(ctx); err != nil {
		return err
	}
	if err := b.Plan(ctx); err != nil {
		return err
	}
	if err := b.Copy(ctx); err != nil {
		return err
	}
	if stop == "copy" {
		return nil
	}
	if err := b.WriteGenerated(ctx, "pg_data/backup_label", []byte("LABEL\n"), time.Now().Unix()); err != nil {
		return err
	}
	b.M.Backup.TimestampStop = time.Now().Unix()
	return b.Finish(ctx)
}

func (fx *fixture) backup(typ string, prior *repo.Manifest, edit func(*Options)) *repo.Manifest {
	fx.t.Helper()
	o := fx.opts(prior)
	if edit != nil {
		edit(&o)
	}
	b := New(o, manifest(typ, o))
	if err := run(context.Background(), b, ""); err != nil {
		fx.t.Fatalf("%s backup: %v\nlog:\n%s", typ, err, fx.logBuf)
	}
	m, err := repo.LoadManifest(context.Background(), fx.st, stanza, b.M.Backup.Label, o.InfoCipherPass)
	if err != nil {
		fx.t.Fatal(err)
	}
	fx.checkStored(m)
	return m
}

// checkStored reads back every stored file of m's own backup (not block
// incremental ones) and compares it with the manifest.
func (fx *fixture) checkStored(m *repo.Manifest) {
	fx.t.Helper()
	lay := repo.Layout{Stanza: stanza}
	for i := range m.Files {
		f := &m.Files[i]
		if f.Reference != "" || f.BlockIncrMap != 0 || (m.Backup.Bundle && f.Size == 0) {
			continue
		}
		r, err := repo.OpenStored(context.Background(), fx.st, lay.StoredFile(m, f, true))
		if err != nil {
			fx.t.Fatalf("%s: %v", f.Name, err)
		}
		mm, err := r.Drain()
		r.Close()
		if err != nil || mm != repo.MatchOK {
			fx.t.Fatalf("%s: stored copy does not match the manifest (%v, %v)", f.Name, mm, err)
		}
	}
}

func fileOf(t *testing.T, m *repo.Manifest, name string) *repo.ManifestFile {
	t.Helper()
	f, ok := m.FindFile(name)
	if !ok {
		t.Fatalf("%s missing from the manifest", name)
	}
	return f
}

func touch(t *testing.T, path string, body []byte) {
	t.Helper()
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	os.Chtimes(path, now, now)
}

func TestFullThenIncr(t *testing.T) {
	fx := newFixture(t)
	full := fx.backup(repo.BackupTypeFull, nil, nil)
	for _, name := range []string{"pg_data/postmaster.opts", "pg_data/pg_wal/placeholder0"} {
		if _, ok := full.FindFile(name); ok != (name == "pg_data/pg_wal/placeholder0") {
			t.Errorf("%s: in manifest = %v", name, ok)
		}
	}
	if f := fileOf(t, full, "pg_data/backup_label"); f.Size != 6 {
		t.Errorf("backup_label size %d", f.Size)
	}
	if ok, _ := fx.st.Exists(context.Background(), repo.HistoryManifestPath(stanza, full.Backup.Label)); !ok {
		t.Error("no history manifest")
	}
	if !strings.Contains(fx.logBuf.String(), "backup file "+filepath.Join(fx.pg, "base/1/16384")+" (20KB, ") {
		t.Errorf("no copy line for base/1/16384 in:\n%s", fx.logBuf)
	}

	touch(t, filepath.Join(fx.pg, "base/1/1259"), bytes.Repeat([]byte{3}, 16384))
	incr := fx.backup(repo.BackupTypeIncr, full, nil)
	if got := incr.Backup.Reference; len(got) != 2 || got[0] != full.Backup.Label || got[1] != incr.Backup.Label {
		t.Errorf("references %v", got)
	}
	if f := fileOf(t, incr, "pg_data/base/1/1259"); f.Reference != "" || f.Size != 16384 {
		t.Errorf("changed file: reference %q size %d", f.Reference, f.Size)
	}
	if f := fileOf(t, incr, "pg_data/base/1/16384"); f.Reference != full.Backup.Label {
		t.Errorf("unchanged file: reference %q", f.Reference)
	}
}

func TestBundleCipher(t *testing.T) {
	fx := newFixture(t)
	set := func(o *Options) {
		o.Bundle, o.BundleSize, o.BundleLimit = true, 1<<20, 10000
		o.InfoCipherPass = "info-pass"
	}
	o := fx.opts(nil)
	set(&o)
	m := manifest(repo.BackupTypeFull, o)
	m.CipherPass = "sub-pass"
	b := New(o, m)
	if err := run(context.Background(), b, ""); err != nil {
		t.Fatal(err)
	}
	got, err := repo.LoadManifest(context.Background(), fx.st, stanza, m.Backup.Label, "info-pass")
	if err != nil {
		t.Fatal(err)
	}
	fx.checkStored(got)
	if f := fileOf(t, got, "pg_data/base/1/1259"); f.BundleID == 0 {
		t.Error("small file not bundled")
	}
	if f := fileOf(t, got, "pg_data/base/1/16384"); f.BundleID != 0 {
		t.Error("file above the bundle limit bundled")
	}
	if f := fileOf(t, got, "pg_data/base/1/16385"); f.BundleID != 0 || f.RepoSize != 0 {
		t.Errorf("zero-length file stored: %+v", f)
	}
	if _, err := repo.LoadManifest(context.Background(), fx.st, stanza, m.Backup.Label, ""); err == nil {
		t.Error("manifest readable without the passphrase")
	}
}

func TestNoChanges(t *testing.T) {
	fx := newFixture(t)
	full := fx.backup(repo.BackupTypeFull, nil, nil)
	o := fx.opts(full)
	b := New(o, manifest(repo.BackupTypeIncr, o))
	err := run(context.Background(), b, "")
	if errs.CodeOf(err) != errs.FileMissing || !strings.Contains(err.Error(), "no files have changed since the last backup") {
		t.Fatalf("got %v", err)
	}
}

func TestResume(t *testing.T) {
	fx := newFixture(t)
	ctx := context.Background()
	o := fx.opts(nil)
	o.Resume = true
	o.SaveThreshold = 1 // a manifest copy after every file
	first := New(o, manifest(repo.BackupTypeFull, o))
	if err := run(ctx, first, "copy"); err != nil {
		t.Fatal(err)
	}
	label := first.M.Backup.Label
	o = fx.opts(nil)
	o.Resume = true
	o.Start = o.Start.Add(2 * time.Second)
	second := New(o, manifest(repo.BackupTypeFull, o))
	if err := run(ctx, second, ""); err != nil {
		t.Fatal(err)
	}
	if second.M.Backup.Label != label {
		t.Errorf("label %s, want the interrupted backup's %s", second.M.Backup.Label, label)
	}
	out := fx.logBuf.String()
	for _, want := range []string{
		"resumable backup " + label + " of same type exists",
		"checksum resumed file " + filepath.Join(fx.pg, "base/1/16384"),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	m, err := repo.LoadManifest(ctx, fx.st, stanza, label, "")
	if err != nil {
		t.Fatal(err)
	}
	fx.checkStored(m)

	// Resume disabled: the next interrupted backup is removed.
	o = fx.opts(nil)
	o.Resume = true
	o.SaveThreshold = 1
	o.Start = o.Start.Add(4 * time.Second)
	third := New(o, manifest(repo.BackupTypeFull, o))
	if err := run(ctx, third, "copy"); err != nil {
		t.Fatal(err)
	}
	o = fx.opts(nil)
	o.Start = o.Start.Add(6 * time.Second)
	fourth := New(o, manifest(repo.BackupTypeFull, o))
	if err := run(ctx, fourth, ""); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(fx.logBuf.String(), "backup '"+third.M.Backup.Label+"' cannot be resumed: resume is disabled") {
		t.Errorf("no resume-disabled line:\n%s", fx.logBuf)
	}
	if ok, _ := fx.st.Exists(ctx, repo.Layout{Stanza: stanza}.LabelDir(third.M.Backup.Label)+"/"+repo.ManifestName+repo.CopyExt); ok {
		t.Error("interrupted backup kept")
	}

	// An interrupted backup whose manifest verifies but holds a file entry
	// that does not parse (found when its files are read, after its head):
	// not resumed, removed, and the backup runs under a new label.
	o = fx.opts(nil)
	o.Resume = true
	o.SaveThreshold = 1
	o.Start = o.Start.Add(8 * time.Second)
	fifth := New(o, manifest(repo.BackupTypeFull, o))
	if err := run(ctx, fifth, "copy"); err != nil {
		t.Fatal(err)
	}
	copyPath := repo.BackupManifestPath(stanza, fifth.M.Backup.Label) + repo.CopyExt
	r, err := fx.st.Open(ctx, copyPath)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(r)
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	ini, err := repo.ParseIniUnchecked(data)
	if err != nil {
		t.Fatal(err)
	}
	ini.Set("target:file", "pg_data/base/1/16384", `{"size":"twenty","timestamp":1}`)
	if err := storage.WriteAll(ctx, fx.st, copyPath, ini.Bytes()); err != nil {
		t.Fatal(err)
	}
	o.Start = o.Start.Add(2 * time.Second)
	sixth := New(o, manifest(repo.BackupTypeFull, o))
	if err := run(ctx, sixth, ""); err != nil {
		t.Fatal(err)
	}
	if want := "backup '" + fifth.M.Backup.Label + "' cannot be resumed: unable to read"; !strings.Contains(fx.logBuf.String(), want) ||
		sixth.M.Backup.Label == fifth.M.Backup.Label {
		t.Errorf("label %s; log lacks %q:\n%s", sixth.M.Backup.Label, want, fx.logBuf)
	}
}

func TestBlockIncr(t *testing.T) {
	fx := newFixture(t)
	set := func(o *Options) {
		o.BlockIncr, o.BlockSuperSize, o.BlockSuperSizeFull = true, 64<<10, 64<<10
		o.Bundle, o.BundleSize, o.BundleLimit = true, 1<<20, 4096
	}
	full := fx.backup(repo.BackupTypeFull, nil, set)
	f := fileOf(t, full, "pg_data/base/1/16384")
	if !full.Backup.BlockIncr || !full.Backup.BundleRaw || f.BlockIncr == 0 || f.BlockIncrMap == 0 {
		t.Fatalf("not block incremental: backup %+v file %+v", full.Backup, f)
	}
	// Change the second block only: the new map refers to the full backup
	// for the others.
	p := filepath.Join(fx.pg, "base/1/16384")
	data, _ := os.ReadFile(p)
	data[9000] ^= 0xff
	touch(t, p, data)
	incr := fx.backup(repo.BackupTypeIncr, full, set)
	g := fileOf(t, incr, "pg_data/base/1/16384")
	if g.Reference != "" || g.BlockIncr != f.BlockIncr || g.BlockIncrMap == 0 {
		t.Fatalf("incr file %+v", g)
	}
	b := New(fx.opts(incr), manifest(repo.BackupTypeIncr, fx.opts(incr)))
	b.ctx = context.Background()
	items, err := b.priorBlockMap(g)
	if err != nil {
		t.Fatal(err)
	}
	var own, old int
	for _, it := range items {
		if it.Reference == 1 {
			own++
		} else {
			old++
		}
	}
	if own != 1 || old != len(items)-1 {
		t.Errorf("map: %d blocks of the incr, %d of the full", own, old)
	}
}

// TestFaults: every storage fault during the copy or the save fails the
// backup with a clear error and leaves no backup.manifest behind.
func TestFaults(t *testing.T) {
	cases := []struct {
		fault faulty.Fault
		code  errs.Code
		msg   string
	}{
		{faulty.Fault{Op: faulty.OpCreate, Nth: 1, Path: "/pg_data/"}, errs.FileOpen, "unable to open '"},
		{faulty.Fault{Op: faulty.OpWrite, Nth: 1, Path: "/pg_data/", Kind: faulty.KindENOSPC}, errs.FileWrite, "unable to write '"},
		{faulty.Fault{Op: faulty.OpCommit, Nth: 2, Path: "/pg_data/"}, errs.FileWrite, "unable to write '"},
		{faulty.Fault{Op: faulty.OpCommit, Nth: 1, Path: "/bundle/"}, errs.FileWrite, "unable to write '"},
		{faulty.Fault{Op: faulty.OpSync, Nth: 1}, errs.FileSync, "unable to sync backup files"},
		{faulty.Fault{Op: faulty.OpList, Nth: 1}, errs.PathOpen, "unable to list backups"},
	}
	for _, c := range cases {
		t.Run(string(c.fault.Op)+"-"+c.fault.Path, func(t *testing.T) {
			fx := newFixture(t)
			fs := faulty.New(fx.st, 1, c.fault)
			o := fx.opts(nil)
			o.Storage = fs
			o.Bundle, o.BundleSize, o.BundleLimit = true, 1<<20, 10000
			b := New(o, manifest(repo.BackupTypeFull, o))
			err := run(context.Background(), b, "")
			if err == nil {
				t.Fatal("backup succeeded")
			}
			if errs.CodeOf(err) != c.code || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("got [%d] %v, want [%d] %q", errs.CodeOf(err), err, c.code, c.msg)
			}
			if b.M.Backup.Label != "" {
				if ok, _ := fx.st.Exists(context.Background(), repo.BackupManifestPath(stanza, b.M.Backup.Label)); ok {
					t.Error("backup.manifest saved by a failed backup")
				}
			}
		})
	}
}

// TestCancel: a cancelled context stops the copy with [063].
func TestCancel(t *testing.T) {
	fx := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	o := fx.opts(nil)
	b := New(o, manifest(repo.BackupTypeFull, o))
	planned(t, ctx, b)
	if err := b.Copy(ctx); errs.CodeOf(err) != errs.Term {
		t.Fatalf("got %v", err)
	}
}

// TestIncrPriorSources: an incr plans the same from a prior held whole and
// from a prior loaded without its files and read again (the command's
// way): unchanged files are references keeping the prior's checksums,
// changed ones are copied, a file only touched is copied without delta
// and referenced with it, and a timestamp gone backwards switches delta
// on.
func TestIncrPriorSources(t *testing.T) {
	ctx := context.Background()
	for _, source := range []string{"memory", "streamed"} {
		fx := newFixture(t)
		full := fx.backup(repo.BackupTypeFull, nil, nil)
		withPrior := func(o *Options) {
			if source == "streamed" {
				head, files, err := repo.LoadManifestHead(ctx, fx.st, stanza, full.Backup.Label, "")
				if err != nil {
					t.Fatal(err)
				}
				if len(head.Files) != 0 {
					t.Fatalf("the head holds %d files", len(head.Files))
				}
				o.Prior, o.PriorFiles = head, files
			}
		}
		touch(t, filepath.Join(fx.pg, "base/1/1259"), bytes.Repeat([]byte{9}, 8192))
		touch(t, filepath.Join(fx.pg, "postgresql.conf"), []byte("port = 5432\n"))
		incr := fx.backup(repo.BackupTypeIncr, full, withPrior)
		if incr.Option.Delta {
			t.Fatalf("%s: delta switched on", source)
		}
		for _, name := range []string{"pg_data/base/1/1259", "pg_data/postgresql.conf"} {
			if f := fileOf(t, incr, name); f.Reference != "" {
				t.Errorf("%s: %s changed or touched, but referenced to %q", source, name, f.Reference)
			}
		}
		for _, name := range []string{"pg_data/base/1/16384", "pg_data/base/1/16385", "pg_data/global/pg_control"} {
			f, pf := fileOf(t, incr, name), fileOf(t, full, name)
			if f.Reference != full.Backup.Label || f.Checksum != pf.Checksum || f.RepoSize != pf.RepoSize ||
				f.RepoChecksum != pf.RepoChecksum {
				t.Errorf("%s: unchanged %s: %+v, prior %+v", source, name, f, pf)
			}
		}

		old := time.Now().Add(-3 * time.Hour)
		if err := os.Chtimes(filepath.Join(fx.pg, "PG_VERSION"), old, old); err != nil {
			t.Fatal(err)
		}
		delta := fx.backup(repo.BackupTypeIncr, full, withPrior)
		if !delta.Option.Delta || !strings.Contains(fx.logBuf.String(), "file 'PG_VERSION' has timestamp earlier than prior backup") {
			t.Fatalf("%s: delta %v after a timestamp went backwards; log:\n%s", source, delta.Option.Delta, fx.logBuf)
		}
		if f := fileOf(t, delta, "pg_data/postgresql.conf"); f.Reference != full.Backup.Label {
			t.Errorf("%s: with delta, the touched but unchanged postgresql.conf is not referenced (%q)", source, f.Reference)
		}
		if f := fileOf(t, delta, "pg_data/base/1/1259"); f.Reference != "" {
			t.Errorf("%s: with delta, the changed base/1/1259 is referenced (%q)", source, f.Reference)
		}
	}
}

// TestOnlineRecentMtime: an online backup copies a small file whose mtime
// is in the current second at once, and records it a second before the
// cut so that a change later in that second, which keeps the mtime, is
// still copied by the next incremental backup; a large one keeps its mtime
// (it is read once that second is over).
func TestOnlineRecentMtime(t *testing.T) {
	fx := newFixture(t)
	rel := filepath.Join(fx.pg, "base/1/1259")
	big := filepath.Join(fx.pg, "base/1/16390")
	if err := os.WriteFile(big, bytes.Repeat([]byte{5}, settleMax+8192), 0o600); err != nil {
		t.Fatal(err)
	}
	mtime := time.Now().Add(-time.Minute).Truncate(time.Second)
	for _, p := range []string{rel, big} {
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	online := func(now time.Time) func(*Options) {
		return func(o *Options) {
			o.Online, o.ProcessMax = true, 1
			o.Now = func() time.Time { return now }
		}
	}
	// The copy starts 0.5 s into the second the files were written in.
	full := fx.backup(repo.BackupTypeFull, nil, online(mtime.Add(500*time.Millisecond)))
	if f := fileOf(t, full, "pg_data/base/1/1259"); f.Timestamp != mtime.Unix()-1 {
		t.Errorf("small file: recorded mtime %d, want %d (a second before its own)", f.Timestamp, mtime.Unix()-1)
	}
	if f := fileOf(t, full, "pg_data/base/1/16390"); f.Timestamp != mtime.Unix() {
		t.Errorf("large file: recorded mtime %d, want its own %d", f.Timestamp, mtime.Unix())
	}
	if f := fileOf(t, full, "pg_data/base/1/16384"); f.Timestamp >= mtime.Unix()-1 {
		t.Errorf("an hour-old file recorded with mtime %d", f.Timestamp)
	}
	// Restore --force keeps no file recorded as cut-1 or later.
	if full.Backup.TimestampCopyStart != mtime.Unix()-1 {
		t.Errorf("copy start %d, want %d", full.Backup.TimestampCopyStart, mtime.Unix()-1)
	}

	// Changed later in the same second: same size, same mtime.
	if err := os.WriteFile(rel, bytes.Repeat([]byte{7}, 8192), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(rel, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	incr := fx.backup(repo.BackupTypeIncr, full, online(mtime.Add(5*time.Second)))
	if incr.Option.Delta {
		t.Fatalf("delta switched on; log:\n%s", fx.logBuf)
	}
	f := fileOf(t, incr, "pg_data/base/1/1259")
	if f.Reference != "" || f.Timestamp != mtime.Unix() {
		t.Errorf("file changed in its mtime's second: reference %q, recorded mtime %d (want a copy, %d)", f.Reference, f.Timestamp, mtime.Unix())
	}
	for _, name := range []string{"pg_data/base/1/16384", "pg_data/base/1/16390"} {
		if f := fileOf(t, incr, name); f.Reference != full.Backup.Label {
			t.Errorf("unchanged %s copied again (reference %q)", name, f.Reference)
		}
	}

	// A millisecond into a second the lag reaches back into the previous
	// one: small files of that second are recorded before it too.
	last := mtime.Add(-time.Second)
	if err := os.Chtimes(rel, last, last); err != nil {
		t.Fatal(err)
	}
	o := fx.opts(nil)
	online(mtime.Add(time.Millisecond))(&o)
	b := New(o, manifest(repo.BackupTypeFull, o))
	planned(t, context.Background(), b)
	if f := fileOf(t, b.M, "pg_data/base/1/1259"); f.Timestamp != mtime.Unix()-2 {
		t.Errorf("recorded mtime %d, want %d", f.Timestamp, mtime.Unix()-2)
	}
}

// TestSettleAfterNewest: a file changed just before the copy is recorded
// a second early only when the newest backup in the repository cannot
// trust that second: its copy start (when it is the prior) or else its
// stop second must be at most cut-1. Otherwise the file keeps its mtime
// and waits for its second.
func TestSettleAfterNewest(t *testing.T) {
	fx := newFixture(t)
	rel := filepath.Join(fx.pg, "base/1/1259")
	mtime := time.Now().Add(-time.Minute).Truncate(time.Second)
	if err := os.Chtimes(rel, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	prior := &repo.Manifest{}
	prior.Backup.Label = "20261207-000000F"
	cases := []struct {
		name    string
		label   string
		stop    int64
		prior   *repo.Manifest
		copy    int64
		settled bool
	}{
		{"no backup", "", 0, nil, 0, true},
		{"stopped before cut-1", "20261207-000000F", mtime.Unix() - 2, nil, 0, true},
		{"stopped in cut-1", "20261207-000000F", mtime.Unix() - 1, nil, 0, true},
		{"stopped in cut", "20261207-000000F", mtime.Unix(), nil, 0, false},
		{"prior, copy start cut-1", "20261207-000000F", mtime.Unix(), prior, mtime.Unix() - 1, true},
		{"prior, copy start cut", "20261207-000000F", mtime.Unix(), prior, mtime.Unix(), false},
		{"newer than the prior", "20261207-000001F", mtime.Unix(), prior, mtime.Unix() - 1, false},
	}
	for _, c := range cases {
		o := fx.opts(nil)
		o.Online, o.NewestLabel, o.NewestStop = true, c.label, c.stop
		o.Now = func() time.Time { return mtime.Add(500 * time.Millisecond) }
		b := New(o, manifest(repo.BackupTypeFull, o))
		if err := b.BuildManifest(context.Background()); err != nil {
			t.Fatal(err)
		}
		if c.prior != nil {
			c.prior.Backup.TimestampCopyStart = c.copy
			b.prior = c.prior
		}
		b.settleTimestamps(o.Now())
		f := fileOf(t, b.M, "pg_data/base/1/1259")
		if settled := f.Timestamp == mtime.Unix()-1; settled != c.settled || !settled && (f.Timestamp != mtime.Unix() || !b.mustWait(f)) {
			t.Errorf("%s: recorded mtime %d (file's %d), waits %v; want settled %v", c.name, f.Timestamp, mtime.Unix(), b.mustWait(f), c.settled)
		}
	}
}
