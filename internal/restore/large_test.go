package restore

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/filter"
	"github.com/pgbr-dev/pgbr/internal/repo"
)

// A file from filter.ParallelMin up is hashed and written on a second
// goroutine: it restores to its content, and a content that does not match
// the manifest fails the restore with a checksum error and leaves no file.
func TestRunLargeFile(t *testing.T) {
	const name = "pg_data/base/16384/16390"
	large := make([]byte, filter.ParallelMin+12345)
	for i := range large {
		large[i] = byte(i * 13 % 253)
	}
	for _, ct := range []filter.CompressType{filter.Lz4, filter.Gz} {
		t.Run(string(ct), func(t *testing.T) {
			fx := newFixtureWith(t, ct, testPass, map[string][]byte{name: large})
			if _, err := Run(context.Background(), fx.opts()); err != nil {
				t.Fatal(err)
			}
			fx.checkRestored(t)

			fx = newFixtureWith(t, ct, testPass, map[string][]byte{name: large})
			f, ok := fx.m.FindFile(name)
			if !ok {
				t.Fatalf("%s not in the manifest", name)
			}
			f.Checksum = repo.HexDigest(strings.Repeat("2", 40))
			_, err := Run(context.Background(), fx.opts())
			if errs.CodeOf(err) != errs.Checksum || !strings.Contains(err.Error(), name) {
				t.Fatalf("restore of a large file with another checksum: %v", err)
			}
			if _, err := os.Lstat(filepath.Join(fx.pgData, strings.TrimPrefix(name, "pg_data/"))); !os.IsNotExist(err) {
				t.Errorf("the mismatched file was left behind (%v)", err)
			}
			fx.notStartable(t)
		})
	}
}
