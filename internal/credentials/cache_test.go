package credentials

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go"
)

func TestInvalidate(t *testing.T) {
	clk := newClock()
	tf := tempPath(t, "token")
	writeFile(t, tf, "tok")
	f := newPodFake(t, clk.Now, time.Hour, tf)
	f.delay = 30 * time.Millisecond // keep the 50 callers overlapping the fetch
	log := &logSink{}
	c := newPodCache(t, f, clk, log)
	var _ aws.CredentialsProvider = c

	cr, err := c.Retrieve(context.Background())
	if err != nil || cr.AccessKeyID != "ASIAPOD1" {
		t.Fatal(cr.AccessKeyID, err)
	}
	// a request signed with another key failed: someone else already
	// refreshed, nothing to drop
	if c.Invalidate("ASIAOTHER") {
		t.Fatal("Invalidate of a key that is not cached reported true")
	}
	if _, err := c.Retrieve(context.Background()); err != nil || f.fetches.Load() != 1 {
		t.Fatalf("%d fetches: %v", f.fetches.Load(), err)
	}

	// 50 requests signed with ASIAPOD1 fail at once with ExpiredToken: one
	// invalidation wins, the others see newer credentials or a dropped cache;
	// then one fetch serves every retry.
	if !c.Invalidate("ASIAPOD1") {
		t.Fatal("Invalidate of the cached key reported false")
	}
	if c.Invalidate("ASIAPOD1") {
		t.Fatal("second Invalidate of the same key reported true")
	}
	for _, cr := range concurrently(t, c, 50) {
		if cr.AccessKeyID != "ASIAPOD2" {
			t.Fatalf("got %s", cr.AccessKeyID)
		}
	}
	if n := f.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches after invalidation, want 2", n)
	}
	// late failures of requests signed with the old key do not drop the new one
	for range 10 {
		if c.Invalidate("ASIAPOD1") {
			t.Fatal("stale key id dropped newer credentials")
		}
	}
	if cr, _ := c.Retrieve(context.Background()); cr.AccessKeyID != "ASIAPOD2" || f.fetches.Load() != 2 {
		t.Fatalf("got %s after %d fetches", cr.AccessKeyID, f.fetches.Load())
	}
	// 50 requests fail at once with the current key: exactly one drops it
	var wins atomic.Int64
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c.Invalidate("ASIAPOD2") {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d concurrent Invalidate calls won, want 1", wins.Load())
	}
	for _, cr := range concurrently(t, c, 50) {
		if cr.AccessKeyID != "ASIAPOD3" {
			t.Fatalf("got %s", cr.AccessKeyID)
		}
	}
	if n := f.fetches.Load(); n != 3 {
		t.Fatalf("%d fetches, want 3", n)
	}
	s := c.Stats()
	if s.Invalidations != 2 || s.Refreshes != 3 {
		t.Fatalf("stats %+v", s)
	}
	if !strings.Contains(log.String(), "invalidated after an expired-credentials error") {
		t.Fatalf("logs:\n%s", log)
	}
}

// A caller that gives up does not fail the refresh the others wait for.
func TestRetrieveCallerCancel(t *testing.T) {
	clk := newClock()
	tf := tempPath(t, "token")
	writeFile(t, tf, "tok")
	f := newPodFake(t, clk.Now, time.Hour, tf)
	f.delay = 100 * time.Millisecond
	c := newPodCache(t, f, clk, &logSink{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err := c.Retrieve(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	cr, err := c.Retrieve(context.Background())
	if err != nil || cr.AccessKeyID != "ASIAPOD1" || f.fetches.Load() != 1 {
		t.Fatalf("%s %v after %d fetches", cr.AccessKeyID, err, f.fetches.Load())
	}
}

func TestShared(t *testing.T) {
	c, err := New(context.Background(), Options{Key: "AKIASHARED", Secret: "shared-secret-value", Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	cr, err := c.Retrieve(context.Background())
	if err != nil || cr.AccessKeyID != "AKIASHARED" || cr.SecretAccessKey != "shared-secret-value" || cr.CanExpire {
		t.Fatalf("%+v %v", cr, err)
	}
	if c.Temporary() || c.Describe() != "key type shared, key AKIASHARED" {
		t.Fatalf("Temporary %v, Describe %q", c.Temporary(), c.Describe())
	}
	// InvalidAccessKeyId with static keys is a denial, reported with a hint
	apiErr := &smithy.GenericAPIError{Code: "SignatureDoesNotMatch", Message: "The request signature we calculated does not match"}
	if cl, _ := Classify(apiErr, c.Temporary()); cl != ClassDenied {
		t.Fatalf("class %v", cl)
	}
	e := c.Wrap(apiErr, "PutObject s3://bucket/archive/x", false)
	msg := e.Error()
	if !strings.Contains(msg, "PutObject s3://bucket/archive/x failed: SignatureDoesNotMatch") ||
		!strings.Contains(msg, "key type shared, key AKIASHARED") || !strings.Contains(msg, "HINT: check the key secret") ||
		strings.Contains(msg, "shared-secret-value") || e.Code != "SignatureDoesNotMatch" {
		t.Fatalf("Wrap: %q", msg)
	}

	// a session token makes them temporary
	c, err = New(context.Background(), Options{KeyType: "shared", Key: "ASIA1", Secret: "s3cr3t-x", Token: "sess-token", Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Temporary() || !c.Invalidate("ASIA1") {
		t.Fatal("shared with token")
	}
	if cr, _ := c.Retrieve(context.Background()); cr.SessionToken != "sess-token" {
		t.Fatal("static credentials lost after Invalidate")
	}
	e = c.Wrap(&smithy.GenericAPIError{Code: "ExpiredToken", Message: "The provided token has expired."}, "GetObject", true)
	if !strings.HasPrefix(e.Error(), "credentials rejected right after refresh: GetObject failed: ExpiredToken: The provided token has expired.") ||
		strings.Contains(e.Error(), "sess-token") || strings.Contains(e.Error(), "s3cr3t-x") {
		t.Fatalf("Wrap: %q", e.Error())
	}
}

func TestProcess(t *testing.T) {
	clk := newClock()
	exp := clk.Now().Add(20 * time.Second).UTC().Format(time.RFC3339)
	json := `{"Version":1,"AccessKeyId":"ASIAPROC","SecretAccessKey":"proc-secret","SessionToken":"proc-session","Expiration":"` + exp + `"}`
	log := &logSink{}
	c, err := New(context.Background(), Options{KeyType: "process", Now: clk.Now, Logger: log.Logger(),
		ProcessCmd: []string{"/bin/sh", "-c", `printf '%s' "$1"`, "sh", json}, Environ: []string{"PATH=/usr/bin:/bin"}})
	if err != nil {
		t.Fatal(err)
	}
	cr, err := c.Retrieve(context.Background())
	if err != nil || cr.AccessKeyID != "ASIAPROC" || cr.SessionToken != "proc-session" || cr.Expires.Format(time.RFC3339) != exp {
		t.Fatalf("%+v %v", cr, err)
	}
	if c.Describe() != "key type process, process /bin/sh" {
		t.Fatalf("Describe %q", c.Describe())
	}
	noSecrets(t, "logs", log.String(), "proc-secret", "proc-session", json)

	// output that is not valid JSON is not quoted (it may hold a secret)
	c, err = New(context.Background(), Options{KeyType: "process", Now: clk.Now,
		ProcessCmd: []string{"/bin/sh", "-c", `echo '{"SecretAccessKey":"leaky-secret",'; echo oops >&2`}, Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Retrieve(context.Background())
	if err == nil || strings.Contains(err.Error(), "leaky-secret") || !strings.Contains(err.Error(), "not credential_process JSON; stderr: oops") {
		t.Fatalf("got %v", err)
	}

	c, _ = New(context.Background(), Options{KeyType: "process", ProcessCmd: []string{"/bin/false"}, Environ: []string{}})
	if _, err = c.Retrieve(context.Background()); err == nil || !strings.Contains(err.Error(), "exit status 1") {
		t.Fatalf("got %v", err)
	}
}
