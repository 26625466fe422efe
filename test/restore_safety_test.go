package test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/filter"
	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/storage"
	"github.com/pgbr-dev/pgbr/internal/storage/posix"
	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// TestRestoreSafety: restore never writes or removes anything outside
// PGDATA and the tablespace/link destinations, whatever the manifest says.
// A real backup (plain and encrypted repository) is the base; its manifest
// and manifest copy are rewritten with a valid checksum (and encryption)
// carrying escaping names. Each crafted restore must fail with a numbered
// error and leave the whole neighbourhood of PGDATA (its parent directory,
// PGDATA itself, the tablespace directory and an outside directory)
// byte-identical. A symbolic link planted inside PGDATA where the backup
// has a directory or file is removed by restore --delta, never written
// through, and the restored cluster starts with the right data.
func TestRestoreSafety(t *testing.T) {
	for _, encrypted := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "encrypted"}[encrypted]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			restoreSafety(t, encrypted)
		})
	}
}

func restoreSafety(t *testing.T, encrypted bool) {
	const repoPass = "Rs7kq2Vx9LmP4tW8zB3nC6fH1jD5gY0e"
	var global []string
	if encrypted {
		global = []string{"repo1-cipher-type=aes-256-cbc", "repo1-cipher-pass=" + repoPass}
	}
	e := testenv.NewEnv(t, testenv.EnvOptions{Global: global})
	ts := filepath.Join(e.Dir, "ts1")
	os.MkdirAll(ts, 0o700)
	testenv.Chown(t, ts)
	e.Cluster.Exec("postgres", "create tablespace ts1 location '"+ts+"'")
	e.Cluster.Exec("postgres", "create table t(id int primary key, v text); insert into t select g, md5(g::text) from generate_series(1,2000) g")
	e.Cluster.Exec("postgres", "create table tts(id int, v text) tablespace ts1; insert into tts select g, md5(g::text) from generate_series(1,500) g")
	e.MustRun("stanza-create")
	e.MustRun("backup", "--type=full")
	want := e.Cluster.QueryOne("postgres", digestSQL+"t") + "/" + e.Cluster.QueryOne("postgres", digestSQL+"tts")
	e.Cluster.Stop()

	// Rewrite the existing files in place: they keep their owner (the
	// repository user restore runs as).
	put := func(p string, data []byte) error { return os.WriteFile(filepath.Join(e.Repo, p), data, 0o640) }
	m := loadManifestCrafter(t, posix.New(e.Repo), put, e.Stanza, repoPass, encrypted)
	plain, install, craft := m.plain, m.install, m.craft
	oid, pgVersion := m.tablespaceOID, m.pgVersion

	// The neighbourhood: <rdir>/a/b/pg is PGDATA, <rdir>/ts the tablespace,
	// <rdir>/outside a directory nobody may touch.
	rdir := testenv.Dir(t, "safety")
	data := filepath.Join(rdir, "a", "b", "pg")
	tsDir := filepath.Join(rdir, "ts")
	outside := filepath.Join(rdir, "outside")
	for _, d := range []string{filepath.Dir(data), tsDir, outside} {
		os.MkdirAll(d, 0o700)
	}
	os.WriteFile(filepath.Join(outside, "victim"), []byte("must not change\n"), 0o600)
	testenv.Chown(t, rdir)
	restoreArgs := func(extra ...string) []string {
		return append([]string{"restore", "--pg1-path=" + data, "--tablespace-map=" + oid + "=" + tsDir, "--archive-mode=off"}, extra...)
	}
	e.MustRun(restoreArgs()...)

	// A link planted where the backup has a directory (base/5, global) or
	// a file (PG_VERSION), each pointing outside: --delta removes the
	// links and restores real ones; nothing outside changes.
	plant := func(rel string) {
		t.Helper()
		p := filepath.Join(data, rel)
		moved := filepath.Join(outside, strings.ReplaceAll(rel, "/", "_"))
		if err := os.Rename(p, moved); err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Lstat(moved); fi.IsDir() {
			// Make every file there differ from the backup, so a restore
			// writing through the link would rewrite it.
			filepath.Walk(moved, func(f string, fi os.FileInfo, err error) error {
				if err == nil && fi.Mode().IsRegular() {
					os.WriteFile(f, []byte("planted\n"), 0o600)
				}
				return nil
			})
		} else {
			os.WriteFile(moved, []byte("planted\n"), 0o600)
		}
		if err := os.Symlink(moved, p); err != nil {
			t.Fatal(err)
		}
	}
	plant("base/5")
	plant("global")
	plant("PG_VERSION")
	testenv.Chown(t, rdir)
	before := testenv.TreeDigest(t, outside)
	out := e.MustRun(restoreArgs("--delta")...)
	if after := testenv.TreeDigest(t, outside); after != before {
		t.Fatalf("restore --delta changed files outside PGDATA through a planted link:\n%s\n%s", testenv.Tree(outside), out)
	}
	for _, rel := range []string{"base/5", "global", "PG_VERSION"} {
		fi, err := os.Lstat(filepath.Join(data, rel))
		if err != nil || fi.Mode()&os.ModeSymlink != 0 {
			t.Fatalf("%s is still a link after restore --delta: %v %v", rel, fi, err)
		}
	}

	// Crafted manifests. Each restore runs with --delta on the restored
	// PGDATA (the most destructive mode) and must fail before touching
	// anything.
	cases := []struct {
		name  string
		edit  func(ini *repo.Ini)
		extra []string
		noMap bool // no --tablespace-map
		code  int
		msg   string
	}{
		{"path pg_data/../x", func(ini *repo.Ini) { ini.Set("target:path", "pg_data/../x", "{}") },
			nil, false, 29, "invalid name 'pg_data/../x' in manifest section [target:path]"},
		{"file pg_data/../../somewhere/x", func(ini *repo.Ini) { ini.Set("target:file", "pg_data/../../somewhere/x", pgVersion) },
			nil, false, 29, "invalid name 'pg_data/../../somewhere/x' in manifest section [target:file]"},
		{"absolute link name", func(ini *repo.Ini) {
			ini.Set("target:link", filepath.Join(outside, "victim"), `{"destination":"`+outside+`"}`)
		}, nil, false, 29, "in manifest section [target:link]: absolute name"},
		{"escaping tablespace link name", func(ini *repo.Ini) {
			ini.Set("target:link", "pg_data/pg_tblspc/../../../../outside/victim", `{"destination":"`+outside+`"}`)
		}, nil, false, 29, "in manifest section [target:link]: '..' path component"},
		{"escaping tablespace target name", func(ini *repo.Ini) {
			ini.Set("backup:target", "pg_tblspc/../outside",
				`{"path":"`+outside+`","tablespace-id":"1","tablespace-name":"x","type":"link"}`)
		}, nil, false, 29, "in manifest section [backup:target]: '..' path component"},
		{"link to PGDATA's parent with --link-all", func(ini *repo.Ini) {
			up := filepath.Dir(data)
			ini.Set("backup:target", "pg_data/pg_xact", `{"path":"`+up+`","type":"link"}`)
			ini.Set("target:link", "pg_data/pg_xact", `{"destination":"`+up+`"}`)
		}, []string{"--link-all"}, false, 70, "is inside link 'pg_xact' destination"},
		{"relative link destination into PGDATA with --link-all", func(ini *repo.Ini) {
			ini.Set("backup:target", "pg_data/pg_xact", `{"path":"base","type":"link"}`)
			ini.Set("target:link", "pg_data/pg_xact", `{"destination":"base"}`)
		}, []string{"--link-all"}, false, 70, "is inside PGDATA destination"},
		{"tablespace destination not absolute", func(ini *repo.Ini) {
			v, _ := ini.Get("backup:target", "pg_tblspc/"+oid)
			ini.Set("backup:target", "pg_tblspc/"+oid, strings.Replace(v, `"path":"`+ts+`"`, `"path":"../../outside"`, 1))
		}, nil, true, 70, "must be an absolute path"},
		{"tablespace name '..' with --tablespace-map-all", func(ini *repo.Ini) {
			v, _ := ini.Get("backup:target", "pg_tblspc/"+oid)
			ini.Set("backup:target", "pg_tblspc/"+oid, strings.Replace(v, `"tablespace-name":"ts1"`, `"tablespace-name":".."`, 1))
		}, []string{"--tablespace-map-all=" + filepath.Join(rdir, "a")}, true, 76, "cannot be a directory of --tablespace-map-all"},
	}
	for _, c := range cases {
		craft(c.edit)
		before := testenv.TreeDigest(t, rdir)
		args := restoreArgs(append([]string{"--delta"}, c.extra...)...)
		if c.noMap {
			args = append([]string{"restore", "--pg1-path=" + data, "--archive-mode=off", "--delta"}, c.extra...)
		}
		out, code := e.Run(args...)
		if code != c.code || !strings.Contains(out, c.msg) {
			t.Errorf("%s: exit %d (want %d), output lacks %q:\n%s", c.name, code, c.code, c.msg, out)
		}
		if after := testenv.TreeDigest(t, rdir); after != before {
			t.Errorf("%s: files changed around PGDATA:\n%s", c.name, testenv.Tree(rdir))
		}
	}

	// The genuine manifest restores again and the cluster has the data.
	install(plain)
	e.MustRun(restoreArgs("--delta")...)
	r := testenv.StartRestored(t, rdir, data)
	if got := r.QueryOne("postgres", digestSQL+"t") + "/" + r.QueryOne("postgres", digestSQL+"tts"); got != want {
		t.Fatalf("restored data differs: %s, want %s", got, want)
	}
}

// manifestCrafter rewrites the manifest (and its copy) of a repository's
// only backup with valid checksums, encrypted when the repository is, on
// any storage. put writes a repository file (path relative to the
// repository).
type manifestCrafter struct {
	plain         []byte // the genuine manifest, decrypted
	tablespaceOID string // the backup's one tablespace
	pgVersion     string // the pg_data/PG_VERSION file entry
	install       func(data []byte)
	craft         func(edit func(ini *repo.Ini))
}

func loadManifestCrafter(t *testing.T, st storage.Storage, put func(path string, data []byte) error, stanza, repoPass string, encrypted bool) *manifestCrafter {
	t.Helper()
	ctx := context.Background()
	pass := ""
	if !encrypted {
		repoPass = ""
	}
	bi, err := repo.LoadBackupInfo(ctx, st, stanza, repoPass)
	if err != nil {
		t.Fatal(err)
	}
	if len(bi.Current) != 1 {
		t.Fatalf("want one backup, got %d", len(bi.Current))
	}
	manifestPath := "backup/" + stanza + "/" + bi.Current[0].Label + "/" + repo.ManifestName
	stored, err := storage.ReadAll(ctx, st, manifestPath)
	if err != nil {
		t.Fatal(err)
	}
	m := &manifestCrafter{plain: stored}
	if encrypted {
		pass = bi.CipherPass
		if m.plain, err = filter.DecryptBytes(stored, pass); err != nil {
			t.Fatal(err)
		}
	}
	base, err := repo.ParseIni(m.plain)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range base.Values {
		if v.Section == "backup:target" && strings.HasPrefix(v.Key, "pg_tblspc/") {
			m.tablespaceOID = strings.TrimPrefix(v.Key, "pg_tblspc/")
		}
	}
	pgVersion, ok := base.Get("target:file", "pg_data/PG_VERSION")
	if m.tablespaceOID == "" || !ok {
		t.Fatalf("manifest without tablespace or PG_VERSION:\n%s", m.plain)
	}
	m.pgVersion = pgVersion
	m.install = func(data []byte) {
		t.Helper()
		if encrypted {
			if data, err = filter.EncryptBytes(data, pass); err != nil {
				t.Fatal(err)
			}
		}
		for _, p := range []string{manifestPath, manifestPath + repo.CopyExt} {
			if err := put(p, data); err != nil {
				t.Fatal(err)
			}
		}
	}
	m.craft = func(edit func(ini *repo.Ini)) {
		t.Helper()
		ini, err := repo.ParseIni(m.plain)
		if err != nil {
			t.Fatal(err)
		}
		edit(ini)
		out := ini.Bytes() // with a fresh, valid checksum
		if _, err := repo.ParseIni(out); err != nil {
			t.Fatalf("crafted manifest has a bad checksum: %v", err)
		}
		m.install(out)
	}
	return m
}
