package credentials

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/aws/aws-sdk-go-v2/credentials/processcreds"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/pgbr-dev/pgbr/internal/errs"
)

// ---------------------------------------------------------------- auto (IMDSv2)

const imdsCredsPath = "iam/security-credentials/"

type imdsSource struct {
	c        *Cache
	client   *imds.Client
	endpoint string
	role     string // fixed role, or empty: discover at each refresh
}

func newIMDS(c *Cache) (*imdsSource, error) {
	ep := c.o.IMDSEndpoint
	if ep == "" {
		ep = getenv(c.o.Environ, "AWS_EC2_METADATA_SERVICE_ENDPOINT")
	}
	if ep == "" {
		ep = "http://169.254.169.254"
	}
	ep = strings.TrimRight(ep, "/")
	if u, err := url.Parse(ep); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errs.New(errs.OptionInvalidValue, "EC2 metadata service endpoint '%s' is not an http(s) URL", ep)
	}
	client := imds.New(imds.Options{
		Endpoint:          ep,
		ClientEnableState: imds.ClientEnabled,
	})
	return &imdsSource{c: c, client: client, endpoint: ep, role: c.o.Role}, nil
}

func (s *imdsSource) source() string {
	r := s.role
	if r == "" {
		r = "discovered"
	}
	return "instance metadata " + s.endpoint + ", role " + r
}

func (s *imdsSource) fetch(ctx context.Context) (aws.Credentials, error) {
	role := s.role
	if role == "" {
		out, err := s.client.GetMetadata(ctx, &imds.GetMetadataInput{Path: imdsCredsPath})
		if err != nil {
			if httpStatus(err) == http.StatusNotFound {
				return aws.Credentials{}, s.c.newError("", "role to retrieve temporary credentials not found",
					"is a valid IAM role associated with this instance?", err)
			}
			return aws.Credentials{}, s.c.newError(errCode(err), "cannot list instance roles: "+errText(err), "", err)
		}
		sc := bufio.NewScanner(io.LimitReader(out.Content, 64<<10))
		for sc.Scan() {
			if r := strings.TrimSpace(sc.Text()); r != "" {
				role = r
				break
			}
		}
		out.Content.Close()
		if role == "" {
			return aws.Credentials{}, s.c.newError("", "role to retrieve temporary credentials not found",
				"is a valid IAM role associated with this instance?", nil)
		}
		s.c.log.Debug(fmt.Sprintf("credentials: instance role '%s' discovered", role))
	}
	out, err := s.client.GetMetadata(ctx, &imds.GetMetadataInput{Path: imdsCredsPath + role})
	if err != nil {
		if httpStatus(err) == http.StatusNotFound {
			return aws.Credentials{}, s.c.newError("", "role '"+role+"' not found",
				"check "+s.c.o.Repo+"-s3-role: it is the instance role name (not an ARN) associated with this instance", err)
		}
		return aws.Credentials{}, s.c.newError(errCode(err), "cannot get credentials of role '"+role+"': "+errText(err), "", err)
	}
	defer out.Content.Close()
	var body struct {
		Code            string
		Message         string
		AccessKeyID     string `json:"AccessKeyId"`
		SecretAccessKey string
		Token           string
		Expiration      time.Time
	}
	if err := json.NewDecoder(io.LimitReader(out.Content, 1<<20)).Decode(&body); err != nil {
		return aws.Credentials{}, s.c.newError("", "cannot parse credentials of role '"+role+"': invalid JSON", "", nil)
	}
	if !strings.EqualFold(body.Code, "Success") {
		msg := "unable to retrieve temporary credentials of role '" + role + "': " + body.Code
		if body.Message != "" {
			msg += ": " + body.Message
		}
		return aws.Credentials{}, s.c.newError(body.Code, msg, "", nil)
	}
	if body.AccessKeyID == "" || body.SecretAccessKey == "" || body.Expiration.IsZero() {
		return aws.Credentials{}, s.c.newError("", "credentials of role '"+role+"' lack AccessKeyId, SecretAccessKey or Expiration", "", nil)
	}
	return aws.Credentials{
		AccessKeyID:     body.AccessKeyID,
		SecretAccessKey: body.SecretAccessKey,
		SessionToken:    body.Token,
		Source:          "instance role " + role,
		CanExpire:       true,
		Expires:         body.Expiration,
	}, nil
}

// ---------------------------------------------------------------- web-id (STS)

type webIDSource struct {
	c        *Cache
	endpoint string
	prov     *stscreds.WebIdentityRoleProvider
	tok      *tokenFile
}

// tokenFile reads a token file at every call (the kubelet rotates it) and
// drops trailing newlines.
type tokenFile struct {
	c       *Cache
	path    string
	mu      sync.Mutex
	last    string
	lastErr error
}

func (t *tokenFile) read() (string, error) {
	tok, err := t.readFile()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lastErr = err
	if err == nil {
		t.last = tok
	}
	return tok, err
}

func (t *tokenFile) readFile() (string, error) {
	b, err := os.ReadFile(t.path)
	if err != nil {
		return "", &tokenReadError{"cannot read token file " + t.path + ": " + scrubPathErr(err)}
	}
	tok := strings.TrimRight(string(b), "\r\n")
	if strings.TrimSpace(tok) == "" {
		return "", &tokenReadError{"token file " + t.path + " is empty"}
	}
	t.c.secrets.add(tok)
	return tok, nil
}

// readErr returns the error of the last read (endpointcreds does not wrap it).
func (t *tokenFile) readErr() *tokenReadError {
	t.mu.Lock()
	defer t.mu.Unlock()
	tre, _ := t.lastErr.(*tokenReadError)
	return tre
}

type tokenReadError struct{ msg string }

func (e *tokenReadError) Error() string { return e.msg }

func (t *tokenFile) lastToken() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}

// GetIdentityToken implements stscreds.IdentityTokenRetriever.
func (t *tokenFile) GetIdentityToken() ([]byte, error) {
	tok, err := t.read()
	return []byte(tok), err
}

// stsEndpoint resolves the STS base URL (see Options.STSEndpoint).
func stsEndpoint(o Options) (string, error) {
	ep := o.STSEndpoint
	if ep == "" {
		ep = getenv(o.Environ, "AWS_ENDPOINT_URL_STS")
	}
	if ep == "" {
		ep = getenv(o.Environ, "AWS_ENDPOINT_URL")
	}
	if ep == "" {
		if o.Region == "" || strings.EqualFold(getenv(o.Environ, "AWS_STS_REGIONAL_ENDPOINTS"), "legacy") {
			return "https://sts.amazonaws.com", nil
		}
		suffix := ".amazonaws.com"
		if strings.HasPrefix(o.Region, "cn-") {
			suffix = ".amazonaws.com.cn"
		}
		return "https://sts." + o.Region + suffix, nil
	}
	if !strings.Contains(ep, "://") {
		ep = "https://" + ep
	}
	u, err := url.Parse(ep)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errs.New(errs.OptionInvalidValue, "'%s' is not a valid STS host for option '%s-s3-sts-host'", o.STSEndpoint, o.Repo)
	}
	return strings.TrimRight(ep, "/"), nil
}

func newWebID(c *Cache) (*webIDSource, error) {
	ep, err := stsEndpoint(c.o)
	if err != nil {
		return nil, err
	}
	region := c.o.Region
	if region == "" {
		region = "us-east-1"
	}
	session := c.o.SessionName
	if session == "" {
		session = "pgbr"
	}
	maxBackoff := c.o.stsMaxBackoff
	so := sts.Options{
		Region:       region,
		BaseEndpoint: aws.String(ep),
		Retryer: retry.NewStandard(func(r *retry.StandardOptions) {
			r.MaxAttempts = 3
			r.MaxBackoff = maxBackoff
		}),
	}
	if c.o.HTTPClient != nil {
		so.HTTPClient = c.o.HTTPClient
	}
	tok := &tokenFile{c: c, path: c.o.TokenFile}
	prov := stscreds.NewWebIdentityRoleProvider(sts.New(so), c.o.RoleARN, tok, func(w *stscreds.WebIdentityRoleOptions) {
		w.RoleSessionName = session
	})
	return &webIDSource{c: c, endpoint: ep, prov: prov, tok: tok}, nil
}

func (s *webIDSource) source() string {
	return "role " + s.c.o.RoleARN + ", token file " + s.c.o.TokenFile + ", sts " + s.endpoint
}

func (s *webIDSource) fetch(ctx context.Context) (aws.Credentials, error) {
	waits := s.c.o.expiredTokenWaits
	for attempt := 0; ; attempt++ {
		creds, err := s.prov.Retrieve(ctx)
		if err == nil {
			creds.Source = "sts " + s.endpoint
			return creds, nil
		}
		var tre *tokenReadError
		if errors.As(err, &tre) {
			return aws.Credentials{}, s.c.newError("", "cannot obtain credentials: "+tre.msg,
				"the kubelet writes the projected service account token there: check AWS_WEB_IDENTITY_TOKEN_FILE or "+
					s.c.o.Repo+"-s3-web-id-token-file and the pod's volume mounts", err)
		}
		code, awsMsg := apiCode(err)
		if code == "" {
			// network failure after the SDK's retries...
			return aws.Credentials{}, s.c.newError("", "cannot obtain credentials from STS AssumeRoleWithWebIdentity: "+errText(err),
				hintWebID(""), err)
		}
		expired := code == "ExpiredTokenException" || s.tokenExpired()
		if expired && attempt < len(waits) {
			s.c.log.Info(fmt.Sprintf("web identity token in %s rejected as expired (%s), re-reading the file in %s",
				s.c.o.TokenFile, code, waits[attempt]))
			t := time.NewTimer(waits[attempt])
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return aws.Credentials{}, s.c.newError(code, "cannot obtain credentials from STS AssumeRoleWithWebIdentity: "+
					code+": "+awsMsg, "", err)
			}
			continue
		}
		if expired {
			return aws.Credentials{}, s.c.newError(code,
				"cannot obtain credentials from STS AssumeRoleWithWebIdentity: "+code+": "+awsMsg+
					": the web identity token in "+s.c.o.TokenFile+" has expired and the file is not being rotated",
				"the token file must be replaced before the token expires (kubelet-projected service account token volume)", err)
		}
		return aws.Credentials{}, s.c.newError(code,
			"cannot obtain credentials from STS AssumeRoleWithWebIdentity: "+code+": "+awsMsg, hintWebID(code), err)
	}
}

// tokenExpired reports whether the last token sent is a JWT past its exp
// (MinIO answers an expired token with InvalidParameterValue).
func (s *webIDSource) tokenExpired() bool {
	cl, ok := decodeJWT(s.tok.lastToken())
	if !ok {
		return false
	}
	exp, ok := cl.expiry()
	return ok && !exp.After(s.c.now())
}

func hintWebID(code string) string {
	switch code {
	case "AccessDenied":
		return "the role's trust policy does not allow this token (check its issuer, subject and audience conditions)"
	case "InvalidIdentityToken":
		return "STS could not validate the token: is the OIDC provider of the issuer registered, and the audience right?"
	case "InvalidParameterValue":
		return "check the role ARN and the token (MinIO answers a bad role, a bad or an expired token with InvalidParameterValue)"
	case "IDPRejectedClaim":
		return "the identity provider rejected the token"
	case "RegionDisabledException":
		return "STS is not activated in this region"
	}
	return ""
}

// ---------------------------------------------------------------- pod-id (EKS pod identity)

type podIDSource struct {
	c    *Cache
	prov *endpointcreds.Provider
	tok  *tokenFile
}

func newPodID(c *Cache) (*podIDSource, error) {
	uri := c.o.ContainerURI
	u, err := url.Parse(uri)
	if err != nil || u.Host == "" {
		return nil, errs.New(errs.OptionInvalidValue, "AWS_CONTAINER_CREDENTIALS_FULL_URI '%s' is not a URL", uri)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !allowedHTTPHost(u.Hostname()) {
			return nil, errs.New(errs.OptionInvalidValue,
				"AWS_CONTAINER_CREDENTIALS_FULL_URI '%s' uses plain http to a host that is neither loopback nor the EKS/ECS link-local agent", uri)
		}
	default:
		return nil, errs.New(errs.OptionInvalidValue, "AWS_CONTAINER_CREDENTIALS_FULL_URI '%s' must be http or https", uri)
	}
	tok := &tokenFile{c: c, path: c.o.ContainerTokenFile}
	prov := endpointcreds.New(uri, func(o *endpointcreds.Options) {
		if c.o.HTTPClient != nil {
			o.HTTPClient = c.o.HTTPClient
		}
		o.AuthorizationTokenProvider = endpointcreds.TokenProviderFunc(tok.read)
	})
	return &podIDSource{c: c, prov: prov, tok: tok}, nil
}

func allowedHTTPHost(h string) bool {
	switch h {
	case "localhost", "169.254.170.23", "169.254.170.2", "fd00:ec2::23":
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func (s *podIDSource) source() string {
	return "pod identity " + s.c.o.ContainerURI + ", token file " + s.c.o.ContainerTokenFile
}

func (s *podIDSource) fetch(ctx context.Context) (aws.Credentials, error) {
	creds, err := s.prov.Retrieve(ctx)
	if err != nil {
		if tre := s.tok.readErr(); tre != nil {
			return aws.Credentials{}, s.c.newError("", "cannot obtain credentials: "+tre.msg,
				"check AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE and the pod's volume mounts", err)
		}
		code, awsMsg := apiCode(err)
		msg := "cannot obtain credentials from pod identity agent: "
		if st := httpStatus(err); st != 0 {
			msg += fmt.Sprintf("HTTP %d: ", st)
		}
		if code != "" || awsMsg != "" {
			msg += strings.TrimPrefix(code+": "+awsMsg, ": ")
		} else {
			msg += errText(err)
		}
		return aws.Credentials{}, s.c.newError(code, msg, "", err)
	}
	creds.Source = "pod identity"
	return creds, nil
}

// ---------------------------------------------------------------- process

type processSource struct {
	c    *Cache
	prov *processcreds.Provider
	mu   sync.Mutex
	errb *bytes.Buffer
}

func newProcess(c *Cache) *processSource {
	s := &processSource{c: c}
	args := c.o.ProcessCmd
	s.prov = processcreds.NewProviderCommand(processcreds.NewCommandBuilderFunc(func(ctx context.Context) (*exec.Cmd, error) {
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Env = c.o.Environ
		s.mu.Lock()
		s.errb = &bytes.Buffer{}
		cmd.Stderr = &limitedWriter{w: s.errb, n: 4096}
		s.mu.Unlock()
		return cmd, nil
	}))
	return s
}

func (s *processSource) source() string {
	return "process " + s.c.o.ProcessCmd[0]
}

func (s *processSource) fetch(ctx context.Context) (aws.Credentials, error) {
	creds, err := s.prov.Retrieve(ctx)
	if err != nil {
		// The SDK's parse error quotes the whole output, which may hold a
		// secret: never use its text for a parse failure.
		text, cause := errText(err), err
		if strings.Contains(text, "parse failed of process output") {
			text, cause = "output is not credential_process JSON", nil
		}
		s.mu.Lock()
		stderr := ""
		if s.errb != nil {
			stderr = strings.TrimSpace(s.errb.String())
		}
		s.mu.Unlock()
		if stderr != "" {
			text += "; stderr: " + stderr
		}
		return aws.Credentials{}, s.c.newError("", "cannot obtain credentials from process: "+text, "", cause)
	}
	creds.Source = "process"
	return creds, nil
}

type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		q := p
		if len(q) > l.n {
			q = q[:l.n]
		}
		l.n -= len(q)
		l.w.Write(q)
	}
	return len(p), nil
}

// ---------------------------------------------------------------- helpers

func errCode(err error) string {
	c, _ := apiCode(err)
	return c
}

// errText gives the innermost useful text of an SDK error chain, without
// the "operation error X: https response error StatusCode..." noise when an
// API error is present.
func errText(err error) string {
	if code, msg := apiCode(err); code != "" {
		if msg != "" {
			return code + ": " + msg
		}
		return code
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}
