package credentials

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// s3Err builds the error chain the S3 client returns for an HTTP error.
func s3Err(status int, code string) error {
	var api error
	if code != "" {
		api = &smithy.GenericAPIError{Code: code, Message: "message for " + code}
	} else {
		api = fmt.Errorf("http response error StatusCode: %d", status)
	}
	return &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject", Err: &awshttp.ResponseError{
		RequestID: "req",
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
			Err:      api,
		},
	}}
}

func netErr(err error) error {
	return &smithy.OperationError{ServiceID: "S3", OperationName: "GetObject",
		Err: &smithyhttp.RequestSendError{Err: &url.Error{Op: "Get", URL: "https://s3.example/bucket/key", Err: err}}}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       error
		temporary bool
		class     Class
		code      string
	}{
		{"nil", nil, true, ClassOK, ""},

		{"ExpiredToken", s3Err(400, "ExpiredToken"), true, ClassExpired, "ExpiredToken"},
		{"ExpiredToken static", s3Err(400, "ExpiredToken"), false, ClassExpired, "ExpiredToken"},
		{"ExpiredTokenException other services", s3Err(403, "ExpiredTokenException"), true, ClassExpired, "ExpiredTokenException"},
		{"TokenRefreshRequired", s3Err(400, "TokenRefreshRequired"), true, ClassExpired, "TokenRefreshRequired"},
		{"InvalidToken", s3Err(400, "InvalidToken"), true, ClassExpired, "InvalidToken"},
		{"RequestExpired", s3Err(400, "RequestExpired"), false, ClassExpired, "RequestExpired"},
		{"generic API error", &smithy.GenericAPIError{Code: "ExpiredToken"}, true, ClassExpired, "ExpiredToken"},
		{"wrapped", fmt.Errorf("put x: %w", s3Err(400, "ExpiredToken")), true, ClassExpired, "ExpiredToken"},

		{"MinIO expired session", s3Err(403, "InvalidAccessKeyId"), true, ClassExpired, "InvalidAccessKeyId"},
		{"unknown static key", s3Err(403, "InvalidAccessKeyId"), false, ClassDenied, "InvalidAccessKeyId"},
		{"MinIO bad session token", s3Err(403, "InvalidTokenId"), true, ClassExpired, "InvalidTokenId"},
		{"InvalidTokenId static", s3Err(403, "InvalidTokenId"), false, ClassDenied, "InvalidTokenId"},
		{"InvalidClientTokenId", s3Err(403, "InvalidClientTokenId"), true, ClassExpired, "InvalidClientTokenId"},
		{"InvalidClientTokenId static", s3Err(403, "InvalidClientTokenId"), false, ClassDenied, "InvalidClientTokenId"},

		{"AccessDenied", s3Err(403, "AccessDenied"), true, ClassDenied, "AccessDenied"},
		{"SignatureDoesNotMatch", s3Err(403, "SignatureDoesNotMatch"), true, ClassDenied, "SignatureDoesNotMatch"},
		{"RequestTimeTooSkewed", s3Err(403, "RequestTimeTooSkewed"), true, ClassDenied, "RequestTimeTooSkewed"},
		{"AllAccessDisabled", s3Err(403, "AllAccessDisabled"), true, ClassDenied, "AllAccessDisabled"},
		{"AccountProblem", s3Err(403, "AccountProblem"), false, ClassDenied, "AccountProblem"},
		{"InvalidSecurity", s3Err(403, "InvalidSecurity"), true, ClassDenied, "InvalidSecurity"},

		{"HEAD 403 temporary", s3Err(403, ""), true, ClassExpired, ""},
		{"HEAD 403 static", s3Err(403, ""), false, ClassDenied, ""},
		{"HEAD 403 Forbidden code", s3Err(403, "Forbidden"), false, ClassDenied, "Forbidden"},
		{"HEAD 403 Forbidden code temporary", s3Err(403, "Forbidden"), true, ClassExpired, "Forbidden"},
		{"HEAD 400 BadRequest temporary (AWS expired token)", s3Err(400, "BadRequest"), true, ClassExpired, "BadRequest"},
		{"HEAD 400 BadRequest static", s3Err(400, "BadRequest"), false, ClassOther, "BadRequest"},

		{"503 no code", s3Err(503, ""), true, ClassTransient, ""},
		{"500 InternalError", s3Err(500, "InternalError"), true, ClassTransient, "InternalError"},
		{"503 SlowDown", s3Err(503, "SlowDown"), true, ClassTransient, "SlowDown"},
		{"429", s3Err(429, ""), true, ClassTransient, ""},
		{"RequestTimeout code", s3Err(400, "RequestTimeout"), true, ClassTransient, "RequestTimeout"},
		{"Throttling", &smithy.GenericAPIError{Code: "Throttling"}, true, ClassTransient, "Throttling"},
		{"connection reset", netErr(&net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}), true, ClassTransient, ""},
		{"connection refused", netErr(&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}), true, ClassTransient, ""},
		{"broken pipe", netErr(&net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.EPIPE)}), false, ClassTransient, ""},
		{"unexpected EOF", netErr(io.ErrUnexpectedEOF), true, ClassTransient, ""},
		{"i/o timeout", netErr(&net.OpError{Op: "read", Net: "tcp", Err: &net.DNSError{IsTimeout: true}}), true, ClassTransient, ""},
		{"deadline", fmt.Errorf("op: %w", context.DeadlineExceeded), true, ClassTransient, ""},

		{"canceled", fmt.Errorf("op: %w", context.Canceled), true, ClassOther, ""},
		{"SDK canceled", &aws.RequestCanceledError{Err: context.Canceled}, true, ClassOther, ""},
		{"bad certificate", netErr(x509.UnknownAuthorityError{}), true, ClassOther, ""},
		{"no such host", netErr(&net.DNSError{Err: "no such host", Name: "s3.invalid", IsNotFound: true}), true, ClassOther, ""},
		{"NoSuchKey", s3Err(404, "NoSuchKey"), true, ClassOther, "NoSuchKey"},
		{"400 other code", s3Err(400, "InvalidArgument"), true, ClassOther, "InvalidArgument"},
		{"plain", errors.New("boom"), true, ClassOther, ""},

		{"credential source denied", &Error{KeyType: "web-id", Code: "AccessDenied", Err: s3Err(403, "AccessDenied")}, true, ClassDenied, "AccessDenied"},
		{"credential source wrapped by SDK", fmt.Errorf("get identity: %w", &Error{Code: "InvalidParameterValue"}), true, ClassDenied, "InvalidParameterValue"},
		{"credential source expired JWT", &Error{Code: "ExpiredTokenException", Err: s3Err(400, "ExpiredTokenException")}, true, ClassDenied, "ExpiredTokenException"},
		{"credential source 503", &Error{Code: "ServiceUnavailable", Err: s3Err(503, "ServiceUnavailable")}, true, ClassTransient, "ServiceUnavailable"},
		{"credential source unreachable", &Error{Err: netErr(&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)})}, true, ClassTransient, ""},
	} {
		class, code := Classify(tc.err, tc.temporary)
		if class != tc.class || code != tc.code {
			t.Errorf("%s: got %v %q, want %v %q", tc.name, class, code, tc.class, tc.code)
		}
	}
}
