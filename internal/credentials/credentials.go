// Package credentials obtains S3 credentials for every pgBackRest key type
// (shared, auto, web-id, pod-id, process) and keeps them fresh for commands
// that run for hours with credentials that live for minutes.
//
// A Cache is an aws.CredentialsProvider. It refreshes ahead of expiry (window
// min(5 min, lifetime/4) with ±20% jitter), runs at most one refresh at a time
// and shares it between all goroutines, re-reads token files at every refresh,
// and drops credentials on request (Invalidate) after a storage request failed
// because they expired. Classify tells a storage driver which errors mean
// "expired: invalidate and retry once", "denied: fail fast" or "transient".
//
// No secret (key secret, session token, web identity token) is ever logged or
// put in an error message.
package credentials

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/pgbr-dev/pgbr/internal/errs"
)

// Key types (option repo1-s3-key-type).
const (
	KeyTypeShared = "shared"
	KeyTypeAuto   = "auto"
	KeyTypeWebID  = "web-id"
	KeyTypePodID  = "pod-id"
	KeyTypeProc   = "process"
)

// Options configure a Cache. Options beat the environment: archive_command and
// restore_command do not inherit a pod's environment, so everything read from
// Environ can also be given here.
type Options struct {
	// KeyType is "shared" (default), "auto" (EC2 IMDSv2 instance role),
	// "web-id" (STS AssumeRoleWithWebIdentity), "pod-id" (EKS pod identity)
	// or "process" (credential_process JSON).
	KeyType string

	// shared: static key, secret and optional session token.
	Key, Secret, Token string

	// auto: instance role name (optional; discovered from IMDS when empty).
	Role string

	// web-id; defaults AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE,
	// AWS_ROLE_SESSION_NAME (then "pgbr").
	RoleARN, TokenFile, SessionName string

	// Region of the repository; selects the regional STS endpoint.
	Region string

	// STSEndpoint is repo1-s3-sts-host: "host[:port]" means https://host:port;
	// a URL with a scheme is used as is. Empty: AWS_ENDPOINT_URL_STS, then
	// AWS_ENDPOINT_URL, then https://sts.<region>.amazonaws.com
	// (AWS_STS_REGIONAL_ENDPOINTS=legacy or no region: https://sts.amazonaws.com).
	STSEndpoint string

	// pod-id; defaults AWS_CONTAINER_CREDENTIALS_FULL_URI and
	// AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE.
	ContainerURI, ContainerTokenFile string

	// auto: metadata service, default AWS_EC2_METADATA_SERVICE_ENDPOINT, then
	// http://169.254.169.254.
	IMDSEndpoint string

	// process: command and arguments (run directly, not through a shell).
	ProcessCmd []string

	// HTTPClient carries the repository's TLS settings (CA file/path,
	// verify); used for STS and pod identity too. Nil: SDK default.
	HTTPClient *http.Client

	// Environ is the environment in os.Environ() form; nil means os.Environ().
	Environ []string

	// Repo is the option prefix used in messages, default "repo1".
	Repo string

	// Logger receives info and debug lines (nil: none). Never given a secret.
	Logger *slog.Logger

	// Now is the clock (default time.Now).
	Now func() time.Time

	// test knobs
	expiredTokenWaits []time.Duration // waits before re-reading an expired web identity token
	stsMaxBackoff     time.Duration   // SDK retry back-off cap for STS
}

// Stats counts what the cache did.
type Stats struct {
	Refreshes     int       // successful fetches from the credential source
	Failures      int       // failed fetches
	Invalidations int       // Invalidate calls that dropped credentials
	LastExpiry    time.Time // expiry of the newest credentials (zero: none / never expire)
}

// fetcher is one credential source.
type fetcher interface {
	// fetch returns fresh credentials or an *Error.
	fetch(ctx context.Context) (aws.Credentials, error)
	// source names where credentials come from, for the refresh log line.
	source() string
}

// Cache is a refreshing, invalidatable credentials cache for one repository.
// It implements aws.CredentialsProvider; share one per repository between
// all goroutines.
type Cache struct {
	o         Options
	keyType   string
	temporary bool
	describe  string
	src       fetcher
	now       func() time.Time
	log       *slog.Logger
	secrets   *secretSet

	mu     sync.Mutex
	cur    *entry
	flight *flight
	stats  Stats
}

type entry struct {
	creds     aws.Credentials
	refreshAt time.Time // start a refresh from here (CanExpire only)
	usableTil time.Time // after this, callers wait for a refresh
}

type flight struct {
	done  chan struct{}
	creds aws.Credentials
	err   error
}

// fetchTimeout bounds one refresh (detached from the caller's context so one
// caller giving up does not fail the others).
const fetchTimeout = 2 * time.Minute

// New validates the options and builds the cache. Nothing is fetched until
// the first Retrieve (like pgBackRest). Missing options or environment give
// an *errs.Error with code OptionInvalid naming what is missing.
func New(ctx context.Context, o Options) (*Cache, error) {
	_ = ctx
	if o.Environ == nil {
		o.Environ = os.Environ()
	}
	if o.Repo == "" {
		o.Repo = "repo1"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.KeyType == "" {
		o.KeyType = KeyTypeShared
	}
	if o.expiredTokenWaits == nil {
		o.expiredTokenWaits = []time.Duration{2 * time.Second, 5 * time.Second}
	}
	if o.stsMaxBackoff == 0 {
		o.stsMaxBackoff = 20 * time.Second
	}
	c := &Cache{o: o, keyType: o.KeyType, now: o.Now, log: o.Logger, secrets: &secretSet{}}
	optKeyType := fmt.Sprintf("option '%s-s3-key-type' is '%s'", o.Repo, o.KeyType)
	var err error
	switch o.KeyType {
	case KeyTypeShared:
		var missing []string
		if o.Key == "" {
			missing = append(missing, o.Repo+"-s3-key")
		}
		if o.Secret == "" {
			missing = append(missing, o.Repo+"-s3-key-secret")
		}
		if len(missing) > 0 {
			return nil, errs.New(errs.OptionInvalid, "%s but %s", optKeyType, notSet(missing))
		}
		c.temporary = o.Token != ""
		c.describe = "key type shared, key " + o.Key // an access key id is not a secret (AWS puts it in error bodies)
		if c.temporary {
			c.describe += " with session token"
		}
		c.secrets.add(o.Secret, o.Token)
		creds := aws.Credentials{AccessKeyID: o.Key, SecretAccessKey: o.Secret, SessionToken: o.Token, Source: "shared"}
		c.cur = &entry{creds: creds}
		c.stats.Refreshes = 1
		return c, nil
	case KeyTypeAuto:
		c.temporary = true
		c.src, err = newIMDS(c)
	case KeyTypeWebID:
		c.temporary = true
		if o.RoleARN == "" {
			c.o.RoleARN = getenv(o.Environ, "AWS_ROLE_ARN")
		}
		if o.TokenFile == "" {
			c.o.TokenFile = getenv(o.Environ, "AWS_WEB_IDENTITY_TOKEN_FILE")
		}
		if o.SessionName == "" {
			c.o.SessionName = getenv(o.Environ, "AWS_ROLE_SESSION_NAME")
		}
		var missing []string
		if c.o.RoleARN == "" {
			missing = append(missing, "AWS_ROLE_ARN")
		}
		if c.o.TokenFile == "" {
			missing = append(missing, "AWS_WEB_IDENTITY_TOKEN_FILE")
		}
		if len(missing) > 0 {
			return nil, errs.New(errs.OptionInvalid, "%s but %s", optKeyType, notSet(missing))
		}
		c.src, err = newWebID(c)
	case KeyTypePodID:
		c.temporary = true
		if o.ContainerURI == "" {
			c.o.ContainerURI = getenv(o.Environ, "AWS_CONTAINER_CREDENTIALS_FULL_URI")
		}
		if o.ContainerTokenFile == "" {
			c.o.ContainerTokenFile = getenv(o.Environ, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
		}
		var missing []string
		if c.o.ContainerURI == "" {
			missing = append(missing, "AWS_CONTAINER_CREDENTIALS_FULL_URI")
		}
		if c.o.ContainerTokenFile == "" {
			missing = append(missing, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
		}
		if len(missing) > 0 {
			return nil, errs.New(errs.OptionInvalid, "%s but %s", optKeyType, notSet(missing))
		}
		c.src, err = newPodID(c)
	case KeyTypeProc:
		c.temporary = true
		if len(o.ProcessCmd) == 0 || o.ProcessCmd[0] == "" {
			return nil, errs.New(errs.OptionInvalid, "%s but %s", optKeyType, notSet([]string{o.Repo + "-s3-process-cmd"}))
		}
		c.src = newProcess(c)
	default:
		return nil, errs.New(errs.OptionInvalidValue,
			"'%s' is not allowed for '%s-s3-key-type' option\nHINT: allowed values are shared, auto, web-id, pod-id, process",
			o.KeyType, o.Repo)
	}
	if err != nil {
		return nil, err
	}
	c.describe = "key type " + o.KeyType + ", " + c.src.source()
	return c, nil
}

func notSet(names []string) string {
	if len(names) == 1 {
		return "'" + names[0] + "' is not set"
	}
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = "'" + n + "'"
	}
	return strings.Join(q, " and ") + " are not set"
}

// getenv looks name up in an os.Environ()-style list (last one wins).
func getenv(env []string, name string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == name {
			v = val
		}
	}
	return v
}

// Temporary reports whether the credentials can expire: every key type but
// shared without a session token.
func (c *Cache) Temporary() bool { return c.temporary }

// KeyType returns the key type.
func (c *Cache) KeyType() string { return c.keyType }

// Describe names the credential source for error messages, without secrets:
// "key type web-id, role arn:aws:iam::1:role/x, token file /var/run/.../token,
// sts https://127.0.0.1:9000".
func (c *Cache) Describe() string { return c.describe }

// Stats returns a snapshot of the counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Retrieve returns valid credentials. Cached credentials are returned until
// their refresh point; from there until shortly before expiry the cached
// ones are still returned while one background refresh runs; after that
// callers wait for the (single, shared) refresh. Errors are *Error.
func (c *Cache) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c.mu.Lock()
	now := c.now()
	e := c.cur
	if e != nil && (!e.creds.CanExpire || now.Before(e.refreshAt)) {
		c.mu.Unlock()
		return e.creds, nil
	}
	f := c.flight
	if f == nil {
		f = c.startLocked(ctx)
	}
	if e != nil && now.Before(e.usableTil) {
		c.mu.Unlock()
		return e.creds, nil
	}
	c.mu.Unlock()
	select {
	case <-f.done:
		return f.creds, f.err
	case <-ctx.Done():
		return aws.Credentials{}, &aws.RequestCanceledError{Err: ctx.Err()}
	}
}

// startLocked starts the one refresh. c.mu is held.
func (c *Cache) startLocked(ctx context.Context) *flight {
	f := &flight{done: make(chan struct{})}
	c.flight = f
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
	go func() {
		defer cancel()
		c.log.Debug("credentials: refreshing from " + c.src.source())
		creds, err := c.src.fetch(fctx)
		now := c.now()
		if err == nil && creds.CanExpire && !creds.Expires.After(now) {
			err = c.newError("", fmt.Sprintf("credentials from %s expired at %s, before they could be used",
				c.src.source(), fmtTime(creds.Expires)), "check the clock of this host and of the credential source", nil)
		}
		level, msg := c.settle(f, creds, err, now)
		c.log.Log(context.Background(), level, msg) // before waking the waiters: their next step sees the line
		close(f.done)
	}()
	return f
}

// settle stores the result of a refresh and returns the log line for it.
func (c *Cache) settle(f *flight, creds aws.Credentials, err error, now time.Time) (level slog.Level, msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flight = nil
	if err != nil {
		c.stats.Failures++
		e := c.cur
		if e == nil || !now.Before(e.usableTil) {
			f.err = err
			return slog.LevelDebug, fmt.Sprintf("credentials refresh from %s failed: %v", c.src.source(), err)
		}
		// Keep the still valid credentials; try again later.
		retry := min(max(e.creds.Expires.Sub(now)/4, time.Second), time.Minute)
		e.refreshAt = now.Add(retry)
		f.creds = e.creds
		return slog.LevelInfo, fmt.Sprintf("credentials refresh from %s failed, keeping the current ones (expire at %s), next try in %s: %v",
			c.src.source(), fmtTime(e.creds.Expires), retry.Round(time.Second), err)
	}
	c.secrets.add(creds.SecretAccessKey, creds.SessionToken)
	e := &entry{creds: creds}
	c.cur = e
	c.stats.Refreshes++
	f.creds = creds
	if !creds.CanExpire {
		c.stats.LastExpiry = time.Time{}
		return slog.LevelInfo, fmt.Sprintf("credentials refreshed from %s, do not expire", c.src.source())
	}
	life := creds.Expires.Sub(now)
	window := min(5*time.Minute, life/4)
	jitter := 0.8 + 0.4*rand.Float64() // ±20%
	e.refreshAt = creds.Expires.Add(-time.Duration(float64(window) * jitter))
	e.usableTil = creds.Expires.Add(-min(10*time.Second, life/10))
	c.stats.LastExpiry = creds.Expires
	return slog.LevelInfo, fmt.Sprintf("credentials refreshed from %s, expire at %s", c.src.source(), fmtTime(creds.Expires))
}

// Invalidate drops the cached credentials if they still have the access key
// id accessKeyID (the key a failed request was signed with), so that the next
// Retrieve fetches new ones. When they were already replaced it does nothing
// (another goroutine refreshed): a plain retry suffices. Reports whether it
// dropped them.
func (c *Cache) Invalidate(accessKeyID string) bool {
	c.mu.Lock()
	if c.cur == nil || c.cur.creds.AccessKeyID != accessKeyID {
		c.mu.Unlock()
		return false
	}
	c.stats.Invalidations++
	if c.src == nil {
		// shared: nothing to fetch again; keep them, report invalidated so
		// the caller retries once and then reports the rejection.
		c.mu.Unlock()
		return true
	}
	c.cur = nil
	c.mu.Unlock()
	c.log.Info("credentials from " + c.src.source() + " invalidated after an expired-credentials error")
	return true
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// secretSet remembers secrets seen so that error text can be scrubbed.
type secretSet struct {
	mu sync.Mutex
	s  []string
}

func (s *secretSet) add(v ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range v {
		if len(x) < 4 {
			continue
		}
		dup := false
		for _, y := range s.s {
			if y == x {
				dup = true
				break
			}
		}
		if !dup {
			s.s = append(s.s, x)
			if len(s.s) > 16 {
				s.s = s.s[len(s.s)-16:]
			}
		}
	}
}

func (s *secretSet) redact(msg string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.s {
		msg = strings.ReplaceAll(msg, x, "<redacted>")
	}
	return msg
}
