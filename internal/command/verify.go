package command

import (
	"fmt"

	"github.com/pgbr-dev/pgbr/internal/config"
	"github.com/pgbr-dev/pgbr/internal/errs"
	verifyeng "github.com/pgbr-dev/pgbr/internal/verify"
)

// verify checks the repository the way pgBackRest 2.45 does: the info files
// (main and copy), every WAL segment of every archive id (decrypted and
// decompressed, SHA-1 against the name, size against the WAL segment size
// of the archive id) and every file of every backup on disk. Beyond
// pgBackRest 2.45 it checks every backup file end to end (the stored bytes
// against the manifest's repo checksum when present, and the decrypted,
// decompressed content against the file checksum and size, bundled files
// too), that every backup in backup.info still has its directory, and that
// the WAL from each backup's archive start to stop is in the archive.
//
// Problems are reported in the result text ("status: error" with counts)
// as pgBackRest does, and each one (file, backup, WAL gap) is also logged at
// warn level so that the default console level shows them; unlike
// pgBackRest 2.45 (which exits 0 whatever it finds) the command then fails
// with FileInvalidError [028]. The result is logged at info level and, with
// --output=text, printed on stdout. A repository that cannot be read at all
// (permission, credentials, missing bucket) fails with the storage error.
//
// --set verifies one backup (and only the WAL from its archive start to
// stop), as pgBackRest 2.55 does; 2.45 accepts --set but ignores it.
//
// The checks are internal/verify's; this reads the options, resolves the
// repository and maps the result to the output and the exit code.
func verify(e *Env) error {
	stanza, err := e.stanza()
	if err != nil {
		return err
	}
	repos, err := e.repos()
	if err != nil {
		return err
	}
	res, err := verifyeng.Run(e.Ctx, verifyeng.Options{
		Stanza:     stanza,
		Storage:    repos[0].St,
		CipherPass: repos[0].CipherPass,
		Set:        e.Cfg.String(config.Set),
		Workers:    e.processMax(),
		Verbose:    e.Cfg.Bool(config.Verbose),
		Log:        e.Log,
		Progress:   e.progress,
		Pool:       e.runPool,
	})
	if err != nil {
		return err
	}
	if out := res.Text; out != "" {
		e.Log.Infof("%s", out)
		if e.Cfg.String(config.Output) == "text" {
			fmt.Fprintln(e.Stdout, out)
		}
	}
	// pgbr differs from pgBackRest here on purpose: a verify that finds
	// missing or corrupt files fails, so cron jobs and scripts notice.
	if res.Errors > 0 {
		return errs.New(errs.FileInvalid, "verify found %d problem(s) in the repository (listed above)", res.Errors)
	}
	return nil
}
