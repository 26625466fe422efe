package test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// webIDGlobal configures repo1 on MinIO through a throttling proxy with
// web identity credentials from a token file.
func webIDGlobal(m *testenv.MinIO, proxyPort int, tokenFile, roleARN string) []string {
	return []string{
		"repo1-type=s3", "repo1-s3-bucket=" + m.Bucket, "repo1-s3-endpoint=127.0.0.1",
		fmt.Sprintf("repo1-storage-port=%d", proxyPort), "repo1-s3-region=" + m.Region, "repo1-s3-uri-style=path",
		"repo1-storage-ca-file=" + m.CAFile, "repo1-s3-key-type=web-id", "repo1-s3-role-arn=" + roleARN,
		"repo1-s3-web-id-token-file=" + tokenFile, fmt.Sprintf("repo1-s3-sts-host=127.0.0.1:%d", m.Port),
		"compress-type=none",
	}
}

var refreshLine = regexp.MustCompile(`credentials refreshed from [^\n]*expire at`)

// TestS3WebIdentityShortCredentials is scenarios 2 and 3: credentials that
// live ~8-15 s (a 15 s token rewritten every 7 s, old tokens left to
// expire) while a full backup and a restore each take more than five
// lifetimes (bandwidth-limited proxy); all STS sessions are revoked in the
// middle of the backup. Zero failures, about one STS call per lifetime,
// exactly the invalidate-and-retry path after the revocation.
func TestS3WebIdentityShortCredentials(t *testing.T) {
	m := testenv.StartMinIO(t)
	proxy := testenv.StartProxy(t, fmt.Sprintf("127.0.0.1:%d", m.Port), 0)
	dir := testenv.Dir(t, "webid")
	token := filepath.Join(dir, "token")
	const lifetime, rotate = 15 * time.Second, 7 * time.Second
	stop := m.OIDC.RotateEvery(token, rotate, lifetime)
	defer stop()
	e := testenv.NewEnv(t, testenv.EnvOptions{Global: webIDGlobal(m, proxy.Port, token, m.RoleARN),
		Cluster: testenv.ClusterOptions{InitdbArgs: []string{"--wal-segsize=1"}}})
	e.Cluster.Exec("postgres", "create table t(id int primary key, v text); insert into t select g, md5(g::text) || repeat('x', 300) from generate_series(1, 120000) g")
	e.MustRun("stanza-create")
	e.ArchiveCaughtUp()

	// ~70 MB at 1 MB/s: the backup lasts over a minute.
	proxy.SetRate(1 << 20)
	// Revoke right after the third credential refresh, so the revoked
	// session is still the one in use: the next request must fail, be
	// invalidated and retried.
	revoked := background(t, func(stop <-chan struct{}) error { return revokeAfterRefreshes(m, e, 3, stop) })
	start := time.Now()
	out, code := e.Run("backup", "--type=full", "--log-level-console=detail", "--archive-timeout=120")
	backupTime := time.Since(start)
	if err := revoked(); err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Fatalf("backup failed (exit %d) after %s:\n%s", code, backupTime, tail(out, 4000))
	}
	refreshes := len(refreshLine.FindAllString(out, -1))
	invalidations := strings.Count(out, "invalidated after an expired-credentials error")
	t.Logf("backup: %s, %d STS calls (credential refreshes), %d invalidations", backupTime.Round(time.Second), refreshes, invalidations)
	if backupTime < 5*lifetime {
		t.Fatalf("backup took %s, less than five credential lifetimes: the test proves nothing", backupTime)
	}
	if invalidations < 1 {
		t.Fatalf("no invalidation after the sessions were revoked:\n%s", tail(out, 4000))
	}
	// At most one refresh per half-lifetime plus the post-revocation fetch:
	// never a refresh per request.
	if max := int(backupTime/(rotate/2)) + 3; refreshes < int(backupTime/lifetime) || refreshes > max {
		t.Fatalf("%d credential refreshes in %s (want between %d and %d)", refreshes, backupTime, int(backupTime/lifetime), max)
	}
	// The backup's metrics state file carries the same counts as its log
	// (pgbr exporter serves them as pgbr_s3_credential_*).
	checkCredentialState(t, e, "backup", m.RoleARN, refreshes, invalidations, start)
	e.Cluster.Exec("postgres", "select pg_switch_wal()")
	want := e.Cluster.QueryOne("postgres", digestSQL+"t")
	e.Cluster.Stop()

	// Restores read faster than backups write: slow the link a bit more.
	proxy.SetRate(700 << 10)
	rdir := testenv.Dir(t, "webid-restore")
	data := filepath.Join(rdir, "pg")
	start = time.Now()
	out, code = e.Run("restore", "--pg1-path="+data, "--log-level-console=detail", "--archive-mode=off")
	restoreTime := time.Since(start)
	if code != 0 {
		t.Fatalf("restore failed (exit %d) after %s:\n%s", code, restoreTime, tail(out, 4000))
	}
	refreshes = len(refreshLine.FindAllString(out, -1))
	t.Logf("restore: %s, %d STS calls", restoreTime.Round(time.Second), refreshes)
	if restoreTime < 5*lifetime {
		t.Fatalf("restore took %s, less than five credential lifetimes", restoreTime)
	}
	// Credentials are fetched when a request is signed: while one large
	// file streams from a GET signed earlier (the read-ahead of small files
	// stops 64 files ahead), a lifetime can pass with no request and no
	// refresh. Loading them once, as pgBackRest did, gives 1.
	if min, max := int(restoreTime/lifetime)/2, int(restoreTime/(rotate/2))+2; refreshes < min || refreshes > max {
		t.Fatalf("%d credential refreshes in %s (want between %d and %d)", refreshes, restoreTime, min, max)
	}
	proxy.SetRate(0)
	r := testenv.StartRestored(t, rdir, data)
	if got := r.QueryOne("postgres", digestSQL+"t"); got != want {
		t.Fatalf("restored data differs\n%s", r.RestoredLog())
	}
}

// TestS3CredentialDenialsFailFast is scenario 4: a role the token may not
// assume, a missing, unreadable, garbage or long-expired token file: the
// command fails fast with a message naming the key type, role, token file
// and endpoint, never the token, and the repository is unchanged.
func TestS3CredentialDenialsFailFast(t *testing.T) {
	m := testenv.StartMinIO(t)
	dir := testenv.Dir(t, "denied")
	good := filepath.Join(dir, "token")
	stop := m.OIDC.RotateEvery(good, time.Minute, 10*time.Minute)
	defer stop()
	e := testenv.NewEnv(t, testenv.EnvOptions{Global: webIDGlobal(m, m.Port, good, m.RoleARN)})
	e.MustRun("stanza-create")
	before := listBucket(t, m)

	garbage := filepath.Join(dir, "garbage")
	os.WriteFile(garbage, []byte("not-a-jwt-token-at-all"), 0o644)
	unreadable := filepath.Join(dir, "unreadable")
	os.WriteFile(unreadable, []byte(m.OIDC.Token(time.Hour, "x")), 0o600) // root-owned, pgbr runs as postgres
	expired := filepath.Join(dir, "expired")
	os.WriteFile(expired, []byte(m.OIDC.Token(-time.Hour, "pgbr")), 0o644)
	expiredToken, _ := os.ReadFile(expired)
	cases := []struct {
		name, token, role string
		want              []string
	}{
		{"wrong_role", good, "arn:minio:iam:::role/nope", []string{"arn:minio:iam:::role/nope", good}},
		{"missing_file", filepath.Join(dir, "missing"), m.RoleARN, []string{filepath.Join(dir, "missing")}},
		{"unreadable_file", unreadable, m.RoleARN, []string{unreadable}},
		{"garbage_token", garbage, m.RoleARN, []string{garbage}},
		{"expired_token", expired, m.RoleARN, []string{expired, "expire"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			out, code := e.Run("backup", "--type=full", "--repo1-s3-web-id-token-file="+c.token, "--repo1-s3-role-arn="+c.role)
			took := time.Since(start)
			if code == 0 {
				t.Fatalf("backup succeeded with bad credentials:\n%s", out)
			}
			for _, l := range strings.Split(out, "\n") {
				if strings.Contains(l, "ERROR") {
					t.Logf("%s (%s): %s", c.name, took.Round(time.Millisecond), l)
				}
			}
			if took > 20*time.Second {
				t.Fatalf("took %s to fail: not fast", took)
			}
			for _, w := range append(c.want, "web-id") {
				if !strings.Contains(out, w) {
					t.Fatalf("message does not name %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, string(expiredToken)) || strings.Contains(out, "not-a-jwt-token-at-all") {
				t.Fatalf("a token reached the output:\n%s", out)
			}
			if strings.Contains(out, "goroutine ") {
				t.Fatalf("stack trace in output:\n%s", out)
			}
			if after := listBucket(t, m); after != before {
				t.Fatalf("repository changed by a failed backup")
			}
		})
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func listBucket(t *testing.T, m *testenv.MinIO) string {
	return strings.Join(m.ListKeys(t), "\n")
}

// revokeAfterRefreshes waits until the running backup has logged n
// credential refreshes (at most 90 s), then revokes every STS session at
// MinIO. When stop is closed first (the backup is over) it returns without
// revoking. It runs off the test goroutine: it returns its error.
func revokeAfterRefreshes(m *testenv.MinIO, e *testenv.Env, n int, stop <-chan struct{}) error {
	logFile := filepath.Join(e.Dir, "log", e.Stanza+"-backup.log")
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(logFile)
		if len(refreshLine.FindAll(b, -1)) >= n {
			break
		}
		select {
		case <-stop:
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
	time.Sleep(500 * time.Millisecond)
	return m.RevokeSTSErr()
}
