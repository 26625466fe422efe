package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

const minioBin = "/var/cache/pgbr-tools/bin/minio"

type minio struct {
	port         int
	caFile       string
	user, secret string
	bucket       string
	cmd          *exec.Cmd
	done         chan struct{}
}

// selfSigned makes a self-signed certificate (its own CA) for 127.0.0.1 and
// localhost.
func selfSigned() (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	sn, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 100))
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: "localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(7 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// startMinIO starts MinIO over TLS on loopback with a fresh bucket.
func startMinIO() (*minio, error) {
	bin := os.Getenv("PGBR_MINIO")
	if bin == "" {
		bin = minioBin
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("minio: %v (scripts/test.sh installs it; or set PGBR_MINIO)", err)
	}
	base := filepath.Join(*dir, "minio")
	certs := filepath.Join(base, "certs")
	if err := os.MkdirAll(certs, 0o755); err != nil {
		return nil, err
	}
	crt, key, err := selfSigned()
	if err != nil {
		return nil, err
	}
	m := &minio{port: freePort(), caFile: filepath.Join(base, "ca.crt"), user: "bench" + randHex(4), secret: randHex(16), bucket: "pgbr-bench"}
	for p, b := range map[string][]byte{filepath.Join(certs, "public.crt"): crt, filepath.Join(certs, "private.key"): key, m.caFile: crt} {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return nil, err
		}
	}
	os.Chmod(filepath.Join(certs, "private.key"), 0o600)
	logf, err := os.Create(filepath.Join(base, "minio.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	m.cmd = exec.Command(bin, "server", "--address", fmt.Sprintf("127.0.0.1:%d", m.port),
		"--console-address", fmt.Sprintf("127.0.0.1:%d", freePort()), "--certs-dir", certs, filepath.Join(base, "data"))
	m.cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+m.user, "MINIO_ROOT_PASSWORD="+m.secret,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=on", "HOME="+base)
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
		return nil, err
	}
	m.done = make(chan struct{})
	go func() { m.cmd.Wait(); close(m.done) }()

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(crt)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	url := fmt.Sprintf("https://127.0.0.1:%d", m.port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-m.done:
			b, _ := os.ReadFile(filepath.Join(base, "minio.log"))
			return nil, fmt.Errorf("minio exited:\n%s", b)
		default:
		}
		resp, err := hc.Get(url + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			m.stop()
			b, _ := os.ReadFile(filepath.Join(base, "minio.log"))
			return nil, fmt.Errorf("minio not ready after 60s (%v):\n%s", err, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cl := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), UsePathStyle: true, HTTPClient: hc,
		Credentials: credentials.NewStaticCredentialsProvider(m.user, m.secret, "")})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cl.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(m.bucket)}); err != nil {
		m.stop()
		return nil, fmt.Errorf("create bucket: %v", err)
	}
	return m, nil
}

func (m *minio) stop() {
	if m.cmd.Process == nil {
		return
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(5 * time.Second):
		m.cmd.Process.Kill()
		<-m.done
	}
}

// s3Conf writes the configuration of one tool's S3 repository (stanza s3,
// same cluster, same settings; each tool has its own path in the bucket).
func s3Conf(m *minio, t tool, pm int) (string, error) {
	p := filepath.Join(*dir, "s3-"+t.name+".conf")
	c := fmt.Sprintf(`[global]
repo1-type=s3
repo1-path=/%[1]s
repo1-s3-bucket=%[2]s
repo1-s3-endpoint=localhost
repo1-storage-port=%[3]d
repo1-s3-region=us-east-1
repo1-s3-uri-style=path
repo1-storage-ca-file=%[4]s
repo1-s3-key=%[5]s
repo1-s3-key-secret=%[6]s
repo1-retention-full=99
log-path=%[7]s/log
lock-path=%[7]s/lock
start-fast=y
compress-type=lz4
process-max=%[8]d
log-level-console=warn
log-level-file=off
expire-auto=n

[s3]
pg1-path=%[9]s
pg1-port=%[10]d
pg1-socket-path=%[11]s
`, t.name, m.bucket, m.port, m.caFile, m.user, m.secret, *dir, pm, dataDir, pgPort, sockDir)
	return p, os.WriteFile(p, []byte(c), 0o640)
}

// s3Case: full backup (no archive check: the cluster archives into the main
// stanza only; the same for both tools) and restore at lz4, process-max 1
// and 2, each tool into its own path of one MinIO bucket over TLS.
func s3Case(rep *report) error {
	fmt.Println("s3: starting MinIO ...")
	m, err := startMinIO()
	if err != nil {
		return err
	}
	defer m.stop()
	confs := map[string]string{}
	for _, t := range []tool{pgbrTool, brTool} {
		c, err := s3Conf(m, t, 1)
		if err != nil {
			return err
		}
		os.Chown(c, 0, int(pgGID))
		confs[t.name] = c
		if _, err := runTool(t, "s3-stanza-create", "--config="+c, "--stanza=s3", "stanza-create"); err != nil {
			return err
		}
	}
	for _, pm := range pms {
		if pm > 2 {
			continue
		}
		fmt.Printf("s3: lz4 process-max=%d\n", pm)
		full, restore := newPair(), newPair()
		for rep := 0; rep < *repsOther; rep++ {
			for _, t := range []tool{pgbrTool, brTool} {
				if _, err := s3Conf(m, t, pm); err != nil {
					return err
				}
			}
			for _, t := range nextOrder() {
				dropCaches()
				s, err := runTool(t, fmt.Sprintf("s3 full lz4 pm%d", pm), "--config="+confs[t.name], "--stanza=s3", "--no-archive-check", "backup", "--type=full")
				if err != nil {
					return err
				}
				full[t.name].add(s)
			}
			for _, t := range nextOrder() {
				s, err := restoreCmd(t, fmt.Sprintf("s3 restore lz4 pm%d", pm), confs[t.name], "s3")
				if err != nil {
					return err
				}
				restore[t.name].add(s)
			}
		}
		rep.add("s3", &row{name: fmt.Sprintf("S3 full lz4 pm%d", pm), m: full, minRatio: 2})
		rep.add("s3", &row{name: fmt.Sprintf("S3 restore lz4 pm%d", pm), m: restore, minRatio: 2})
	}
	return nil
}
