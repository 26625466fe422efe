package credentials

import (
	"context"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/errs"
)

func TestNewValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		msg  string
		code errs.Code
	}{
		{"web-id nothing set", Options{KeyType: "web-id"},
			"option 'repo1-s3-key-type' is 'web-id' but 'AWS_ROLE_ARN' and 'AWS_WEB_IDENTITY_TOKEN_FILE' are not set", errs.OptionInvalid},
		{"web-id no token file", Options{KeyType: "web-id", Repo: "repo2", Environ: []string{"AWS_ROLE_ARN=arn:x"}},
			"option 'repo2-s3-key-type' is 'web-id' but 'AWS_WEB_IDENTITY_TOKEN_FILE' is not set", errs.OptionInvalid},
		{"web-id no role", Options{KeyType: "web-id", TokenFile: "/t"},
			"option 'repo1-s3-key-type' is 'web-id' but 'AWS_ROLE_ARN' is not set", errs.OptionInvalid},
		{"pod-id nothing set", Options{KeyType: "pod-id"},
			"option 'repo1-s3-key-type' is 'pod-id' but 'AWS_CONTAINER_CREDENTIALS_FULL_URI' and 'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE' are not set", errs.OptionInvalid},
		{"shared no key", Options{},
			"option 'repo1-s3-key-type' is 'shared' but 'repo1-s3-key' and 'repo1-s3-key-secret' are not set", errs.OptionInvalid},
		{"shared no secret", Options{Key: "AKIA"},
			"option 'repo1-s3-key-type' is 'shared' but 'repo1-s3-key-secret' is not set", errs.OptionInvalid},
		{"process no command", Options{KeyType: "process"},
			"option 'repo1-s3-key-type' is 'process' but 'repo1-s3-process-cmd' is not set", errs.OptionInvalid},
		{"bad key type", Options{KeyType: "magic"},
			"'magic' is not allowed for 'repo1-s3-key-type' option\nHINT: allowed values are shared, auto, web-id, pod-id, process", errs.OptionInvalidValue},
		{"bad sts host", Options{KeyType: "web-id", RoleARN: "arn:x", TokenFile: "/t", STSEndpoint: "ftp://sts"},
			"'ftp://sts' is not a valid STS host for option 'repo1-s3-sts-host'", errs.OptionInvalidValue},
	} {
		if tc.o.Environ == nil {
			tc.o.Environ = []string{"AWS_ROLE_ARN="} // not inherited from the test's environment
		}
		_, err := New(context.Background(), tc.o)
		if err == nil || err.Error() != tc.msg || errs.CodeOf(err) != tc.code {
			t.Errorf("%s:\n got %v (code %d)\nwant %s", tc.name, err, errs.CodeOf(err), tc.msg)
		}
	}
}

// Options beat the environment; the environment fills what options leave out.
func TestNewOptionsBeatEnvironment(t *testing.T) {
	env := []string{
		"AWS_ROLE_ARN=arn:aws:iam::1:role/env", "AWS_WEB_IDENTITY_TOKEN_FILE=/env/token",
		"AWS_ROLE_SESSION_NAME=env-session", "AWS_ENDPOINT_URL=https://env-endpoint",
	}
	c, err := New(context.Background(), Options{KeyType: "web-id", Environ: env, Region: "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "key type web-id, role arn:aws:iam::1:role/env, token file /env/token, sts https://env-endpoint"; c.Describe() != want {
		t.Fatalf("Describe %q", c.Describe())
	}
	c, err = New(context.Background(), Options{KeyType: "web-id", Environ: env, Region: "eu-west-1",
		RoleARN: "arn:aws:iam::1:role/opt", TokenFile: "/opt/token", STSEndpoint: "sts.internal:9000"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "key type web-id, role arn:aws:iam::1:role/opt, token file /opt/token, sts https://sts.internal:9000"; c.Describe() != want {
		t.Fatalf("Describe %q", c.Describe())
	}

	c, err = New(context.Background(), Options{KeyType: "pod-id", Environ: []string{
		"AWS_CONTAINER_CREDENTIALS_FULL_URI=http://169.254.170.23/v1/credentials",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token",
	}})
	if err != nil {
		t.Fatal(err)
	}
	if want := "key type pod-id, pod identity http://169.254.170.23/v1/credentials, token file /var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token"; c.Describe() != want {
		t.Fatalf("Describe %q", c.Describe())
	}

	c, err = New(context.Background(), Options{KeyType: "auto", Environ: []string{"AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:1338/"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := "key type auto, instance metadata http://127.0.0.1:1338, role discovered"; c.Describe() != want {
		t.Fatalf("Describe %q", c.Describe())
	}
	c, err = New(context.Background(), Options{KeyType: "auto", Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if want := "key type auto, instance metadata http://169.254.169.254, role discovered"; c.Describe() != want {
		t.Fatalf("Describe %q", c.Describe())
	}
}

func TestSTSEndpoint(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{STSEndpoint: "sts.example.com"}, "https://sts.example.com"},
		{Options{STSEndpoint: "127.0.0.1:9000"}, "https://127.0.0.1:9000"},
		{Options{STSEndpoint: "http://minio:9000/"}, "http://minio:9000"},
		{Options{STSEndpoint: "sts.opt", Environ: []string{"AWS_ENDPOINT_URL_STS=https://sts.env"}}, "https://sts.opt"},
		{Options{Region: "eu-west-1", Environ: []string{"AWS_ENDPOINT_URL_STS=https://sts.env", "AWS_ENDPOINT_URL=https://all.env"}}, "https://sts.env"},
		{Options{Region: "eu-west-1", Environ: []string{"AWS_ENDPOINT_URL=https://all.env"}}, "https://all.env"},
		{Options{Region: "eu-central-2"}, "https://sts.eu-central-2.amazonaws.com"},
		{Options{Region: "cn-north-1"}, "https://sts.cn-north-1.amazonaws.com.cn"},
		{Options{Region: "eu-west-1", Environ: []string{"AWS_STS_REGIONAL_ENDPOINTS=legacy"}}, "https://sts.amazonaws.com"},
		{Options{Region: "eu-west-1", Environ: []string{"AWS_STS_REGIONAL_ENDPOINTS=regional"}}, "https://sts.eu-west-1.amazonaws.com"},
		{Options{}, "https://sts.amazonaws.com"},
	} {
		got, err := stsEndpoint(tc.o)
		if err != nil || got != tc.want {
			t.Errorf("%+v: got %q %v, want %q", tc.o, got, err, tc.want)
		}
	}
}

func TestDecodeJWT(t *testing.T) {
	for _, tok := range []string{"", "abc", "a.b", "a.!!!.c", "a." + "bm90IGpzb24" + ".c"} {
		if _, ok := decodeJWT(tok); ok {
			t.Errorf("%q decoded", tok)
		}
	}
	cl, ok := decodeJWT(fakeJWT(newClock().Now(), "sig") + "\n")
	if !ok || cl.Sub != "system:serviceaccount:db:pgbr" || cl.audience() != "sts.amazonaws.com" {
		t.Fatalf("%+v %v", cl, ok)
	}
}
