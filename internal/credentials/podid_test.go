package credentials

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func newPodCache(t *testing.T, f *podFake, clk *fakeClock, log *logSink) *Cache {
	t.Helper()
	// everything from the environment, as EKS sets it
	c, err := New(context.Background(), Options{KeyType: "pod-id", Now: clk.Now, Logger: log.Logger(), Environ: []string{
		"AWS_CONTAINER_CREDENTIALS_FULL_URI=" + f.srv.URL + "/v1/credentials",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=" + f.tokenFile,
	}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The agent gets the current content of the token file at every refresh.
func TestPodIDTokenFileReReadAtEveryRefresh(t *testing.T) {
	clk := newClock()
	tf := tempPath(t, "eks-pod-identity-token")
	writeFile(t, tf, "pod-token-one")
	f := newPodFake(t, clk.Now, 20*time.Second, tf)
	log := &logSink{}
	c := newPodCache(t, f, clk, log)

	cr, err := c.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if cr.AccessKeyID != "ASIAPOD1" || cr.SessionToken != "pod-session-1" || !cr.CanExpire {
		t.Fatalf("got %+v", cr)
	}

	// kubelet rotates the token (with a trailing newline, which must not be sent)
	writeFile(t, tf, "pod-token-two\n")
	clk.Add(19 * time.Second) // past the refresh point and the usable margin
	for _, cr := range concurrently(t, c, 50) {
		if cr.AccessKeyID != "ASIAPOD2" {
			t.Fatalf("got %s", cr.AccessKeyID)
		}
	}
	if got := f.auths(); len(got) != 2 || got[0] != "pod-token-one" || got[1] != "pod-token-two" {
		t.Fatalf("agent saw Authorization %q", got)
	}
	if s := c.Stats(); s.Refreshes != 2 || s.Failures != 0 {
		t.Fatalf("stats %+v", s)
	}
	if !strings.Contains(log.String(), "credentials refreshed from pod identity "+f.srv.URL+"/v1/credentials") {
		t.Fatalf("logs:\n%s", log)
	}
	if strings.Contains(log.String(), "pod-token") || strings.Contains(log.String(), "pod-secret") {
		t.Fatalf("secret in logs:\n%s", log)
	}
}

func TestPodIDErrorResponse(t *testing.T) {
	clk := newClock()
	tf := tempPath(t, "token")
	writeFile(t, tf, "pod-token-secret-value")
	f := newPodFake(t, clk.Now, time.Hour, tf)
	f.fail.Store(true)
	log := &logSink{}
	c := newPodCache(t, f, clk, log)
	_, err := c.Retrieve(context.Background())
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("want *Error, got %T %v", err, err)
	}
	msg := err.Error()
	t.Log(msg)
	for _, want := range []string{"key type pod-id", "cannot obtain credentials from pod identity agent: HTTP 400", "pod identity " + f.srv.URL,
		"HTTP 400", "InvalidToken", "Service account token cannot be empty", "token file " + tf, "token file written"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if ce.Code != "InvalidToken" {
		t.Errorf("Code %q", ce.Code)
	}
	if strings.Contains(msg, "pod-token-secret-value") || strings.Contains(log.String(), "pod-token-secret-value") {
		t.Fatal("token in message or logs")
	}
	if f.fetches.Load() != 0 || len(f.auths()) != 1 {
		t.Fatalf("a 400 must not be retried: %d requests", len(f.auths()))
	}
}

// A failed background refresh keeps the still valid credentials and tries
// again later; once they are no longer usable the error reaches callers.
func TestRefreshFailureKeepsValidCredentials(t *testing.T) {
	clk := newClock()
	tf := tempPath(t, "token")
	writeFile(t, tf, "tok")
	f := newPodFake(t, clk.Now, 100*time.Second, tf)
	log := &logSink{}
	c := newPodCache(t, f, clk, log)
	if _, err := c.Retrieve(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.fail.Store(true)
	clk.Add(80 * time.Second) // window 25 s ± 20%: refresh due; usable until 90 s
	cr, err := c.Retrieve(context.Background())
	if err != nil || cr.AccessKeyID != "ASIAPOD1" {
		t.Fatalf("got %v %v", cr.AccessKeyID, err)
	}
	waitStats(t, c, func(s Stats) bool { return s.Failures == 1 })
	// The refresh counts the failure, then logs it: wait for the line.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(log.String(), "keeping the current ones"); {
		if time.Now().After(deadline) {
			t.Fatalf("logs:\n%s", log)
		}
		time.Sleep(2 * time.Millisecond)
	}
	// the retry is scheduled, not attempted on every call
	for range 10 {
		if _, err := c.Retrieve(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(f.auths()); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
	clk.Add(15 * time.Second) // 95 s: not usable any more
	if _, err := c.Retrieve(context.Background()); err == nil {
		t.Fatal("want error")
	}
	f.fail.Store(false)
	cr, err = c.Retrieve(context.Background())
	if err != nil || cr.AccessKeyID != "ASIAPOD2" {
		t.Fatalf("got %v %v", cr.AccessKeyID, err)
	}
}

func TestPodIDURIChecks(t *testing.T) {
	for _, tc := range []struct {
		uri string
		ok  bool
	}{
		{"http://169.254.170.23/v1/credentials", true},
		{"http://[fd00:ec2::23]/v1/credentials", true},
		{"http://127.0.0.1:8080/v1/credentials", true},
		{"http://[::1]:8080/creds", true},
		{"http://localhost/creds", true},
		{"https://agent.example.com/creds", true},
		{"http://agent.example.com/creds", false},
		{"ftp://127.0.0.1/creds", false},
		{"not a uri", false},
	} {
		_, err := New(context.Background(), Options{KeyType: "pod-id", ContainerURI: tc.uri, ContainerTokenFile: "/t", Environ: []string{}})
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v", tc.uri, err)
		}
	}
}
