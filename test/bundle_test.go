package test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/storage/posix"
	"github.com/pgbr-dev/pgbr/internal/testenv"
)

const bundleLimit = 64 * 1024

var bundleGlobal = []string{"repo1-bundle=y", "repo1-bundle-size=1MiB", fmt.Sprintf("repo1-bundle-limit=%d", bundleLimit)}

// manifestPass returns the passphrase of the stanza's manifests: backup.info's
// sub-passphrase when the repository passphrase cipherPass is set.
func manifestPass(t *testing.T, e *testenv.Env, cipherPass string) string {
	t.Helper()
	if cipherPass == "" {
		return ""
	}
	bi, err := repo.LoadBackupInfo(context.Background(), posix.New(e.Repo), e.Stanza, cipherPass)
	if err != nil {
		t.Fatal(err)
	}
	return bi.CipherPass
}

func loadManifest(t *testing.T, e *testenv.Env, label, cipherPass string) *repo.Manifest {
	t.Helper()
	m, err := repo.LoadManifest(context.Background(), posix.New(e.Repo), e.Stanza, label, manifestPass(t, e, cipherPass))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// checkBundled checks the bundling rules of a manifest written by pgbr:
// small files of this backup are in bundles, larger ones are not,
// zero-length files are not stored at all, and every stored file exists.
func checkBundled(t *testing.T, e *testenv.Env, m *repo.Manifest) (bundled, referencedBundled int) {
	t.Helper()
	if !m.Backup.Bundle || m.Backup.BundleRaw || m.Backup.BlockIncr {
		t.Fatalf("%s: backup-bundle %v, bundle-raw %v, block-incr %v", m.Backup.Label, m.Backup.Bundle, m.Backup.BundleRaw, m.Backup.BlockIncr)
	}
	dir := filepath.Join(e.Repo, "backup", e.Stanza)
	zero := 0
	for i := range m.Files {
		f := &m.Files[i]
		switch {
		case f.Size == 0:
			zero++
			if f.BundleID != 0 || !f.RepoChecksum.IsZero() || f.RepoSize != 0 || !f.Checksum.IsZero() || f.Reference != "" {
				t.Fatalf("%s: zero-length file stored: %+v", m.Backup.Label, *f)
			}
			if _, err := os.Stat(filepath.Join(dir, m.Backup.Label, f.Name+repo.CompressExt(m.Option.CompressType))); !os.IsNotExist(err) {
				t.Fatalf("%s: zero-length file %s has a repository file", m.Backup.Label, f.Name)
			}
		case f.Reference != "":
			if f.BundleID != 0 {
				referencedBundled++
			}
		case f.Size <= bundleLimit && !generated(f.Name):
			if f.BundleID == 0 {
				t.Fatalf("%s: small file %s (%d bytes) not bundled", m.Backup.Label, f.Name, f.Size)
			}
			bundled++
		default:
			if f.BundleID != 0 {
				t.Fatalf("%s: file %s of %d bytes bundled", m.Backup.Label, f.Name, f.Size)
			}
		}
		if f.Size > 0 {
			fi, err := os.Stat(filepath.Join(dir, m.FileRepoPath(f)))
			if err != nil {
				t.Fatalf("%s: %v", m.Backup.Label, err)
			}
			if f.BundleID != 0 && uint64(fi.Size()) < f.BundleOffset+f.RepoSize {
				t.Fatalf("%s: %s at %d+%d past the end of bundle %d (%d bytes)", m.Backup.Label, f.Name, f.BundleOffset, f.RepoSize, f.BundleID, fi.Size())
			}
		}
	}
	if zero == 0 || bundled == 0 {
		t.Fatalf("%s: %d zero-length, %d bundled files", m.Backup.Label, zero, bundled)
	}
	return bundled, referencedBundled
}

// generated reports the files a backup writes itself (never bundled).
func generated(name string) bool {
	return name == "pg_data/backup_label" || name == "pg_data/tablespace_map"
}

var labelRe = regexp.MustCompile(`new backup label = (\S+)`)

func newLabel(t *testing.T, out string) string {
	t.Helper()
	m := labelRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no new backup label in:\n%s", out)
	}
	return m[1]
}

// TestBundlePgbrWrites: a bundled, encrypted full + incr written by pgbr
// (two workers filling bundles) is verified by pgBackRest 2.45 and restored
// by both tools.
func TestBundlePgbrWrites(t *testing.T) {
	testenv.RequirePgBackRest(t)
	const pass = "Xk2u8vL0pQ3rT6yW9zB1cE4fH7jM0nP2"
	global := append([]string{"compress-type=zst", "process-max=2", "repo1-cipher-type=aes-256-cbc", "repo1-cipher-pass=" + pass}, bundleGlobal...)
	e := testenv.NewEnv(t, testenv.EnvOptions{Global: global})
	e.MustRun("stanza-create")
	fillData(t, e)
	full := newLabel(t, e.MustRun("backup", "--type=full"))
	m := loadManifest(t, e, full, pass)
	n, _ := checkBundled(t, e, m)
	bundles, _ := filepath.Glob(filepath.Join(e.Repo, "backup", e.Stanza, full, "bundle", "*"))
	t.Logf("full: %d files, %d bundled in %d bundles", len(m.Files), n, len(bundles))
	if len(bundles) < 2 {
		t.Fatalf("want several bundles, got %v", bundles)
	}

	e.Cluster.Exec("postgres", "insert into t select g, md5(g::text) from generate_series(20001, 20500) g")
	e.Cluster.Exec("postgres", "create table small(v text); insert into small values ('small')")
	e.Cluster.Exec("postgres", "checkpoint")
	incr := newLabel(t, e.MustRun("backup", "--type=incr"))
	mi := loadManifest(t, e, incr, pass)
	n, refBundled := checkBundled(t, e, mi)
	t.Logf("incr: %d files, %d bundled, %d references into the full's bundles", len(mi.Files), n, refBundled)
	if refBundled == 0 {
		t.Fatal("incr keeps no reference into the full's bundles")
	}

	out := e.MustPgBackRest("verify", "--output=text", "--verbose")
	for _, l := range []string{full, incr} {
		if !strings.Contains(out, "backup: "+l+", status: valid") {
			t.Fatalf("pgBackRest verify of %s:\n%s", l, out)
		}
	}
	if strings.Contains(out, "checksum invalid: 1") || regexp.MustCompile(`(missing|checksum invalid|size invalid|other): [1-9]`).MatchString(out) {
		t.Fatalf("pgBackRest verify:\n%s", out)
	}

	e.Cluster.Exec("postgres", "insert into t select g, md5(g::text) from generate_series(20501, 21000) g")
	e.Cluster.Exec("postgres", "select pg_switch_wal()")
	want := digest(t, e.Cluster)
	e.Cluster.Stop()
	for _, tool := range []string{"pgbackrest", "pgbr"} {
		r := restoreWith(t, e, tool)
		if got := digest(t, r); got != want {
			t.Fatalf("%s restore: %s, want %s", tool, got, want)
		}
		if got := r.QueryOne("postgres", "select v from small"); got != "small" {
			t.Fatalf("%s restore: small = %q", tool, got)
		}
		r.Stop()
	}
}

// TestBundlePgBackRestWrites: pgBackRest 2.45 writes a bundled full + incr,
// pgbr adds an incr on top (references into pgBackRest's bundles), and
// both tools restore the chain; pgbr restores pgBackRest's incr too.
func TestBundlePgBackRestWrites(t *testing.T) {
	testenv.RequirePgBackRest(t)
	e := testenv.NewEnv(t, testenv.EnvOptions{Archiver: "pgbackrest", Global: append([]string{"compress-type=lz4"}, bundleGlobal...)})
	e.MustPgBackRest("stanza-create")
	fillData(t, e)
	e.MustPgBackRest("backup", "--type=full")
	e.Cluster.Exec("postgres", "insert into t select g, md5(g::text) from generate_series(20001, 20500) g")
	e.Cluster.Exec("postgres", "checkpoint")
	out := e.MustPgBackRest("backup", "--type=incr", "--log-level-console=info")
	pgbIncr := newLabel(t, out)
	wantIncr := digest(t, e.Cluster)

	e.Cluster.Exec("postgres", "insert into t select g, md5(g::text) from generate_series(20501, 21000) g")
	e.Cluster.Exec("postgres", "checkpoint")
	ours := newLabel(t, e.MustRun("backup", "--type=incr"))
	m := loadManifest(t, e, ours, "")
	_, refBundled := checkBundled(t, e, m)
	if refBundled == 0 {
		t.Fatal("pgbr incr keeps no reference into pgBackRest's bundles")
	}
	e.Cluster.Exec("postgres", "select pg_switch_wal()")
	want := digest(t, e.Cluster)
	e.Cluster.Stop()

	r := restoreWith(t, e, "pgbr", "--set="+pgbIncr, "--type=immediate", "--target-action=promote")
	if got := digest(t, r); got != wantIncr {
		t.Fatalf("pgbr restore of pgBackRest's incr: %s, want %s", got, wantIncr)
	}
	r.Stop()
	for _, tool := range []string{"pgbr", "pgbackrest"} {
		r := restoreWith(t, e, tool)
		if got := digest(t, r); got != want {
			t.Fatalf("%s restore: %s, want %s", tool, got, want)
		}
		r.Stop()
	}
}
