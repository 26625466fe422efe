package test

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// linkedDirs are the PGDATA directories the test moves elsewhere and links.
// pgBackRest skips the contents of each by manifest name, link or not.
var linkedDirs = []string{"pg_wal", "pg_replslot", "pg_stat_tmp"}

// TestWalLinkBackup: a cluster made with initdb -X (pg_wal a link to another
// directory) whose pg_replslot and pg_stat_tmp are links too. Backups by pgbr
// list each link, its directory and pg_wal/archive_status, but none of their
// contents (live WAL, archive status files, slot state), exactly as
// pgBackRest 2.45 lists them for the same cluster. A full + incr by pgbr
// restores with pg_wal mapped to a new link, the cluster replays from the
// archive and its data is identical. (TestRestoreLinks has pgBackRest 2.45
// restore pgbr's backup of an initdb -X cluster.)
//
// The cluster archives asynchronously, and the restore also shows the
// archive spool is cleared (see checkSpoolCleared).
func TestWalLinkBackup(t *testing.T) {
	t.Parallel()
	testenv.RequirePgBackRest(t)
	outside := testenv.Dir(t, "walx-outside")
	spool := testenv.Dir(t, "walx-spool")
	e := testenv.NewEnv(t, testenv.EnvOptions{
		Global:  []string{"compress-type=none", "archive-async=y", "spool-path=" + spool},
		Cluster: testenv.ClusterOptions{InitdbArgs: []string{"-X", filepath.Join(outside, "pg_wal")}}})
	if l, err := os.Readlink(filepath.Join(e.Cluster.Data, "pg_wal")); err != nil || l != filepath.Join(outside, "pg_wal") {
		t.Fatalf("initdb -X: pg_wal link %q %v", l, err)
	}
	e.MustRun("stanza-create")
	// Move pg_replslot and pg_stat_tmp out of PGDATA too (no slot exists
	// yet; PostgreSQL 15 does not use pg_stat_tmp).
	for _, d := range linkedDirs[1:] {
		if err := os.Rename(filepath.Join(e.Cluster.Data, d), filepath.Join(outside, d)); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(outside, d), filepath.Join(e.Cluster.Data, d)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "pg_stat_tmp", "pgss_query_texts.stat"), []byte("stale"), 0o600); err != nil {
		t.Fatal(err)
	}
	testenv.Chown(t, outside)
	e.Cluster.Exec("postgres", "select pg_create_physical_replication_slot('keep', true)")
	e.Cluster.Exec("postgres", "create table t(id int primary key, v text); insert into t select g, md5(g::text) from generate_series(1,2000) g")
	// Some WAL in pg_wal and its archive_status.
	e.Cluster.Exec("postgres", "select pg_switch_wal()")

	full := newLabel(t, e.MustRun("backup", "--type=full"))
	// pgBackRest 2.45 builds its manifest of the same cluster (an incr on
	// pgbr's full: it lists every entry and copies little).
	brIncr := newLabel(t, e.MustPgBackRest("backup", "--type=incr"))
	want := linkedEntries(t, loadManifest(t, e, brIncr, ""))
	got := linkedEntries(t, loadManifest(t, e, full, ""))
	t.Logf("pgBackRest 2.45 lists under the linked directories:\n%s", strings.Join(want, "\n"))
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("pgbr's manifest differs from pgBackRest 2.45 under the linked directories:\npgbr:\n%s\npgBackRest:\n%s",
			strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, need := range []string{"link pg_data/pg_wal", "path pg_data/pg_wal", "path pg_data/pg_wal/archive_status",
		"link pg_data/pg_replslot", "link pg_data/pg_stat_tmp"} {
		if !containsStr(got, need) {
			t.Fatalf("manifest lacks %q:\n%s", need, strings.Join(got, "\n"))
		}
	}
	for _, g := range got {
		if strings.HasPrefix(g, "file ") {
			t.Fatalf("manifest holds %s", g)
		}
	}

	e.Cluster.Exec("postgres", "insert into t select g, 'incr' || g from generate_series(5000,6000) g; update t set v = 'changed' where id < 100")
	e.Cluster.Exec("postgres", "select pg_switch_wal()")
	incr := newLabel(t, e.MustRun("backup", "--type=incr"))
	if got := linkedEntries(t, loadManifest(t, e, incr, "")); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("incr manifest under the linked directories:\n%s", strings.Join(got, "\n"))
	}
	e.Cluster.Exec("postgres", "insert into t values (9000, 'after the incr')")
	e.Cluster.Exec("postgres", "select pg_drop_replication_slot('keep')")
	e.ArchiveCaughtUp()
	wantData := e.Cluster.QueryOne("postgres", digestSQL+"t")
	e.Cluster.Stop()
	// The shutdown checkpoint's segment is not archived yet (PostgreSQL
	// archives the one before at shutdown).
	seg := redoSegment(t, e.Cluster)

	stale := plantStaleSpool(t, e, spool, seg)
	rdir := testenv.Dir(t, "walx-restore")
	data, wal := filepath.Join(rdir, "pg"), filepath.Join(rdir, "wal")
	e.MustRun("restore", "--set="+incr, "--pg1-path="+data, "--link-map=pg_wal="+wal, "--archive-mode=off")
	checkSpoolCleared(t, e, spool, stale)
	if l, err := os.Readlink(filepath.Join(data, "pg_wal")); err != nil || l != wal {
		t.Fatalf("restored pg_wal link = %q, %v (want %s)", l, err, wal)
	}
	// Nothing but archive_status in the restored pg_wal: all WAL comes from
	// the archive.
	ents, err := os.ReadDir(wal)
	if err != nil || len(ents) != 1 || ents[0].Name() != "archive_status" {
		t.Fatalf("restored pg_wal holds %v %v:\n%s", ents, err, testenv.Tree(wal))
	}
	if ents, _ := os.ReadDir(filepath.Join(wal, "archive_status")); len(ents) != 0 {
		t.Fatalf("restored archive_status holds %v", ents)
	}
	for _, d := range linkedDirs[1:] {
		if ents, err := os.ReadDir(filepath.Join(data, d)); err != nil || len(ents) != 0 {
			t.Fatalf("restored %s holds %v %v", d, ents, err)
		}
	}
	r := testenv.StartRestored(t, rdir, data)
	if got := r.QueryOne("postgres", digestSQL+"t"); got != wantData {
		t.Fatal("data differs after restore")
	}
	if !strings.Contains(r.RestoredLog(), "restored log file") {
		t.Fatalf("the restored cluster did not replay from the archive:\n%s", r.RestoredLog())
	}
	if fi, err := os.Lstat(filepath.Join(data, "pg_wal")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("pg_wal is no longer a link after recovery: %v %v", fi, err)
	}
	r.Stop()
	checkPushAfterRestore(t, e, spool, seg)
}

// redoSegment is the WAL file of a stopped cluster's last checkpoint.
func redoSegment(t *testing.T, c *testenv.Cluster) string {
	t.Helper()
	out, code := testenv.AsPostgres(c.Dir, nil, filepath.Join(testenv.PgBin, "pg_controldata"), c.Data)
	if code != 0 {
		t.Fatalf("pg_controldata: %s", out)
	}
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "Latest checkpoint's REDO WAL file:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no REDO WAL file in pg_controldata output:\n%s", out)
	return ""
}

// linkedEntries lists a manifest's targets, links, paths and files at or
// below the linked directories, as "<kind> <name>", sorted.
func linkedEntries(t *testing.T, m *repo.Manifest) []string {
	t.Helper()
	under := func(name string) bool {
		for _, d := range linkedDirs {
			if name == "pg_data/"+d || strings.HasPrefix(name, "pg_data/"+d+"/") {
				return true
			}
		}
		return false
	}
	var out []string
	for _, x := range m.Targets {
		if under(x.Name) {
			out = append(out, "target "+x.Name+" "+x.Type)
		}
	}
	for _, x := range m.Links {
		if under(x.Name) {
			out = append(out, "link "+x.Name)
		}
	}
	for _, x := range m.Paths {
		if under(x.Name) {
			out = append(out, "path "+x.Name)
		}
	}
	for _, x := range m.Files {
		if under(x.Name) {
			out = append(out, "file "+x.Name)
		}
	}
	sort.Strings(out)
	return out
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
