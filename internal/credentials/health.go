package credentials

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Health describes where a Cache's credentials come from and how long the
// current ones last, for `check`. It never holds a secret: no key secret,
// no session token, no web identity token (only claims' times from it).
type Health struct {
	KeyType string
	Source  string // Describe()
	// Temporary: the credentials expire (every key type but shared
	// without a session token).
	Temporary bool

	RoleARN     string // web-id
	STSEndpoint string // web-id
	// TokenFile is the web identity (web-id) or authorization (pod-id)
	// token file; TokenFileErr says why it could not be read.
	TokenFile    string
	TokenFileErr string
	TokenFileMod time.Time // last write (rotation) of the token file
	// TokenIssued/TokenExpiry are the JWT iat/exp claims of the token in
	// the file now (zero when it is not a JWT or has no such claim).
	TokenIssued, TokenExpiry time.Time
	// TokenSubject/TokenIssuer/TokenAudience are the token's sub, iss and
	// aud claims (who the role trusts), not secrets.
	TokenSubject, TokenIssuer, TokenAudience string

	// AccessKeyID of the current credentials ("" before the first fetch).
	AccessKeyID string
	// Expiry of the current credentials (zero: they do not expire).
	Expiry time.Time
}

// AccessKeyPrefix is the first characters of the access key id, enough to
// tell keys apart in a report.
func (h Health) AccessKeyPrefix() string {
	if len(h.AccessKeyID) <= 8 {
		return h.AccessKeyID
	}
	return h.AccessKeyID[:8] + "..."
}

// TokenLifetime is exp - iat of the token in the file (0 when unknown).
func (h Health) TokenLifetime() time.Duration {
	if h.TokenIssued.IsZero() || h.TokenExpiry.IsZero() {
		return 0
	}
	return h.TokenExpiry.Sub(h.TokenIssued)
}

// Health reports the source and the current credentials. Call it after
// a request succeeded to describe the credentials S3 accepted.
func (c *Cache) Health() Health {
	h := Health{KeyType: c.keyType, Source: c.describe, Temporary: c.temporary}
	switch s := c.src.(type) {
	case *webIDSource:
		h.RoleARN, h.STSEndpoint, h.TokenFile = c.o.RoleARN, s.endpoint, c.o.TokenFile
	case *podIDSource:
		h.TokenFile = c.o.ContainerTokenFile
	}
	if h.TokenFile != "" {
		if fi, err := os.Stat(h.TokenFile); err != nil {
			h.TokenFileErr = scrubPathErr(err)
		} else {
			h.TokenFileMod = fi.ModTime()
			if b, err := os.ReadFile(h.TokenFile); err == nil {
				if cl, ok := decodeJWT(string(b)); ok {
					if exp, ok := cl.expiry(); ok {
						h.TokenExpiry = exp
					}
					if cl.Iat != nil {
						h.TokenIssued = time.Unix(int64(*cl.Iat), 0)
					}
					h.TokenSubject, h.TokenIssuer, h.TokenAudience = cl.Sub, cl.Iss, cl.audience()
				}
			}
		}
	}
	c.mu.Lock()
	if c.cur != nil {
		h.AccessKeyID = c.cur.creds.AccessKeyID
		if c.cur.creds.CanExpire {
			h.Expiry = c.cur.creds.Expires
		}
	}
	c.mu.Unlock()
	return h
}

// CallerIdentity asks STS who the current credentials are
// (GetCallerIdentity) and returns the ARN. Only web identity credentials
// come from a known STS endpoint; for other key types it returns "", nil.
// The error is short: the STS error code or the transport error.
func (c *Cache) CallerIdentity(ctx context.Context) (string, error) {
	s, ok := c.src.(*webIDSource)
	if !ok {
		return "", nil
	}
	region := c.o.Region
	if region == "" {
		region = "us-east-1"
	}
	so := sts.Options{Region: region, BaseEndpoint: aws.String(s.endpoint), Credentials: c}
	if c.o.HTTPClient != nil {
		so.HTTPClient = c.o.HTTPClient
	}
	out, err := sts.New(so).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		code, _ := apiCode(err)
		if code == "" {
			return "", fmt.Errorf("STS GetCallerIdentity: %s", c.secrets.redact(errText(err)))
		}
		return "", fmt.Errorf("STS GetCallerIdentity: %s", code)
	}
	return aws.ToString(out.Arn), nil
}
