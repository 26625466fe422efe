package credentials

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func newAuto(t *testing.T, f *imdsFake, clk *fakeClock, role string, log *logSink) *Cache {
	t.Helper()
	o := Options{KeyType: "auto", Role: role, IMDSEndpoint: f.srv.URL, Environ: []string{}, Now: clk.Now}
	if log != nil {
		o.Logger = log.Logger()
	}
	c, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Credentials that live 20 s are refreshed once per window (at 14–16 s), by
// one fetch shared by 50 concurrent callers, never per request.
func TestIMDSRefreshAheadOncePerWindow(t *testing.T) {
	clk := newClock()
	f := newIMDSFake(t, clk.Now, 20*time.Second, "role-a")
	f.delay = 20 * time.Millisecond
	log := &logSink{}
	c := newAuto(t, f, clk, "", log)
	if !c.Temporary() {
		t.Fatal("auto credentials must be temporary")
	}

	first := concurrently(t, c, 50)
	if n := f.fetches.Load(); n != 1 {
		t.Fatalf("first Retrieve by 50 callers: %d fetches, want 1", n)
	}
	for _, cr := range first {
		if cr.AccessKeyID != "ASIAIMDS1" || !cr.CanExpire || !cr.Expires.Equal(clk.Now().Add(20*time.Second)) {
			t.Fatalf("got %+v", cr)
		}
	}
	start := clk.Now()

	// Before the window (window = 5 s ± 20%: refresh between 14 s and 16 s).
	for _, at := range []time.Duration{time.Second, 10 * time.Second, 13900 * time.Millisecond} {
		clk.Add(start.Add(at).Sub(clk.Now()))
		for _, cr := range concurrently(t, c, 50) {
			if cr.AccessKeyID != "ASIAIMDS1" {
				t.Fatalf("at %s: got %s", at, cr.AccessKeyID)
			}
		}
		if n := f.fetches.Load(); n != 1 {
			t.Fatalf("at %s: %d fetches, want 1", at, n)
		}
	}

	// In the window but well before expiry: callers keep the valid
	// credentials while exactly one background refresh runs.
	clk.Add(start.Add(16100 * time.Millisecond).Sub(clk.Now()))
	for _, cr := range concurrently(t, c, 50) {
		if cr.AccessKeyID != "ASIAIMDS1" && cr.AccessKeyID != "ASIAIMDS2" {
			t.Fatalf("got %s", cr.AccessKeyID)
		}
	}
	st := waitStats(t, c, func(s Stats) bool { return s.Refreshes == 2 })
	if n := f.fetches.Load(); n != 2 {
		t.Fatalf("window: %d fetches, want 2", n)
	}
	if want := clk.Now().Add(20 * time.Second); !st.LastExpiry.Equal(want) {
		t.Fatalf("LastExpiry %s, want %s", st.LastExpiry, want)
	}
	for _, cr := range concurrently(t, c, 50) {
		if cr.AccessKeyID != "ASIAIMDS2" {
			t.Fatalf("after refresh got %s", cr.AccessKeyID)
		}
	}
	if n := f.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}

	// Past expiry without a refresh: all 50 callers wait for one fetch.
	clk.Add(time.Minute)
	for _, cr := range concurrently(t, c, 50) {
		if cr.AccessKeyID != "ASIAIMDS3" {
			t.Fatalf("after expiry got %s", cr.AccessKeyID)
		}
	}
	if n := f.fetches.Load(); n != 3 {
		t.Fatalf("after expiry: %d fetches, want 3", n)
	}
	if f.badToken.Load() != 0 {
		t.Fatalf("%d requests without a valid IMDSv2 token", f.badToken.Load())
	}
	logs := log.String()
	if strings.Count(logs, "info: credentials refreshed from instance metadata "+f.srv.URL+", role discovered, expire at ") != 3 {
		t.Fatalf("refresh log lines:\n%s", logs)
	}
	if strings.Contains(logs, "imds-secret") || strings.Contains(logs, "imds-session") {
		t.Fatalf("secret in logs:\n%s", logs)
	}
}

func TestIMDSRoleDiscoveryAndFixedRole(t *testing.T) {
	clk := newClock()
	f := newIMDSFake(t, clk.Now, time.Hour, "role-a", "role-b")
	c := newAuto(t, f, clk, "", nil)
	if _, err := c.Retrieve(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f.lists.Load() != 1 || len(f.fetched) != 1 || f.fetched[0] != "role-a" {
		t.Fatalf("discovery: lists %d, fetched %v", f.lists.Load(), f.fetched)
	}
	if d := c.Describe(); d != "key type auto, instance metadata "+f.srv.URL+", role discovered" {
		t.Fatalf("Describe %q", d)
	}

	f2 := newIMDSFake(t, clk.Now, time.Hour, "role-a", "role-b")
	c2 := newAuto(t, f2, clk, "role-b", nil)
	cr, err := c2.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if f2.lists.Load() != 0 || len(f2.fetched) != 1 || f2.fetched[0] != "role-b" || cr.AccessKeyID != "ASIAIMDS1" {
		t.Fatalf("fixed role: lists %d, fetched %v, %s", f2.lists.Load(), f2.fetched, cr.AccessKeyID)
	}
	if d := c2.Describe(); d != "key type auto, instance metadata "+f2.srv.URL+", role role-b" {
		t.Fatalf("Describe %q", d)
	}
}

func TestIMDSErrors(t *testing.T) {
	clk := newClock()
	f := newIMDSFake(t, clk.Now, time.Hour, "role-a")

	_, err := newAuto(t, f, clk, "missing-role", nil).Retrieve(context.Background())
	var ce *Error
	if !errors.As(err, &ce) || ce.KeyType != "auto" {
		t.Fatalf("want *Error, got %T %v", err, err)
	}
	if !strings.Contains(err.Error(), "role 'missing-role' not found") || !strings.Contains(err.Error(), "repo1-s3-role") {
		t.Fatalf("message: %v", err)
	}
	if cl, _ := Classify(err, true); cl != ClassDenied {
		t.Fatalf("class %v", cl)
	}

	none := newIMDSFake(t, clk.Now, time.Hour) // no role attached
	_, err = newAuto(t, none, clk, "", nil).Retrieve(context.Background())
	if err == nil || !strings.Contains(err.Error(), "role to retrieve temporary credentials not found") ||
		!strings.Contains(err.Error(), "HINT: is a valid IAM role associated with this instance?") {
		t.Fatalf("message: %v", err)
	}
}

// Short-lived credentials against the real clock: refreshed about once per
// window, never per request, and never handed out expired.
func TestShortCredentialsRealClock(t *testing.T) {
	f := newIMDSFake(t, time.Now, 2*time.Second, "role-a")
	c, err := New(context.Background(), Options{KeyType: "auto", IMDSEndpoint: f.srv.URL, Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	requests := 0
	for end := time.Now().Add(3200 * time.Millisecond); time.Now().Before(end); requests++ {
		cr, err := c.Retrieve(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !cr.Expires.After(time.Now()) {
			t.Fatalf("expired credentials handed out: %s", cr.Expires)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// fetches at ~0 s, ~1.5 s, ~3 s (window 0.5 s ± 20%)
	if n := f.fetches.Load(); n < 2 || n > 4 {
		t.Fatalf("%d fetches for %d requests over 3.2 s of 2 s credentials", n, requests)
	}
	t.Logf("%d fetches for %d requests", f.fetches.Load(), requests)
}
