package restore

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/filter"
	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/storage"
	"github.com/pgbr-dev/pgbr/internal/storage/faulty"
)

// addFiles stores n more small files (pg_data/base/5/<20000+i>) and one
// larger than prefetchMax in the fixture's backup.
func (fx *fixture) addFiles(t *testing.T, n int) {
	t.Helper()
	ct := filter.CompressType(fx.m.Option.CompressType)
	l := repo.Layout{Stanza: testStanza}
	add := func(name string, b []byte) {
		var enc bytes.Buffer
		p, err := filter.NewWritePipeline(&enc, ct, filter.DefaultLevel(ct), fx.m.CipherPass)
		if err != nil {
			t.Fatal(err)
		}
		p.Write(b)
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		fx.m.Files = append(fx.m.Files, repo.ManifestFile{Name: name, Size: uint64(len(b)), Timestamp: 1765015000, Mode: "0600",
			Checksum: repo.HexDigest(sum(b)), RepoSize: uint64(enc.Len())})
		fx.content[name] = b
		w, err := fx.st.Create(context.Background(), l.StoredPath(fx.m, &fx.m.Files[len(fx.m.Files)-1]), storage.CreateOptions{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(enc.Bytes())
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		add(fmt.Sprintf("pg_data/base/5/%d", 20000+i), []byte(strings.Repeat(fmt.Sprintf("row %d;", i), 100+i)))
	}
	large := make([]byte, prefetchMax*3)
	for i := range large {
		large[i] = byte(i * 131 % 253) // does not compress below prefetchMax
	}
	add("pg_data/base/5/30000", large)
	fx.m.Sort()
	if err := fx.m.CheckRestorable(); err != nil {
		t.Fatal(err)
	}
}

// Many small files are read ahead of the workers: every file arrives
// whole, at any worker count, encrypted or not.
func TestRunPrefetch(t *testing.T) {
	for _, workers := range []int{1, 3} {
		for _, pass := range []string{"", testPass} {
			fx := newFixture(t, filter.Lz4, pass)
			fx.addFiles(t, 3*prefetchWindow)
			o := fx.opts()
			o.Workers = workers
			res, err := Run(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			if res.Files != len(fx.m.Files) {
				t.Errorf("restored %d files of %d", res.Files, len(fx.m.Files))
			}
			for name, want := range fx.content {
				if name == "pg_data/postgresql.auto.conf" {
					continue // recovery settings added
				}
				if got := fx.read(t, strings.TrimPrefix(name, "pg_data/")); !bytes.Equal(got, want) {
					t.Errorf("workers %d: %s differs (%d bytes, want %d)", workers, name, len(got), len(want))
				}
			}
		}
	}
}

// A repository fault in a file read ahead fails the restore as it does
// when the worker reads the file itself: same error code, the file named,
// nothing startable left (a read error is a FileWriteError [064] in both).
func TestRunPrefetchFaults(t *testing.T) {
	for _, c := range []struct {
		name  string
		fault faulty.Fault
		code  errs.Code
		want  string
	}{
		{"open", faulty.Fault{Op: faulty.OpOpen, Kind: faulty.KindError, Nth: 1, Path: "/20100"}, errs.FileOpen, "unable to open"},
		{"drop", faulty.Fault{Op: faulty.OpRead, Kind: faulty.KindDrop, Nth: 1, Path: "/20150"}, errs.FileWrite, "unable to restore 'pg_data/base/5/20150'"},
	} {
		for _, workers := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s-%d", c.name, workers), func(t *testing.T) {
				fx := newFixture(t, filter.Lz4, "")
				fx.addFiles(t, 3*prefetchWindow)
				f := faulty.New(fx.st, 1, c.fault)
				o := fx.opts()
				o.Storage = f
				o.Workers = workers
				_, err := Run(context.Background(), o)
				if err == nil || !strings.Contains(err.Error(), c.want) || errs.CodeOf(err) != c.code {
					t.Fatalf("restore with fault %s: %v (code %v)", c.name, err, errs.CodeOf(err))
				}
				if len(f.Injected()) == 0 {
					t.Fatal("fault not injected")
				}
				fx.notStartable(t)
			})
		}
	}
}

// The read ahead of one file: whole whatever the stored size the manifest
// gave (0: unknown), skipped above prefetchMax.
func TestPrefetchRead(t *testing.T) {
	fx := newFixture(t, filter.None, "")
	rr := &restoreRun{st: fx.st}
	for _, size := range []int{0, 1, 4095, 4096, 4097, 100 << 10, prefetchMax, prefetchMax + 1, 3 * prefetchMax} {
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(i*31 + size)
		}
		path := fmt.Sprintf("read/%d", size)
		w, err := fx.st.Create(context.Background(), path, storage.CreateOptions{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		for _, repoSize := range []int64{0, int64(size)} {
			var s prefetchSlot
			s.read(context.Background(), rr, repo.StoredFile{Path: path, RepoSize: repoSize})
			if s.openErr != nil || s.readErr != nil {
				t.Fatalf("%d: %v %v", size, s.openErr, s.readErr)
			}
			if size > prefetchMax {
				if !s.skip || s.data != nil {
					t.Errorf("%d bytes read ahead", size)
				}
				continue
			}
			if s.skip || !bytes.Equal(s.data, b) {
				t.Errorf("%d (repo size %d): read %d bytes, skip %v", size, repoSize, len(s.data), s.skip)
			}
		}
	}
	var s prefetchSlot
	s.read(context.Background(), rr, repo.StoredFile{Path: "read/missing"})
	if s.openErr == nil {
		t.Error("missing file read ahead")
	}
}
