package testenv

import (
	"crypto/sha1"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Env is a cluster plus a repository and a pgbackrest.conf that both pgbr
// and pgBackRest read.
type Env struct {
	T       testing.TB
	Dir     string
	Repo    string
	Conf    string
	Stanza  string
	Cluster *Cluster
	Pgbr    string
	// Global holds extra [global] lines (key=value) of the config.
	Global []string
}

// EnvOptions tunes NewEnv.
type EnvOptions struct {
	// Archiver is the tool PostgreSQL's archive_command calls: "pgbr"
	// (default) or "pgbackrest".
	Archiver string
	Global   []string // extra [global] options
	Cluster  ClusterOptions
	NoStart  bool // do not create a cluster
}

// NewEnv makes a directory with a repository, a config file and a running
// cluster whose archive_command pushes to the repository.
func NewEnv(t testing.TB, opts EnvOptions) *Env {
	t.Helper()
	dir := Dir(t, strings.ReplaceAll(t.Name(), "/", "_"))
	e := &Env{T: t, Dir: dir, Repo: filepath.Join(dir, "repo"), Conf: filepath.Join(dir, "pgbackrest.conf"),
		Stanza: "main", Pgbr: Pgbr(t), Global: opts.Global}
	os.MkdirAll(e.Repo, 0o750)
	os.MkdirAll(filepath.Join(dir, "log"), 0o750)
	os.MkdirAll(filepath.Join(dir, "lock"), 0o750)
	archiver := e.Pgbr
	if opts.Archiver == "pgbackrest" {
		archiver = PgBackRest
	}
	e.Cluster = &Cluster{t: t, Dir: dir, Data: filepath.Join(dir, "pg"), Socket: filepath.Join(dir, "sock")}
	e.WriteConf()
	if !opts.NoStart {
		co := opts.Cluster
		co.ArchiveCommand = fmt.Sprintf("%s --config=%s --stanza=%s archive-push %%p", archiver, e.Conf, e.Stanza)
		e.Cluster = NewCluster(t, dir, co)
		e.WriteConf()
	}
	Chown(t, dir)
	return e
}

// WriteConf (re)writes the config file from the current settings.
func (e *Env) WriteConf() {
	var b strings.Builder
	fmt.Fprintf(&b, "[global]\nrepo1-path=%s\nlog-path=%s\nlock-path=%s\nlog-level-console=info\nlog-level-file=detail\nrepo1-retention-full=99\narchive-timeout=30\nstart-fast=y\n",
		e.Repo, filepath.Join(e.Dir, "log"), filepath.Join(e.Dir, "lock"))
	for _, g := range e.Global {
		b.WriteString(g + "\n")
	}
	fmt.Fprintf(&b, "\n[%s]\npg1-path=%s\npg1-socket-path=%s\npg1-port=%d\n", e.Stanza, e.Cluster.Data, e.Cluster.Socket, e.Cluster.Port)
	if err := os.WriteFile(e.Conf, []byte(b.String()), 0o644); err != nil {
		e.T.Fatal(err)
	}
}

// Run runs pgbr as postgres with --config and --stanza and returns output
// and exit code.
func (e *Env) Run(args ...string) (string, int) {
	return AsPostgres(e.Dir, nil, e.Pgbr, append([]string{"--config=" + e.Conf, "--stanza=" + e.Stanza}, args...)...)
}

// MustRun runs pgbr and fails the test on a non-zero exit.
func (e *Env) MustRun(args ...string) string {
	e.T.Helper()
	out, code := e.Run(args...)
	if code != 0 {
		e.T.Fatalf("pgbr %v: exit %d\n%s", args, code, out)
	}
	return out
}

// RunPgBackRest runs pgBackRest 2.45 the same way.
func (e *Env) RunPgBackRest(args ...string) (string, int) {
	return AsPostgres(e.Dir, nil, PgBackRest, append([]string{"--config=" + e.Conf, "--stanza=" + e.Stanza}, args...)...)
}

// MustPgBackRest runs pgBackRest and fails the test on a non-zero exit.
func (e *Env) MustPgBackRest(args ...string) string {
	e.T.Helper()
	out, code := e.RunPgBackRest(args...)
	if code != 0 {
		e.T.Fatalf("pgbackrest %v: exit %d\n%s", args, code, out)
	}
	return out
}

// WaitArchived waits until the segment is in the repository archive.
func (e *Env) WaitArchived(segment string) {
	e.T.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		matches, _ := filepath.Glob(filepath.Join(e.Repo, "archive", e.Stanza, "*", segment[:16], segment+"-*"))
		for _, m := range matches {
			if !strings.HasSuffix(m, ".tmp") {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.T.Fatalf("segment %s not archived within 60s\n%s", segment, tail(e.Cluster.Log(), 3000))
}

// TreeDigest returns a digest of every path, type, size and content under
// dir, to prove a failed command changed nothing.
func TreeDigest(t testing.TB, dir string) string {
	t.Helper()
	h := sha1.New()
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(h, "%s %v %d\n", rel, fi.Mode(), fi.Size())
		if fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			h.Write(b)
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			l, _ := os.Readlink(p)
			fmt.Fprintf(h, "-> %s\n", l)
		}
		return nil
	})
	return fmt.Sprintf("%x", h.Sum(nil))
}

// Tree lists every path under dir (for failure messages).
func Tree(dir string) string {
	var b strings.Builder
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			rel, _ := filepath.Rel(dir, p)
			fmt.Fprintf(&b, "%s %v %d\n", rel, fi.Mode(), fi.Size())
		}
		return nil
	})
	return b.String()
}

// ArchiveCaughtUp switches WAL and waits until PostgreSQL has archived
// everything up to the switched segment.
func (e *Env) ArchiveCaughtUp() {
	e.T.Helper()
	seg := e.Cluster.QueryOne("postgres", "select pg_walfile_name(pg_switch_wal())")
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		if last := e.Cluster.QueryOne("postgres", "select coalesce(last_archived_wal, '') from pg_stat_archiver"); last >= seg {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	e.T.Fatalf("archiving did not reach %s within 5 minutes\n%s", seg, tail(e.Cluster.Log(), 3000))
}
