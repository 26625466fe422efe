package command

import (
	"os"

	"github.com/pgbr-dev/pgbr/internal/credentials"
	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/storage"
	"github.com/pgbr-dev/pgbr/internal/storage/s3"
)

// openS3 builds the S3 driver and its credential cache for repo<key> from
// pgBackRest's options (and pgbr's credential options, which the
// environment of archive_command/restore_command may not carry).
func (e *Env) openS3(key int) (storage.Storage, error) {
	o := func(name string) string { return e.Cfg.String(e.ropt(key, name)) }
	logger := e.Log.Slog()
	so := s3.Options{
		Bucket: o("s3-bucket"), Endpoint: o("s3-endpoint"), Host: o("storage-host"), Region: o("s3-region"), URIStyle: o("s3-uri-style"),
		Port: int(e.Cfg.Int(e.ropt(key, "storage-port"))), Path: o("path"),
		VerifyTLS: e.Cfg.Bool(e.ropt(key, "storage-verify-tls")), CAFile: o("storage-ca-file"), CAPath: o("storage-ca-path"),
		UploadChunkSize: e.Cfg.Size(e.ropt(key, "storage-upload-chunk-size")), KMSKeyID: o("s3-kms-key-id"),
		SSECustomerKey: o("s3-sse-customer-key"), RequesterPays: e.Cfg.Bool(e.ropt(key, "s3-requester-pays")),
		IOTimeout: e.Cfg.Duration("io-timeout"), Logger: logger,
	}
	if tags := e.Cfg.Hash(e.ropt(key, "storage-tag")); len(tags) > 0 {
		so.Tags = map[string]string{}
		for _, kv := range tags {
			so.Tags[kv[0]] = kv[1]
		}
	}
	hc, err := s3.HTTPClient(so)
	if err != nil {
		return nil, err
	}
	so.HTTPClient = hc
	keyType := o("s3-key-type")
	if keyType == "" {
		keyType = "shared"
	}
	co := credentials.Options{
		KeyType: keyType, Key: o("s3-key"), Secret: o("s3-key-secret"), Token: o("s3-token"),
		RoleARN: o("s3-role-arn"), TokenFile: o("s3-web-id-token-file"), SessionName: o("s3-role-session-name"),
		Region: so.Region, STSEndpoint: o("s3-sts-host"), ContainerURI: o("s3-pod-id-uri"),
		ContainerTokenFile: o("s3-pod-id-token-file"), IMDSEndpoint: o("s3-imds-endpoint"),
		ProcessCmd: e.Cfg.List(e.ropt(key, "s3-process-cmd")), HTTPClient: hc, Environ: os.Environ(),
		Repo: "repo" + itoa(key), Logger: logger, Now: e.Now,
	}
	if keyType == "auto" {
		co.Role = o("s3-role")
	}
	if v := o("s3-sts-regional-endpoints"); v != "" {
		co.Environ = append(co.Environ, "AWS_STS_REGIONAL_ENDPOINTS="+v)
	}
	for _, s := range []string{co.Secret, co.Token, so.SSECustomerKey} {
		if s != "" {
			e.Log.Redact(s)
		}
	}
	cache, err := credentials.New(e.Ctx, co)
	if err != nil {
		if errs.CodeOf(err) == errs.Unknown {
			return nil, errs.Wrap(errs.OptionInvalid, err, "repo%d: invalid S3 credential options", key)
		}
		return nil, err
	}
	so.Creds = cache
	e.noteCreds(key, keyType, co.RoleARN, cache)
	e.s3Creds.Store(key, cache)
	return s3.New(e.Ctx, so)
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
