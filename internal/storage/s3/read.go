package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/storage"
)

// maxResumes bounds how often one read is resumed after failing mid-stream.
const maxResumes = 5

// Open reads a whole object.
func (s *Storage) Open(ctx context.Context, p string) (io.ReadCloser, error) {
	return s.OpenRange(ctx, p, 0, -1)
}

// OpenRange reads length bytes from offset (length < 0: to the end). A read
// that fails mid-stream is resumed with a ranged GET from the last byte
// received, pinned to the object's ETag so a replaced object is not mixed in.
func (s *Storage) OpenRange(ctx context.Context, p string, offset, length int64) (io.ReadCloser, error) {
	r := &reader{s: s, ctx: ctx, key: s.key(p), full: s.Full(p), pos: offset, end: -1}
	if length == 0 {
		if _, err := s.head(ctx, r.key, r.full); err != nil {
			return nil, s.fail(errs.FileOpen, "open", r.full, " for read", err)
		}
		return io.NopCloser(strings.NewReader("")), nil
	}
	if length > 0 {
		r.end = offset + length
	}
	if err := r.get(); err != nil {
		return nil, s.fail(errs.FileOpen, "open", r.full, " for read", err)
	}
	return r, nil
}

type reader struct {
	s       *Storage
	ctx     context.Context
	key     string
	full    string
	body    io.ReadCloser
	pos     int64 // offset of the next byte
	end     int64 // offset after the last byte, -1: not known yet
	etag    string
	resumes int
	err     error
	closed  bool
}

// get (re)opens the body at r.pos.
func (r *reader) get() error {
	s := r.s
	in := &s3.GetObjectInput{Bucket: aws.String(s.o.Bucket), Key: aws.String(r.key), RequestPayer: s.payer()}
	in.SSECustomerAlgorithm, in.SSECustomerKey, in.SSECustomerKeyMD5 = s.sse()
	switch {
	case r.end >= 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", r.pos, r.end-1))
	case r.pos > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", r.pos))
	}
	if r.etag != "" {
		in.IfMatch = aws.String(r.etag)
	}
	var out *s3.GetObjectOutput
	err := s.do(r.ctx, "GetObject", r.full, func(ctx context.Context) error {
		var err error
		out, err = s.client.GetObject(ctx, in, s.opt("GetObject"))
		return err
	})
	if err != nil {
		return err
	}
	r.body = out.Body
	if r.etag == "" {
		r.etag = aws.ToString(out.ETag)
	}
	if r.end < 0 && out.ContentLength != nil {
		r.end = r.pos + *out.ContentLength
	}
	return nil
}

func (r *reader) Read(b []byte) (int, error) {
	if r.closed {
		return 0, fmt.Errorf("read of '%s' after close", r.full)
	}
	if r.err != nil {
		return 0, r.err
	}
	for {
		if r.end >= 0 && r.pos >= r.end {
			return 0, io.EOF
		}
		if r.body == nil {
			if err := r.get(); err != nil {
				if code, _, _ := awsCode(err); code == "PreconditionFailed" {
					r.err = errs.Wrap(errs.FileRead, err, "unable to read '%s': the file changed while being read", r.full)
				} else {
					r.err = r.s.fail(errs.FileRead, "read", r.full, "", err)
				}
				return 0, r.err
			}
		}
		n, err := r.body.Read(b)
		r.pos += int64(n)
		if err == nil {
			return n, nil
		}
		if err == io.EOF && (r.end < 0 || r.pos >= r.end) {
			return n, io.EOF
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		r.body.Close()
		r.body = nil
		if r.ctx.Err() != nil {
			r.err = fmt.Errorf("unable to read '%s': %w", r.full, r.ctx.Err())
			return n, r.err
		}
		if r.resumes >= maxResumes {
			r.err = errs.Wrap(errs.FileRead, err, "unable to read '%s' at offset %d after %d resumed reads", r.full, r.pos, r.resumes)
			return n, r.err
		}
		r.resumes++
		r.s.log.Debug(fmt.Sprintf("S3 GetObject '%s': read failed at offset %d (%v), resuming with a range request (%d/%d)",
			r.full, r.pos, err, r.resumes, maxResumes))
		if n > 0 {
			return n, nil
		}
	}
}

func (r *reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	if r.body != nil {
		return r.body.Close()
	}
	return nil
}

// head returns the object's metadata. HEAD answers carry no body, so a
// 400/403 has no AWS error code; a ranged GET then asks again to learn the
// real code (InvalidAccessKeyId after a revoked session, AccessDenied...).
func (s *Storage) head(ctx context.Context, key, full string) (*s3.HeadObjectOutput, error) {
	in := &s3.HeadObjectInput{Bucket: aws.String(s.o.Bucket), Key: aws.String(key), RequestPayer: s.payer()}
	in.SSECustomerAlgorithm, in.SSECustomerKey, in.SSECustomerKeyMD5 = s.sse()
	var out *s3.HeadObjectOutput
	err := s.do(ctx, "HeadObject", full, func(ctx context.Context) error {
		var err error
		out, err = s.client.HeadObject(ctx, in, s.opt("HeadObject"))
		if err != nil && bodylessError(err) {
			gin := &s3.GetObjectInput{Bucket: in.Bucket, Key: in.Key, RequestPayer: in.RequestPayer, Range: aws.String("bytes=0-0"),
				SSECustomerAlgorithm: in.SSECustomerAlgorithm, SSECustomerKey: in.SSECustomerKey, SSECustomerKeyMD5: in.SSECustomerKeyMD5}
			gout, gerr := s.client.GetObject(ctx, gin, s.opt("GetObject"))
			if gerr == nil {
				gout.Body.Close()
				return err
			}
			// InvalidRange: an empty object the GET was allowed to see.
			if code, _, _ := awsCode(gerr); !bodylessError(gerr) && code != "InvalidRange" {
				return gerr
			}
		}
		return err
	})
	return out, err
}

// bodylessError reports an error whose code the SDK made up from the HTTP
// status because the answer had no body.
func bodylessError(err error) bool {
	var ge *smithy.GenericAPIError
	if !errors.As(err, &ge) {
		return false
	}
	switch ge.Code {
	case "Forbidden", "BadRequest", "UnknownError":
		return true
	}
	return false
}

// Stat describes a file, or a path when objects exist under it.
func (s *Storage) Stat(ctx context.Context, p string) (storage.Info, error) {
	name := strings.TrimLeft(p, "/")
	full := s.Full(p)
	out, err := s.head(ctx, s.key(p), full)
	if err == nil {
		in := storage.Info{Name: name, Type: storage.TypeFile, Size: aws.ToInt64(out.ContentLength)}
		if out.LastModified != nil {
			in.ModTime = *out.LastModified
		}
		return in, nil
	}
	if !isNotFound(err) {
		return storage.Info{}, s.fail(errs.FileInfo, "get info for", full, "", err)
	}
	any, lerr := s.anyUnder(ctx, p)
	if lerr != nil {
		return storage.Info{}, lerr
	}
	if any {
		return storage.Info{Name: name, Type: storage.TypePath}, nil
	}
	return storage.Info{}, s.fail(errs.FileInfo, "get info for", full, "", err)
}

// Exists reports whether a file exists (HEAD).
func (s *Storage) Exists(ctx context.Context, p string) (bool, error) {
	full := s.Full(p)
	_, err := s.head(ctx, s.key(p), full)
	if err == nil {
		return true, nil
	}
	if isNotFound(err) {
		return false, nil
	}
	return false, s.fail(errs.FileInfo, "get info for", full, "", err)
}
