package credentials

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

const testRole = "arn:aws:iam::123456789012:role/pgbr"

func newWebIDCache(t *testing.T, f *stsFake, clk *fakeClock, tokenFile string, log *logSink) *Cache {
	t.Helper()
	o := Options{
		KeyType:     "web-id",
		Region:      "eu-central-2",
		STSEndpoint: f.hostPort(), // repo1-s3-sts-host=host:port → https
		HTTPClient:  f.srv.Client(),
		Now:         clk.Now,
		Logger:      log.Logger(),
		Environ: []string{
			"AWS_ROLE_ARN=" + testRole,
			"AWS_WEB_IDENTITY_TOKEN_FILE=" + tokenFile,
		},
		expiredTokenWaits: []time.Duration{20 * time.Millisecond, 20 * time.Millisecond},
		stsMaxBackoff:     10 * time.Millisecond,
	}
	c, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func noSecrets(t *testing.T, where, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Fatalf("%s contains secret %q:\n%s", where, s, text)
		}
	}
}

func TestWebIDTokenFileReReadAtEveryRefresh(t *testing.T) {
	clk := newClock()
	f := newSTSFake(t, clk.Now, 20*time.Second)
	tf := tempPath(t, "token")
	tok1 := fakeJWT(time.Now().Add(time.Hour), "SIGNATURE-ONE")
	tok2 := fakeJWT(time.Now().Add(2*time.Hour), "SIGNATURE-TWO")
	writeFile(t, tf, tok1)
	log := &logSink{}
	c := newWebIDCache(t, f, clk, tf, log)
	want := "key type web-id, role " + testRole + ", token file " + tf + ", sts https://" + f.hostPort()
	if c.Describe() != want {
		t.Fatalf("Describe\n got %s\nwant %s", c.Describe(), want)
	}

	cr, err := c.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if cr.AccessKeyID != "ASIASTS1" || cr.SecretAccessKey != "sts-secret-1" || cr.SessionToken != "sts-session-1" ||
		!cr.Expires.Equal(clk.Now().Add(20*time.Second)) {
		t.Fatalf("got %+v", cr)
	}
	writeFile(t, tf, tok2+"\n") // rotated; trailing newline dropped
	clk.Add(16100 * time.Millisecond)
	if _, err := c.Retrieve(context.Background()); err != nil { // starts a background refresh
		t.Fatal(err)
	}
	waitStats(t, c, func(s Stats) bool { return s.Refreshes == 2 })
	writeFile(t, tf, tok1)
	clk.Add(time.Minute)
	if _, err := c.Retrieve(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := f.seenTokens()
	if len(got) != 3 || got[0] != tok1 || got[1] != tok2 || got[2] != tok1 {
		t.Fatalf("STS saw %d tokens: %q", len(got), got)
	}
	if f.roles[0] != testRole+"|pgbr" {
		t.Fatalf("role|session %q", f.roles[0])
	}
	noSecrets(t, "logs", log.String(), tok1, tok2, "SIGNATURE", "sts-secret", "sts-session")
	if !strings.Contains(log.String(), "credentials refreshed from role "+testRole+", token file "+tf+", sts https://"+f.hostPort()+", expire at ") {
		t.Fatalf("logs:\n%s", log)
	}
}

// STS rejects the web identity token as expired; the kubelet rotates it a
// moment later: re-read and retry succeeds.
func TestWebIDExpiredTokenRotationLag(t *testing.T) {
	clk := newClock()
	f := newSTSFake(t, clk.Now, time.Hour)
	tf := tempPath(t, "token")
	old := fakeJWT(time.Now().Add(-time.Second), "OLD-SIG")
	fresh := fakeJWT(time.Now().Add(time.Hour), "FRESH-SIG")
	writeFile(t, tf, old)
	f.answer = func(n int, tok string) string {
		if tok == old {
			writeFile(t, tf, fresh) // rotation lands while we wait
			return "ExpiredTokenException"
		}
		return ""
	}
	log := &logSink{}
	c := newWebIDCache(t, f, clk, tf, log)
	cr, err := c.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if cr.AccessKeyID != "ASIASTS2" || f.calls.Load() != 2 {
		t.Fatalf("got %s after %d calls", cr.AccessKeyID, f.calls.Load())
	}
	if !strings.Contains(log.String(), "rejected as expired (ExpiredTokenException), re-reading the file") {
		t.Fatalf("logs:\n%s", log)
	}
	noSecrets(t, "logs", log.String(), old, fresh, "SIG")
}

// The token file is never rotated: after the re-reads, fail saying so and
// giving the token's expiry, never the token.
func TestWebIDExpiredTokenNotRotated(t *testing.T) {
	clk := newClock()
	f := newSTSFake(t, clk.Now, time.Hour)
	tf := tempPath(t, "token")
	old := fakeJWT(clk.Now().Add(-90*time.Second), "STALE-SIGNATURE")
	writeFile(t, tf, old)
	f.answer = func(int, string) string { return "ExpiredTokenException" }
	log := &logSink{}
	c := newWebIDCache(t, f, clk, tf, log)
	_, err := c.Retrieve(context.Background())
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("want *Error, got %T %v", err, err)
	}
	msg := err.Error()
	t.Log(msg)
	if f.calls.Load() != 3 {
		t.Fatalf("%d STS calls, want 3 (first + 2 re-reads)", f.calls.Load())
	}
	for _, want := range []string{"ExpiredTokenException", "not being rotated", "token file " + tf,
		"token expired at " + fmtTime(clk.Now().Add(-90*time.Second)) + " (1m30s ago)", "subject system:serviceaccount:db:pgbr",
		"role " + testRole, "sts https://" + f.hostPort()} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q", want)
		}
	}
	if ce.Code != "ExpiredTokenException" || ce.KeyType != "web-id" {
		t.Errorf("Code %q KeyType %q", ce.Code, ce.KeyType)
	}
	noSecrets(t, "error", msg, old, "STALE-SIGNATURE")
	noSecrets(t, "logs", log.String(), old, "STALE-SIGNATURE")
	if cl, code := Classify(err, true); cl != ClassDenied || code != "ExpiredTokenException" {
		t.Fatalf("Classify: %v %q (a credential-source failure is not an S3 session expiry)", cl, code)
	}
}

// MinIO answers an expired JWT with InvalidParameterValue "Token is expired":
// recognised from the token's own exp, same re-read path.
func TestWebIDMinIOExpiredJWT(t *testing.T) {
	clk := newClock()
	f := newSTSFake(t, clk.Now, time.Hour)
	tf := tempPath(t, "token")
	writeFile(t, tf, fakeJWT(clk.Now().Add(-time.Second), "X"))
	f.answer = func(int, string) string { return "InvalidParameterValue" }
	c := newWebIDCache(t, f, clk, tf, &logSink{})
	_, err := c.Retrieve(context.Background())
	if err == nil || !strings.Contains(err.Error(), "not being rotated") || f.calls.Load() != 3 {
		t.Fatalf("%d calls: %v", f.calls.Load(), err)
	}
}

func TestWebIDDenied(t *testing.T) {
	for _, code := range []string{"AccessDenied", "InvalidParameterValue", "InvalidIdentityToken"} {
		t.Run(code, func(t *testing.T) {
			clk := newClock()
			f := newSTSFake(t, clk.Now, time.Hour)
			tf := tempPath(t, "token")
			tok := fakeJWT(time.Now().Add(time.Hour), "VALID-SIGNATURE-"+code)
			writeFile(t, tf, tok)
			f.answer = func(int, string) string { return code }
			log := &logSink{}
			c := newWebIDCache(t, f, clk, tf, log)
			_, err := c.Retrieve(context.Background())
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("want *Error, got %T %v", err, err)
			}
			msg := err.Error()
			t.Log(msg)
			for _, want := range []string{"cannot obtain credentials from STS AssumeRoleWithWebIdentity: " + code + ": " + stsMessages[code].msg,
				"role " + testRole, "token file " + tf, "sts https://" + f.hostPort(), "token expires at", "HINT: "} {
				if !strings.Contains(msg, want) {
					t.Errorf("message lacks %q", want)
				}
			}
			if ce.Code != code {
				t.Errorf("Code %q", ce.Code)
			}
			noSecrets(t, "error", msg, tok, "VALID-SIGNATURE")
			noSecrets(t, "logs", log.String(), tok, "VALID-SIGNATURE")
			wantCalls := int64(1)
			if code == "InvalidIdentityToken" {
				wantCalls = 3 // the SDK retries it (JWKS fetch lag)
			}
			if f.calls.Load() != wantCalls {
				t.Fatalf("%d STS calls, want %d", f.calls.Load(), wantCalls)
			}
			if cl, _ := Classify(err, true); cl != ClassDenied {
				t.Fatalf("Classify %v", cl)
			}
		})
	}
}

// A 503 from STS is retried by the SDK; when it persists the error is
// transient for the storage layer.
func TestWebIDUnavailable(t *testing.T) {
	clk := newClock()
	f := newSTSFake(t, clk.Now, time.Hour)
	tf := tempPath(t, "token")
	writeFile(t, tf, fakeJWT(time.Now().Add(time.Hour), "S"))
	f.answer = func(n int, _ string) string {
		if n < 3 {
			return "ServiceUnavailable"
		}
		return ""
	}
	c := newWebIDCache(t, f, clk, tf, &logSink{})
	if _, err := c.Retrieve(context.Background()); err != nil || f.calls.Load() != 3 {
		t.Fatalf("%d calls: %v", f.calls.Load(), err)
	}
	f.answer = func(int, string) string { return "ServiceUnavailable" }
	c = newWebIDCache(t, f, clk, tf, &logSink{})
	_, err := c.Retrieve(context.Background())
	if cl, code := Classify(err, true); cl != ClassTransient || code != "ServiceUnavailable" {
		t.Fatalf("Classify %v %q: %v", cl, code, err)
	}
}

func TestWebIDTokenFileMissing(t *testing.T) {
	clk := newClock()
	f := newSTSFake(t, clk.Now, time.Hour)
	tf := tempPath(t, "absent")
	c := newWebIDCache(t, f, clk, tf, &logSink{})
	_, err := c.Retrieve(context.Background())
	if err == nil || !strings.Contains(err.Error(), "cannot read token file "+tf) || f.calls.Load() != 0 {
		t.Fatalf("%d calls: %v", f.calls.Load(), err)
	}
	t.Log(err)
}
