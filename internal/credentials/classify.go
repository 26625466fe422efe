package credentials

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Class says what a storage driver should do with a failed request.
type Class int

const (
	// ClassOK: no error.
	ClassOK Class = iota
	// ClassExpired: the credentials expired or were revoked: Invalidate the
	// key the request was signed with and retry once.
	ClassExpired
	// ClassDenied: a real denial (or credentials that cannot be obtained):
	// fail fast with Cache.Wrap.
	ClassDenied
	// ClassTransient: 5xx, throttling, timeouts, connection resets: let the
	// normal retry handle it.
	ClassTransient
	// ClassOther: anything else (not found, precondition, canceled...).
	ClassOther
)

func (c Class) String() string {
	switch c {
	case ClassOK:
		return "ok"
	case ClassExpired:
		return "expired"
	case ClassDenied:
		return "denied"
	case ClassTransient:
		return "transient"
	}
	return "other"
}

var (
	expiredCodes = set("ExpiredToken", "ExpiredTokenException", "TokenRefreshRequired", "InvalidToken", "RequestExpired")
	// expired only when the credentials are temporary (MinIO answers an
	// expired or revoked STS session with InvalidAccessKeyId).
	keyCodes    = set("InvalidAccessKeyId", "InvalidTokenId", "InvalidClientTokenId", "UnrecognizedClientException")
	deniedCodes = set("AccessDenied", "AccessDeniedException", "SignatureDoesNotMatch", "RequestTimeTooSkewed",
		"AllAccessDisabled", "AccountProblem", "InvalidSecurity", "InvalidIdentityToken", "IDPRejectedClaim",
		"InvalidParameterValue", "MalformedPolicyDocument", "PackedPolicyTooLarge", "RegionDisabledException",
		"MissingSecurityHeader", "NotSignedUp")
	transientCodes = set("SlowDown", "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
		"RequestThrottledException", "TooManyRequestsException", "RequestLimitExceeded", "BandwidthLimitExceeded",
		"ProvisionedThroughputExceededException", "EC2ThrottledException", "PriorRequestNotComplete",
		"TransactionInProgressException", "RequestTimeout", "RequestTimeoutException", "InternalError",
		"InternalFailure", "ServiceUnavailable", "IDPCommunicationError", "XMinioServerNotInitialized")
)

func set(v ...string) map[string]bool {
	m := make(map[string]bool, len(v))
	for _, s := range v {
		m[s] = true
	}
	return m
}

// Classify sorts a storage request error (s3-credentials.md §6): expired
// session codes → ClassExpired; InvalidAccessKeyId, InvalidTokenId,
// InvalidClientTokenId → ClassExpired when temporary, else ClassDenied;
// AccessDenied, SignatureDoesNotMatch, RequestTimeTooSkewed,
// AllAccessDisabled, AccountProblem, InvalidSecurity → ClassDenied; 5xx, 429,
// throttling codes, timeouts and connection errors → ClassTransient. A bare
// 403 or 400 without an error code (HEAD answers have no body; the SDK makes
// the code "Forbidden" or "BadRequest" from the status) counts as expired when
// temporary (one invalidate+retry tells), else 403 is denied. An *Error from
// the credential source is ClassDenied unless its cause is transient. code is
// the AWS error code, if any.
func Classify(err error, temporary bool) (Class, string) {
	if err == nil {
		return ClassOK, ""
	}
	code, _ := apiCode(err)
	var ce *Error
	if errors.As(err, &ce) {
		if ce.Err != nil && isTransient(ce.Err, ce.Code) {
			return ClassTransient, ce.Code
		}
		return ClassDenied, ce.Code
	}
	if errors.Is(err, context.Canceled) {
		return ClassOther, code
	}
	var rc *aws.RequestCanceledError
	if errors.As(err, &rc) && !errors.Is(err, context.DeadlineExceeded) {
		return ClassOther, code
	}
	switch {
	case expiredCodes[code]:
		return ClassExpired, code
	case keyCodes[code]:
		if temporary {
			return ClassExpired, code
		}
		return ClassDenied, code
	case deniedCodes[code]:
		return ClassDenied, code
	}
	if isTransient(err, code) {
		return ClassTransient, code
	}
	// HEAD answers have no body: the SDK derives the code from the status.
	if st := httpStatus(err); (st == 403 || st == 400) &&
		(code == "" || code == "UnknownError" || code == "Forbidden" || code == "BadRequest") {
		switch {
		case temporary:
			return ClassExpired, code
		case st == 403:
			return ClassDenied, code
		}
	}
	return ClassOther, code
}

func httpStatus(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	var sre *smithyhttp.ResponseError
	if errors.As(err, &sre) && sre.Response != nil {
		return sre.Response.StatusCode
	}
	return 0
}

func isTransient(err error, code string) bool {
	if transientCodes[code] {
		return true
	}
	if st := httpStatus(err); st >= 500 || st == 429 || st == 408 {
		return true
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return true
	}
	// A certificate that does not verify or a name that does not resolve
	// will not get better by retrying.
	var uae x509.UnknownAuthorityError
	var hne x509.HostnameError
	var cie x509.CertificateInvalidError
	var tve *tls.CertificateVerificationError
	var dnse *net.DNSError
	if errors.As(err, &uae) || errors.As(err, &hne) || errors.As(err, &cie) || errors.As(err, &tve) ||
		(errors.As(err, &dnse) && dnse.IsNotFound) {
		return false
	}
	if (retry.RetryableConnectionError{}).IsErrorRetryable(err) == aws.TrueTernary {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "connection reset") || strings.Contains(s, "broken pipe") ||
		strings.Contains(s, "unexpected EOF") || strings.Contains(s, "TLS handshake timeout")
}
