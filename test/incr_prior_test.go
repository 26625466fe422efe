package test

import (
	"context"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/storage/posix"
	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// TestIncrKeepsPriorSettings: the prior manifest's head is loaded while
// PGDATA is walked, and what it fixes still holds: an encrypted incr asked
// for another compress type and no page checksums keeps the prior's (with
// pgBackRest's warnings), stores its files so under the prior's
// passphrase, and pgBackRest 2.45 verifies the set.
func TestIncrKeepsPriorSettings(t *testing.T) {
	t.Parallel()
	testenv.RequirePgBackRest(t)
	const pass = "Xk2u8vL0pQ3rT6yW9zB1cE4fH7jM0nP2"
	e := testenv.NewEnv(t, testenv.EnvOptions{Global: []string{"repo1-cipher-type=aes-256-cbc",
		"repo1-cipher-pass=" + pass, "compress-type=lz4"}})
	e.MustRun("stanza-create")
	e.Cluster.Exec("postgres", "create table t(id int); insert into t select generate_series(1, 1000)")
	e.MustRun("backup", "--type=full")
	e.Cluster.Exec("postgres", "insert into t select generate_series(1, 50000); checkpoint")
	out := e.MustRun("backup", "--type=incr", "--compress-type=gz", "--no-checksum-page")

	st := posix.New(e.Repo)
	ctx := context.Background()
	bi, err := repo.LoadBackupInfo(ctx, st, e.Stanza, pass)
	if err != nil {
		t.Fatal(err)
	}
	if len(bi.Current) != 2 {
		t.Fatalf("backup.info lists %d backups", len(bi.Current))
	}
	full, incr := bi.Current[0].Label, bi.Current[1].Label
	for _, want := range []string{
		"incr backup cannot alter compress-type option to 'gz', reset to value in " + full,
		"incr backup cannot alter 'checksum-page' option to 'false', reset to 'true' from " + full,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no warning %q:\n%s", want, out)
		}
	}
	fm, err := repo.LoadManifest(ctx, st, e.Stanza, full, bi.CipherPass)
	if err != nil {
		t.Fatal(err)
	}
	im, err := repo.LoadManifest(ctx, st, e.Stanza, incr, bi.CipherPass)
	if err != nil {
		t.Fatal(err)
	}
	if im.Option.CompressType != "lz4" || !im.Option.ChecksumPage || im.CipherPass != fm.CipherPass || im.CipherPass == "" {
		t.Errorf("incr manifest: compress %q, checksum-page %v, same passphrase %v", im.Option.CompressType, im.Option.ChecksumPage, im.CipherPass == fm.CipherPass)
	}
	stored, referenced := 0, 0
	for i := range im.Files {
		f := &im.Files[i]
		if f.Reference != "" {
			referenced++
			continue
		}
		stored++
		// Relation files only: PG_VERSION and pg_filenode.map are never
		// page checked, and the incr copies them again when the full read
		// them in the second they were written in.
		if base := path.Base(f.Name); f.Size > 0 && f.ChecksumPage == nil && strings.HasPrefix(f.Name, "pg_data/base/") && base[0] >= '0' && base[0] <= '9' {
			t.Errorf("%s: stored without a page checksum check", f.Name)
		}
	}
	if stored == 0 || referenced == 0 {
		t.Fatalf("incr stored %d files and referenced %d", stored, referenced)
	}
	filepath.WalkDir(filepath.Join(e.Repo, "backup", e.Stanza, incr, "pg_data"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasSuffix(p, ".lz4") {
			t.Errorf("incr stored %s (not lz4)", p)
		}
		return nil
	})
	if out, code := e.RunPgBackRest("verify"); code != 0 {
		t.Fatalf("pgBackRest verify: exit %d\n%s", code, out)
	}
}
