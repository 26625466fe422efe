package s3

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/credentials"
	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/testenv"
)

func staticCache(t *testing.T) *credentials.Cache {
	c, err := credentials.New(context.Background(), credentials.Options{KeyType: "shared", Key: "AKID", Secret: "SECRET", Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestKeys(t *testing.T) {
	for _, c := range []struct{ repo, p, key, dir string }{
		{"", "archive/demo/archive.info", "var/lib/pgbackrest/archive/demo/archive.info", "var/lib/pgbackrest/archive/demo/archive.info/"},
		{"", "/archive/demo/", "var/lib/pgbackrest/archive/demo", "var/lib/pgbackrest/archive/demo/"},
		{"", "", "var/lib/pgbackrest", "var/lib/pgbackrest/"},
		{"/", "backup/demo", "backup/demo", "backup/demo/"},
		{"/", "", "", ""},
		{"/repo/", "a/../b", "repo/b", "repo/b/"},
	} {
		s, err := New(context.Background(), Options{Bucket: "b", Endpoint: "s3.amazonaws.com", Region: "us-east-1", Path: c.repo, Creds: staticCache(t)})
		if err != nil {
			t.Fatal(err)
		}
		if k := s.key(c.p); k != c.key {
			t.Errorf("repo %q path %q: key %q, want %q", c.repo, c.p, k, c.key)
		}
		if d := s.dirPrefix(c.p); d != c.dir {
			t.Errorf("repo %q path %q: prefix %q, want %q", c.repo, c.p, d, c.dir)
		}
		if f := s.Full(c.p); f != "/"+c.key {
			t.Errorf("full %q", f)
		}
	}
}

func TestBaseEndpoint(t *testing.T) {
	for _, c := range []struct {
		ep   string
		port int
		want string
	}{
		{"s3.amazonaws.com", 0, "https://s3.amazonaws.com"},
		{"localhost", 9000, "https://localhost:9000"},
		{"127.0.0.1", 443, "https://127.0.0.1"},
		{"::1", 9000, "https://[::1]:9000"},
		{"http://minio.local", 9000, "http://minio.local:9000"},
		{"https://minio.local:9443", 9000, "https://minio.local:9443"},
	} {
		if got := (Options{Endpoint: c.ep, Port: c.port}).BaseEndpoint(); got != c.want {
			t.Errorf("%s:%d -> %s, want %s", c.ep, c.port, got, c.want)
		}
	}
}

func TestNewValidates(t *testing.T) {
	ok := Options{Bucket: "b", Endpoint: "e", Region: "r", Creds: staticCache(t)}
	for _, c := range []struct {
		mod  func(*Options)
		code errs.Code
		want string
	}{
		{func(o *Options) { o.Bucket = "" }, errs.OptionRequired, "repo1-s3-bucket"},
		{func(o *Options) { o.Endpoint = "" }, errs.OptionRequired, "repo1-s3-endpoint"},
		{func(o *Options) { o.Region = "" }, errs.OptionRequired, "repo1-s3-region"},
		{func(o *Options) { o.URIStyle = "virtual" }, errs.OptionInvalidValue, "repo1-s3-uri-style"},
		{func(o *Options) { o.SSECustomerKey = "not base64 key!" }, errs.OptionInvalidValue, "repo1-s3-sse-customer-key"},
		{func(o *Options) { o.SSECustomerKey = base64.StdEncoding.EncodeToString([]byte("short")) }, errs.OptionInvalidValue, "256-bit"},
		{func(o *Options) { o.VerifyTLS, o.CAFile = true, "/nonexistent/ca.pem" }, errs.FileOpen, "/nonexistent/ca.pem"},
	} {
		o := ok
		c.mod(&o)
		_, err := New(context.Background(), o)
		if errs.CodeOf(err) != c.code || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v (code %d), want code %d naming %q", err, errs.CodeOf(err), c.code, c.want)
		}
		if err != nil && o.SSECustomerKey != "" && strings.Contains(err.Error(), o.SSECustomerKey) {
			t.Errorf("message shows the SSE-C key: %v", err)
		}
	}
	s, err := New(context.Background(), Options{Bucket: "b", Endpoint: "e", Region: "r", Creds: staticCache(t),
		Tags: map[string]string{"z": "1", "a b": "x&y"}})
	if err != nil {
		t.Fatal(err)
	}
	if s.tagging != "a+b=x%26y&z=1" {
		t.Errorf("tagging %q", s.tagging)
	}
}

func TestHTTPClientCA(t *testing.T) {
	ca := testenv.NewCA(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "junk.txt"), []byte("not a cert"), 0o600)
	os.WriteFile(filepath.Join(dir, "ca.pem"), ca.PEM, 0o600)
	srv := testenv.StartOIDC(t) // a TLS server with another CA
	for _, c := range []struct {
		name string
		o    Options
		ok   bool
	}{
		{"CAFile", Options{VerifyTLS: true, CAFile: srv.CA.File}, true},
		{"CAPath", Options{VerifyTLS: true, CAPath: filepath.Dir(srv.CA.File)}, true},
		{"WrongCA", Options{VerifyTLS: true, CAPath: dir}, false},
		{"NoVerify", Options{VerifyTLS: false}, true},
	} {
		hc, err := HTTPClient(c.o)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Get(srv.ConfigURL)
		if err == nil {
			resp.Body.Close()
		}
		if (err == nil) != c.ok {
			t.Errorf("%s: err %v", c.name, err)
		}
	}
	if _, err := HTTPClient(Options{VerifyTLS: true, CAFile: filepath.Join(dir, "junk.txt")}); errs.CodeOf(err) != errs.Crypto {
		t.Errorf("junk CA file: %v", err)
	}
}

func TestChunkGrowth(t *testing.T) {
	base := 5 << 20
	total := 0
	for n := 1; n <= maxParts; n++ {
		c := chunkFor(base, n)
		if n <= 1000 && c != base || c < base || c > 5<<30 {
			t.Fatalf("part %d: %d", n, c)
		}
		total += c
	}
	if total < 250<<30 {
		t.Fatalf("10000 parts hold only %d bytes", total)
	}
}
