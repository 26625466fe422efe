package test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// s3Global returns the [global] options of an S3 repository on MinIO with
// static keys. endpoint "localhost": pgBackRest 2.45 verifies DNS names only.
func s3Global(m *testenv.MinIO, port int) []string {
	return []string{
		"repo1-type=s3", "repo1-s3-bucket=" + m.Bucket, "repo1-s3-endpoint=localhost",
		fmt.Sprintf("repo1-storage-port=%d", port), "repo1-s3-region=" + m.Region, "repo1-s3-uri-style=path",
		"repo1-storage-ca-file=" + m.CAFile, "repo1-s3-key=" + m.RootUser, "repo1-s3-key-secret=" + m.RootPassword,
	}
}

// TestS3StaticKeys is scenario 1: every core command on an S3 repository
// (MinIO over TLS, static keys), data identical after restore, and
// pgBackRest 2.45 restoring what pgbr wrote and the reverse.
func TestS3StaticKeys(t *testing.T) {
	testenv.RequirePgBackRest(t)
	m := testenv.StartMinIO(t)
	for _, dir := range []struct{ backup, restore string }{{"pgbr", "pgbr"}, {"pgbr", "pgbackrest"}, {"pgbackrest", "pgbr"}} {
		t.Run(dir.backup+"_to_"+dir.restore, func(t *testing.T) {
			archiver := "pgbr"
			if dir.backup == "pgbackrest" {
				archiver = "pgbackrest"
			}
			e := testenv.NewEnv(t, testenv.EnvOptions{Archiver: archiver, Global: append(s3Global(m, m.Port), "compress-type=lz4")})
			fillData(t, e)
			run := e.MustRun
			if dir.backup == "pgbackrest" {
				run = e.MustPgBackRest
			}
			run("stanza-create")
			if dir.backup == "pgbr" {
				if out := e.MustRun("check"); !strings.Contains(out, "successfully archived to") {
					t.Fatalf("check on S3:\n%s", out)
				}
			}
			run("backup", "--type=full")
			e.Cluster.Exec("postgres", "insert into t select g, md5(g::text) from generate_series(20001,21000) g")
			e.Cluster.Exec("postgres", "select pg_switch_wal()")
			want := digest(t, e.Cluster)
			e.Cluster.Stop()
			if out := e.MustRun("info"); !strings.Contains(out, "full backup: ") {
				t.Fatalf("pgbr info on S3:\n%s", out)
			}
			r := restoreWith(t, e, dir.restore)
			if got := digest(t, r); got != want {
				t.Fatalf("restored data differs\n%s", r.RestoredLog())
			}
		})
	}
}
