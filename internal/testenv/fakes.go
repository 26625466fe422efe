package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// ShortCredentials trades a fresh OIDC token of the given lifetime at
// MinIO's STS: real temporary credentials that MinIO stops accepting when
// the token's expiry passes.
func (m *MinIO) ShortCredentials(lifetime time.Duration) (aws.Credentials, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := sts.New(sts.Options{Region: m.Region, BaseEndpoint: aws.String(m.STSEndpoint), HTTPClient: m.HTTPClient(),
		Credentials: aws.AnonymousCredentials{}})
	out, err := c.AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{
		RoleArn: aws.String(m.RoleARN), RoleSessionName: aws.String("pgbr-fake"),
		WebIdentityToken: aws.String(m.OIDC.Token(lifetime, DefaultSubject)),
	})
	if err != nil {
		return aws.Credentials{}, err
	}
	cr := out.Credentials
	return aws.Credentials{AccessKeyID: aws.ToString(cr.AccessKeyId), SecretAccessKey: aws.ToString(cr.SecretAccessKey),
		SessionToken: aws.ToString(cr.SessionToken), CanExpire: true, Expires: aws.ToTime(cr.Expiration)}, nil
}

// CredServer is a fake credential endpoint (EC2 instance metadata with
// IMDSv2, or the EKS pod identity agent) on 127.0.0.1 that hands out real,
// short-lived MinIO credentials. These services cannot run here; the fakes
// speak their protocols.
type CredServer struct {
	URL     string
	Fetches atomic.Int64 // credential documents served
	srv     *httptest.Server
}

func credServer(t testing.TB, h http.Handler) *CredServer {
	cs := &CredServer{}
	cs.srv = httptest.NewServer(h)
	cs.URL = cs.srv.URL
	t.Cleanup(cs.srv.Close)
	return cs
}

// StartIMDS fakes the EC2 instance metadata service (IMDSv2: a session
// token from PUT /latest/api/token is required on every GET) for the
// instance role "pgbr-role".
func StartIMDS(t testing.TB, m *MinIO, lifetime time.Duration) *CredServer {
	const role, session = "pgbr-role", "imds-session-token"
	var cs *CredServer
	mux := http.NewServeMux()
	mux.HandleFunc("/latest/api/token", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut || r.Header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds") == "" {
			http.Error(w, "missing ttl", http.StatusBadRequest)
			return
		}
		w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", r.Header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds"))
		fmt.Fprint(w, session)
	})
	mux.HandleFunc("/latest/meta-data/iam/security-credentials/", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Aws-Ec2-Metadata-Token") != session {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		name := strings.TrimPrefix(r.URL.Path, "/latest/meta-data/iam/security-credentials/")
		if name == "" {
			fmt.Fprint(w, role)
			return
		}
		if name != role {
			http.NotFound(w, r)
			return
		}
		c, err := m.ShortCredentials(lifetime)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		cs.Fetches.Add(1)
		json.NewEncoder(w).Encode(map[string]string{"Code": "Success", "Type": "AWS-HMAC",
			"LastUpdated": time.Now().UTC().Format(time.RFC3339), "AccessKeyId": c.AccessKeyID,
			"SecretAccessKey": c.SecretAccessKey, "Token": c.SessionToken, "Expiration": c.Expires.UTC().Format(time.RFC3339)})
	})
	cs = credServer(t, mux)
	return cs
}

// StartPodIdentity fakes the EKS pod identity agent: GET /v1/credentials
// with an Authorization header that must equal the current content of
// tokenFile (re-read per request, as the agent validates the projected
// token).
func StartPodIdentity(t testing.TB, m *MinIO, lifetime time.Duration, tokenFile string) *CredServer {
	var cs *CredServer
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/credentials", func(w http.ResponseWriter, r *http.Request) {
		want, _ := os.ReadFile(tokenFile)
		if r.Header.Get("Authorization") == "" || r.Header.Get("Authorization") != strings.TrimSpace(string(want)) {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"code":"InvalidToken","message":"Service account token cannot be empty or invalid"}`)
			return
		}
		c, err := m.ShortCredentials(lifetime)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		cs.Fetches.Add(1)
		json.NewEncoder(w).Encode(map[string]string{"AccessKeyId": c.AccessKeyID, "SecretAccessKey": c.SecretAccessKey,
			"Token": c.SessionToken, "AccountId": "000000000000", "Expiration": c.Expires.UTC().Format(time.RFC3339)})
	})
	cs = credServer(t, mux)
	return cs
}

// FaultProxy is a TLS reverse proxy on 127.0.0.1 in front of MinIO that
// injects S3 faults: every Every-th request gets, in turn, 503 SlowDown,
// 500 InternalError, 503 ServiceUnavailable or a dropped connection.
type FaultProxy struct {
	Port     int
	Every    int64
	requests atomic.Int64
	Injected atomic.Int64
	srv      *httptest.Server
}

// StartFaultProxy starts the proxy (certificate from MinIO's test CA).
func StartFaultProxy(t testing.TB, m *MinIO, every int64) *FaultProxy {
	t.Helper()
	p := &FaultProxy{Every: every}
	target := m.URL
	client := m.HTTPClient()
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := p.requests.Add(1)
		if p.Every > 0 && n%p.Every == 0 {
			p.Injected.Add(1)
			switch (n / p.Every) % 4 {
			case 0:
				s3Fault(w, 503, "SlowDown", "Please reduce your request rate.")
			case 1:
				s3Fault(w, 500, "InternalError", "We encountered an internal error. Please try again.")
			case 2:
				s3Fault(w, 503, "ServiceUnavailable", "Service unavailable.")
			default:
				if hj, ok := w.(http.Hijacker); ok {
					if c, _, err := hj.Hijack(); err == nil {
						c.Close()
						return
					}
				}
				s3Fault(w, 500, "InternalError", "dropped")
			}
			return
		}
		req, err := http.NewRequestWithContext(r.Context(), r.Method, target+r.URL.RequestURI(), r.Body)
		if err != nil {
			s3Fault(w, 500, "InternalError", err.Error())
			return
		}
		req.Header = r.Header.Clone()
		req.Host = r.Host
		req.ContentLength = r.ContentLength
		resp, err := client.Do(req)
		if err != nil {
			s3Fault(w, 502, "InternalError", err.Error())
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		buf := make([]byte, 64*1024)
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 {
				w.Write(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}))
	p.srv.TLS = m.CA.TLSConfig(t, "127.0.0.1", "localhost")
	p.srv.StartTLS()
	t.Cleanup(p.srv.Close)
	p.Port = p.srv.Listener.Addr().(*net.TCPAddr).Port
	return p
}

func s3Fault(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message></Error>`, code, msg)
}
