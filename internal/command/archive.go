package command

import (
	"errors"
	"path/filepath"

	"github.com/pgbr-dev/pgbr/internal/archive"
	"github.com/pgbr-dev/pgbr/internal/config"
	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/lock"
	"github.com/pgbr-dev/pgbr/internal/pg"
	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/storage"
	"github.com/pgbr-dev/pgbr/internal/storage/local"
)

// archive-push and archive-get: options, locks and exit codes here; the
// work in internal/archive.

// archiveFileDir returns where an archive file lives inside the archive id
// (backup and check use it).
func archiveFileDir(stanza, archiveID, name string) string {
	return repo.Layout{Stanza: stanza}.SegmentDir(archiveID, name)
}

// findSegment lists the stored files for a segment name in dir.
func findSegment(e *Env, st storage.Storage, dir, name string) ([]string, error) {
	return archive.FindSegment(e.Ctx, st, dir, name)
}

// repoErr is one line of a multi-repo error: "repo1: [FileOpenError] msg".
func repoErr(r *repoT, err error) string {
	return archive.RepoErr(r.Name(), err)
}

// archiveRepos gives the engine the configured repositories.
func archiveRepos(repos []*repoT) []archive.Repo {
	out := make([]archive.Repo, len(repos))
	for i, r := range repos {
		out[i] = archive.Repo{Name: r.Name(), Storage: r.St, CipherPass: r.CipherPass}
	}
	return out
}

func archivePush(e *Env) error {
	stanza, err := e.stanza()
	if err != nil {
		return err
	}
	params := e.Cfg.Params()
	if len(params) != 1 {
		return errs.New(errs.ParamRequired, "WAL segment to push required")
	}
	if err := lock.CheckStop(e.Cfg.String(config.LockPath), stanza); err != nil {
		return err
	}
	walPath, err := e.resolvePgPath(params[0])
	if err != nil {
		return err
	}
	if e.Cfg.Role() == "async" {
		return archivePushAsync(e, stanza, walPath)
	}
	if e.Cfg.Bool(config.ArchiveAsync) {
		return archivePushQueued(e, stanza, walPath)
	}
	o, err := pushOptions(e, stanza)
	if err != nil {
		return err
	}
	return archive.Push(e.Ctx, o, walPath)
}

// pushOptions reads what archive-push needs: the repositories, the
// compression and, when pg1-path is set, the cluster's identity from
// pg_control.
func pushOptions(e *Env, stanza string) (*archive.PushOptions, error) {
	repos, err := e.repos()
	if err != nil {
		return nil, err
	}
	ct, level, err := e.compressSettings()
	if err != nil {
		return nil, err
	}
	o := &archive.PushOptions{
		Stanza:      stanza,
		Repos:       archiveRepos(repos),
		Compress:    ct,
		Level:       level,
		HeaderCheck: e.Cfg.Bool(config.ArchiveHeaderCheck),
		ModeCheck:   e.Cfg.Bool(config.ArchiveModeCheck),
		Log:         e.Log,
	}
	if e.Cfg.String(config.PgPath.Index(1)) != "" {
		c, err := e.readCluster()
		if err != nil {
			return nil, err
		}
		o.Cluster = &repo.ArchiveHistory{SystemID: c.Control.SystemID, Version: c.Control.Version.Str}
	}
	return o, nil
}

func archiveGet(e *Env) error {
	stanza, err := e.stanza()
	if err != nil {
		return err
	}
	params := e.Cfg.Params()
	if len(params) == 0 {
		return errs.New(errs.ParamRequired, "WAL segment to get required")
	}
	if len(params) == 1 {
		return errs.New(errs.ParamRequired, "path to copy WAL segment required")
	}
	if len(params) > 2 {
		return errs.New(errs.ParamInvalid, "extra parameters found")
	}
	name := params[0]
	dest, err := e.resolvePgPath(params[1])
	if err != nil {
		return err
	}
	if err := lock.CheckStop(e.Cfg.String(config.LockPath), stanza); err != nil {
		return err
	}
	if e.Cfg.Role() == "async" {
		return archiveGetAsync(e, stanza, name)
	}
	if e.Cfg.Bool(config.ArchiveAsync) && pg.IsWalSegment(name) {
		return archiveGetQueued(e, stanza, name, dest)
	}
	destDir := filepath.Dir(dest)
	root, err := local.Open(destDir)
	if err != nil {
		return errs.Wrap(errs.FileOpen, err, "unable to open '%s' for write", dest+".pgbackrest.tmp")
	}
	defer root.Close()
	o, err := getOptions(e, stanza)
	if err != nil {
		return err
	}
	return exitNotFound(archive.Get(e.Ctx, o, name, root, filepath.Base(dest)))
}

// getOptions reads what archive-get needs: the cluster's identity from
// pg_control and the repositories.
func getOptions(e *Env, stanza string) (*archive.GetOptions, error) {
	c, err := e.readCluster()
	if err != nil {
		return nil, err
	}
	repos, err := e.repos()
	if err != nil {
		return nil, err
	}
	return &archive.GetOptions{
		Stanza:   stanza,
		Repos:    archiveRepos(repos),
		SystemID: c.Control.SystemID,
		Version:  c.Control.Version.Str,
		Log:      e.Log,
	}, nil
}

// exitNotFound maps a WAL file in no repository to exit code 1 with no
// error message (PostgreSQL reads it as "not archived").
func exitNotFound(err error) error {
	var nf *archive.NotFoundError
	if errors.As(err, &nf) {
		return &ExitError{Code: 1, Msg: nf.Error()}
	}
	return err
}
