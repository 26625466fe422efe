package testenv

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"
)

// CA is a throw-away certificate authority for test servers.
type CA struct {
	Cert *x509.Certificate
	PEM  []byte         // the CA certificate
	File string         // the CA certificate in a file readable by everyone (pgBackRest runs as postgres)
	Pool *x509.CertPool // holding only this CA
	key  crypto.Signer
}

// NewCA makes a CA (ECDSA P-256) and writes its certificate to a file that
// is removed at the end of the test.
func NewCA(t testing.TB) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: "pgbr test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &CA{Cert: cert, key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), Pool: x509.NewCertPool()}
	ca.Pool.AddCert(cert)
	dir, err := os.MkdirTemp("", "pgbr-ca-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })
	ca.File = filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(ca.File, ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return ca
}

func serial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Issue returns a server certificate and key (PEM, PKCS#8) for hosts (IP
// addresses or DNS names).
func (ca *CA) Issue(t testing.TB, hosts ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: hosts[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// TLSConfig returns a server TLS configuration for hosts.
func (ca *CA) TLSConfig(t testing.TB, hosts ...string) *tls.Config {
	t.Helper()
	c, k := ca.Issue(t, hosts...)
	pair, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
}

// Client returns an HTTP client trusting only this CA.
func (ca *CA) Client() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// OIDCClientID is the client id (token audience) MinIO is configured with.
const OIDCClientID = "pgbr-test"

// DefaultSubject is the subject of tokens written by WriteTokenFile and
// RotateEvery.
const DefaultSubject = "system:serviceaccount:pgbr:backup"

// OIDC is a tiny OpenID Connect issuer over HTTPS on 127.0.0.1: discovery
// document, JWKS with one RSA key, and RS256 ID tokens minted on demand
// (what a Kubernetes API server is to IRSA).
type OIDC struct {
	Issuer    string // https://127.0.0.1:port
	ConfigURL string // Issuer + /.well-known/openid-configuration
	ClientID  string
	CA        *CA // signed the server certificate (trust it to reach Issuer)

	key  *rsa.PrivateKey
	kid  string
	srv  *httptest.Server
	mu   sync.Mutex
	subs map[string]bool
}

// StartOIDC starts the issuer with a fresh CA; it stops at the end of the test.
func StartOIDC(t testing.TB) *OIDC {
	t.Helper()
	return startOIDC(t, NewCA(t))
}

func startOIDC(t testing.TB, ca *CA) *OIDC {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	o := &OIDC{ClientID: OIDCClientID, CA: ca, key: key, subs: map[string]bool{}}
	sum := sha256.Sum256(key.PublicKey.N.Bytes())
	o.kid = base64.RawURLEncoding.EncodeToString(sum[:12])

	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{
			"issuer":                                o.Issuer,
			"jwks_uri":                              o.Issuer + "/keys",
			"authorization_endpoint":                o.Issuer + "/authorize",
			"token_endpoint":                        o.Issuer + "/token",
			"response_types_supported":              []string{"id_token"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"scopes_supported":                      []string{"openid"},
			"claims_supported":                      []string{"sub", "iss", "aud", "exp", "iat", "azp"},
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		pub := o.key.PublicKey
		writeJSON(w, map[string]any{"keys": []map[string]any{{
			"kty": "RSA", "alg": "RS256", "use": "sig", "kid": o.kid,
			"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		}}})
	})
	o.srv = httptest.NewUnstartedServer(mux)
	o.srv.TLS = ca.TLSConfig(t, "127.0.0.1", "localhost")
	o.srv.StartTLS()
	t.Cleanup(o.srv.Close)
	o.Issuer = o.srv.URL
	o.ConfigURL = o.Issuer + "/.well-known/openid-configuration"
	return o
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// Token mints an RS256 ID token for sub that expires after lifetime
// (negative: already expired).
func (o *OIDC) Token(lifetime time.Duration, sub string) string {
	o.mu.Lock()
	o.subs[sub] = true
	o.mu.Unlock()
	now := time.Now()
	hdr, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": o.kid})
	claims, _ := json.Marshal(map[string]any{
		"iss": o.Issuer, "sub": sub, "aud": o.ClientID, "azp": o.ClientID,
		"iat": now.Unix(), "exp": now.Add(lifetime).Unix(),
	})
	signing := base64.RawURLEncoding.EncodeToString(hdr) + "." + base64.RawURLEncoding.EncodeToString(claims)
	h := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, o.key, crypto.SHA256, h[:])
	if err != nil {
		panic(err) // cannot happen with a valid key
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// Subjects lists every subject a token was minted for.
func (o *OIDC) Subjects() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var l []string
	for s := range o.subs {
		l = append(l, s)
	}
	sort.Strings(l)
	return l
}

// WriteTokenFile writes a token for DefaultSubject to path, atomically
// (temporary file and rename) and without a trailing newline, like a
// projected service account token. The file is world-readable.
func (o *OIDC) WriteTokenFile(path string, lifetime time.Duration) error {
	tmp := fmt.Sprintf("%s.%d.tmp", path, time.Now().UnixNano())
	if err := os.WriteFile(tmp, []byte(o.Token(lifetime, DefaultSubject)), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// RotateEvery writes a fresh token (lifetime) to path now and then every
// `every` in the background, like the kubelet, until stop is called.
func (o *OIDC) RotateEvery(path string, every, lifetime time.Duration) (stop func()) {
	if err := o.WriteTokenFile(path, lifetime); err != nil {
		panic(fmt.Sprintf("write token file: %v", err))
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				o.WriteTokenFile(path, lifetime)
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			<-finished
		})
	}
}
