// Package command implements pgbr's commands. Commands orchestrate: the
// repository format lives in internal/repo, storage in internal/storage,
// PostgreSQL facts in internal/pg and internal/pgdb.
package command

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pgbr-dev/pgbr/internal/config"
	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/log"
	"github.com/pgbr-dev/pgbr/internal/pgdb"
	"github.com/pgbr-dev/pgbr/internal/progress"
	"github.com/pgbr-dev/pgbr/internal/storage"
	"github.com/pgbr-dev/pgbr/internal/storage/posix"
)

// Version is the version pgbr reports, and the backrest-version it writes
// into the repository (the pgBackRest release whose format it writes).
const (
	Version         = "0.1.0"
	BackrestVersion = "2.45"
)

// Env is everything a command needs from the outside world.
type Env struct {
	Ctx    context.Context
	Cfg    *config.Config
	Log    *log.Logger
	Stdout io.Writer
	Stderr io.Writer // the progress line goes here (nil: no progress)
	Cwd    string
	Now    func() time.Time
	ExecID string
	// Self is the path of the running binary (for restore_command).
	Self string

	reposMu    sync.Mutex
	reposCache []*repoT

	// Run statistics for the command's state file (runstate.go).
	counters runCounters
	creds    credRegistry
	progress *progress.Counter // nil unless a progress line is shown
	s3Creds  sync.Map          // repo key -> *credentials.Cache (check reports on them)
}

// ExitError ends a command with a specific exit code and no error message
// (archive-get: 1 when the segment is not in the archive).
type ExitError struct {
	Code int
	Msg  string
}

func (e *ExitError) Error() string { return e.Msg }

// Run dispatches the configured command and leaves its metrics state file
// (runstate.go).
func Run(e *Env) (err error) {
	if e.Now == nil {
		e.Now = time.Now
	}
	start := e.Now()
	defer func() {
		if r := recover(); r != nil {
			e.writeRunState(start, errs.New(errs.Assert, "panic"))
			panic(r)
		}
		e.writeRunState(start, err)
	}()
	return dispatch(e)
}

func dispatch(e *Env) error {
	switch c := e.Cfg.Command(); c {
	case "stanza-create":
		return stanzaCreate(e)
	case "archive-push":
		return archivePush(e)
	case "archive-get":
		return archiveGet(e)
	case "backup":
		return e.withProgress("backup", backup)
	case "restore":
		return e.withProgress("restore", restore)
	case "info":
		return info(e)
	case "expire":
		return expire(e)
	case "check":
		return check(e)
	case "verify":
		return e.withProgress("verify", verify)
	case "stanza-upgrade":
		return stanzaUpgrade(e)
	case "stanza-delete":
		return stanzaDelete(e)
	case "start":
		return startCommand(e)
	case "stop":
		return stopCommand(e)
	case "repo-ls":
		return repoLs(e)
	case "repo-get":
		return repoGet(e)
	case "annotate":
		return annotate(e)
	case "exporter":
		return exporter(e)
	default:
		return errs.New(errs.CommandInvalid, "command '%s' is not implemented by pgbr yet", c)
	}
}

// repo is one configured repository.
type repoT struct {
	Key        int
	St         storage.Storage
	CipherType string
	CipherPass string
}

// Name is "repo1".
func (r *repoT) Name() string { return "repo" + strconv.Itoa(r.Key) }

// repos returns the configured repositories in key order (only --repo when
// given).
func (e *Env) repos() ([]*repoT, error) {
	// One set of storage drivers (and S3 credential caches) per process:
	// every worker and every pushed file shares them.
	e.reposMu.Lock()
	defer e.reposMu.Unlock()
	if e.reposCache != nil {
		return e.reposCache, nil
	}
	r, err := e.openRepos()
	if err == nil {
		e.reposCache = r
	}
	return r, err
}

func (e *Env) openRepos() ([]*repoT, error) {
	keys := e.Cfg.RepoKeys()
	if e.Cfg.IsSet(config.Repo) {
		k := int(e.Cfg.Int(config.Repo))
		found := false
		for _, kk := range keys {
			if kk == k {
				found = true
			}
		}
		if !found {
			return nil, errs.New(errs.OptionInvalidValue, "option 'repo' value '%d' is not a configured repository", k)
		}
		keys = []int{k}
	}
	var out []*repoT
	for _, k := range keys {
		r, err := e.openRepo(k)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func (e *Env) openRepo(key int) (*repoT, error) {
	r := &repoT{Key: key, CipherType: e.Cfg.String(config.RepoCipherType.Index(key)), CipherPass: e.Cfg.String(config.RepoCipherPass.Index(key))}
	if r.CipherType == "" {
		r.CipherType = "none"
	}
	if r.CipherType == "none" {
		r.CipherPass = ""
	}
	switch t := e.Cfg.String(config.RepoType.Index(key)); t {
	case "", "posix", "cifs":
		p := e.Cfg.String(config.RepoPath.Index(key))
		if p == "" {
			p = "/var/lib/pgbackrest"
		}
		if !filepath.IsAbs(p) {
			return nil, errs.New(errs.OptionInvalidValue, "'%s' must begin with /", p)
		}
		r.St = posix.New(p)
	case "s3":
		st, err := e.openS3(key)
		if err != nil {
			return nil, err
		}
		r.St = st
	default:
		return nil, errs.New(errs.FeatureNotSupported, "repo%d-type '%s' is not supported yet", key, t)
	}
	st, err := wrapRepoStorage(e, r.St)
	if err != nil {
		return nil, err
	}
	r.St = st
	if r.CipherPass != "" {
		e.Log.Redact(r.CipherPass)
	}
	r.St = countingStorage{Storage: r.St, c: &e.counters}
	return r, nil
}

// stanza returns the stanza or an error when it is missing.
func (e *Env) stanza() (string, error) {
	s := e.Cfg.String(config.Stanza)
	if s == "" {
		return "", errs.New(errs.OptionRequired, "%s command requires option: stanza", e.Cfg.Command())
	}
	return s, nil
}

// pgPath returns pg1-path (required).
func (e *Env) pgPath() (string, error) {
	p := e.Cfg.String(config.PgPath.Index(1))
	if p == "" {
		return "", errs.New(errs.OptionRequired, "%s command requires option: pg1-path\nHINT: does this stanza exist?", e.Cfg.Command())
	}
	return filepath.Clean(p), nil
}

// connect opens a connection to the pg1 cluster.
func (e *Env) connect() (*pgdb.DB, error) { return e.connectPg(1) }

// connectPg opens a connection to the pg<idx> cluster.
func (e *Env) connectPg(idx int) (*pgdb.DB, error) {
	pgo := func(o config.Opt) config.Opt { return o.Index(idx) }
	port := int(e.Cfg.Int(pgo(config.PgPort)))
	if port == 0 {
		port = 5432
	}
	socket := e.Cfg.String(pgo(config.PgSocketPath))
	db, err := pgdb.Connect(e.Ctx, pgdb.Options{
		Socket:   socket,
		Port:     port,
		User:     e.Cfg.String(pgo(config.PgUser)),
		Database: e.Cfg.String(pgo(config.PgDatabase)),
		Timeout:  e.Cfg.Duration(config.DBTimeout),
	}, e.Cfg.Command())
	if err != nil && errs.CodeOf(err) == errs.DbConnect && strings.Contains(err.Error(), "dial error") {
		// Nothing listens where pg1 points: say where that is.
		where := fmt.Sprintf("on port %d (default socket directory; set %s and %s)", port, pgo(config.PgSocketPath), pgo(config.PgPort))
		if socket != "" {
			where = fmt.Sprintf("on socket '%s' (%s, %s)", filepath.Join(socket, fmt.Sprintf(".s.PGSQL.%d", port)), pgo(config.PgSocketPath), pgo(config.PgPort))
		}
		return nil, &errs.Error{Code: errs.DbConnect, Err: err,
			Msg: err.Error() + "\nHINT: is PostgreSQL running and accepting connections " + where + "?"}
	}
	return db, err
}
