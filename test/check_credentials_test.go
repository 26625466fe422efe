package test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pgbr-dev/pgbr/internal/credentials"
	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/storage/s3"
	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// stretchLastBackup rewrites backup.info in MinIO so that the newest
// backup took d (its start moved back), as if this stanza's backups took
// that long.
func stretchLastBackup(t *testing.T, m *testenv.MinIO, path, stanza string, d time.Duration) {
	t.Helper()
	ctx := context.Background()
	cache, err := credentials.New(ctx, credentials.Options{Key: m.RootUser, Secret: m.RootPassword})
	if err != nil {
		t.Fatal(err)
	}
	st, err := s3.New(ctx, s3.Options{Bucket: m.Bucket, Endpoint: "127.0.0.1", Port: m.Port, Region: m.Region, URIStyle: "path",
		Path: path, VerifyTLS: true, HTTPClient: m.HTTPClient(), Creds: cache, UploadChunkSize: 5 << 20})
	if err != nil {
		t.Fatal(err)
	}
	b, err := repo.LoadBackupInfo(ctx, st, stanza, "")
	if err != nil {
		t.Fatal(err)
	}
	last := &b.Current[len(b.Current)-1]
	last.TimestampStart = last.TimestampStop - int64(d/time.Second)
	if err := repo.SaveBackupInfo(ctx, st, stanza, b, ""); err != nil {
		t.Fatal(err)
	}
}

// TestCheckCredentialHealth runs `check` against MinIO with static keys,
// web identity (healthy and with a token file nobody rotates), EKS pod
// identity and IMDSv2 credentials: check names the credential source, the
// token file's age and token expiry, the key S3 accepted and how long the
// credentials last, and warns when the token file is stale and when the
// credentials last less than this stanza's backups take; a denial names
// its cause; no secret or token is printed.
func TestCheckCredentialHealth(t *testing.T) {
	t.Parallel()
	m := testenv.StartMinIO(t)
	dir := testenv.Dir(t, "check-creds")
	static := []string{
		"repo1-type=s3", "repo1-s3-bucket=" + m.Bucket, "repo1-s3-endpoint=127.0.0.1",
		fmt.Sprintf("repo1-storage-port=%d", m.Port), "repo1-s3-region=" + m.Region, "repo1-s3-uri-style=path",
		"repo1-storage-ca-file=" + m.CAFile, "compress-type=none",
	}
	e := testenv.NewEnv(t, testenv.EnvOptions{Global: append(append([]string{}, static...),
		"repo1-s3-key="+m.RootUser, "repo1-s3-key-secret="+m.RootPassword)})
	e.MustRun("stanza-create")
	e.MustRun("backup", "--type=full")

	token := filepath.Join(dir, "web-id-token")
	stop := m.OIDC.RotateEvery(token, time.Minute, time.Hour)
	defer stop()
	staleToken := filepath.Join(dir, "stale-token")
	if err := m.OIDC.WriteTokenFile(staleToken, time.Hour); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(staleToken, old, old)
	podToken := filepath.Join(dir, "pod-token")
	if err := m.OIDC.WriteTokenFile(podToken, time.Hour); err != nil {
		t.Fatal(err)
	}
	pod := testenv.StartPodIdentity(t, m, 20*time.Minute, podToken)
	imds := testenv.StartIMDS(t, m, 20*time.Minute)
	webID := func(file, role string) []string {
		return append(append([]string{}, static...), "repo1-s3-key-type=web-id", "repo1-s3-role-arn="+role,
			"repo1-s3-web-id-token-file="+file, fmt.Sprintf("repo1-s3-sts-host=127.0.0.1:%d", m.Port))
	}
	const ts = `\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`
	cases := []struct {
		name   string
		global []string
		long   bool // backup.info says backups take 3 h
		want   []string
		warn   []string
	}{
		{"web-id", webID(token, m.RoleARN), false,
			[]string{`INFO: repo1: S3 credentials from key type web-id, role ` + regexp.QuoteMeta(m.RoleARN) + `, token file ` + regexp.QuoteMeta(token) + `, sts https://127.0.0.1:\d+\n`,
				`INFO: repo1: token file ` + regexp.QuoteMeta(token) + ` written \d+(\.\d+)?m?s ago, token expires at ` + ts + ` \(in [0-9hms]+\), lifetime 1h0m0s, subject system:serviceaccount:\S+, issuer https://127.0.0.1:\d+, audience \S+\n`,
				`INFO: repo1: S3 accepted key \S{8}\.\.\.(, identity \S+| \(identity not reported: STS GetCallerIdentity: \w+\)), credentials expire at ` + ts + ` \(in [0-9hms]+\)\n`},
			nil},
		{"web-id-stale-token-file", webID(staleToken, m.RoleARN), false, nil,
			[]string{`WARN: repo1: token file ` + regexp.QuoteMeta(staleToken) + ` was last written 2h0m\d+s ago, longer than the lifetime of its token \(1h0m0s\): is it still being rotated\?`}},
		{"static", append(append([]string{}, static...), "repo1-s3-key="+m.RootUser, "repo1-s3-key-secret="+m.RootPassword), true,
			[]string{`INFO: repo1: S3 credentials from key type shared, key ` + m.RootUser + `\n`,
				`INFO: repo1: S3 accepted key ` + regexp.QuoteMeta(m.RootUser[:min(8, len(m.RootUser))]) + `\S*, credentials do not expire\n`},
			nil},
		{"web-id-short-vs-backups", webID(token, m.RoleARN), true, nil,
			[]string{`WARN: repo1: the credentials last [0-9hms]+ but a backup of stanza 'main' takes up to 3h0m0s \(last backups\)`}},
		{"pod-id", append(append([]string{}, static...), "repo1-s3-key-type=pod-id", "repo1-s3-pod-id-uri="+pod.URL+"/v1/credentials",
			"repo1-s3-pod-id-token-file="+podToken), true,
			[]string{`INFO: repo1: S3 credentials from key type pod-id, pod identity ` + regexp.QuoteMeta(pod.URL) + `/v1/credentials, token file ` + regexp.QuoteMeta(podToken) + `\n`,
				`INFO: repo1: token file ` + regexp.QuoteMeta(podToken) + ` written .* ago, token expires at ` + ts,
				`INFO: repo1: S3 accepted key \S{8}\.\.\., credentials expire at ` + ts + ` \(in [0-9hms]+\)\n`},
			[]string{`WARN: repo1: the credentials last [0-9hms]+ but a backup of stanza 'main' takes up to 3h0m0s`}},
		{"imds", append(append([]string{}, static...), "repo1-s3-key-type=auto", "repo1-s3-imds-endpoint="+imds.URL), true,
			[]string{`INFO: repo1: S3 credentials from key type auto, instance metadata ` + regexp.QuoteMeta(imds.URL) + `, role discovered\n`,
				`INFO: repo1: S3 accepted key \S{8}\.\.\., credentials expire at ` + ts + ` \(in [0-9hms]+\)\n`},
			[]string{`WARN: repo1: the credentials last [0-9hms]+ but a backup of stanza 'main' takes up to 3h0m0s`}},
	}
	stretched := false
	for _, c := range cases {
		if c.long && !stretched {
			stretchLastBackup(t, m, e.Repo, e.Stanza, 3*time.Hour)
			stretched = true
		}
		e.Global = c.global
		e.WriteConf()
		out, code := e.Run("check")
		if code != 0 {
			t.Fatalf("%s: check failed (exit %d):\n%s", c.name, code, out)
		}
		for _, w := range c.want {
			if !regexp.MustCompile(w).MatchString(out) {
				t.Fatalf("%s: check output lacks %s:\n%s", c.name, w, out)
			}
		}
		for _, w := range c.warn {
			if !regexp.MustCompile(w).MatchString(out) {
				t.Fatalf("%s: check output lacks warning %s:\n%s", c.name, w, out)
			}
		}
		if len(c.warn) == 0 && strings.Contains(out, "WARN:") {
			t.Fatalf("%s: unexpected warning:\n%s", c.name, out)
		}
		for _, secret := range []string{m.RootPassword, readString(t, token), readString(t, staleToken), readString(t, podToken)} {
			if strings.Contains(out, secret) {
				t.Fatalf("%s: a secret or token reached the output:\n%s", c.name, out)
			}
		}
		t.Logf("%s:\n%s", c.name, credLines(out))
	}

	// A denial names its cause, as other commands do.
	e.Global = webID(token, "arn:minio:iam:::role/nope")
	e.WriteConf()
	out, code := e.Run("check")
	if code == 0 || !strings.Contains(out, "AssumeRoleWithWebIdentity") || !strings.Contains(out, "arn:minio:iam:::role/nope") ||
		!strings.Contains(out, token) {
		t.Fatalf("check with a wrong role: exit %d, message does not name the cause:\n%s", code, out)
	}
}

func readString(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// credLines keeps check's credential lines.
func credLines(out string) string {
	var l []string
	for _, s := range strings.Split(out, "\n") {
		if strings.Contains(s, "repo1: ") {
			l = append(l, s)
		}
	}
	return strings.Join(l, "\n")
}
