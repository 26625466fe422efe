package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// MinIOBin is where scripts/test.sh installs MinIO.
const MinIOBin = "/var/cache/pgbr-tools/bin/minio"

// MinIO is a running MinIO server (single drive, TLS, loopback only) with an
// OpenID issuer configured for AssumeRoleWithWebIdentity with a role policy.
type MinIO struct {
	Endpoint     string // host for repo1-s3-endpoint: 127.0.0.1 (the certificate also names localhost)
	Port         int
	URL          string // https://127.0.0.1:port
	Region       string
	CAFile       string // CA of the server certificate (and of the OIDC issuer)
	RootUser     string
	RootPassword string
	Bucket       string // created at start
	RoleARN      string // arn:minio:iam:::role/<id>: readwrite role for web identity
	KMSKeyID     string // key id for SSE-KMS (MinIO's built-in static KMS key)
	STSEndpoint  string // https://127.0.0.1:port (MinIO serves STS at its root)
	OIDC         *OIDC
	CA           *CA
	DataDir      string

	t         testing.TB
	kmsSecret string
	cmd       *exec.Cmd
	log       string
	done      chan struct{}
}

// FindMinIO returns the MinIO binary: $PGBR_MINIO, then MinIOBin, then PATH.
func FindMinIO(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("PGBR_MINIO"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("PGBR_MINIO=%s: %v (scripts/test.sh installs MinIO)", p, err)
		}
		return p
	}
	if _, err := os.Stat(MinIOBin); err == nil {
		return MinIOBin
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p
	}
	t.Fatalf("minio not found ($PGBR_MINIO, %s, PATH): scripts/test.sh installs it", MinIOBin)
	return ""
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;]*m`)

// StartMinIO starts an OIDC issuer and MinIO trusting it, creates a bucket,
// and stops both at the end of the test.
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	bin := FindMinIO(t)
	ca := NewCA(t)
	oidc := startOIDC(t, ca)

	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	os.MkdirAll(filepath.Join(certs, "CAs"), 0o700)
	crt, key := ca.Issue(t, "127.0.0.1", "localhost")
	must(t, os.WriteFile(filepath.Join(certs, "public.crt"), crt, 0o600))
	must(t, os.WriteFile(filepath.Join(certs, "private.key"), key, 0o600))
	must(t, os.WriteFile(filepath.Join(certs, "CAs", "ca.crt"), ca.PEM, 0o600))

	m := &MinIO{
		Endpoint: "127.0.0.1", Region: "us-east-1", CAFile: ca.File, CA: ca, OIDC: oidc,
		RootUser: "root" + randHex(6), RootPassword: randHex(20), Bucket: "pgbr-test",
		DataDir: filepath.Join(dir, "data"), t: t, log: filepath.Join(dir, "minio.log"), KMSKeyID: "pgbr-test-key",
	}
	kmsKey := make([]byte, 32)
	rand.Read(kmsKey)
	m.kmsSecret = m.KMSKeyID + ":" + base64.StdEncoding.EncodeToString(kmsKey)
	// MinIO derives the role ARN from the client id (sha1, base64url).
	sum := sha1.Sum([]byte(OIDCClientID))
	m.RoleARN = "arn:minio:iam:::role/" + base64.RawURLEncoding.EncodeToString(sum[:])

	var lastErr error
	for try := 0; try < 3; try++ {
		if lastErr = m.start(bin, certs); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		t.Fatal(lastErr)
	}
	t.Cleanup(m.Stop)

	// The role ARN MinIO logs ("IAM Roles: arn:minio:iam:::role/...") once
	// IAM is up.
	deadline := time.Now().Add(30 * time.Second)
	re := regexp.MustCompile(`IAM Roles:\s*(arn:minio:iam:[^\s]*)`)
	for {
		b, _ := os.ReadFile(m.log)
		if mm := re.FindSubmatch(ansi.ReplaceAll(b, nil)); mm != nil {
			if got := string(mm[1]); got != m.RoleARN {
				t.Logf("MinIO role ARN %s (expected %s)", got, m.RoleARN)
				m.RoleARN = got
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("MinIO did not log its IAM role within 30s:\n%s", tail(string(b), 3000))
		}
		time.Sleep(50 * time.Millisecond)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := m.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(m.Bucket)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	return m
}

func (m *MinIO) start(bin, certs string) error {
	m.Port = FreePort(m.t)
	m.URL = fmt.Sprintf("https://127.0.0.1:%d", m.Port)
	m.STSEndpoint = m.URL
	consolePort := FreePort(m.t)
	logf, err := os.Create(m.log)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "server", "--address", fmt.Sprintf("127.0.0.1:%d", m.Port),
		"--console-address", fmt.Sprintf("127.0.0.1:%d", consolePort), "--certs-dir", certs, m.DataDir)
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+m.RootUser,
		"MINIO_ROOT_PASSWORD="+m.RootPassword,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=on",
		"MINIO_IDENTITY_OPENID_CONFIG_URL="+m.OIDC.ConfigURL,
		"MINIO_IDENTITY_OPENID_CLIENT_ID="+m.OIDC.ClientID,
		"MINIO_IDENTITY_OPENID_ROLE_POLICY=readwrite",
		"MINIO_KMS_SECRET_KEY="+m.kmsSecret,
		"MINIO_DOMAIN=localhost", // host-style requests to <bucket>.localhost
		"SSL_CERT_FILE="+m.CA.File,
		"HOME="+filepath.Dir(certs),
	)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start minio: %v", err)
	}
	m.cmd = cmd
	m.done = make(chan struct{})
	go func() { cmd.Wait(); close(m.done) }()

	hc := m.CA.Client()
	hc.Timeout = 2 * time.Second
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-m.done:
			b, _ := os.ReadFile(m.log)
			return fmt.Errorf("minio exited during start-up:\n%s", tail(string(b), 3000))
		default:
		}
		resp, err := hc.Get(m.URL + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			m.Stop()
			b, _ := os.ReadFile(m.log)
			return fmt.Errorf("minio not ready after 60s (%v):\n%s", err, tail(string(b), 3000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops MinIO (also done at the end of the test).
func (m *MinIO) Stop() {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	select {
	case <-m.done:
		return
	default:
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(5 * time.Second):
		m.cmd.Process.Kill()
		<-m.done
	}
}

// Log returns MinIO's output.
func (m *MinIO) Log() string {
	b, _ := os.ReadFile(m.log)
	return string(b)
}

// HTTPClient trusts the test CA.
func (m *MinIO) HTTPClient() *http.Client { return m.CA.Client() }

// Client is an S3 client with the root credentials (path style).
func (m *MinIO) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:                     m.Region,
		BaseEndpoint:               aws.String(m.URL),
		UsePathStyle:               true,
		Credentials:                awscreds.NewStaticCredentialsProvider(m.RootUser, m.RootPassword, ""),
		HTTPClient:                 m.HTTPClient(),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// ListMultipartUploads returns the ids of the unfinished multipart uploads
// of key (MinIO lists uploads per object key only).
func (m *MinIO) ListMultipartUploads(t testing.TB, key string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := m.Client().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(m.Bucket), Prefix: aws.String(key)})
	if err != nil {
		t.Fatalf("list multipart uploads of %s: %v", key, err)
	}
	var ids []string
	for _, u := range out.Uploads {
		ids = append(ids, aws.ToString(u.UploadId))
	}
	return ids
}

// PendingUploads counts unfinished multipart uploads of every key, from
// MinIO's drive (.minio.sys/multipart/<object hash>/<upload id>).
func (m *MinIO) PendingUploads(t testing.TB) int {
	t.Helper()
	base := filepath.Join(m.DataDir, ".minio.sys", "multipart")
	objs, err := os.ReadDir(base)
	if err != nil {
		if os.IsNotExist(err) {
			return 0
		}
		t.Fatal(err)
	}
	n := 0
	for _, o := range objs {
		if !o.IsDir() {
			continue
		}
		ups, _ := os.ReadDir(filepath.Join(base, o.Name()))
		for _, u := range ups {
			if u.IsDir() {
				n++
			}
		}
	}
	return n
}

// RevokeSTS revokes every STS session issued for the OIDC issuer's
// subjects, through MinIO's admin API (revoke-tokens, signed with SigV4).
func (m *MinIO) RevokeSTS(t testing.TB) {
	t.Helper()
	if err := m.RevokeSTSErr(); err != nil {
		t.Fatal(err)
	}
}

// RevokeSTSErr is RevokeSTS for goroutines other than the test's: it
// returns the error instead of failing the test.
func (m *MinIO) RevokeSTSErr() error {
	for _, sub := range m.OIDC.Subjects() {
		// MinIO's parent user for an OpenID session: base64url(sha256("openid:<sub>:<iss>")).
		sum := sha256.Sum256([]byte("openid:" + sub + ":" + m.OIDC.Issuer))
		parent := base64.RawURLEncoding.EncodeToString(sum[:])
		q := url.Values{"user": {parent}, "fullRevoke": {"true"}}
		status, body, err := m.admin(http.MethodPost, "/minio/admin/v3/revoke-tokens/builtin", q, nil)
		if err != nil {
			return err
		}
		if status/100 != 2 {
			return fmt.Errorf("revoke STS sessions of %s: HTTP %d: %s", sub, status, body)
		}
	}
	return nil
}

// admin sends a SigV4-signed admin API request with the root credentials.
// It returns its error, so it can run off the test goroutine.
func (m *MinIO) admin(method, path string, q url.Values, body []byte) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u := m.URL + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	creds := aws.Credentials{AccessKeyID: m.RootUser, SecretAccessKey: m.RootPassword}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hash, "s3", m.Region, time.Now()); err != nil {
		return 0, "", err
	}
	resp, err := m.HTTPClient().Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// ListKeys returns every object key of the bucket with its size, sorted.
func (m *MinIO) ListKeys(t testing.TB) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []string
	p := s3.NewListObjectsV2Paginator(m.Client(), &s3.ListObjectsV2Input{Bucket: aws.String(m.Bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("list bucket: %v", err)
		}
		for _, o := range page.Contents {
			out = append(out, fmt.Sprintf("%s %d", aws.ToString(o.Key), aws.ToInt64(o.Size)))
		}
	}
	sort.Strings(out)
	return out
}
