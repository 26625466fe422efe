//go:build integration

package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/storage"
	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// fault is what the proxy does to one request.
type fault int

const (
	pass       fault = iota
	err500           // 500 InternalError, request not forwarded
	slowDown         // 503 SlowDown, request not forwarded
	dropIn           // connection closed before forwarding
	dropOut          // forwarded, connection closed instead of the answer
	truncate         // forwarded, answer body cut half way
	denied           // 403 AccessDenied
	expired          // 400 ExpiredToken
	badGateway       // 502 with an HTML body
)

// faultProxy is a TLS reverse proxy in front of MinIO that applies a fault
// chosen per request.
type faultProxy struct {
	srv    *httptest.Server
	target *url.URL
	client *http.Client
	choose func(n int, r *http.Request) fault

	mu     sync.Mutex
	n      int
	counts map[fault]int
}

func startFaultProxy(t *testing.T, m *testenv.MinIO, choose func(n int, r *http.Request) fault) *faultProxy {
	t.Helper()
	target, _ := url.Parse(m.URL)
	p := &faultProxy{target: target, client: m.HTTPClient(), choose: choose, counts: map[fault]int{}}
	p.client.Timeout = 0
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(p.serve))
	p.srv.TLS = m.CA.TLSConfig(t, "127.0.0.1", "localhost")
	p.srv.Config.ErrorLog = nil
	p.srv.StartTLS()
	t.Cleanup(p.srv.Close)
	return p
}

func (p *faultProxy) port() int {
	u, _ := url.Parse(p.srv.URL)
	n, _ := strconv.Atoi(u.Port())
	return n
}

func (p *faultProxy) count(f fault) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[f]
}

func s3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message><RequestId>fault</RequestId></Error>`, code, msg)
}

func hangUp(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

func (p *faultProxy) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		hangUp(w)
		return
	}
	p.mu.Lock()
	p.n++
	f := p.choose(p.n, r)
	p.counts[f]++
	p.mu.Unlock()
	switch f {
	case err500:
		s3Error(w, 500, "InternalError", "We encountered an internal error. Please try again.")
		return
	case slowDown:
		s3Error(w, 503, "SlowDown", "Please reduce your request rate.")
		return
	case denied:
		s3Error(w, 403, "AccessDenied", "Access Denied.")
		return
	case expired:
		s3Error(w, 400, "ExpiredToken", "The provided token has expired.")
		return
	case badGateway:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(502)
		io.WriteString(w, "<html><body>502 Bad Gateway</body></html>")
		return
	case dropIn:
		hangUp(w)
		return
	}
	u := *p.target
	u.Path, u.RawPath, u.RawQuery = r.URL.Path, r.URL.RawPath, r.URL.RawQuery
	out, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		hangUp(w)
		return
	}
	out.Header = r.Header.Clone()
	out.Host = r.Host // signed
	out.ContentLength = int64(len(body))
	resp, err := p.client.Do(out)
	if err != nil {
		hangUp(w)
		return
	}
	defer resp.Body.Close()
	if f == dropOut {
		io.Copy(io.Discard, resp.Body)
		hangUp(w)
		return
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	if f == truncate && resp.ContentLength > 1 {
		io.CopyN(w, resp.Body, resp.ContentLength/2)
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
	io.Copy(w, resp.Body)
}

func isUploadsInit(r *http.Request) bool {
	_, ok := r.URL.Query()["uploads"]
	return r.Method == http.MethodPost && ok
}

// TestFaults puts a proxy injecting 500, 503 SlowDown, 502, dropped
// connections (before and after MinIO handled the request) and truncated
// answers in front of MinIO: every operation still succeeds, content is
// exact, and no multipart upload is left behind.
func TestFaults(t *testing.T) {
	t.Parallel()
	m := testenv.StartMinIO(t)
	ctx := context.Background()
	logs := newLogSink(t)
	creds := sharedCreds(t, m, logs.logger())

	// NoSync files go up in the background: a failure is not lost but
	// returned by SyncAll, and the others are there after it.
	t.Run("BackgroundPutFailure", func(t *testing.T) {
		p := startFaultProxy(t, m, func(n int, r *http.Request) fault {
			if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/bg/bad") {
				return denied
			}
			return pass
		})
		o := baseOptions(m)
		o.Creds, o.Logger, o.Port = creds, logs.logger(), p.port()
		s := newStorage(t, o)
		names := []string{"bg/ok/1", "bg/bad/2", "bg/ok/3", "bg/ok/4"}
		for _, name := range names {
			w, err := s.Create(ctx, name, storage.CreateOptions{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			w.Write([]byte(name))
			if err := w.Commit(); err != nil {
				t.Fatalf("commit %s: %v (expected to be sent in the background)", name, err)
			}
		}
		err := storage.SyncAll(ctx, s)
		if err == nil || !strings.Contains(err.Error(), "bg/bad/2") {
			t.Fatalf("SyncAll = %v, want the failed upload of bg/bad/2", err)
		}
		for _, name := range []string{"bg/ok/1", "bg/ok/3", "bg/ok/4"} {
			if got, err := storage.ReadAll(ctx, s, name); err != nil || string(got) != name {
				t.Fatalf("read %s: %q, %v", name, got, err)
			}
		}
		if err := storage.SyncAll(ctx, s); err != nil {
			t.Fatalf("second SyncAll reports the old failure again: %v", err)
		}
		s.RemoveAll(ctx, "bg")
	})

	t.Run("Transient", func(t *testing.T) {
		p := startFaultProxy(t, m, func(n int, r *http.Request) fault {
			switch {
			case n%7 == 3:
				return err500
			case n%11 == 5:
				return slowDown
			case n%13 == 7:
				return dropIn
			case n%17 == 2:
				return badGateway
			case n%19 == 4 && !isUploadsInit(r):
				// An initiate whose answer is lost leaves an upload nobody
				// knows about (S3 too): lifecycle rules clean those.
				return dropOut
			case r.Method == http.MethodGet && n%3 == 1:
				return truncate
			}
			return pass
		})
		o := baseOptions(m)
		o.Creds, o.Logger, o.Port, o.IOTimeout = creds, logs.logger(), p.port(), 10*time.Second
		s := newStorage(t, o)

		files := map[string][]byte{}
		for i := range 24 {
			files[fmt.Sprintf("f/small/%02d", i)] = randBytes(1000 + i*977)
		}
		files["f/big/1"] = randBytes(11<<20 + 5)
		files["f/big/2"] = randBytes(16 << 20)
		for name, data := range files {
			if err := storage.WriteAll(ctx, s, name, data); err != nil {
				t.Fatalf("write %s: %v", name, err)
			}
		}
		for name, data := range files {
			got, err := storage.ReadAll(ctx, s, name)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read %s: %d bytes, %v", name, len(got), err)
			}
			r, err := s.OpenRange(ctx, name, 100, 500)
			if err != nil {
				t.Fatalf("range %s: %v", name, err)
			}
			got, err = io.ReadAll(r)
			r.Close()
			if err != nil || !bytes.Equal(got, data[100:600]) {
				t.Fatalf("range %s: %v", name, err)
			}
		}
		l, err := s.List(ctx, "f/small")
		if err != nil || len(l) != 24 {
			t.Fatalf("list: %d, %v", len(l), err)
		}
		for name := range files {
			if ok, err := s.Exists(ctx, name); !ok || err != nil {
				t.Fatalf("exists %s: %v %v", name, ok, err)
			}
		}
		if err := s.RemoveAll(ctx, "f"); err != nil {
			t.Fatal(err)
		}
		if l, _ := s.List(ctx, "f/small"); len(l) != 0 {
			t.Fatalf("%d left after RemoveAll", len(l))
		}
		if n := m.PendingUploads(t); n != 0 {
			t.Fatalf("%d multipart uploads left", n)
		}
		for f, name := range map[fault]string{err500: "500", slowDown: "SlowDown", dropIn: "drop before", dropOut: "drop after",
			truncate: "truncated answer", badGateway: "502"} {
			if p.count(f) == 0 {
				t.Errorf("no %s injected", name)
			}
		}
		t.Logf("injected: 500 x%d, SlowDown x%d, 502 x%d, dropped before x%d, dropped after x%d, truncated x%d; %d SDK retries, %d resumed reads",
			p.count(err500), p.count(slowDown), p.count(badGateway), p.count(dropIn), p.count(dropOut), p.count(truncate),
			logs.count("retrying in"), logs.count("resuming with a range request"))
	})

	t.Run("PartsAlwaysFail", func(t *testing.T) {
		// Every UploadPart fails: the write fails within the io-timeout
		// budget with a FileWriteError, and the upload is aborted.
		p := startFaultProxy(t, m, func(n int, r *http.Request) fault {
			if r.URL.Query().Get("partNumber") != "" {
				return err500
			}
			return pass
		})
		o := baseOptions(m)
		o.Creds, o.Logger, o.Port, o.IOTimeout = creds, logs.logger(), p.port(), 2*time.Second
		s := newStorage(t, o)
		start := time.Now()
		err := storage.WriteAll(ctx, s, "fail/big", randBytes(11<<20))
		if err == nil {
			t.Fatal("write succeeded")
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Fatalf("took %s", d)
		}
		if errs.CodeOf(err) != errs.FileWrite || !strings.Contains(err.Error(), "InternalError") || !strings.Contains(err.Error(), "gave up after") {
			t.Fatalf("error: %v (code %d)", err, errs.CodeOf(err))
		}
		t.Logf("%s", err)
		if ok, _ := s.Exists(ctx, "fail/big"); ok {
			t.Fatal("failed file visible")
		}
		if ids := m.ListMultipartUploads(t, s.key("fail/big")); len(ids) != 0 {
			t.Fatalf("uploads left: %v", ids)
		}
	})

	t.Run("LostCompleteAnswer", func(t *testing.T) {
		// MinIO completed the upload but its answer was lost: the retried
		// Complete gets NoSuchUpload, and the object under the key is
		// recognised (ETag = MD5 of the part MD5s) as this upload's.
		var once sync.Once
		p := startFaultProxy(t, m, func(n int, r *http.Request) fault {
			f := pass
			if r.Method == http.MethodPost && r.URL.Query().Get("uploadId") != "" {
				once.Do(func() { f = dropOut })
			}
			return f
		})
		o := baseOptions(m)
		o.Creds, o.Logger, o.Port = creds, logs.logger(), p.port()
		s := newStorage(t, o)
		data := randBytes(7 << 20)
		if err := storage.WriteAll(ctx, s, "lost/big", data); err != nil {
			t.Fatal(err)
		}
		if p.count(dropOut) != 1 {
			t.Fatal("no Complete answer dropped")
		}
		if got, err := storage.ReadAll(ctx, s, "lost/big"); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read back: %v", err)
		}
	})

	t.Run("DeniedFailsFast", func(t *testing.T) {
		p := startFaultProxy(t, m, func(n int, r *http.Request) fault { return denied })
		o := baseOptions(m)
		o.Creds, o.Logger, o.Port = creds, logs.logger(), p.port()
		s := newStorage(t, o)
		err := storage.WriteAll(ctx, s, "denied/file", []byte("x"))
		if err == nil {
			t.Fatal("write succeeded")
		}
		if errs.CodeOf(err) != errs.Access || !errors.Is(err, storage.ErrPermission) {
			t.Fatalf("error: %v (code %d)", err, errs.CodeOf(err))
		}
		msg := err.Error()
		t.Logf("%s", msg)
		for _, w := range []string{"PutObject", m.Bucket, "AccessDenied", "key type shared", "127.0.0.1:" + strconv.Itoa(p.port())} {
			if !strings.Contains(msg, w) {
				t.Fatalf("message does not name %q: %s", w, msg)
			}
		}
		noSecret(t, msg, m.RootPassword)
		if p.count(denied) != 1 {
			t.Fatalf("AccessDenied retried: %d requests", p.count(denied))
		}
		// HEAD answers have no body: the real code comes from a ranged GET.
		_, err = s.Stat(ctx, "denied/file")
		if errs.CodeOf(err) != errs.Access || !strings.Contains(err.Error(), "AccessDenied") {
			t.Fatalf("stat: %v", err)
		}
	})

	t.Run("ExpiredRetriedOnce", func(t *testing.T) {
		var once sync.Once
		p := startFaultProxy(t, m, func(n int, r *http.Request) fault {
			f := pass
			once.Do(func() { f = expired })
			return f
		})
		logs := newLogSink(t)
		creds := sharedCreds(t, m, logs.logger())
		o := baseOptions(m)
		o.Creds, o.Logger, o.Port = creds, logs.logger(), p.port()
		s := newStorage(t, o)
		if err := storage.WriteAll(ctx, s, "exp/file", []byte("x")); err != nil {
			t.Fatal(err)
		}
		if st := creds.Stats(); st.Invalidations != 1 || logs.count("ExpiredToken (HTTP 400) -> credentials invalidated (true), retrying once") != 1 {
			t.Fatalf("stats %+v\n%s", st, logs.all())
		}

		p2 := startFaultProxy(t, m, func(n int, r *http.Request) fault { return expired })
		o.Port = p2.port()
		s = newStorage(t, o)
		err := storage.WriteAll(ctx, s, "exp/file2", []byte("x"))
		if err == nil || !strings.Contains(err.Error(), "credentials rejected right after refresh: session revoked, role removed, or endpoint/region mismatch") ||
			!strings.Contains(err.Error(), "ExpiredToken") || !strings.Contains(err.Error(), "key type shared") {
			t.Fatalf("error: %v", err)
		}
		if p2.count(expired) != 2 {
			t.Fatalf("%d requests, want 2 (one retry)", p2.count(expired))
		}
		noSecret(t, err.Error(), m.RootPassword)
	})
}
