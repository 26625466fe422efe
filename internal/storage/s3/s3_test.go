//go:build integration

package s3

import (
	"log/slog"

	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	pgbrlog "github.com/pgbr-dev/pgbr/internal/log"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/pgbr-dev/pgbr/internal/credentials"
	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/storage"
	"github.com/pgbr-dev/pgbr/internal/storage/storagetest"
	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// logSink collects log lines (printed with -v).
type logSink struct {
	t     testing.TB
	mu    sync.Mutex
	lines []string
}

func newLogSink(t testing.TB) *logSink { return &logSink{t: t} }

func (l *logSink) logf(level, format string, args ...any) {
	line := level + ": " + fmt.Sprintf(format, args...)
	l.mu.Lock()
	l.lines = append(l.lines, line)
	l.mu.Unlock()
	if testing.Verbose() {
		l.t.Log(line)
	}
}

// logger returns a *slog.Logger whose lines ("debug: ...") go to the sink.
func (l *logSink) logger() *slog.Logger {
	return pgbrlog.NewSlog(func(lvl pgbrlog.Level, msg string) { l.logf(lvl.String(), "%s", msg) }, nil)
}

func (l *logSink) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, sub) {
			n++
		}
	}
	return n
}

func (l *logSink) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func randName(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// baseOptions points at MinIO over TLS (path style, CA file) under a fresh
// repository path.
func baseOptions(m *testenv.MinIO) Options {
	return Options{
		Bucket: m.Bucket, Endpoint: m.Endpoint, Port: m.Port, Region: m.Region, URIStyle: "path",
		Path: "/" + randName("repo-"), VerifyTLS: true, CAFile: m.CAFile, IOTimeout: 20 * time.Second,
	}
}

func sharedCreds(t testing.TB, m *testenv.MinIO, logger *slog.Logger) *credentials.Cache {
	t.Helper()
	c, err := credentials.New(context.Background(), credentials.Options{KeyType: "shared", Key: m.RootUser,
		Secret: m.RootPassword, Region: m.Region, Logger: logger, Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newStorage(t testing.TB, o Options) *Storage {
	t.Helper()
	s, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// noSecret fails when msg contains any of the secrets.
func noSecret(t testing.TB, msg string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			t.Fatalf("message contains a secret: %s", msg)
		}
	}
}

func TestConformance(t *testing.T) {
	t.Parallel()
	m := testenv.StartMinIO(t)
	logs := newLogSink(t)
	creds := sharedCreds(t, m, logs.logger())
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		o := baseOptions(m)
		o.Creds, o.Logger = creds, logs.logger()
		return newStorage(t, o)
	})

	ctx := context.Background()
	t.Run("KeysAndMessages", func(t *testing.T) {
		o := baseOptions(m)
		o.Creds = creds
		o.Path = "/var/lib/pgbackrest"
		s := newStorage(t, o)
		if err := storage.WriteAll(ctx, s, "/archive/demo/archive.info", []byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(m.Bucket),
			Key: aws.String("var/lib/pgbackrest/archive/demo/archive.info")}); err != nil {
			t.Fatalf("key layout: %v", err)
		}
		_, err := s.Open(ctx, "archive/demo/missing")
		if !errors.Is(err, storage.ErrNotFound) || errs.CodeOf(err) != errs.FileMissing ||
			!strings.Contains(err.Error(), "unable to open missing file '/var/lib/pgbackrest/archive/demo/missing' for read") {
			t.Fatalf("open missing: %v (code %d)", err, errs.CodeOf(err))
		}
		if s.Root() != "s3://"+m.Bucket+"/var/lib/pgbackrest" {
			t.Fatalf("root %s", s.Root())
		}
		in, err := s.Stat(ctx, "archive")
		if err != nil || in.Type != storage.TypePath {
			t.Fatalf("stat path = %+v, %v", in, err)
		}
		if err := storage.WriteAll(ctx, s, "empty", nil); err != nil {
			t.Fatal(err)
		}
		if got, err := storage.ReadAll(ctx, s, "empty"); err != nil || len(got) != 0 {
			t.Fatalf("empty file: %q, %v", got, err)
		}
		if in, err := s.Stat(ctx, "empty"); err != nil || in.Size != 0 || in.Type != storage.TypeFile {
			t.Fatalf("stat empty = %+v, %v", in, err)
		}
		if r, err := s.OpenRange(ctx, "empty", 0, 0); err != nil {
			t.Fatal(err)
		} else {
			r.Close()
		}
		if _, err := s.OpenRange(ctx, "missing", 0, 0); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("zero-length range of a missing file: %v", err)
		}
		if err := s.RemoveAll(ctx, ""); err != nil {
			t.Fatal(err)
		}
		if l, _ := s.List(ctx, ""); len(l) != 0 {
			t.Fatalf("left after RemoveAll(root): %v", l)
		}
	})

	t.Run("LocalhostBucketRoot", func(t *testing.T) {
		// pgBackRest 2.45 verifies DNS names only: the certificate names
		// localhost too. Path "/" puts the repository at the bucket root.
		bucket := randName("root-")
		if _, err := m.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
			t.Fatal(err)
		}
		o := baseOptions(m)
		o.Creds, o.Endpoint, o.Bucket, o.Path = creds, "localhost", bucket, "/"
		s := newStorage(t, o)
		if err := storage.WriteAll(ctx, s, "backup.info", []byte("b")); err != nil {
			t.Fatal(err)
		}
		if err := storage.WriteAll(ctx, s, "archive/x", []byte("a")); err != nil {
			t.Fatal(err)
		}
		l, err := s.List(ctx, "/")
		if err != nil || len(l) != 2 || l[0].Name != "archive" || l[0].Type != storage.TypePath || l[1].Name != "backup.info" || l[1].Size != 1 {
			t.Fatalf("list root = %+v, %v", l, err)
		}
		if _, err := m.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("archive/x")}); err != nil {
			t.Fatalf("key at bucket root: %v", err)
		}
	})

	t.Run("HostStyleStorageHost", func(t *testing.T) {
		// uri-style=host: requests go to <bucket>.localhost, connected
		// through repo1-storage-host 127.0.0.1 (no DNS needed).
		o := baseOptions(m)
		o.Creds, o.URIStyle, o.Endpoint, o.Host = creds, "host", "localhost", "127.0.0.1"
		s := newStorage(t, o)
		if err := storage.WriteAll(ctx, s, "hs/file", []byte("host style")); err != nil {
			t.Fatal(err)
		}
		if l, err := s.List(ctx, "hs"); err != nil || len(l) != 1 {
			t.Fatalf("list: %v %v", l, err)
		}
		if _, err := m.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(m.Bucket), Key: aws.String(s.key("hs/file"))}); err != nil {
			t.Fatalf("host-style write not in the bucket: %v", err)
		}
	})

	t.Run("ManyKeysListAndRemoveAll", func(t *testing.T) {
		// more than one page of ListObjectsV2 (1000) and of DeleteObjects
		o := baseOptions(m)
		o.Creds = creds
		s := newStorage(t, o)
		const n = 1205
		var wg sync.WaitGroup
		sem := make(chan struct{}, 32)
		var mu sync.Mutex
		var firstErr error
		for i := range n {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				p := fmt.Sprintf("many/%05d", i)
				if i%2 == 1 {
					p = fmt.Sprintf("many/sub/%05d", i)
				}
				if err := storage.WriteAll(ctx, s, p, []byte{byte(i)}); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if firstErr != nil {
			t.Fatal(firstErr)
		}
		l, err := s.List(ctx, "many")
		if err != nil || len(l) != n/2+2 {
			t.Fatalf("list = %d entries, %v", len(l), err)
		}
		if l[0].Name != "00000" || l[len(l)-1].Name != "sub" {
			t.Fatalf("list order: first %q last %q", l[0].Name, l[len(l)-1].Name)
		}
		if err := s.RemoveAll(ctx, "many"); err != nil {
			t.Fatal(err)
		}
		if l, err := s.List(ctx, "many/sub"); len(l) != 0 || err != nil {
			t.Fatalf("after RemoveAll: %d left, %v", len(l), err)
		}
	})

	t.Run("Encryption", func(t *testing.T) {
		// SSE-C: the same key reads, another key cannot; SSE-KMS with
		// MinIO's built-in key; tags on single and multipart uploads.
		key := base64.StdEncoding.EncodeToString(randBytes(32))
		o := baseOptions(m)
		o.Creds, o.SSECustomerKey, o.Tags = creds, key, map[string]string{"env": "test", "app": "pgbr"}
		s := newStorage(t, o)
		data := randBytes(6<<20 + 123) // multipart with SSE-C on every part
		if err := storage.WriteAll(ctx, s, "ssec/big", data); err != nil {
			t.Fatal(err)
		}
		if err := storage.WriteAll(ctx, s, "ssec/small", data[:100]); err != nil {
			t.Fatal(err)
		}
		got, err := storage.ReadAll(ctx, s, "ssec/big")
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("SSE-C read back: %d bytes, %v", len(got), err)
		}
		r, err := s.OpenRange(ctx, "ssec/big", 5<<20-10, 20)
		if err != nil {
			t.Fatal(err)
		}
		got, _ = io.ReadAll(r)
		r.Close()
		if !bytes.Equal(got, data[5<<20-10:5<<20+10]) {
			t.Fatal("SSE-C range read differs")
		}
		if in, err := s.Stat(ctx, "ssec/small"); err != nil || in.Size != 100 {
			t.Fatalf("SSE-C stat: %+v %v", in, err)
		}
		o2 := o
		o2.SSECustomerKey = base64.StdEncoding.EncodeToString(randBytes(32))
		if _, err := storage.ReadAll(ctx, newStorage(t, o2), "ssec/small"); err == nil {
			t.Fatal("read with another SSE-C key succeeded")
		} else {
			noSecret(t, err.Error(), key, o2.SSECustomerKey)
		}
		for _, k := range []string{"ssec/big", "ssec/small"} {
			tg, err := m.Client().GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String(m.Bucket), Key: aws.String(s.key(k))})
			if err != nil || len(tg.TagSet) != 2 {
				t.Fatalf("tags of %s: %+v, %v", k, tg, err)
			}
		}

		o3 := baseOptions(m)
		o3.Creds, o3.KMSKeyID = creds, m.KMSKeyID
		s3s := newStorage(t, o3)
		for _, n := range []int{1000, 5<<20 + 1} {
			p := fmt.Sprintf("kms/%d", n)
			if err := storage.WriteAll(ctx, s3s, p, data[:n]); err != nil {
				t.Fatal(err)
			}
			h, err := m.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(m.Bucket), Key: aws.String(s3s.key(p))})
			if err != nil || h.ServerSideEncryption != types.ServerSideEncryptionAwsKms || !strings.Contains(aws.ToString(h.SSEKMSKeyId), m.KMSKeyID) {
				t.Fatalf("SSE-KMS head of %s: %v %q, %v", p, h.ServerSideEncryption, aws.ToString(h.SSEKMSKeyId), err)
			}
			got, err := storage.ReadAll(ctx, s3s, p)
			if err != nil || !bytes.Equal(got, data[:n]) {
				t.Fatalf("SSE-KMS read back %s: %v", p, err)
			}
		}
	})
}

func TestMultipart(t *testing.T) {
	t.Parallel()
	m := testenv.StartMinIO(t)
	ctx := context.Background()
	logs := newLogSink(t)
	o := baseOptions(m)
	o.Creds, o.Logger, o.UploadChunkSize = sharedCreds(t, m, logs.logger()), logs.logger(), 5<<20
	s := newStorage(t, o)

	for _, size := range []int{5 << 20, 5<<20 + 1, 3*(5<<20) + 777} {
		data := randBytes(size)
		p := fmt.Sprintf("mp/%d", size)
		w, err := s.Create(ctx, p, storage.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// odd write sizes crossing chunk boundaries
		for off := 0; off < len(data); {
			n := min(len(data)-off, 1<<20+333)
			if _, err := w.Write(data[off : off+n]); err != nil {
				t.Fatal(err)
			}
			off += n
		}
		if ok, _ := s.Exists(ctx, p); ok {
			t.Fatalf("%s visible before commit", p)
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		got, err := storage.ReadAll(ctx, s, p)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: read %d bytes, %v", p, len(got), err)
		}
		h, err := m.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(m.Bucket), Key: aws.String(s.key(p))})
		if err != nil {
			t.Fatal(err)
		}
		parts := (size + (5<<20 - 1)) / (5 << 20)
		if etag := aws.ToString(h.ETag); (parts > 1) != strings.Contains(etag, fmt.Sprintf("-%d", parts)) {
			t.Fatalf("%s: size %d ETag %s, want %d parts", p, size, etag, parts)
		}
		if ids := m.ListMultipartUploads(t, s.key(p)); len(ids) != 0 {
			t.Fatalf("%s: uploads left after commit: %v", p, ids)
		}
	}

	// Abort after two parts were sent (one may still be in flight).
	w, err := s.Create(ctx, "mp/aborted", storage.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(randBytes(11 << 20)); err != nil {
		t.Fatal(err)
	}
	if ids := m.ListMultipartUploads(t, s.key("mp/aborted")); len(ids) != 1 {
		t.Fatalf("uploads in progress: %v", ids)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if ids := m.ListMultipartUploads(t, s.key("mp/aborted")); len(ids) != 0 {
		t.Fatalf("uploads left after abort: %v", ids)
	}
	if n := m.PendingUploads(t); n != 0 {
		t.Fatalf("%d multipart uploads left on MinIO's drive", n)
	}
	if ok, _ := s.Exists(ctx, "mp/aborted"); ok {
		t.Fatal("aborted file visible")
	}
	if err := w.Commit(); err == nil {
		t.Fatal("commit after abort succeeded")
	}

	// A canceled context aborts cleanly too.
	cctx, cancel := context.WithCancel(ctx)
	w, _ = s.Create(cctx, "mp/canceled", storage.CreateOptions{})
	w.Write(randBytes(6 << 20))
	cancel()
	if _, err := w.Write(randBytes(5 << 20)); err == nil {
		err = w.Commit()
		if err == nil {
			t.Fatal("commit with a canceled context succeeded")
		}
	}
	w.Abort()
	if n := m.PendingUploads(t); n != 0 {
		t.Fatalf("%d multipart uploads left after cancel", n)
	}
}

// TestWebIdentity runs a writer loop for ~50 s on 15-second web identity
// credentials whose token file is rotated every 6 s, and revokes every STS
// session half way: no request may fail.
func TestWebIdentity(t *testing.T) {
	t.Parallel()
	const (
		lifetime = 15 * time.Second
		rotate   = 6 * time.Second
		duration = 50 * time.Second
	)
	m := testenv.StartMinIO(t)
	ctx := context.Background()
	logs := newLogSink(t)
	tokFile := filepath.Join(t.TempDir(), "token")
	stop := m.OIDC.RotateEvery(tokFile, rotate, lifetime)
	defer stop()

	o := baseOptions(m)
	hc, err := HTTPClient(o)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := credentials.New(ctx, credentials.Options{KeyType: "web-id", RoleARN: m.RoleARN, TokenFile: tokFile,
		STSEndpoint: m.STSEndpoint, Region: m.Region, HTTPClient: hc, Logger: logs.logger(), Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	o.Creds, o.Logger, o.HTTPClient = creds, logs.logger(), hc
	s := newStorage(t, o)

	start := time.Now()
	deadline := start.Add(duration)
	var (
		mu       sync.Mutex
		failures []string
		ops      int
		revoked  time.Time
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		failures = append(failures, fmt.Sprintf("%s: ", time.Since(start).Round(time.Millisecond))+fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				p := fmt.Sprintf("loop/%d/%05d", g, i)
				data := randBytes(16 << 10)
				if err := storage.WriteAll(ctx, s, p, data); err != nil {
					fail("write %s: %v", p, err)
					continue
				}
				got, err := storage.ReadAll(ctx, s, p)
				if err != nil || !bytes.Equal(got, data) {
					fail("read %s: %v", p, err)
				}
				if i%10 == 0 {
					if ok, err := s.Exists(ctx, p); !ok || err != nil {
						fail("exists %s: %v %v", p, ok, err)
					}
					if _, err := s.List(ctx, fmt.Sprintf("loop/%d", g)); err != nil {
						fail("list: %v", err)
					}
				}
				mu.Lock()
				ops++
				mu.Unlock()
				time.Sleep(150 * time.Millisecond)
			}
		}()
	}
	// One multipart upload spanning every credential lifetime and the
	// revocation: a 5 MiB part every 8 s.
	var big []byte
	wg.Add(1)
	go func() {
		defer wg.Done()
		w, err := s.Create(ctx, "loop/big", storage.CreateOptions{})
		if err != nil {
			fail("create big: %v", err)
			return
		}
		for time.Until(deadline) > 8*time.Second {
			chunk := randBytes(5 << 20)
			if _, err := w.Write(chunk); err != nil {
				fail("write big: %v", err)
				w.Abort()
				return
			}
			big = append(big, chunk...)
			time.Sleep(8 * time.Second)
		}
		if err := w.Commit(); err != nil {
			fail("commit big: %v", err)
		}
	}()
	// Watch which credentials the cache hands out: one entry per session.
	type session struct {
		key       string
		seen, exp time.Time
	}
	var sessions []session
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for time.Now().Before(deadline) {
			if c, err := creds.Retrieve(ctx); err == nil && (len(sessions) == 0 || sessions[len(sessions)-1].key != c.AccessKeyID) {
				sessions = append(sessions, session{c.AccessKeyID, time.Now(), c.Expires})
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	// Revoke every session half way.
	time.Sleep(duration / 2)
	before := creds.Stats()
	m.RevokeSTS(t)
	revoked = time.Now()
	wg.Wait()
	<-watchDone
	elapsed := time.Since(start)

	st := creds.Stats()
	t.Logf("%d loop iterations in %s; refreshes %d, failures %d, invalidations %d (before revoke: %d refreshes, %d invalidations)",
		ops, elapsed.Round(time.Millisecond), st.Refreshes, st.Failures, st.Invalidations, before.Refreshes, before.Invalidations)
	if len(failures) > 0 {
		t.Fatalf("%d failures, first: %s\n%s", len(failures), failures[0], logs.all())
	}
	if got, err := storage.ReadAll(ctx, s, "loop/big"); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("multipart across lifetimes: %d bytes, want %d, %v", len(got), len(big), err)
	}
	if st.Invalidations < 1 || st.Invalidations <= before.Invalidations {
		t.Fatalf("revocation at %s did not go through invalidate+retry: %+v\n%s", revoked.Sub(start), st, logs.all())
	}
	if n := logs.count("credentials invalidated (true), retrying once"); n < 1 {
		t.Fatalf("no invalidate+retry log line")
	}
	// A session lasts until the token it was obtained with expires: between
	// lifetime-rotate (9 s) and lifetime (15 s). The cache refreshes once per
	// session, when 75% +-5% of it has passed (window min(5 min, life/4)
	// +-20% jitter): at most one refresh per 0.7 x 9 s, plus the first fetch
	// and the one forced by the revocation. pgBackRest 2.45 would call STS
	// before every request in the last 5 minutes of a session, i.e. ~2000
	// times here.
	minInterval := time.Duration(float64(lifetime-rotate) * 0.7)
	maxRefreshes := int(elapsed/minInterval) + 2
	lifetimes := float64(elapsed) / float64(lifetime)
	t.Logf("%.1f token lifetimes, %.2f refreshes per lifetime (bound %d)", lifetimes, float64(st.Refreshes)/lifetimes, maxRefreshes)
	if st.Refreshes < 2 || st.Refreshes > maxRefreshes {
		t.Fatalf("refreshes %d, want between 2 and %d (%s / %s + 2)", st.Refreshes, maxRefreshes, elapsed.Round(time.Second), minInterval)
	}
	if st.Failures != 0 {
		t.Fatalf("%d failed refreshes", st.Failures)
	}
	// Each session was replaced once, late in its life (not per request,
	// not after it expired), except the one the revocation killed.
	var used []string
	for i := 1; i < len(sessions); i++ {
		prev, next := sessions[i-1], sessions[i]
		life, use := prev.exp.Sub(prev.seen), next.seen.Sub(prev.seen)
		used = append(used, fmt.Sprintf("%.0f%% of %s", 100*float64(use)/float64(life), life.Round(100*time.Millisecond)))
		if next.seen.After(prev.exp) {
			t.Errorf("session %d used until %s, past its expiry %s", i-1, next.seen.Sub(start), prev.exp.Sub(start))
		}
		if next.seen.Sub(revoked).Abs() < 3*time.Second {
			used[len(used)-1] += " (revoked)"
			continue
		}
		if use < life*6/10 {
			t.Errorf("session %d replaced after %s of its %s", i-1, use, life)
		}
	}
	t.Logf("%d sessions seen, each used for: %s", len(sessions), strings.Join(used, ", "))
}

// TestWebIdentityFailFast: a wrong role, a garbage token, a missing token
// file and an expired token fail the first request quickly with a message
// that names the token file and the role, and never the token.
func TestWebIdentityFailFast(t *testing.T) {
	t.Parallel()
	m := testenv.StartMinIO(t)
	ctx := context.Background()
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	if err := m.OIDC.WriteTokenFile(good, time.Hour); err != nil {
		t.Fatal(err)
	}
	goodTok, _ := os.ReadFile(good)
	garbage := filepath.Join(dir, "garbage")
	os.WriteFile(garbage, []byte("garbage-token-not-a-jwt"), 0o600)
	expired := filepath.Join(dir, "expired")
	os.WriteFile(expired, []byte(m.OIDC.Token(-time.Minute, testenv.DefaultSubject)), 0o600)
	expTok, _ := os.ReadFile(expired)

	cases := []struct {
		name, role, file string
		want             []string
	}{
		{"WrongRole", "arn:minio:iam:::role/doesnotexist", good, []string{"arn:minio:iam:::role/doesnotexist", good}},
		{"GarbageToken", m.RoleARN, garbage, []string{garbage, m.RoleARN}},
		{"MissingTokenFile", m.RoleARN, filepath.Join(dir, "nope"), []string{filepath.Join(dir, "nope")}},
		{"ExpiredToken", m.RoleARN, expired, []string{expired, "expired"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := baseOptions(m)
			hc, _ := HTTPClient(o)
			creds, err := credentials.New(ctx, credentials.Options{KeyType: "web-id", RoleARN: c.role, TokenFile: c.file,
				STSEndpoint: m.STSEndpoint, Region: m.Region, HTTPClient: hc, Environ: []string{}})
			if err == nil {
				o.Creds, o.HTTPClient = creds, hc
				s := newStorage(t, o)
				start := time.Now()
				err = storage.WriteAll(ctx, s, "x/file", []byte("data"))
				if err == nil {
					t.Fatal("write succeeded")
				}
				if d := time.Since(start); d > 20*time.Second {
					t.Fatalf("took %s to fail", d)
				}
				if code := errs.CodeOf(err); code != errs.Service && code != errs.Access {
					t.Fatalf("code %d: %v", code, err)
				}
			}
			msg := err.Error()
			t.Logf("%s: %s", c.name, msg)
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Fatalf("message does not name %q: %s", w, msg)
				}
			}
			noSecret(t, msg, string(goodTok), string(expTok), "garbage-token-not-a-jwt", m.RootPassword)
			if _, err := m.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(m.Bucket),
				Key: aws.String(strings.TrimPrefix(o.Path, "/") + "/x/file")}); err == nil {
				t.Fatal("object written")
			}
		})
	}
}
