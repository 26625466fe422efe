package credentials

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aws/smithy-go"
)

// Error reports credentials that could not be obtained or were rejected. It
// names the key type, the source (role ARN, token file with the token's
// age and expiry, endpoint) and the AWS error code; never a secret.
type Error struct {
	KeyType  string // shared, auto, web-id, pod-id, process
	Describe string // source description, see Cache.Describe, plus token file details
	Code     string // AWS error code ("AccessDenied", "ExpiredTokenException"), may be empty
	Message  string // what happened, including the AWS message
	Hint     string // what to do, may be empty
	Err      error  // cause (its text may be less careful; Error() does not use it)
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Message)
	if e.Describe != "" {
		b.WriteString(" (")
		b.WriteString(e.Describe)
		b.WriteString(")")
	}
	if e.Hint != "" {
		b.WriteString("\nHINT: ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// newError builds an *Error for this cache. msg must not contain secrets; it
// is scrubbed anyway.
func (c *Cache) newError(code, msg, hint string, cause error) *Error {
	d := c.describe
	if d == "" {
		d = "key type " + c.keyType
	}
	if tf := c.tokenFile(); tf != "" {
		if info := tokenFileInfo(tf, c.now()); info != "" {
			d += "; " + info
		}
	}
	return &Error{
		KeyType:  c.keyType,
		Describe: c.secrets.redact(d),
		Code:     code,
		Message:  c.secrets.redact(msg),
		Hint:     hint,
		Err:      cause,
	}
}

func (c *Cache) tokenFile() string {
	switch c.keyType {
	case KeyTypeWebID:
		return c.o.TokenFile
	case KeyTypePodID:
		return c.o.ContainerTokenFile
	}
	return ""
}

// Wrap turns a storage request error that Classify put in ClassDenied (or a
// second expired-class failure right after a refresh) into an *Error naming
// the credential source, the AWS code and a hint. op names the request, e.g.
// "PutObject s3://bucket/key". After a refresh (retried true) an
// expired-class code is reported as a rejection of fresh credentials.
func (c *Cache) Wrap(err error, op string, retried bool) *Error {
	var ce *Error
	if errors.As(err, &ce) {
		return ce
	}
	code, awsMsg := apiCode(err)
	class, _ := Classify(err, c.temporary)
	msg := op + " failed"
	if code != "" {
		msg += ": " + code
		if awsMsg != "" {
			msg += ": " + awsMsg
		}
	} else {
		msg += ": " + err.Error()
	}
	hint := hintFor(code)
	if retried && class == ClassExpired {
		msg = "credentials rejected right after refresh: " + msg
		hint = "the session was revoked, the role removed, or the endpoint/region does not match the credentials"
		if code == "InvalidToken" {
			hint += " (a session token from the global STS endpoint is rejected in opt-in regions: set " + c.o.Repo + "-s3-sts-host to the regional STS)"
		}
	}
	return c.newError(code, msg, hint, err)
}

func hintFor(code string) string {
	switch code {
	case "SignatureDoesNotMatch":
		return "check the key secret, the region, and that no proxy alters requests"
	case "RequestTimeTooSkewed":
		return "the clock of this host is off by more than 15 minutes: fix the clock"
	case "AccessDenied":
		return "the identity is known but a policy (role, bucket, KMS key) denies this request"
	case "InvalidAccessKeyId":
		return "the access key does not exist on this endpoint"
	case "AllAccessDisabled", "AccountProblem", "InvalidSecurity":
		return "an account-level problem: contact the storage provider"
	}
	return ""
}

// apiCode returns the smithy API error code and message of err, if any.
func apiCode(err error) (code, msg string) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode(), ae.ErrorMessage()
	}
	return "", ""
}

// jwtClaims are the claims we show (none is secret; the signature is what
// makes a token usable and it is never printed).
type jwtClaims struct {
	Iss string          `json:"iss"`
	Sub string          `json:"sub"`
	Aud json.RawMessage `json:"aud"`
	Exp *float64        `json:"exp"`
	Iat *float64        `json:"iat"`
}

// decodeJWT decodes the payload of a JWT without verifying it.
func decodeJWT(tok string) (jwtClaims, bool) {
	var cl jwtClaims
	parts := strings.Split(strings.TrimSpace(tok), ".")
	if len(parts) != 3 {
		return cl, false
	}
	p := strings.TrimRight(parts[1], "=")
	b, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		if b, err = base64.RawStdEncoding.DecodeString(p); err != nil {
			return cl, false
		}
	}
	if json.Unmarshal(b, &cl) != nil {
		return cl, false
	}
	return cl, true
}

func (cl jwtClaims) expiry() (time.Time, bool) {
	if cl.Exp == nil {
		return time.Time{}, false
	}
	return time.Unix(int64(*cl.Exp), 0), true
}

func (cl jwtClaims) audience() string {
	if len(cl.Aud) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(cl.Aud, &s) == nil {
		return s
	}
	var l []string
	if json.Unmarshal(cl.Aud, &l) == nil {
		return strings.Join(l, ",")
	}
	return ""
}

// tokenFileInfo describes a token file: its age and, for a JWT, issuer,
// subject, audience and expiry. Never the token.
func tokenFileInfo(path string, now time.Time) string {
	st, err := os.Stat(path)
	if err != nil {
		return "token file unreadable: " + scrubPathErr(err)
	}
	parts := []string{"token file written " + ago(now, st.ModTime())}
	b, err := os.ReadFile(path)
	if err != nil {
		return parts[0] + ", unreadable: " + scrubPathErr(err)
	}
	cl, ok := decodeJWT(string(b))
	if !ok {
		return parts[0]
	}
	if cl.Iss != "" {
		parts = append(parts, "issuer "+cl.Iss)
	}
	if cl.Sub != "" {
		parts = append(parts, "subject "+cl.Sub)
	}
	if aud := cl.audience(); aud != "" {
		parts = append(parts, "audience "+aud)
	}
	if exp, ok := cl.expiry(); ok {
		if exp.After(now) {
			parts = append(parts, "token expires at "+fmtTime(exp)+" (in "+dur(exp.Sub(now))+")")
		} else {
			parts = append(parts, "token expired at "+fmtTime(exp)+" ("+dur(now.Sub(exp))+" ago)")
		}
	}
	return strings.Join(parts, ", ")
}

func ago(now, t time.Time) string {
	if t.After(now) {
		return "just now"
	}
	return dur(now.Sub(t)) + " ago"
}

func dur(d time.Duration) string {
	if d >= time.Second {
		d = d.Round(time.Second)
	} else {
		d = d.Round(time.Millisecond)
	}
	return d.String()
}

func scrubPathErr(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return fmt.Sprint(err)
}
