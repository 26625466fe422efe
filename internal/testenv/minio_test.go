//go:build integration

package testenv

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

func TestStartMinIO(t *testing.T) {
	start := time.Now()
	m := StartMinIO(t)
	t.Logf("MinIO up in %s at %s, role %s", time.Since(start), m.URL, m.RoleARN)
	tok := m.OIDC.Token(20*time.Second, "tester")
	c := sts.New(sts.Options{Region: m.Region, BaseEndpoint: aws.String(m.STSEndpoint), HTTPClient: m.HTTPClient(), Credentials: aws.AnonymousCredentials{}})
	out, err := c.AssumeRoleWithWebIdentity(context.Background(), &sts.AssumeRoleWithWebIdentityInput{
		RoleArn: aws.String(m.RoleARN), RoleSessionName: aws.String("x"), WebIdentityToken: aws.String(tok)})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("expires in %s", time.Until(*out.Credentials.Expiration))
	m.RevokeSTS(t)
	p := filepath.Join(t.TempDir(), "tok")
	if err := m.OIDC.WriteTokenFile(p, time.Minute); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if b[len(b)-1] == '\n' {
		t.Fatal("newline")
	}
}
