package s3

import (
	"context"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/storage"
)

// deleteBatch is the most keys DeleteObjects takes.
const deleteBatch = 1000

// listPages calls fn for every page of ListObjectsV2 under prefix.
func (s *Storage) listPages(ctx context.Context, full, prefix, delimiter string, maxKeys int32, fn func(*s3.ListObjectsV2Output) (bool, error)) error {
	var token *string
	for {
		in := &s3.ListObjectsV2Input{Bucket: aws.String(s.o.Bucket), Prefix: aws.String(prefix), ContinuationToken: token,
			RequestPayer: s.payer()}
		if delimiter != "" {
			in.Delimiter = aws.String(delimiter)
		}
		if maxKeys > 0 {
			in.MaxKeys = aws.Int32(maxKeys)
		}
		var out *s3.ListObjectsV2Output
		err := s.do(ctx, "ListObjectsV2", full, func(ctx context.Context) error {
			var err error
			out, err = s.client.ListObjectsV2(ctx, in, s.opt("ListObjectsV2"))
			return err
		})
		if err != nil {
			return err
		}
		more, err := fn(out)
		if err != nil || !more {
			return err
		}
		if !aws.ToBool(out.IsTruncated) || aws.ToString(out.NextContinuationToken) == "" {
			return nil
		}
		token = out.NextContinuationToken
	}
}

func (s *Storage) listFail(full string, err error) error {
	if _, ok := err.(*errs.Error); ok {
		return err
	}
	return s.fail(errs.PathOpen, "list", full, "", err)
}

// List returns the direct children of p, sorted by name: objects as files,
// common prefixes as paths. A missing path lists empty.
func (s *Storage) List(ctx context.Context, p string) ([]storage.Info, error) {
	prefix := s.dirPrefix(p)
	full := s.Full(p)
	var out []storage.Info
	err := s.listPages(ctx, full, prefix, "/", 0, func(page *s3.ListObjectsV2Output) (bool, error) {
		for _, o := range page.Contents {
			name := strings.TrimPrefix(aws.ToString(o.Key), prefix)
			if name == "" || strings.Contains(name, "/") {
				continue
			}
			in := storage.Info{Name: name, Type: storage.TypeFile, Size: aws.ToInt64(o.Size)}
			if o.LastModified != nil {
				in.ModTime = *o.LastModified
			}
			out = append(out, in)
		}
		for _, cp := range page.CommonPrefixes {
			name := strings.TrimSuffix(strings.TrimPrefix(aws.ToString(cp.Prefix), prefix), "/")
			if name == "" {
				continue
			}
			out = append(out, storage.Info{Name: name, Type: storage.TypePath})
		}
		return true, nil
	})
	if err != nil {
		return nil, s.listFail(full, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// anyUnder reports whether any object exists under path p.
func (s *Storage) anyUnder(ctx context.Context, p string) (bool, error) {
	found := false
	full := s.Full(p)
	err := s.listPages(ctx, full, s.dirPrefix(p), "/", 1, func(page *s3.ListObjectsV2Output) (bool, error) {
		found = len(page.Contents) > 0 || len(page.CommonPrefixes) > 0
		return false, nil
	})
	if err != nil {
		return false, s.listFail(full, err)
	}
	return found, nil
}

// Remove deletes one object; a missing one is not an error.
func (s *Storage) Remove(ctx context.Context, p string) error {
	full := s.Full(p)
	key := s.key(p)
	err := s.do(ctx, "DeleteObject", full, func(ctx context.Context) error {
		_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.o.Bucket), Key: aws.String(key),
			RequestPayer: s.payer()}, s.opt("DeleteObject"))
		return err
	})
	if err != nil && !isNotFound(err) {
		return s.fail(errs.FileRemove, "remove", full, "", err)
	}
	return nil
}

// RemoveAll deletes everything under p (and an object named p), listing
// recursively and deleting in batches of 1000.
func (s *Storage) RemoveAll(ctx context.Context, p string) error {
	full := s.Full(p)
	prefix := s.dirPrefix(p)
	var batch []types.ObjectIdentifier
	if k := s.key(p); k != "" {
		batch = append(batch, types.ObjectIdentifier{Key: aws.String(k)})
	}
	err := s.listPages(ctx, full, prefix, "", 0, func(page *s3.ListObjectsV2Output) (bool, error) {
		for _, o := range page.Contents {
			batch = append(batch, types.ObjectIdentifier{Key: o.Key})
			if len(batch) == deleteBatch {
				if err := s.deleteObjects(ctx, full, batch); err != nil {
					return false, err
				}
				batch = batch[:0]
			}
		}
		return true, nil
	})
	if err == nil && len(batch) > 0 {
		err = s.deleteObjects(ctx, full, batch)
	}
	if err != nil {
		if _, ok := err.(*errs.Error); ok {
			return err
		}
		return s.fail(errs.PathRemove, "remove path", full, "", err)
	}
	return nil
}

func (s *Storage) deleteObjects(ctx context.Context, full string, keys []types.ObjectIdentifier) error {
	objs := append([]types.ObjectIdentifier(nil), keys...)
	var out *s3.DeleteObjectsOutput
	err := s.do(ctx, "DeleteObjects", full, func(ctx context.Context) error {
		var err error
		out, err = s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(s.o.Bucket),
			Delete: &types.Delete{Objects: objs, Quiet: aws.Bool(true)}, RequestPayer: s.payer()}, s.opt("DeleteObjects"))
		return err
	})
	if err != nil {
		return err
	}
	var failed []types.Error
	for _, e := range out.Errors {
		if aws.ToString(e.Code) != "NoSuchKey" {
			failed = append(failed, e)
		}
	}
	if len(failed) > 0 {
		e := failed[0]
		return errs.New(errs.PathRemove, "unable to remove path '%s': %d of %d objects not deleted, first '/%s': %s: %s",
			full, len(failed), len(objs), aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message))
	}
	return nil
}
