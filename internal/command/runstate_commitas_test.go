package command

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/storage"
	"github.com/pgbr-dev/pgbr/internal/storage/posix"
)

// The counting wrapper of a posix repository keeps what archive-push looks
// for: CanCommitAs, and a writer committed under another name is counted.
func TestCountingStorageCommitAs(t *testing.T) {
	dir := t.TempDir()
	c := &runCounters{}
	st := countingStorage{Storage: posix.New(dir), c: c}
	if !st.CanCommitAs() {
		t.Fatal("posix through the counting wrapper: CanCommitAs false")
	}
	w, err := st.Create(context.Background(), "a/x", storage.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("data"))
	if err := w.(interface{ CommitAs(string) error }).CommitAs("a/y"); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "a", "y")); err != nil || string(b) != "data" {
		t.Fatalf("committed file: %q, %v", b, err)
	}
	if c.filesWritten.Load() != 1 || c.bytesWritten.Load() != 4 {
		t.Fatalf("counted %d files, %d bytes", c.filesWritten.Load(), c.bytesWritten.Load())
	}
	if (countingStorage{Storage: plainStorage{st.Storage}, c: c}).CanCommitAs() {
		t.Fatal("a storage without CommitAs: CanCommitAs true")
	}
}

// plainStorage hides every method beyond storage.Storage.
type plainStorage struct{ storage.Storage }
