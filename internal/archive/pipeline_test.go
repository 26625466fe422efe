package archive

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/filter"
	"github.com/pgbr-dev/pgbr/internal/storage"
	"github.com/pgbr-dev/pgbr/internal/storage/faulty"
)

// pipeData is larger than the buffers in flight (pipeChunks of 256 KiB)
// and not a multiple of one: half compressible, half not.
func pipeData() []byte {
	b := make([]byte, 3<<20+12345)
	rand.New(rand.NewSource(1)).Read(b[len(b)/2:])
	return b
}

// A segment pushed to a posix repository (hashed while compressed, then
// renamed) and to one that cannot rename (hashed first) is stored under
// the same name, <name>-<sha1>.lz4, with the same content, and nothing
// else is left in either.
func TestPushPipelined(t *testing.T) {
	l, _ := newLog()
	data := pipeData()
	wal := walFile(t, t.TempDir(), seg1, data)
	r1 := newRepo(t, "repo1")
	r2 := newRepo(t, "repo2")
	r2.Storage = faulty.New(r2.Storage, 1)
	if canCommitAs(r2.Storage) || !canCommitAs(r1.Storage) {
		t.Fatal("canCommitAs: want posix only")
	}
	for _, r := range []Repo{r1, r2} {
		o := pushOpts(l, r)
		o.Compress = filter.Lz4
		if err := Push(ctx, o, wal); err != nil {
			t.Fatalf("%s: %v", r.Name, err)
		}
		want := "archive/main/15-1/0000000100000000/" + seg1 + "-" + sha(data) + ".lz4"
		got := listAll(t, r.Storage, "archive/main/15-1/0000000100000000")
		if len(got) != 1 || got[0] != want {
			t.Fatalf("%s: stored %q, want %q", r.Name, got, want)
		}
		rd, err := r.Storage.Open(ctx, want)
		if err != nil {
			t.Fatal(err)
		}
		dec, err := filter.NewDecompressor(rd, filter.Lz4)
		if err != nil {
			t.Fatal(err)
		}
		back, err := io.ReadAll(dec)
		rd.Close()
		if err != nil || !bytes.Equal(back, data) {
			t.Fatalf("%s: content differs (%d of %d bytes, %v)", r.Name, len(back), len(data), err)
		}
	}
}

// failAt is a reader or writer failing once at bytes have passed.
type failAt struct {
	src   io.ReaderAt
	at    int64
	n     int64
	calls int
}

var errInjected = errors.New("injected")

func (f *failAt) ReadAt(b []byte, off int64) (int, error) {
	if off+int64(len(b)) > f.at {
		return 0, errInjected
	}
	return f.src.ReadAt(b, off)
}

func (f *failAt) Write(b []byte) (int, error) {
	f.calls++
	if f.n+int64(len(b)) > f.at {
		return 0, errInjected
	}
	f.n += int64(len(b))
	return len(b), nil
}

// hashCompress and hashThenCompress return the SHA-1 of everything they
// copied, report a read failure as FileReadError naming the file and a
// write failure as returned, and stop at the first failure of either side.
func TestHashCompress(t *testing.T) {
	data := pipeData()
	for name, hc := range map[string]func(io.ReaderAt, string, io.Writer) (string, error, error){
		"overlap": hashCompress, "one goroutine": hashThenCompress} {
		var out bytes.Buffer
		sum, rerr, werr := hc(bytes.NewReader(data), "/wal/x", &out)
		if rerr != nil || werr != nil || sum != sha(data) || !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("%s: copy: sum %s (want %s), %d bytes, %v, %v", name, sum, sha(data), out.Len(), rerr, werr)
		}
		sum, rerr, werr = hc(&failAt{src: bytes.NewReader(data), at: 1 << 20}, "/wal/x", io.Discard)
		if sum != "" || werr != nil || errs.CodeOf(rerr) != errs.FileRead || !strings.Contains(rerr.Error(), "unable to read '/wal/x'") {
			t.Fatalf("%s: read failure: %q, %v, %v", name, sum, rerr, werr)
		}
		w := &failAt{at: 512 << 10}
		sum, rerr, werr = hc(bytes.NewReader(data), "/wal/x", w)
		if sum != "" || rerr != nil || !errors.Is(werr, errInjected) {
			t.Fatalf("%s: write failure: %q, %v, %v", name, sum, rerr, werr)
		}
		// The writes of whole chunks before the one that fails, then that
		// one, and none after it.
		if want := int(w.at/copyBufSize) + 1; w.calls != want {
			t.Fatalf("%s: write failure: %d writes, want %d (none after the failure)", name, w.calls, want)
		}
	}
}

// CommitAs renames only within the directory the file was created in;
// otherwise the file is removed.
func TestCommitAsOtherDir(t *testing.T) {
	r := newRepo(t, "repo1")
	w, err := r.Storage.Create(ctx, "a/x", storage.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("data"))
	if err := w.(committerAs).CommitAs("b/y"); err == nil {
		t.Fatal("CommitAs into another directory succeeded")
	}
	if got := listAll(t, r.Storage, "a"); len(got) != 0 {
		t.Fatalf("left %q", got)
	}
	w, _ = r.Storage.Create(ctx, "a/x", storage.CreateOptions{})
	w.Write([]byte("data"))
	if err := w.(committerAs).CommitAs("a/y"); err != nil {
		t.Fatal(err)
	}
	if got := listAll(t, r.Storage, "a"); len(got) != 1 || filepath.Base(got[0]) != "y" {
		t.Fatalf("stored %q", got)
	}
}
