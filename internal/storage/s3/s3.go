// Package s3 is the S3 storage driver (repo1-type=s3), on aws-sdk-go-v2.
//
// Keys are the repository path (repo1-path, default /var/lib/pgbackrest)
// without its leading slash, then the storage path: the layout is the same as
// on posix and as pgBackRest's. Every file appears whole or not at all: a
// small file is one PutObject at Commit, a larger one a multipart upload
// completed at Commit and aborted on any failure.
//
// Retries come in two layers. The SDK's standard retryer re-sends a request
// after 5xx, 429, SlowDown, timeouts and connection resets, with back-off
// bounded by io-timeout. Above it every S3 operation runs through do(): when
// the request failed because the temporary credentials it was signed with
// expired or were revoked (credentials.Classify says ClassExpired), the
// credentials are invalidated and the operation is retried once with fresh
// ones; a denial fails fast with a message naming the credential source.
package s3

import (
	"context"
	"crypto/md5"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/pgbr-dev/pgbr/internal/credentials"
	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/storage"
)

// Defaults (pgBackRest 2.45).
const (
	DefaultPath            = "/var/lib/pgbackrest"
	DefaultUploadChunkSize = 5 << 20
	DefaultIOTimeout       = 60 * time.Second
	DefaultPort            = 443
)

// Options configure the driver. They map one to one to pgBackRest's repo
// options (repo1-s3-*, repo1-storage-*, repo1-path, io-timeout).
type Options struct {
	Bucket   string // repo1-s3-bucket
	Endpoint string // repo1-s3-endpoint: host, or http(s)://host[:port]
	Region   string // repo1-s3-region
	URIStyle string // repo1-s3-uri-style: "host" (default) or "path"
	Port     int    // repo1-storage-port, default 443
	// Host is repo1-storage-host: connect to this host (at Port) instead of
	// the endpoint; requests still name the endpoint (Host header, SigV4)
	// and the certificate is verified against Host, as in pgBackRest.
	Host string

	// Path is repo1-path, the key prefix; default /var/lib/pgbackrest gives
	// keys "var/lib/pgbackrest/...", "/" puts the repository at the bucket
	// root.
	Path string

	// VerifyTLS is repo1-storage-verify-tls; pgBackRest's default is y, so
	// the caller sets it from the option (false skips verification).
	VerifyTLS bool
	// CAFile and CAPath (repo1-storage-ca-file/-ca-path) replace the system
	// roots, as in pgBackRest.
	CAFile, CAPath string

	UploadChunkSize int64  // repo1-storage-upload-chunk-size, default 5 MiB
	KMSKeyID        string // repo1-s3-kms-key-id: SSE-KMS
	SSECustomerKey  string // repo1-s3-sse-customer-key: base64 SSE-C key (a secret)
	RequesterPays   bool   // repo1-s3-requester-pays
	Tags            map[string]string
	IOTimeout       time.Duration // io-timeout, default 60 s

	// Creds provides (and refreshes, and invalidates) the credentials.
	Creds *credentials.Cache
	// HTTPClient overrides the client built by HTTPClient(opts) (tests).
	HTTPClient *http.Client
	// Logger receives info and debug lines (nil: none); never a secret.
	Logger *slog.Logger
}

// Storage is an S3 repository.
type Storage struct {
	o        Options
	client   *s3.Client
	creds    *credentials.Cache
	prefix   string // key prefix without leading or trailing slash
	endpoint string // base URL, for messages
	log      *slog.Logger

	sseKeyMD5 string
	tagging   string
	bufPool   sync.Pool // *[]byte of UploadChunkSize

	bg background // PutObjects of NoSync writes still running (write.go)
}

func (o *Options) setDefaults() {
	if o.Path == "" {
		o.Path = DefaultPath
	}
	if o.Port == 0 {
		o.Port = DefaultPort
	}
	if o.UploadChunkSize <= 0 {
		o.UploadChunkSize = DefaultUploadChunkSize
	}
	if o.IOTimeout <= 0 {
		o.IOTimeout = DefaultIOTimeout
	}
	if o.URIStyle == "" {
		o.URIStyle = "host"
	}
}

// BaseEndpoint returns the endpoint URL: https://endpoint:port, unless the
// endpoint carries its own scheme (and port).
func (o Options) BaseEndpoint() string {
	o.setDefaults()
	ep := strings.TrimRight(o.Endpoint, "/")
	if strings.HasPrefix(ep, "http://") || strings.HasPrefix(ep, "https://") {
		u, err := url.Parse(ep)
		if err == nil && u.Port() == "" && o.Port != DefaultPort {
			u.Host = net.JoinHostPort(u.Hostname(), strconv.Itoa(o.Port))
			return u.String()
		}
		return ep
	}
	host := ep
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") && net.ParseIP(host) != nil {
		host = "[" + host + "]"
	}
	if o.Port == DefaultPort {
		return "https://" + host
	}
	return "https://" + host + ":" + strconv.Itoa(o.Port)
}

// New builds the driver. Nothing is sent to S3 (like pgBackRest, the first
// request fetches credentials and reveals configuration errors).
func New(ctx context.Context, o Options) (*Storage, error) {
	_ = ctx
	o.setDefaults()
	if o.Bucket == "" {
		return nil, errs.New(errs.OptionRequired, "S3 repository requires option 'repo1-s3-bucket'")
	}
	if o.Endpoint == "" {
		return nil, errs.New(errs.OptionRequired, "S3 repository requires option 'repo1-s3-endpoint'")
	}
	if o.Region == "" {
		return nil, errs.New(errs.OptionRequired, "S3 repository requires option 'repo1-s3-region'")
	}
	if o.URIStyle != "host" && o.URIStyle != "path" {
		return nil, errs.New(errs.OptionInvalidValue, "'%s' is not allowed for 'repo1-s3-uri-style' option\nHINT: allowed values are host, path", o.URIStyle)
	}
	if o.Creds == nil {
		return nil, errs.New(errs.Assert, "s3: Options.Creds is nil")
	}
	hc := o.HTTPClient
	if hc == nil {
		var err error
		if hc, err = HTTPClient(o); err != nil {
			return nil, err
		}
	}
	s := &Storage{
		o:        o,
		creds:    o.Creds,
		prefix:   strings.Trim(path.Clean("/"+o.Path), "/"),
		endpoint: o.BaseEndpoint(),
		log:      o.Logger,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if o.SSECustomerKey != "" {
		raw, err := base64.StdEncoding.DecodeString(o.SSECustomerKey)
		if err != nil || len(raw) != 32 {
			return nil, errs.New(errs.OptionInvalidValue, "option 'repo1-s3-sse-customer-key' must be a base64-encoded 256-bit key")
		}
		sum := md5.Sum(raw)
		s.sseKeyMD5 = base64.StdEncoding.EncodeToString(sum[:])
	}
	if len(o.Tags) > 0 {
		v := url.Values{}
		for k, val := range o.Tags {
			v.Set(k, val)
		}
		s.tagging = v.Encode() // sorted by key
	}
	s.bufPool.New = func() any { b := make([]byte, 0, o.UploadChunkSize); return &b }
	s.client = s3.New(s3.Options{
		Region:                     o.Region,
		BaseEndpoint:               aws.String(s.endpoint),
		UsePathStyle:               o.URIStyle == "path",
		Credentials:                provider{o.Creds},
		HTTPClient:                 hc,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		Retryer:                    s.newRetryer(""),
	})
	return s, nil
}

// Root names the repository: s3://bucket/prefix.
func (s *Storage) Root() string { return "s3://" + s.o.Bucket + "/" + s.prefix }

// Full returns the path as pgBackRest shows it: the repository path
// followed by the storage path ("/var/lib/pgbackrest/archive/...").
func (s *Storage) Full(p string) string { return "/" + s.key(p) }

// key maps a storage path to an object key.
func (s *Storage) key(p string) string {
	p = strings.Trim(path.Clean("/"+p), "/")
	switch {
	case s.prefix == "":
		return p
	case p == "":
		return s.prefix
	}
	return s.prefix + "/" + p
}

// dirPrefix is the key prefix of everything under path p ("" for the
// bucket root).
func (s *Storage) dirPrefix(p string) string {
	k := s.key(p)
	if k == "" {
		return ""
	}
	return k + "/"
}

// HTTPClient builds the HTTP client for S3 (and STS: give it to
// credentials.Options.HTTPClient so both use the same TLS settings): CA file
// and path replace the system roots, VerifyTLS=false skips verification,
// every socket read or write must make progress within IOTimeout.
func HTTPClient(o Options) (*http.Client, error) {
	o.setDefaults()
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if !o.VerifyTLS {
		tc.InsecureSkipVerify = true
	} else if o.CAFile != "" || o.CAPath != "" {
		pool := x509.NewCertPool()
		if o.CAFile != "" {
			b, err := os.ReadFile(o.CAFile)
			if err != nil {
				return nil, errs.Wrap(errs.FileOpen, err, "unable to load CA file '%s'", o.CAFile)
			}
			if !pool.AppendCertsFromPEM(b) {
				return nil, errs.New(errs.Crypto, "no certificate found in CA file '%s'", o.CAFile)
			}
		}
		if o.CAPath != "" {
			ents, err := os.ReadDir(o.CAPath)
			if err != nil {
				return nil, errs.Wrap(errs.PathOpen, err, "unable to read CA path '%s'", o.CAPath)
			}
			for _, e := range ents {
				if b, err := os.ReadFile(filepath.Join(o.CAPath, e.Name())); err == nil {
					pool.AppendCertsFromPEM(b)
				}
			}
		}
		tc.RootCAs = pool
	}
	timeout := o.IOTimeout
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	var connectTo string
	if o.Host != "" {
		connectTo = net.JoinHostPort(strings.Trim(o.Host, "[]"), strconv.Itoa(o.Port))
		tc.ServerName = strings.Trim(o.Host, "[]")
	}
	proxy := http.ProxyFromEnvironment
	if connectTo != "" {
		proxy = nil // the connection goes where repo1-storage-host says
	}
	tr := &http.Transport{
		Proxy: proxy,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if connectTo != "" {
				addr = connectTo
			}
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &idleConn{Conn: c, timeout: timeout}, nil
		},
		TLSClientConfig:       tc,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   64,
	}
	return &http.Client{Transport: tr}, nil
}

// idleConn fails a read or write that makes no progress for timeout
// (io-timeout is a socket timeout in pgBackRest).
type idleConn struct {
	net.Conn
	timeout time.Duration
}

func (c *idleConn) Read(b []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
	return c.Conn.Read(b)
}

func (c *idleConn) Write(b []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
	return c.Conn.Write(b)
}

// provider hands the cache's credentials to the SDK, which asks for them
// before every attempt, and notes in the request context which access key
// signed the request.
type provider struct{ c *credentials.Cache }

type usedKeyCtx struct{}

type usedKey struct {
	mu sync.Mutex
	id string
}

func (u *usedKey) get() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.id
}

func (p provider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	cr, err := p.c.Retrieve(ctx)
	if err == nil {
		if u, ok := ctx.Value(usedKeyCtx{}).(*usedKey); ok {
			u.mu.Lock()
			u.id = cr.AccessKeyID
			u.mu.Unlock()
		}
	}
	return cr, err
}

// retryer is the SDK standard retryer with a budget: after the first two
// retries, no retry starts later than io-timeout after the operation began.
type retryer struct {
	aws.RetryerV2
	start  time.Time
	budget time.Duration
	op     string
	log    *slog.Logger
}

const maxAttempts = 10

func (s *Storage) newRetryer(op string) aws.RetryerV2 {
	maxBackoff := min(20*time.Second, max(s.o.IOTimeout/4, 100*time.Millisecond))
	std := retry.NewStandard(func(so *retry.StandardOptions) {
		so.MaxAttempts = maxAttempts
		so.MaxBackoff = maxBackoff
		so.BaseDelay = 100 * time.Millisecond
		so.RateLimiter = ratelimit.None
		so.Retryables = append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(extraRetryable)}, so.Retryables...)
	})
	return &retryer{RetryerV2: std, start: time.Now(), budget: s.o.IOTimeout, op: op, log: s.log}
}

// extraRetryable adds what pgBackRest also retries: 408, any 429, and a
// response cut short.
func extraRetryable(err error) aws.Ternary {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		switch re.HTTPStatusCode() {
		case http.StatusRequestTimeout, http.StatusTooManyRequests:
			return aws.TrueTernary
		}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return aws.TrueTernary
	}
	var ce interface{ CanceledError() bool }
	if errors.As(err, &ce) && ce.CanceledError() {
		return aws.FalseTernary
	}
	var de *smithy.DeserializationError
	if errors.As(err, &de) {
		// a body cut short while being parsed
		return aws.TrueTernary
	}
	return aws.UnknownTernary
}

func (r *retryer) RetryDelay(attempt int, err error) (time.Duration, error) {
	d, derr := r.RetryerV2.RetryDelay(attempt, err)
	if derr != nil {
		return d, derr
	}
	if attempt > 2 && time.Since(r.start)+d > r.budget {
		return 0, &budgetError{attempts: attempt, budget: r.budget, err: err}
	}
	r.log.Debug(fmt.Sprintf("S3 %s: attempt %d failed, retrying in %s: %s", r.op, attempt, d.Round(time.Millisecond), cause(err)))
	return d, nil
}

type budgetError struct {
	attempts int
	budget   time.Duration
	err      error
}

func (e *budgetError) Error() string {
	return fmt.Sprintf("gave up after %d attempts (io-timeout %s): %v", e.attempts, e.budget, e.err)
}
func (e *budgetError) Unwrap() error { return e.err }

// opt returns the per-operation options: a retryer with its own budget.
func (s *Storage) opt(op string) func(*s3.Options) {
	return func(o *s3.Options) { o.Retryer = s.newRetryer(op) }
}

// cause is a short description of an error for log lines: the AWS code and
// HTTP status when there is one.
func cause(err error) string {
	var ae smithy.APIError
	status := 0
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	if errors.As(err, &ae) {
		if status != 0 {
			return fmt.Sprintf("%s (HTTP %d)", ae.ErrorCode(), status)
		}
		return ae.ErrorCode()
	}
	if status != 0 {
		return fmt.Sprintf("HTTP %d", status)
	}
	var oe *smithy.OperationError
	if errors.As(err, &oe) {
		return oe.Err.Error()
	}
	return err.Error()
}

// awsCode returns the AWS error code, message and HTTP status of err.
func awsCode(err error) (code, msg string, status int) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code, msg = ae.ErrorCode(), ae.ErrorMessage()
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	return code, msg, status
}

// do runs one S3 operation with the credential retry: an expired-class
// failure invalidates the credentials that signed the request and retries
// once; a second expired-class failure, a denial or a credential source
// failure becomes an *errs.Error. Other errors are returned as they are.
func (s *Storage) do(ctx context.Context, op, full string, fn func(ctx context.Context) error) error {
	retried := false
	for {
		u := &usedKey{}
		err := fn(context.WithValue(ctx, usedKeyCtx{}, u))
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		var ce *credentials.Error
		if errors.As(err, &ce) {
			// The credential source failed (STS, IMDS, token file...): the
			// cache has already said everything about it.
			return &errs.Error{Code: errs.Service, Err: err,
				Msg: fmt.Sprintf("unable to %s '%s': cannot obtain S3 credentials: %s", opVerb(op), full, ce.Error())}
		}
		class, code := credentials.Classify(err, s.creds.Temporary())
		switch class {
		case credentials.ClassExpired:
			if !retried {
				retried = true
				id := u.get()
				dropped := s.creds.Invalidate(id)
				s.log.Debug(fmt.Sprintf("S3 %s '%s': %s -> credentials invalidated (%v), retrying once", op, full, cause(err), dropped))
				continue
			}
			return s.credError(op, full, code, err, true)
		case credentials.ClassDenied:
			return s.credError(op, full, code, err, false)
		}
		return err
	}
}

// credError reports credentials the storage rejected. It names the
// operation, bucket, endpoint, credential source and AWS code; never a
// secret.
func (s *Storage) credError(op, full, code string, err error, afterRefresh bool) error {
	awsc, awsMsg, status := awsCode(err)
	if code == "" {
		code = awsc
	}
	var b strings.Builder
	if afterRefresh {
		b.WriteString("credentials rejected right after refresh: session revoked, role removed, or endpoint/region mismatch: ")
	} else {
		b.WriteString("S3 denied the request: ")
	}
	fmt.Fprintf(&b, "%s '%s' in bucket '%s' at %s (region %s)", op, full, s.o.Bucket, s.endpoint, s.o.Region)
	fmt.Fprintf(&b, " failed with %s", code)
	if status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", status)
	}
	if awsMsg != "" && awsMsg != code {
		fmt.Fprintf(&b, ": %s", awsMsg)
	}
	fmt.Fprintf(&b, "\ncredentials: %s", s.creds.Describe())
	if h := hint(code, s.creds.Temporary(), afterRefresh); h != "" {
		fmt.Fprintf(&b, "\nHINT: %s", h)
	}
	c := errs.Access
	if afterRefresh {
		c = errs.Service
	}
	return &errs.Error{Code: c, Msg: b.String(), Err: errors.Join(storage.ErrPermission, err)}
}

func hint(code string, temporary, afterRefresh bool) string {
	if afterRefresh {
		if code == "InvalidToken" {
			return "a session token from the global STS endpoint is rejected in opt-in regions: use the regional STS endpoint"
		}
		return "check that the role still exists and trusts this identity, and that endpoint and region match the credentials"
	}
	switch code {
	case "SignatureDoesNotMatch":
		return "check the key secret, the region, and that no proxy alters requests"
	case "RequestTimeTooSkewed":
		return "the clock of this host is off by more than 15 minutes: fix the clock"
	case "AccessDenied", "Forbidden":
		return "the identity is known but a policy (role, bucket, KMS key) or the SSE-C key denies this request"
	case "InvalidAccessKeyId":
		if !temporary {
			return "the access key (repo1-s3-key) does not exist on this endpoint"
		}
	case "AllAccessDisabled", "AccountProblem", "InvalidSecurity":
		return "an account-level problem: contact the storage provider"
	}
	return ""
}

func opVerb(op string) string {
	switch op {
	case "GetObject":
		return "read"
	case "HeadObject":
		return "get info for"
	case "ListObjectsV2":
		return "list"
	case "DeleteObject", "DeleteObjects":
		return "remove"
	}
	return "write"
}

// fail wraps an operation error that do() returned as is: not found,
// permission, or an S3/transport failure, with the code c for the
// operation. The message reads "unable to <verb> [missing ]file '<full>'<tail>".
func (s *Storage) fail(c errs.Code, verb, full, tail string, err error) error {
	var e *errs.Error
	if errors.As(err, &e) {
		return err
	}
	if isNotFound(err) {
		return &errs.Error{Code: errs.FileMissing, Err: errors.Join(storage.ErrNotFound, err),
			Msg: fmt.Sprintf("unable to %s missing file '%s'%s", verb, full, tail)}
	}
	code, msg, status := awsCode(err)
	detail := cause(err)
	if code != "" && msg != "" && msg != code {
		detail += ": " + msg
	}
	var be *budgetError
	var me *retry.MaxAttemptsError
	switch {
	case errors.As(err, &be):
		detail += fmt.Sprintf(" (gave up after %d attempts, io-timeout %s)", be.attempts, be.budget)
	case errors.As(err, &me):
		detail += fmt.Sprintf(" (gave up after %d attempts)", me.Attempt)
	}
	switch {
	case code == "NoSuchBucket":
		return &errs.Error{Code: errs.RepoInvalid, Err: err,
			Msg: fmt.Sprintf("unable to %s file '%s'%s: bucket '%s' does not exist at %s", verb, full, tail, s.o.Bucket, s.endpoint)}
	case status == http.StatusForbidden:
		return &errs.Error{Code: errs.Access, Err: errors.Join(storage.ErrPermission, err),
			Msg: fmt.Sprintf("unable to %s file '%s'%s: %s", verb, full, tail, detail)}
	}
	return &errs.Error{Code: c, Err: err, Msg: fmt.Sprintf("unable to %s file '%s'%s: %s", verb, full, tail, detail)}
}

func isNotFound(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return true
	}
	code, _, _ := awsCode(err)
	return code == "NoSuchKey" || code == "NotFound"
}

// sse adds the SSE-C headers (on PUT, GET, HEAD, multipart initiate, parts).
func (s *Storage) sse() (alg, key, keyMD5 *string) {
	if s.o.SSECustomerKey == "" {
		return nil, nil, nil
	}
	return aws.String("AES256"), aws.String(s.o.SSECustomerKey), aws.String(s.sseKeyMD5)
}

func (s *Storage) payer() types.RequestPayer {
	if s.o.RequesterPays {
		return types.RequestPayerRequester
	}
	return ""
}

func (s *Storage) kms() (types.ServerSideEncryption, *string) {
	if s.o.KMSKeyID == "" {
		return "", nil
	}
	return types.ServerSideEncryptionAwsKms, aws.String(s.o.KMSKeyID)
}

func (s *Storage) tags() *string {
	if s.tagging == "" {
		return nil
	}
	return aws.String(s.tagging)
}

// PathCreate does nothing: object stores have no paths.
func (s *Storage) PathCreate(ctx context.Context, p string) error { return nil }

// Symlink does nothing: object stores have no links (pgBackRest keeps no
// "latest" link on S3).
func (s *Storage) Symlink(ctx context.Context, target, p string) error { return nil }

var _ storage.Storage = (*Storage)(nil)
