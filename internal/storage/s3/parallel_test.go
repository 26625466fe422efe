//go:build integration

package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/storage"
	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// multipartETag is the ETag S3 gives an object uploaded in parts of chunk
// bytes: the MD5 of the parts' MD5s, "-", the part count.
func multipartETag(data []byte, chunk int) string {
	h := md5.New()
	n := 0
	for off := 0; off < len(data); off += chunk {
		sum := md5.Sum(data[off:min(off+chunk, len(data))])
		h.Write(sum[:])
		n++
	}
	return fmt.Sprintf("%s-%d", hex.EncodeToString(h.Sum(nil)), n)
}

func isUploadPart(r *http.Request) bool {
	return r.Method == http.MethodPut && r.URL.Query().Get("partNumber") != ""
}

// TestParallelParts: the parts of a large file are uploaded at the same
// time, within the transfer slots; the object is the same as one sent part
// by part (content and multipart ETag), and a failing part fails the
// upload and leaves no part behind.
func TestParallelParts(t *testing.T) {
	t.Parallel()
	m := testenv.StartMinIO(t)
	ctx := context.Background()
	logs := newLogSink(t)
	creds := sharedCreds(t, m, logs.logger())
	const chunk = 5 << 20

	t.Run("SameObject", func(t *testing.T) {
		// The proxy holds the first UploadPart until a second one arrives:
		// parts in series would never get past it (and fail after 20 s).
		var mu sync.Mutex
		inPart, maxInPart, parts := 0, 0, 0
		second := make(chan struct{})
		p := startFaultProxy(t, m, func(n int, r *http.Request) fault { return pass })
		p.hold = func(r *http.Request) {
			if !isUploadPart(r) {
				return
			}
			mu.Lock()
			inPart++
			parts++
			maxInPart = max(maxInPart, inPart)
			first := parts == 1
			if parts == 2 {
				close(second)
			}
			mu.Unlock()
			if first {
				select {
				case <-second:
				case <-time.After(20 * time.Second):
				}
			}
			mu.Lock()
			inPart--
			mu.Unlock()
		}
		o := baseOptions(m)
		o.Creds, o.Logger, o.Port, o.UploadChunkSize, o.Parallel = creds, logs.logger(), p.port(), chunk, 2
		s := newStorage(t, o)
		data := randBytes(5*chunk + 12345)
		if err := storage.WriteAll(ctx, s, "par/big", data); err != nil {
			t.Fatal(err)
		}
		if maxInPart < 2 || maxInPart > s.transfers() {
			t.Fatalf("at most %d parts in flight, want 2 to %d", maxInPart, s.transfers())
		}
		got, err := storage.ReadAll(ctx, s, "par/big")
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read back %d bytes, %v", len(got), err)
		}
		h, err := m.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(m.Bucket), Key: aws.String(s.key("par/big"))})
		if err != nil {
			t.Fatal(err)
		}
		if etag, want := strings.Trim(aws.ToString(h.ETag), `"`), multipartETag(data, chunk); etag != want {
			t.Fatalf("ETag %s, want %s (parts out of order?)", etag, want)
		}
		if ids := m.ListMultipartUploads(t, s.key("par/big")); len(ids) != 0 {
			t.Fatalf("uploads left: %v", ids)
		}
	})

	t.Run("FailingPart", func(t *testing.T) {
		// Part 3 is denied; parts 4 and later may be in flight or not
		// started when it fails.
		p := startFaultProxy(t, m, func(n int, r *http.Request) fault {
			if isUploadPart(r) && r.URL.Query().Get("partNumber") == "3" {
				return denied
			}
			return pass
		})
		o := baseOptions(m)
		o.Creds, o.Logger, o.Port, o.UploadChunkSize, o.Parallel = creds, logs.logger(), p.port(), chunk, 2
		s := newStorage(t, o)
		w, err := s.Create(ctx, "par/failing", storage.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		data := randBytes(8*chunk + 1)
		var werr error
		for off := 0; off < len(data) && werr == nil; off += 1 << 20 {
			_, werr = w.Write(data[off:min(off+1<<20, len(data))])
		}
		if werr == nil {
			werr = w.Commit()
		} else {
			w.Abort()
		}
		if werr == nil {
			t.Fatal("upload with a denied part succeeded")
		}
		if !errors.Is(werr, storage.ErrPermission) || errs.CodeOf(werr) != errs.Access {
			t.Fatalf("error %v (code %v), want the denied part's", werr, errs.CodeOf(werr))
		}
		if ok, _ := s.Exists(ctx, "par/failing"); ok {
			t.Fatal("failed upload visible")
		}
		if ids := m.ListMultipartUploads(t, s.key("par/failing")); len(ids) != 0 {
			t.Fatalf("uploads left: %v", ids)
		}
		if n := m.PendingUploads(t); n != 0 {
			t.Fatalf("%d multipart uploads left on MinIO's drive", n)
		}
		if len(s.slots) != 0 {
			t.Fatalf("%d transfer slots still taken", len(s.slots))
		}
	})
}

// TestReadAhead: a long read is served by ranged GETs in parallel, in
// order, equal to the object (whole, from an offset, a range), also when
// streams are cut; an object replaced during the read fails it.
func TestReadAhead(t *testing.T) {
	t.Parallel()
	m := testenv.StartMinIO(t)
	ctx := context.Background()
	logs := newLogSink(t)
	creds := sharedCreds(t, m, logs.logger())
	var mu sync.Mutex
	ranged := 0
	cut := true
	p := startFaultProxy(t, m, func(n int, r *http.Request) fault {
		if r.Method != http.MethodGet || r.Header.Get("Range") == "" {
			return pass
		}
		mu.Lock()
		defer mu.Unlock()
		ranged++
		if cut && ranged%4 == 2 {
			return truncate
		}
		return pass
	})
	o := baseOptions(m)
	o.Creds, o.Logger, o.Port, o.Parallel = creds, logs.logger(), p.port(), 1
	s := newStorage(t, o)
	data := randBytes(9*readSegment + 4321)
	if err := storage.WriteAll(ctx, s, "ra/obj", data); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ off, n int64 }{{0, -1}, {1234567, -1}, {777, 5*readSegment + 3}, {100, 500}} {
		r, err := s.OpenRange(ctx, "ra/obj", c.off, c.n)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := r.(*aheadReader); ok != (c.n < 0 || c.n > readAheadMin) {
			t.Fatalf("range %d+%d: read ahead %v", c.off, c.n, ok)
		}
		got, err := io.ReadAll(r)
		r.Close()
		want := data[c.off:]
		if c.n >= 0 {
			want = want[:c.n]
		}
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("range %d+%d: %d bytes, %v", c.off, c.n, len(got), err)
		}
	}
	if ranged < 8 || p.count(truncate) == 0 {
		t.Fatalf("%d ranged GETs, %d cut: want parallel segments and cut streams resumed", ranged, p.count(truncate))
	}
	if len(s.slots) != 0 {
		t.Fatalf("%d transfer slots still taken", len(s.slots))
	}

	// Replaced after the first segment (its stream, of the opening GET, is
	// closed then; MinIO would hold the replacement until it ends): the
	// segments not fetched yet (at most readAheadSegments are ahead) find
	// another ETag.
	mu.Lock()
	cut = false
	mu.Unlock()
	r, err := s.Open(ctx, "ra/obj")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := io.ReadFull(r, make([]byte, readSegment+10)); err != nil {
		t.Fatal(err)
	}
	if err := storage.WriteAll(ctx, s, "ra/obj", randBytes(len(data))); err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(r)
	if err == nil || !strings.Contains(err.Error(), "changed while being read") || errs.CodeOf(err) != errs.FileRead {
		t.Fatalf("read of a replaced object: %v, want changed while being read", err)
	}
}
