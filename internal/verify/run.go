// Package verify is the engine of the verify command: it checks a
// repository the way pgBackRest 2.45 does, and more.
//
// It checks the info files (main and copy), every WAL segment of every
// archive id (decrypted and decompressed, SHA-1 against the name, size
// against the WAL segment size of the archive id) and every file of every
// backup on disk. Beyond pgBackRest 2.45 it checks every backup file end to
// end (the stored bytes against the manifest's repo checksum when present,
// and the decrypted, decompressed content against the file checksum and
// size, bundled and block incremental files too), that every backup in
// backup.info still has its directory, and that the WAL from each backup's
// archive start to stop is in the archive.
//
// Problems are reported in the result text ("status: error" with counts)
// as pgBackRest does, and each one (file, backup, WAL gap) is also logged
// at warn level so that the default console level shows them; Result.Errors
// counts them (the command fails with FileInvalidError [028] when it is not
// zero, unlike pgBackRest 2.45, which exits 0 whatever it finds). A
// repository that cannot be read at all (permission, credentials, missing
// bucket) fails with the storage error.
//
// Options.Set verifies one backup (and only the WAL from its archive start
// to stop), as pgBackRest 2.55 does; 2.45 accepts --set but ignores it.
package verify

import (
	"context"

	"github.com/pgbr-dev/pgbr/internal/log"
	"github.com/pgbr-dev/pgbr/internal/progress"
	"github.com/pgbr-dev/pgbr/internal/storage"
	"github.com/pgbr-dev/pgbr/internal/workpool"
)

// PoolFunc runs n jobs on workers goroutines and returns the first error
// (workpool.Run's contract; the command passes one that also turns a panic
// into AssertError [025] and a signal into TermError [063]).
type PoolFunc func(workers, n int, job func(ctx context.Context, proc, i int) error) error

// Options is what verify needs to know about one repository.
type Options struct {
	Stanza     string
	Storage    storage.Storage // the repository
	CipherPass string          // the repository's passphrase ("" when not encrypted)
	Set        string          // one backup label to verify ("" = all)
	Workers    int             // files checked at once (process-max)
	Verbose    bool            // the result text has every count, even when all is well
	Log        *log.Logger     // nil: log.Discard()
	Progress   *progress.Counter
	Pool       PoolFunc // nil: workpool.Run on ctx
}

// Result is the outcome of a verify that could read the repository.
type Result struct {
	// Text is pgBackRest's result text ("stanza: ...\nstatus: ...", with
	// counts), "" when all is well and Verbose is off.
	Text string
	// Errors is the number of problems found (each logged at warn level).
	Errors int
}

// Run verifies the repository of opts.Stanza. Problems in the repository
// are in the Result; an error means the repository could not be read (or
// a pool failure: signal, panic).
func Run(ctx context.Context, opts Options) (Result, error) {
	v := newVerifier(ctx, opts)
	text, err := v.run()
	if err != nil {
		return Result{}, err
	}
	return Result{Text: text, Errors: v.errorTotal}, nil
}

func newVerifier(ctx context.Context, opts Options) *verifier {
	v := &verifier{ctx: ctx, log: opts.Log, progress: opts.Progress, pool: opts.Pool, st: opts.Storage,
		stanza: opts.Stanza, cipherPass: opts.CipherPass, set: opts.Set, procs: max(opts.Workers, 1),
		verbose: opts.Verbose, backupIdx: map[string]int{}}
	if v.log == nil {
		v.log = log.Discard()
	}
	if v.pool == nil {
		v.pool = func(workers, n int, job func(ctx context.Context, proc, i int) error) error {
			return workpool.Run(ctx, workers, n, job)
		}
	}
	return v
}

// jobsTotal returns the number of files and content bytes of jobs.
func jobsTotal(jobs []verifyJob) (int, int64) {
	var n int64
	for i := range jobs {
		n += max(jobs[i].sf.Size, 0)
	}
	return len(jobs), n
}
