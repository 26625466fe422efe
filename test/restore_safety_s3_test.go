package test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/credentials"
	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/storage"
	"github.com/pgbr-dev/pgbr/internal/storage/s3"
	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// TestRestoreSafetyS3 is TestRestoreSafety's crafted-manifest part on an
// encrypted S3 repository (MinIO): the manifest and its copy in the bucket
// are replaced by ones with escaping names (valid checksum, encrypted with
// the backup's passphrase); restore --delta fails with FormatError [029]
// naming the entry, and nothing around PGDATA changes.
func TestRestoreSafetyS3(t *testing.T) {
	t.Parallel()
	const repoPass = "s3-safety-Hk4nW8qZ2vR6tY9x"
	m := testenv.StartMinIO(t)
	global := append(s3Global(m, m.Port), "repo1-cipher-type=aes-256-cbc", "repo1-cipher-pass="+repoPass)
	e := testenv.NewEnv(t, testenv.EnvOptions{Global: global})
	ts := filepath.Join(e.Dir, "ts1")
	os.MkdirAll(ts, 0o700)
	testenv.Chown(t, ts)
	e.Cluster.Exec("postgres", "create tablespace ts1 location '"+ts+"'")
	e.Cluster.Exec("postgres", "create table tts(id int, v text) tablespace ts1; insert into tts select g, md5(g::text) from generate_series(1,200) g")
	e.MustRun("stanza-create")
	e.MustRun("backup", "--type=full")
	e.Cluster.Stop()

	ctx := context.Background()
	cache, err := credentials.New(ctx, credentials.Options{Key: m.RootUser, Secret: m.RootPassword})
	if err != nil {
		t.Fatal(err)
	}
	st, err := s3.New(ctx, s3.Options{Bucket: m.Bucket, Endpoint: "127.0.0.1", Port: m.Port, Region: m.Region, URIStyle: "path",
		Path: e.Repo, VerifyTLS: true, HTTPClient: m.HTTPClient(), Creds: cache, UploadChunkSize: 5 << 20})
	if err != nil {
		t.Fatal(err)
	}
	put := func(p string, data []byte) error { return storage.WriteAll(ctx, st, p, data) }
	c := loadManifestCrafter(t, st, put, e.Stanza, repoPass, true)

	rdir := testenv.Dir(t, "safety-s3")
	data := filepath.Join(rdir, "a", "b", "pg")
	tsDir := filepath.Join(rdir, "ts")
	outside := filepath.Join(rdir, "outside")
	for _, d := range []string{filepath.Dir(data), tsDir, outside} {
		os.MkdirAll(d, 0o700)
	}
	os.WriteFile(filepath.Join(outside, "victim"), []byte("must not change\n"), 0o600)
	testenv.Chown(t, rdir)
	restoreArgs := []string{"restore", "--pg1-path=" + data, "--tablespace-map=" + c.tablespaceOID + "=" + tsDir, "--archive-mode=off", "--delta"}
	e.MustRun(restoreArgs...)

	cases := []struct {
		name string
		edit func(ini *repo.Ini)
		msg  string
	}{
		{"path pg_data/../x", func(ini *repo.Ini) { ini.Set("target:path", "pg_data/../x", "{}") },
			"invalid name 'pg_data/../x' in manifest section [target:path]"},
		{"file pg_data/../../somewhere/x", func(ini *repo.Ini) { ini.Set("target:file", "pg_data/../../somewhere/x", c.pgVersion) },
			"invalid name 'pg_data/../../somewhere/x' in manifest section [target:file]"},
		{"escaping tablespace link name", func(ini *repo.Ini) {
			ini.Set("target:link", "pg_data/pg_tblspc/../../../../outside/victim", `{"destination":"`+outside+`"}`)
		}, "in manifest section [target:link]: '..' path component"},
	}
	for _, tc := range cases {
		c.craft(tc.edit)
		before := testenv.TreeDigest(t, rdir)
		out, code := e.Run(restoreArgs...)
		if code != 29 || !strings.Contains(out, tc.msg) {
			t.Errorf("%s: exit %d (want 29), output lacks %q:\n%s", tc.name, code, tc.msg, out)
		}
		if after := testenv.TreeDigest(t, rdir); after != before {
			t.Errorf("%s: files changed around PGDATA:\n%s", tc.name, testenv.Tree(rdir))
		}
	}

	// The genuine manifest, put back the same way, restores again.
	c.install(c.plain)
	e.MustRun(restoreArgs...)
	if b, err := os.ReadFile(filepath.Join(data, "PG_VERSION")); err != nil || strings.TrimSpace(string(b)) != "15" {
		t.Fatalf("restored PG_VERSION: %q %v", b, err)
	}
}
