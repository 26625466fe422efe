package test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/filter"
	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/storage/posix"
	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// dirBytes is the total size of the files under dir.
func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestBlockIncrWrite takes block incremental backups with pgbr (gz,
// aes-256-cbc) of a cluster with a 30 MB table, changes three rows, and
// checks: the incr stores only the changed blocks (compared with the same
// incr without block incremental in a second repository), its layout is
// pgBackRest's (manifest keys, raw bundles, <name>.pgbi, a block map that
// refers to the full backup for unchanged blocks), and restore and verify
// give the data back.
func TestBlockIncrWrite(t *testing.T) {
	t.Parallel()
	const pass = "block-write-passphrase-0123456789"
	common := []string{"repo1-cipher-type=aes-256-cbc", "repo1-cipher-pass=" + pass, "compress-type=gz", "repo1-bundle=y"}
	e := testenv.NewEnv(t, testenv.EnvOptions{Global: append([]string{"repo1-block=y", "beta=y"}, common...)})
	e.Cluster.Exec("postgres", `create table t(g int primary key, v text)`)
	e.Cluster.Exec("postgres", `insert into t select g, md5(g::text)||md5((g*3)::text)||md5((g*7)::text) from generate_series(1, 200000) g`)
	// Hint bits and freezing written now, so that the incr sees only the
	// pages of the changed rows.
	e.Cluster.Exec("postgres", "vacuum freeze t")
	e.Cluster.Exec("postgres", "checkpoint")
	e.MustRun("stanza-create")

	// The same cluster into a second repository without block incremental
	// (archive-check=n: the cluster archives only to the first one).
	plain := *e
	plain.Repo = filepath.Join(e.Dir, "repo-plain")
	plain.Conf = filepath.Join(e.Dir, "plain.conf")
	plain.Global = append([]string{"archive-check=n"}, common...)
	os.MkdirAll(plain.Repo, 0o750)
	plain.WriteConf()
	testenv.Chown(t, e.Dir)
	plain.MustRun("stanza-create")

	e.MustRun("backup", "--type=full")
	plain.MustRun("backup", "--type=full")
	e.Cluster.Exec("postgres", "update t set v = 'changed-' || g where g in (10, 100000, 199990)")
	e.Cluster.Exec("postgres", "checkpoint")
	want := e.Cluster.QueryOne("postgres", blockHashQuery)
	before, beforePlain := dirBytes(t, e.Repo+"/backup"), dirBytes(t, plain.Repo+"/backup")
	e.MustRun("backup", "--type=incr")
	plain.MustRun("backup", "--type=incr")
	grow, growPlain := dirBytes(t, e.Repo+"/backup")-before, dirBytes(t, plain.Repo+"/backup")-beforePlain
	t.Logf("incr after 3 changed rows in a %s table: repository grew %d bytes with block incremental, %d without",
		e.Cluster.QueryOne("postgres", "select pg_size_pretty(pg_relation_size('t'))"), grow, growPlain)
	if grow*4 > growPlain {
		t.Errorf("block incremental incr grew the repository by %d bytes, without %d", grow, growPlain)
	}

	// Layout.
	ctx := context.Background()
	st := posix.New(e.Repo)
	bi, err := repo.LoadBackupInfo(ctx, st, "main", pass)
	if err != nil {
		t.Fatal(err)
	}
	if len(bi.Current) != 2 || bi.Current[1].RepoSizeMap == nil {
		t.Fatalf("backup.info: %+v", bi.Current)
	}
	full, incr := bi.Current[0].Label, bi.Current[1].Label
	m, err := repo.LoadManifest(ctx, st, "main", incr, bi.CipherPass)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Backup.BlockIncr || !m.Backup.BundleRaw || strings.Join(m.Backup.Reference, ",") != full+","+incr {
		t.Fatalf("manifest [backup]: %+v", m.Backup)
	}
	rel := e.Cluster.QueryOne("postgres", "select pg_relation_filepath('t')")
	f, ok := m.FindFile("pg_data/" + rel)
	if !ok || f.BlockIncr != 2 || f.BlockIncrChecksum != 0 || f.BlockIncrMap == 0 || f.BundleID != 0 || f.Reference != "" {
		t.Fatalf("table file: %+v", f)
	}
	if _, err := os.Stat(filepath.Join(e.Repo, "backup", "main", incr, "pg_data", rel+".pgbi")); err != nil {
		t.Fatal(err)
	}
	var bundled int
	for i := range m.Files {
		g := &m.Files[i]
		if g.BlockIncr != 0 && g.BlockIncrMap == 0 && g.Size > 0 {
			t.Errorf("%s: bi without map", g.Name)
		}
		if g.BundleID != 0 && g.Reference == "" {
			bundled++
		}
	}
	if bundled == 0 {
		t.Fatal("no bundled file in the incr")
	}
	e.MustRun("verify")

	// Restore the incr on a new data directory.
	data := filepath.Join(e.Dir, "restored")
	e.MustRun("restore", "--pg1-path="+data, "--set="+incr, "--type=immediate", "--target-action=promote", "--archive-mode=off")
	cl := testenv.StartRestored(t, e.Dir, data)
	if got := cl.QueryOne("postgres", blockHashQuery); got != want {
		t.Fatalf("restored table t is %q, expected %q", got, want)
	}
	cl.Stop()

	// The block map of the table refers to the full backup for unchanged
	// blocks and to the incr for the three changed ones.
	stored, err := os.ReadFile(filepath.Join(e.Repo, "backup", "main", incr, "pg_data", rel+".pgbi"))
	if err != nil || uint64(len(stored)) != f.RepoSize {
		t.Fatalf("%v: %d bytes, repo-size %d", err, len(stored), f.RepoSize)
	}
	mapBytes, err := filter.DecryptRaw(stored[len(stored)-int(f.BlockIncrMap):], m.CipherPass)
	if err != nil {
		t.Fatal(err)
	}
	items, err := repo.ParseBlockMap(mapBytes, 2*8192, 6)
	if err != nil {
		t.Fatal(err)
	}
	refs := map[uint64]int{}
	for _, it := range items {
		refs[it.Reference]++
	}
	if uint64(len(items)) != (f.Size+16383)/16384 || refs[1] < 1 || refs[1] > 6 || refs[0] != len(items)-refs[1] {
		t.Fatalf("block map of %s: %d blocks, by reference %v", rel, len(items), refs)
	}
	if out := e.MustRun("info", "--output=json"); !strings.Contains(out, `"delta-map"`) {
		t.Fatalf("info: %s", out)
	}
}
