package command

import (
	"os"

	"github.com/pgbr-dev/pgbr/internal/config"
	"github.com/pgbr-dev/pgbr/internal/credentials"
	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/storage"
	"github.com/pgbr-dev/pgbr/internal/storage/s3"
)

// openS3 builds the S3 driver and its credential cache for repo<key> from
// pgBackRest's options (and pgbr's credential options, which the
// environment of archive_command/restore_command may not carry).
func (e *Env) openS3(key int) (storage.Storage, error) {
	o := func(opt config.Opt) string { return e.Cfg.String(opt.Index(key)) }
	logger := e.Log.Slog()
	so := s3.Options{
		Bucket: o(config.RepoS3Bucket), Endpoint: o(config.RepoS3Endpoint), Host: o(config.RepoStorageHost), Region: o(config.RepoS3Region), URIStyle: o(config.RepoS3URIStyle),
		Port: int(e.Cfg.Int(config.RepoStoragePort.Index(key))), Path: o(config.RepoPath),
		VerifyTLS: e.Cfg.Bool(config.RepoStorageVerifyTLS.Index(key)), CAFile: o(config.RepoStorageCAFile), CAPath: o(config.RepoStorageCAPath),
		UploadChunkSize: e.Cfg.Size(config.RepoStorageUploadChunkSize.Index(key)), KMSKeyID: o(config.RepoS3KMSKeyID),
		SSECustomerKey: o(config.RepoS3SseCustomerKey), RequesterPays: e.Cfg.Bool(config.RepoS3RequesterPays.Index(key)),
		IOTimeout: e.Cfg.Duration(config.IOTimeout), Logger: logger,
	}
	if tags := e.Cfg.Hash(config.RepoStorageTag.Index(key)); len(tags) > 0 {
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
	keyType := o(config.RepoS3KeyType)
	if keyType == "" {
		keyType = "shared"
	}
	co := credentials.Options{
		KeyType: keyType, Key: o(config.RepoS3Key), Secret: o(config.RepoS3KeySecret), Token: o(config.RepoS3Token),
		RoleARN: o(config.RepoS3RoleArn), TokenFile: o(config.RepoS3WebIDTokenFile), SessionName: o(config.RepoS3RoleSessionName),
		Region: so.Region, STSEndpoint: o(config.RepoS3STSHost), ContainerURI: o(config.RepoS3PodIDURI),
		ContainerTokenFile: o(config.RepoS3PodIDTokenFile), IMDSEndpoint: o(config.RepoS3IMDSEndpoint),
		ProcessCmd: e.Cfg.List(config.RepoS3ProcessCmd.Index(key)), HTTPClient: hc, Environ: os.Environ(),
		Repo: "repo" + itoa(key), Logger: logger, Now: e.Now,
	}
	if keyType == "auto" {
		co.Role = o(config.RepoS3Role)
	}
	if v := o(config.RepoS3STSRegionalEndpoints); v != "" {
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
