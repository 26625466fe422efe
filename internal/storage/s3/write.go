package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/storage"
)

// Create starts writing an object. Up to UploadChunkSize bytes are buffered;
// a file that fits is sent as one PutObject at Commit. A larger file becomes
// a multipart upload: each full chunk is uploaded as a part while the next
// one fills (one part in flight), and Commit sends the last part and
// completes the upload. Until Commit nothing is visible under the key; Abort
// or any failure aborts the multipart upload so no parts remain.
//
// A small NoSync file (a backup's data file, at most backgroundMax bytes) is
// sent by a background PutObject: Commit returns at once and SyncAll waits
// for every such upload and returns the first failure, so the file's
// writer goes on with the next file instead of waiting for a round trip.
func (s *Storage) Create(ctx context.Context, p string, opts storage.CreateOptions) (storage.Writer, error) {
	return &writer{s: s, ctx: ctx, key: s.key(p), full: s.Full(p), chunk: int(s.o.UploadChunkSize), noSync: opts.NoSync}, nil
}

// backgroundMax is the largest NoSync file sent in the background, and
// backgroundUploads the most such uploads at once (memory: at most
// backgroundMax × backgroundUploads bytes held).
const (
	backgroundMax     = 1 << 20
	backgroundUploads = 16
)

// background tracks the PutObjects of NoSync writes. They run on
// backgroundUploads goroutines that live as long as the Storage: a
// PutObject runs about 60 middleware calls deep, and a fresh goroutine per
// upload grew its stack to that depth every time (copystack was 6 % of a
// backup's CPU to S3).
type background struct {
	once sync.Once
	jobs chan func()
	wg   sync.WaitGroup
	mu   sync.Mutex
	err  error
	keys map[string]chan struct{} // key → closed when its upload ends
}

// start runs put of key in the background, waiting first while
// backgroundUploads are running, and for an earlier upload of the same key
// (the later write must win).
func (b *background) start(key string, put func() error) {
	b.once.Do(func() {
		b.jobs = make(chan func())
		b.keys = map[string]chan struct{}{}
		for range backgroundUploads {
			go func() {
				for job := range b.jobs {
					job()
				}
			}()
		}
	})
	b.waitKey(key)
	done := make(chan struct{})
	b.mu.Lock()
	b.keys[key] = done
	b.mu.Unlock()
	b.wg.Add(1)
	b.jobs <- func() { // taken when a worker is free
		defer b.wg.Done()
		err := put()
		b.mu.Lock()
		if err != nil && b.err == nil {
			b.err = err
		}
		if b.keys[key] == done {
			delete(b.keys, key)
		}
		b.mu.Unlock()
		close(done)
	}
}

// waitKey waits for a background upload of key, if one is running.
func (b *background) waitKey(key string) {
	b.mu.Lock()
	done := b.keys[key]
	b.mu.Unlock()
	if done != nil {
		<-done
	}
}

// wait waits for every background upload and returns (and forgets) the
// first failure.
func (b *background) wait() error {
	b.wg.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	err := b.err
	b.err = nil
	return err
}

// SyncAll waits for the background uploads of NoSync writes; an object is
// durable once S3 has answered its PutObject.
func (s *Storage) SyncAll(ctx context.Context) error { return s.bg.wait() }

type writer struct {
	s     *Storage
	ctx   context.Context
	key   string
	full  string
	chunk int

	noSync   bool   // may be sent in the background (Create)
	buf      []byte // the chunk being filled
	pooled   *[]byte
	spare    *[]byte // a pooled buffer free for the next chunk
	uploadID string
	parts    []types.CompletedPart
	sums     [][md5.Size]byte // MD5 of each part, by part number - 1
	inflight chan partResult  // the part being uploaded, nil when none
	size     int64
	err      error
	done     bool
}

type partResult struct {
	part types.CompletedPart
	sum  [md5.Size]byte
	buf  *[]byte
	err  error
}

func (w *writer) Write(b []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("write to '%s' after commit or abort", w.full)
	}
	if w.err != nil {
		return 0, w.err
	}
	n := 0
	for len(b) > 0 {
		if len(w.buf) == w.chunk {
			if err := w.flush(); err != nil {
				w.failed(err)
				return n, w.err
			}
		}
		k := min(w.chunk-len(w.buf), len(b))
		w.buf = append(w.buf, b[:k]...)
		b = b[k:]
		n += k
	}
	w.size += int64(n)
	return n, nil
}

// flush uploads the full buffer as the next part, starting the multipart
// upload first if needed, and waits for the previous part.
func (w *writer) flush() error {
	if w.uploadID == "" {
		if err := w.initiate(); err != nil {
			return err
		}
	}
	if len(w.parts)+1 >= maxParts {
		return errs.New(errs.FileWrite, "unable to write file '%s': more than %d parts of up to %d bytes: raise repo1-storage-upload-chunk-size",
			w.full, maxParts, w.chunk)
	}
	if err := w.wait(); err != nil {
		return err
	}
	data, pooled := w.buf, w.pooled
	num := int32(len(w.parts) + 1)
	ch := make(chan partResult, 1)
	w.inflight = ch
	go func() {
		part, sum, err := w.uploadPart(num, data)
		ch <- partResult{part: part, sum: sum, buf: pooled, err: err}
	}()
	w.parts = append(w.parts, types.CompletedPart{PartNumber: aws.Int32(num)})
	w.sums = append(w.sums, [md5.Size]byte{})
	// Fill the next chunk in a pooled buffer of full size; past part 1000
	// chunks grow (S3 takes at most 10000 parts).
	w.chunk = chunkFor(int(w.s.o.UploadChunkSize), int(num)+1)
	if w.chunk != int(w.s.o.UploadChunkSize) {
		if w.spare != nil {
			w.s.bufPool.Put(w.spare)
			w.spare = nil
		}
		w.pooled = nil
		w.buf = make([]byte, 0, w.chunk)
		return nil
	}
	nb := w.spare
	w.spare = nil
	if nb == nil {
		nb = w.s.bufPool.Get().(*[]byte)
	}
	w.pooled = nb
	w.buf = (*nb)[:0]
	return nil
}

// maxParts is the most parts a multipart upload may have.
const maxParts = 10000

// chunkFor is the size of part n: the configured chunk for the first 1000
// parts, then one more chunk size every 1000 parts, at most 5 GiB (with
// 5 MiB chunks: 5 GB in 1000 parts, about 268 GB in 10000).
func chunkFor(base, n int) int {
	c := base * (1 + (n-1)/1000)
	return min(c, max(base, 5<<30))
}

// wait waits for the part in flight and records its ETag.
func (w *writer) wait() error {
	if w.inflight == nil {
		return nil
	}
	r := <-w.inflight
	w.inflight = nil
	if r.buf != nil {
		if w.spare == nil {
			w.spare = r.buf
		} else {
			w.s.bufPool.Put(r.buf)
		}
	}
	if r.err != nil {
		return r.err
	}
	w.parts[*r.part.PartNumber-1] = r.part
	w.sums[*r.part.PartNumber-1] = r.sum
	return nil
}

func (w *writer) initiate() error {
	s := w.s
	in := &s3.CreateMultipartUploadInput{Bucket: aws.String(s.o.Bucket), Key: aws.String(w.key),
		RequestPayer: s.payer(), Tagging: s.tags()}
	in.ServerSideEncryption, in.SSEKMSKeyId = s.kms()
	in.SSECustomerAlgorithm, in.SSECustomerKey, in.SSECustomerKeyMD5 = s.sse()
	var out *s3.CreateMultipartUploadOutput
	err := s.do(w.ctx, "CreateMultipartUpload", w.full, func(ctx context.Context) error {
		var err error
		out, err = s.client.CreateMultipartUpload(ctx, in, s.opt("CreateMultipartUpload"))
		return err
	})
	if err != nil {
		return s.fail(errs.FileOpen, "open", w.full, " for write", err)
	}
	if aws.ToString(out.UploadId) == "" {
		return errs.New(errs.FileOpen, "unable to open file '%s' for write: CreateMultipartUpload returned no upload id", w.full)
	}
	w.uploadID = *out.UploadId
	// The first chunk was filled in a growing buffer; the next ones use
	// pooled buffers of full size.
	return nil
}

func (w *writer) uploadPart(num int32, data []byte) (types.CompletedPart, [md5.Size]byte, error) {
	s := w.s
	sum := md5.Sum(data)
	md5b64 := base64.StdEncoding.EncodeToString(sum[:])
	var out *s3.UploadPartOutput
	err := s.do(w.ctx, "UploadPart", w.full, func(ctx context.Context) error {
		in := &s3.UploadPartInput{Bucket: aws.String(s.o.Bucket), Key: aws.String(w.key), UploadId: aws.String(w.uploadID),
			PartNumber: aws.Int32(num), Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data))),
			ContentMD5: aws.String(md5b64), RequestPayer: s.payer()}
		in.SSECustomerAlgorithm, in.SSECustomerKey, in.SSECustomerKeyMD5 = s.sse()
		var err error
		out, err = s.client.UploadPart(ctx, in, s.opt("UploadPart"))
		return err
	})
	if err != nil {
		return types.CompletedPart{}, sum, s.fail(errs.FileWrite, "write", w.full, fmt.Sprintf(" (part %d)", num), err)
	}
	if aws.ToString(out.ETag) == "" {
		return types.CompletedPart{}, sum, errs.New(errs.FileWrite, "unable to write file '%s' (part %d): UploadPart returned no ETag", w.full, num)
	}
	return types.CompletedPart{PartNumber: aws.Int32(num), ETag: out.ETag}, sum, nil
}

func (w *writer) put() error { return w.putData(w.buf) }

func (w *writer) putData(data []byte) error {
	s := w.s
	sum := md5.Sum(data)
	md5b64 := base64.StdEncoding.EncodeToString(sum[:])
	err := s.do(w.ctx, "PutObject", w.full, func(ctx context.Context) error {
		in := &s3.PutObjectInput{Bucket: aws.String(s.o.Bucket), Key: aws.String(w.key), Body: bytes.NewReader(data),
			ContentLength: aws.Int64(int64(len(data))), ContentMD5: aws.String(md5b64), RequestPayer: s.payer(), Tagging: s.tags()}
		in.ServerSideEncryption, in.SSEKMSKeyId = s.kms()
		in.SSECustomerAlgorithm, in.SSECustomerKey, in.SSECustomerKeyMD5 = s.sse()
		_, err := s.client.PutObject(ctx, in, s.opt("PutObject"))
		return err
	})
	if err != nil {
		return s.fail(errs.FileWrite, "write", w.full, "", err)
	}
	return nil
}

func (w *writer) complete() error {
	s := w.s
	parts := append([]types.CompletedPart(nil), w.parts...)
	sort.Slice(parts, func(i, j int) bool { return *parts[i].PartNumber < *parts[j].PartNumber })
	var out *s3.CompleteMultipartUploadOutput
	err := s.do(w.ctx, "CompleteMultipartUpload", w.full, func(ctx context.Context) error {
		in := &s3.CompleteMultipartUploadInput{Bucket: aws.String(s.o.Bucket), Key: aws.String(w.key), UploadId: aws.String(w.uploadID),
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}, RequestPayer: s.payer()}
		in.SSECustomerAlgorithm, in.SSECustomerKey, in.SSECustomerKeyMD5 = s.sse()
		var err error
		out, err = s.client.CompleteMultipartUpload(ctx, in, s.opt("CompleteMultipartUpload"))
		return err
	})
	if code, _, _ := awsCode(err); code == "NoSuchUpload" && w.completedBefore() {
		// A retry after the answer to a successful Complete was lost.
		s.log.Debug(fmt.Sprintf("S3 CompleteMultipartUpload '%s': NoSuchUpload, but the object is the one this upload made", w.full))
		return nil
	}
	if err != nil {
		return s.fail(errs.FileWrite, "write", w.full, "", err)
	}
	if aws.ToString(out.ETag) == "" {
		// pgBackRest treats a 200 without <ETag> as a failure.
		return errs.New(errs.FileWrite, "unable to write file '%s': CompleteMultipartUpload returned no ETag", w.full)
	}
	return nil
}

// completedBefore reports whether the object now under the key is the
// result of this upload: its ETag is the MD5 of the parts' MD5s with the
// part count (without SSE), or at least size and part count match (SSE
// ETags are not MD5s).
func (w *writer) completedBefore() bool {
	out, err := w.s.head(w.ctx, w.key, w.full)
	if err != nil || aws.ToInt64(out.ContentLength) != w.size {
		return false
	}
	etag := strings.Trim(aws.ToString(out.ETag), "\"")
	suffix := fmt.Sprintf("-%d", len(w.sums))
	if w.s.o.KMSKeyID != "" || w.s.o.SSECustomerKey != "" {
		return strings.HasSuffix(etag, suffix)
	}
	h := md5.New()
	for _, sum := range w.sums {
		h.Write(sum[:])
	}
	return etag == hex.EncodeToString(h.Sum(nil))+suffix
}

// Commit sends what is left and makes the object visible.
func (w *writer) Commit() error {
	if w.done {
		return fmt.Errorf("file '%s' already committed or aborted", w.full)
	}
	if w.err != nil {
		w.Abort()
		return w.err
	}
	if w.uploadID == "" && w.noSync && len(w.buf) <= backgroundMax {
		data := bytes.Clone(w.buf)
		if data == nil {
			data = []byte{}
		}
		w.release()
		w.done = true
		w.s.bg.start(w.key, func() error { return w.putData(data) })
		return nil
	}
	if w.uploadID == "" {
		w.s.bg.waitKey(w.key)
		err := w.put()
		w.release()
		w.done = true
		return err
	}
	err := w.wait()
	if err == nil && len(w.buf) > 0 {
		num := int32(len(w.parts) + 1)
		var part types.CompletedPart
		var sum [md5.Size]byte
		part, sum, err = w.uploadPart(num, w.buf)
		if err == nil {
			w.parts = append(w.parts, part)
			w.sums = append(w.sums, sum)
		}
	}
	if err == nil {
		err = w.complete()
	}
	if err != nil {
		w.failed(err)
		w.Abort()
		return err
	}
	w.release()
	w.done = true
	return nil
}

// failed records the first error and aborts the upload.
func (w *writer) failed(err error) {
	if w.err == nil {
		w.err = err
	}
}

// Abort discards everything written: no object, no parts left.
func (w *writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.wait() // its error does not matter any more
	defer w.release()
	if w.uploadID == "" {
		return nil
	}
	s := w.s
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), 2*s.o.IOTimeout)
	defer cancel()
	err := s.do(ctx, "AbortMultipartUpload", w.full, func(ctx context.Context) error {
		_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(s.o.Bucket),
			Key: aws.String(w.key), UploadId: aws.String(w.uploadID), RequestPayer: s.payer()}, s.opt("AbortMultipartUpload"))
		var nsu *types.NoSuchUpload
		if errors.As(err, &nsu) {
			return nil
		}
		return err
	})
	if err != nil {
		s.log.Info(fmt.Sprintf("unable to abort the multipart upload of '%s' (upload id %s): %v", w.full, w.uploadID, err))
		return s.fail(errs.FileRemove, "abort upload of", w.full, "", err)
	}
	s.log.Debug(fmt.Sprintf("S3 aborted the multipart upload of '%s' after %d part(s)", w.full, len(w.parts)))
	return nil
}

func (w *writer) release() {
	if w.pooled != nil {
		w.s.bufPool.Put(w.pooled)
		w.pooled = nil
	}
	if w.spare != nil {
		w.s.bufPool.Put(w.spare)
		w.spare = nil
	}
	w.buf = nil
}
