// Package archive is the WAL archive engine: archive-push (push one WAL
// file to every repository), archive-get (fetch one from the first
// repository that has it) and the asynchronous spool both use
// (<spool-path>/archive/<stanza>/{out,in}). It takes typed inputs: the
// command layer (internal/command) reads the options, resolves the
// repositories, takes the locks and maps the results to exit codes.
package archive

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/lazyre"
	"github.com/pgbr-dev/pgbr/internal/pg"
	"github.com/pgbr-dev/pgbr/internal/storage"
)

// Repo is one repository of the stanza.
type Repo struct {
	Name       string // "repo1"
	Storage    storage.Storage
	CipherPass string // of the repository (archive.info's own pass is read from it)
}

// Pool runs n jobs on workers goroutines: the command gives its worker pool
// (internal/workpool with panics turned into errors and a signal into
// [063]).
type Pool func(workers, n int, job func(ctx context.Context, proc, i int) error) error

// NotFoundError is a WAL file that is in no repository (archive-get exits
// with code 1, which PostgreSQL reads as "not archived").
type NotFoundError struct {
	Name  string
	Async bool
}

func (e *NotFoundError) Error() string {
	if e.Async {
		return fmt.Sprintf("unable to find %s in the archive asynchronously", e.Name)
	}
	return fmt.Sprintf("unable to find %s in the archive", e.Name)
}

// IsSegmentName reports a WAL segment or partial segment name (those get a
// checksum suffix and compression in the archive).
func IsSegmentName(name string) bool {
	return pg.IsWalSegment(name) || pg.IsWalPartial(name)
}

var storedSegment = lazyre.New(`^-[0-9a-f]{40}(\.(gz|bz2|lz4|zst|xz))?$`)

// FindSegment lists the stored files for a segment name in dir
// (<name>-<sha1>[.<ext>]).
func FindSegment(ctx context.Context, st storage.Storage, dir, name string) ([]string, error) {
	list, err := st.List(ctx, dir)
	if err != nil {
		return nil, errs.Wrap(errs.PathOpen, err, "unable to list '%s'", st.Full(dir))
	}
	var out []string
	for _, f := range list {
		if f.Type == storage.TypeFile && strings.HasPrefix(f.Name, name) && storedSegment.MatchString(f.Name[len(name):]) {
			out = append(out, f.Name)
		}
	}
	return out, nil
}

// RepoErr is one line of a multi-repo error: "repo1: [FileOpenError] msg".
func RepoErr(name string, err error) string {
	return fmt.Sprintf("%s: [%s] %s", name, errs.CodeOf(err).Name(), err.Error())
}

// fileSync makes a local write durable (tests replace it).
var fileSync = (*os.File).Sync
