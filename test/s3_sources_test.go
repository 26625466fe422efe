package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// TestS3InstanceAndPodIdentity is scenario 5: key-type=auto (IMDSv2) and
// key-type=pod-id against fakes speaking those protocols that hand out real
// MinIO credentials living 10 s; a throttled backup lasts several
// lifetimes and all sessions are revoked half way: refresh and
// invalidate-and-retry work as for web identity, and the backup restores.
func TestS3InstanceAndPodIdentity(t *testing.T) {
	m := testenv.StartMinIO(t)
	const lifetime = 10 * time.Second
	for _, kind := range []string{"auto", "pod-id"} {
		t.Run(kind, func(t *testing.T) {
			proxy := testenv.StartProxy(t, fmt.Sprintf("127.0.0.1:%d", m.Port), 0)
			dir := testenv.Dir(t, "creds-"+kind)
			global := []string{
				"repo1-type=s3", "repo1-s3-bucket=" + m.Bucket, "repo1-s3-endpoint=127.0.0.1",
				fmt.Sprintf("repo1-storage-port=%d", proxy.Port), "repo1-s3-region=" + m.Region, "repo1-s3-uri-style=path",
				"repo1-storage-ca-file=" + m.CAFile, "repo1-s3-key-type=" + kind, "compress-type=none",
			}
			var srv *testenv.CredServer
			rotated := func() error { return nil }
			if kind == "auto" {
				srv = testenv.StartIMDS(t, m, lifetime)
				global = append(global, "repo1-s3-imds-endpoint="+srv.URL)
			} else {
				token := filepath.Join(dir, "eks-pod-identity-token")
				os.WriteFile(token, []byte("pod-token-"+fmt.Sprint(time.Now().UnixNano())), 0o644)
				srv = testenv.StartPodIdentity(t, m, lifetime, token)
				global = append(global, "repo1-s3-pod-id-uri="+srv.URL+"/v1/credentials", "repo1-s3-pod-id-token-file="+token)
				// The agent's token rotates too: rewrite it during the backup.
				rotated = background(t, func(stop <-chan struct{}) error {
					select {
					case <-stop:
						return nil
					case <-time.After(12 * time.Second):
					}
					if err := os.WriteFile(token+".tmp", []byte("pod-token-rotated"), 0o644); err != nil {
						return err
					}
					return os.Rename(token+".tmp", token)
				})
			}
			e := testenv.NewEnv(t, testenv.EnvOptions{Global: global, Cluster: testenv.ClusterOptions{InitdbArgs: []string{"--wal-segsize=1"}}})
			e.Cluster.Exec("postgres", "create table t(id int primary key, v text); insert into t select g, md5(g::text) || repeat('y', 200) from generate_series(1, 40000) g")
			e.MustRun("stanza-create")
			e.ArchiveCaughtUp()
			proxy.SetRate(1 << 20)
			revoked := background(t, func(stop <-chan struct{}) error { return revokeAfterRefreshes(m, e, 2, stop) })
			before := srv.Fetches.Load()
			start := time.Now()
			out, code := e.Run("backup", "--type=full", "--log-level-console=detail", "--archive-timeout=120")
			took := time.Since(start)
			if err := revoked(); err != nil {
				t.Fatal(err)
			}
			if err := rotated(); err != nil {
				t.Fatalf("rotate the pod identity token: %v", err)
			}
			fetches := srv.Fetches.Load() - before
			t.Logf("%s: backup %s, %d credential fetches from the fake, %d invalidations", kind, took.Round(time.Second), fetches,
				strings.Count(out, "invalidated after an expired-credentials error"))
			if code != 0 {
				t.Fatalf("backup failed (exit %d):\n%s", code, tail(out, 4000))
			}
			if !strings.Contains(out, "invalidated after an expired-credentials error") {
				t.Fatalf("no invalidation after the sessions were revoked:\n%s", tail(out, 4000))
			}
			if took < 3*lifetime {
				t.Fatalf("backup took %s, less than three lifetimes", took)
			}
			if fetches < int64(took/lifetime) || fetches > int64(took/(lifetime/4))+3 {
				t.Fatalf("%d credential fetches in %s with %s credentials", fetches, took, lifetime)
			}
			proxy.SetRate(0)
			e.Cluster.Exec("postgres", "select pg_switch_wal()")
			want := e.Cluster.QueryOne("postgres", digestSQL+"t")
			e.Cluster.Stop()
			r := restoreWith(t, e, "pgbr")
			if got := r.QueryOne("postgres", digestSQL+"t"); got != want {
				t.Fatalf("restored data differs")
			}
		})
	}
}

// TestS3Faults is scenario 6: 500/503/SlowDown answers and dropped
// connections on every 7th request during stanza-create, a backup with
// multipart uploads (1 MiB... 5 MiB chunks) and a restore: the commands
// complete, the data comes back, and no multipart upload is left behind.
func TestS3Faults(t *testing.T) {
	m := testenv.StartMinIO(t)
	fp := testenv.StartFaultProxy(t, m, 7)
	global := append(s3Global(m, fp.Port), "compress-type=none")
	e := testenv.NewEnv(t, testenv.EnvOptions{Global: global})
	e.Cluster.Exec("postgres", "create table t(id int primary key, v text); insert into t select g, md5(g::text) || repeat('z', 100) from generate_series(1, 100000) g")
	e.MustRun("stanza-create")
	out := e.MustRun("backup", "--type=full")
	if fp.Injected.Load() == 0 {
		t.Fatal("no fault was injected")
	}
	e.Cluster.Exec("postgres", "select pg_switch_wal()")
	want := e.Cluster.QueryOne("postgres", digestSQL+"t")
	e.Cluster.Stop()
	r := restoreWith(t, e, "pgbr")
	if got := r.QueryOne("postgres", digestSQL+"t"); got != want {
		t.Fatalf("restored data differs\n%s", out)
	}
	t.Logf("%d faults injected", fp.Injected.Load())
	if n := m.PendingUploads(t); n != 0 {
		t.Fatalf("%d multipart uploads left behind", n)
	}
}
