package credentials

import (
	"log/slog"

	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	pgbrlog "github.com/pgbr-dev/pgbr/internal/log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// fakeClock is a settable clock shared by the cache and the fake servers.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Now().Truncate(time.Second)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// logSink collects log lines.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (l *logSink) Logf(level, format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, level+": "+fmt.Sprintf(format, args...))
}

// Logger returns a *slog.Logger whose lines ("info: ...") go to the sink.
func (l *logSink) Logger() *slog.Logger {
	return pgbrlog.NewSlog(func(lvl pgbrlog.Level, msg string) { l.Logf(lvl.String(), "%s", msg) }, nil)
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// fakeJWT builds a JWT-shaped token whose payload has the given expiry; the
// signature part is a recognisable secret.
func fakeJWT(exp time.Time, sig string) string {
	h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","kid":"k1"}`))
	p, _ := json.Marshal(map[string]any{
		"iss": "https://oidc.example.test", "sub": "system:serviceaccount:db:pgbr",
		"aud": []string{"sts.amazonaws.com"}, "exp": exp.Unix(), "iat": exp.Add(-time.Hour).Unix(),
	})
	return h + "." + base64.RawURLEncoding.EncodeToString(p) + "." + sig
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	// write then rename, as the kubelet's atomic writer does
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// waitStats polls until cond holds (background refreshes).
func waitStats(t *testing.T, c *Cache, cond func(Stats) bool) Stats {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := c.Stats()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting; stats %+v", s)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// concurrently runs n Retrieve calls at once and returns their results.
func concurrently(t *testing.T, c *Cache, n int) []aws.Credentials {
	t.Helper()
	out := make([]aws.Credentials, n)
	errs := make([]error, n)
	var start, wg sync.WaitGroup
	start.Add(1)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start.Wait()
			out[i], errs[i] = c.Retrieve(context.Background())
		}()
	}
	start.Done()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
	}
	return out
}

// ------------------------------------------------------------ EC2 IMDSv2 fake

type imdsFake struct {
	t        *testing.T
	srv      *httptest.Server
	clock    func() time.Time
	life     time.Duration
	roles    []string // listed roles; creds exist for these
	delay    time.Duration
	tokens   atomic.Int64
	lists    atomic.Int64
	fetches  atomic.Int64
	mu       sync.Mutex
	fetched  []string // role names fetched
	badToken atomic.Int64
	issued   sync.Map // token → true
}

func newIMDSFake(t *testing.T, clock func() time.Time, life time.Duration, roles ...string) *imdsFake {
	f := &imdsFake{t: t, clock: clock, life: life, roles: roles}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *imdsFake) serve(w http.ResponseWriter, r *http.Request) {
	const prefix = "/latest/meta-data/iam/security-credentials/"
	if r.URL.Path == "/latest/api/token" {
		if r.Method != http.MethodPut {
			http.Error(w, "", http.StatusMethodNotAllowed)
			return
		}
		ttl := r.Header.Get("x-aws-ec2-metadata-token-ttl-seconds")
		if ttl == "" {
			http.Error(w, "missing ttl", http.StatusBadRequest)
			return
		}
		tok := fmt.Sprintf("imds-token-%d", f.tokens.Add(1))
		f.issued.Store(tok, true)
		w.Header().Set("x-aws-ec2-metadata-token-ttl-seconds", ttl)
		fmt.Fprint(w, tok)
		return
	}
	if r.Method != http.MethodGet {
		http.Error(w, "", http.StatusMethodNotAllowed)
		return
	}
	if _, ok := f.issued.Load(r.Header.Get("x-aws-ec2-metadata-token")); !ok {
		f.badToken.Add(1)
		http.Error(w, "", http.StatusUnauthorized) // IMDSv2 only
		return
	}
	if !strings.HasPrefix(r.URL.Path, prefix) {
		http.NotFound(w, r)
		return
	}
	role := strings.TrimPrefix(r.URL.Path, prefix)
	if role == "" {
		f.lists.Add(1)
		if len(f.roles) == 0 {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, strings.Join(f.roles, "\n"))
		return
	}
	found := false
	for _, x := range f.roles {
		found = found || x == role
	}
	if !found {
		http.NotFound(w, r)
		return
	}
	time.Sleep(f.delay)
	n := f.fetches.Add(1)
	f.mu.Lock()
	f.fetched = append(f.fetched, role)
	f.mu.Unlock()
	json.NewEncoder(w).Encode(map[string]any{
		"Code": "Success", "LastUpdated": f.clock().UTC().Format(time.RFC3339), "Type": "AWS-HMAC",
		"AccessKeyId": fmt.Sprintf("ASIAIMDS%d", n), "SecretAccessKey": fmt.Sprintf("imds-secret-%d", n),
		"Token": fmt.Sprintf("imds-session-%d", n), "Expiration": f.clock().Add(f.life).UTC(),
	})
}

// ------------------------------------------------------------ EKS pod identity agent fake

type podFake struct {
	srv       *httptest.Server
	clock     func() time.Time
	life      time.Duration
	tokenFile string
	delay     time.Duration
	fail      atomic.Bool
	fetches   atomic.Int64
	mu        sync.Mutex
	seen      []string // Authorization headers received
}

func newPodFake(t *testing.T, clock func() time.Time, life time.Duration, tokenFile string) *podFake {
	f := &podFake{clock: clock, life: life, tokenFile: tokenFile}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *podFake) serve(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	f.mu.Lock()
	f.seen = append(f.seen, auth)
	f.mu.Unlock()
	b, _ := os.ReadFile(f.tokenFile)
	cur := strings.TrimRight(string(b), "\n")
	if r.Method != http.MethodGet || r.URL.Path != "/v1/credentials" || auth != cur || f.fail.Load() {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"code":"InvalidToken","message":"Service account token cannot be empty or is not valid"}`)
		return
	}
	time.Sleep(f.delay)
	n := f.fetches.Add(1)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"AccessKeyId": fmt.Sprintf("ASIAPOD%d", n), "SecretAccessKey": fmt.Sprintf("pod-secret-%d", n),
		"Token": fmt.Sprintf("pod-session-%d", n), "AccountId": "123456789012",
		"Expiration": f.clock().Add(f.life).UTC(),
	})
}

func (f *podFake) auths() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.seen...)
}

// ------------------------------------------------------------ STS fake (AssumeRoleWithWebIdentity)

type stsFake struct {
	t     *testing.T
	srv   *httptest.Server
	clock func() time.Time
	life  time.Duration
	// answer decides per call: "" = success, else an error code.
	answer func(n int, token string) string
	calls  atomic.Int64
	mu     sync.Mutex
	tokens []string
	roles  []string
}

func newSTSFake(t *testing.T, clock func() time.Time, life time.Duration) *stsFake {
	f := &stsFake{t: t, clock: clock, life: life, answer: func(int, string) string { return "" }}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// hostPort is what repo1-s3-sts-host would hold.
func (f *stsFake) hostPort() string { return f.srv.Listener.Addr().String() }

var stsMessages = map[string]struct {
	status int
	msg    string
}{
	"AccessDenied":          {403, "Not authorized to perform sts:AssumeRoleWithWebIdentity"},
	"ExpiredTokenException": {400, "Token expired: current date/time 1 must be before the expiration date/time 0"},
	"InvalidParameterValue": {400, "Token is expired"},
	"InvalidIdentityToken":  {400, "No OpenIDConnect provider found in your account for https://oidc.example.test"},
	"ServiceUnavailable":    {503, "Service is unavailable"},
}

func (f *stsFake) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusForbidden)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if r.PostForm.Get("Action") != "AssumeRoleWithWebIdentity" || r.PostForm.Get("Version") != "2011-06-15" {
		http.Error(w, "bad action", http.StatusBadRequest)
		return
	}
	if r.Header.Get("Authorization") != "" {
		http.Error(w, "AssumeRoleWithWebIdentity is unsigned", http.StatusBadRequest)
		return
	}
	tok := r.PostForm.Get("WebIdentityToken")
	n := int(f.calls.Add(1))
	f.mu.Lock()
	f.tokens = append(f.tokens, tok)
	f.roles = append(f.roles, r.PostForm.Get("RoleArn")+"|"+r.PostForm.Get("RoleSessionName"))
	f.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	if code := f.answer(n, tok); code != "" {
		m := stsMessages[code]
		w.WriteHeader(m.status)
		fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>req-%d</RequestId></ErrorResponse>`,
			code, m.msg, n)
		return
	}
	fmt.Fprintf(w, `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:db:pgbr</SubjectFromWebIdentityToken>
    <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/pgbr/s</Arn><AssumedRoleId>AROA:s</AssumedRoleId></AssumedRoleUser>
    <Credentials>
      <SessionToken>sts-session-%d</SessionToken>
      <SecretAccessKey>sts-secret-%d</SecretAccessKey>
      <Expiration>%s</Expiration>
      <AccessKeyId>ASIASTS%d</AccessKeyId>
    </Credentials>
    <Provider>oidc.example.test</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>req-%d</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>`, n, n, f.clock().Add(f.life).UTC().Format(time.RFC3339Nano), n, n)
}

func (f *stsFake) seenTokens() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.tokens...)
}

func tempPath(t *testing.T, name string) string {
	return filepath.Join(t.TempDir(), name)
}
