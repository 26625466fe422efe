package credentials

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// The S3 client asks the cache before every attempt: after Invalidate the
// retried request is signed with fresh credentials, and a credential source
// failure reaches the caller as *Error.
func TestWithS3Client(t *testing.T) {
	clk := newClock()
	tf := tempPath(t, "token")
	writeFile(t, tf, "tok")
	pod := newPodFake(t, clk.Now, time.Hour, tf)
	c := newPodCache(t, pod, clk, &logSink{})

	keyRE := regexp.MustCompile(`Credential=([A-Z0-9]+)/`)
	var mu sync.Mutex
	revoked := map[string]bool{}
	var signedWith []string
	s3srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := keyRE.FindStringSubmatch(r.Header.Get("Authorization"))
		mu.Lock()
		defer mu.Unlock()
		if m == nil {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		signedWith = append(signedWith, m[1])
		if revoked[m[1]] || r.Header.Get("X-Amz-Security-Token") == "" {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidAccessKeyId</Code><Message>The Access Key Id you provided does not exist in our records.</Message><RequestId>1</RequestId></Error>`)
			return
		}
		w.Header().Set("ETag", `"x"`)
	}))
	defer s3srv.Close()
	client := s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(s3srv.URL), UsePathStyle: true, Credentials: c,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	put := func() error {
		_, err := client.PutObject(context.Background(), &s3.PutObjectInput{
			Bucket: aws.String("b"), Key: aws.String("k"), Body: strings.NewReader("data")})
		return err
	}

	if err := put(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	revoked["ASIAPOD1"] = true // session revoked (MinIO answers 403 InvalidAccessKeyId)
	mu.Unlock()
	err := put()
	class, code := Classify(err, c.Temporary())
	if class != ClassExpired || code != "InvalidAccessKeyId" {
		t.Fatalf("Classify %v %q: %v", class, code, err)
	}
	if !c.Invalidate("ASIAPOD1") {
		t.Fatal("Invalidate")
	}
	if err := put(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := strings.Join(signedWith, ",")
	mu.Unlock()
	if got != "ASIAPOD1,ASIAPOD1,ASIAPOD2" {
		t.Fatalf("requests signed with %s", got)
	}

	pod.fail.Store(true)
	c.Invalidate("ASIAPOD2")
	err = put()
	var ce *Error
	if !errors.As(err, &ce) || ce.KeyType != "pod-id" || ce.Code != "InvalidToken" {
		t.Fatalf("want *Error through the SDK, got %T %v", err, err)
	}
	if class, _ := Classify(err, true); class != ClassDenied {
		t.Fatalf("class %v", class)
	}
}
