package backup

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/repo"
)

// TestPrefetch backs up many small files read ahead of the workers, with
// and without bundles and at process-max 1 and 3: every stored file
// matches its manifest entry and the file's bytes; a file removed after
// the manifest was built is left out; one that grew past what is read
// ahead is copied whole by its worker; pg_control missing at copy time
// fails the backup as it would without the read-ahead.
func TestPrefetch(t *testing.T) {
	for _, bundle := range []bool{false, true} {
		for _, pm := range []int{1, 3} {
			t.Run(fmt.Sprintf("bundle=%v/pm=%d", bundle, pm), func(t *testing.T) {
				fx := newFixture(t)
				want := map[string][]byte{}
				old := time.Now().Add(-time.Hour)
				for i := range 300 {
					name := fmt.Sprintf("base/1/%d", 20000+i)
					body := bytes.Repeat([]byte{byte(i), byte(i >> 8), 7}, 1+i*37%(prefetchMax/3))
					p := filepath.Join(fx.pg, name)
					if err := os.WriteFile(p, body, 0o600); err != nil {
						t.Fatal(err)
					}
					os.Chtimes(p, old, old)
					want["pg_data/"+name] = body
				}
				o := fx.opts(nil)
				o.ProcessMax = pm
				o.Bundle, o.BundleSize, o.BundleLimit = bundle, 64<<10, 32<<10
				b := New(o, manifest(repo.BackupTypeFull, o))
				ctx := context.Background()
				planned(t, ctx, b)
				// After the manifest: one file removed, one grown past
				// the read-ahead limit.
				if err := os.Remove(filepath.Join(fx.pg, "base/1/20007")); err != nil {
					t.Fatal(err)
				}
				delete(want, "pg_data/base/1/20007")
				grown := bytes.Repeat([]byte("grown"), prefetchMax/2)
				if err := os.WriteFile(filepath.Join(fx.pg, "base/1/20011"), grown, 0o600); err != nil {
					t.Fatal(err)
				}
				want["pg_data/base/1/20011"] = grown
				if err := b.Copy(ctx); err != nil {
					t.Fatal(err)
				}
				b.M.Backup.TimestampStop = time.Now().Unix()
				if err := b.WriteGenerated(ctx, "pg_data/backup_label", []byte("LABEL\n"), time.Now().Unix()); err != nil {
					t.Fatal(err)
				}
				if err := b.Finish(ctx); err != nil {
					t.Fatal(err)
				}
				m, err := repo.LoadManifest(ctx, fx.st, stanza, b.M.Backup.Label, "")
				if err != nil {
					t.Fatal(err)
				}
				fx.checkStored(m)
				if _, ok := m.FindFile("pg_data/base/1/20007"); ok {
					t.Fatal("removed file still in the manifest")
				}
				for name, body := range want {
					f := fileOf(t, m, name)
					sum := sha1.Sum(body)
					if f.Size != uint64(len(body)) || f.EffectiveChecksum() != hex.EncodeToString(sum[:]) {
						t.Fatalf("%s: size %d checksum %s, file has %d bytes, %x", name, f.Size, f.EffectiveChecksum(), len(body), sum)
					}
				}
			})
		}
	}
}

// TestPrefetchControlMissing: pg_control removed after the manifest fails
// the copy with the open error, read ahead or not.
func TestPrefetchControlMissing(t *testing.T) {
	fx := newFixture(t)
	o := fx.opts(nil)
	b := New(o, manifest(repo.BackupTypeFull, o))
	ctx := context.Background()
	planned(t, ctx, b)
	if !b.prefetchable(func() int {
		for i := range b.m.Files {
			if b.m.Files[i].Name == "pg_data/global/pg_control" {
				return i
			}
		}
		t.Fatal("no pg_control")
		return 0
	}()) {
		t.Fatal("pg_control is not read ahead: the test tests nothing")
	}
	if err := os.Remove(filepath.Join(fx.pg, "global/pg_control")); err != nil {
		t.Fatal(err)
	}
	err := b.Copy(ctx)
	if errs.CodeOf(err) != errs.FileOpen {
		t.Fatalf("got %v, want a FileOpenError", err)
	}
}

// TestReadAheadSizes reads files around a block and the read-ahead limit:
// each comes back whole, or as too big past the limit.
func TestReadAheadSizes(t *testing.T) {
	dir := t.TempDir()
	for _, size := range []int{1, 511, 4095, 4096, 4097, 8192, 12345, prefetchMax - 1, prefetchMax, prefetchMax + 1, prefetchMax + 4096, prefetchMax + 9000} {
		body := make([]byte, size)
		for i := range body {
			body[i] = byte(i*7 + size)
		}
		p := filepath.Join(dir, fmt.Sprint(size))
		if err := os.WriteFile(p, body, 0o600); err != nil {
			t.Fatal(err)
		}
		s := readAhead(p)
		if s.openErr != nil || s.readErr != nil {
			t.Fatalf("size %d: %v %v", size, s.openErr, s.readErr)
		}
		if size > prefetchMax {
			if !s.tooBig || s.buf != nil {
				t.Fatalf("size %d: not reported too big", size)
			}
			continue
		}
		if s.tooBig || !bytes.Equal((*s.buf)[:s.n], body) {
			t.Fatalf("size %d: read %d bytes, too big %v", size, s.n, s.tooBig)
		}
		s.release()
	}
	if s := readAhead(filepath.Join(dir, "missing")); !os.IsNotExist(s.openErr) {
		t.Fatalf("missing file: %v", s.openErr)
	}
}
