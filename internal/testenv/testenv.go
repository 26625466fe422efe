// Package testenv starts the real services tests need: PostgreSQL clusters
// (15 from Debian, 13, 14, 16, 17, 18 from scripts/install-pg.sh) on free
// loopback ports, the pgbr binary, pgBackRest 2.45. It is
// used only from tests. Everything that must be installed is installed by
// the test command (scripts/test.sh); a missing part fails the test.
package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PgBin is where Debian's postgresql-15 package puts the server binaries;
// its client tools (psql, pgbench, pg_basebackup) serve every major version.
var PgBin = "/usr/lib/postgresql/15/bin"

// PgRoot holds the server binaries of the other major versions,
// <PgRoot>/<major>/bin, installed by scripts/install-pg.sh from npm.
var PgRoot = "/var/cache/pgbr-tools/pg"

// Majors lists the PostgreSQL major versions the tests run.
var Majors = []int{13, 14, 15, 16, 17, 18}

// ServerBin returns the directory of the server binaries (initdb, pg_ctl,
// postgres) of a major version (0 means 15) and fails the test when they
// are not installed.
func ServerBin(t testing.TB, major int) string {
	t.Helper()
	dir := serverBin(major)
	if _, err := os.Stat(filepath.Join(dir, "initdb")); err != nil {
		if major == 0 || major == 15 {
			t.Fatalf("PostgreSQL 15 server binaries missing at %s (scripts/test.sh installs postgresql-15)", dir)
		}
		t.Fatalf("PostgreSQL %d server binaries missing at %s (scripts/test.sh runs scripts/install-pg.sh)", major, dir)
	}
	return dir
}

func serverBin(major int) string {
	if major == 0 || major == 15 {
		return PgBin
	}
	return filepath.Join(PgRoot, strconv.Itoa(major), "bin")
}

// dataMajor reads the major version from a data directory's PG_VERSION
// (0 when it cannot be read).
func dataMajor(data string) int {
	b, err := os.ReadFile(filepath.Join(data, "PG_VERSION"))
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// PgBackRest is the pgBackRest 2.45 binary.
var PgBackRest = "/usr/bin/pgbackrest"

const baseDir = "/tmp/pgbr-test"

var pgUID, pgGID int

func postgresUser(t testing.TB) (int, int) {
	t.Helper()
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("user postgres missing (install postgresql-15 with scripts/test.sh): %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid
}

// Dir makes a fresh directory owned by postgres, removed after the test.
func Dir(t testing.TB, name string) string {
	t.Helper()
	uid, gid := postgresUser(t)
	if err := os.MkdirAll(baseDir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(baseDir, 0o755)
	d, err := os.MkdirTemp(baseDir, name+"-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(d, 0o755)
	os.Chown(d, uid, gid)
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// Chown gives path (recursively) to postgres.
func Chown(t testing.TB, path string) {
	uid, gid := postgresUser(t)
	filepath.Walk(path, func(p string, _ os.FileInfo, err error) error {
		if err == nil {
			os.Lchown(p, uid, gid)
		}
		return nil
	})
}

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// AsPostgres runs a command as the postgres user and returns its combined
// output and exit code (-1 when it could not run).
func AsPostgres(dir string, env []string, name string, args ...string) (string, int) {
	cmdArgs := append([]string{"-u", "postgres", "--", name}, args...)
	if os.Geteuid() != 0 {
		cmdArgs = nil
	}
	var c *exec.Cmd
	if cmdArgs == nil {
		c = exec.Command(name, args...)
	} else {
		c = exec.Command("runuser", cmdArgs...)
	}
	c.Dir = dir
	c.Env = append(os.Environ(), env...)
	out, err := c.CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		}
		return string(out) + err.Error(), -1
	}
	return string(out), 0
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// Pgbr builds cmd/pgbr once per test binary and returns its path (readable
// and executable by postgres).
func Pgbr(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() { buildPath, buildErr = buildPgbr("bin-") })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// buildPgbr builds cmd/pgbr with go build args into a fresh directory
// (prefix) under the test base directory, readable by postgres.
func buildPgbr(prefix string, args ...string) (string, error) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	os.MkdirAll(baseDir, 0o755)
	dir, err := os.MkdirTemp(baseDir, prefix)
	if err != nil {
		return "", err
	}
	os.Chmod(dir, 0o755)
	path := filepath.Join(dir, "pgbr")
	c := exec.Command("go", append(append([]string{"build"}, args...), "-o", path, "./cmd/pgbr")...)
	c.Dir = root
	if !slices.Contains(args, "-race") { // the race detector needs cgo
		c.Env = append(os.Environ(), "CGO_ENABLED=0") // as the README builds it
	}
	if out, err := c.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %v: %v\n%s", args, err, out)
	}
	return path, nil
}

// RequirePgBackRest fails the test when pgBackRest 2.45 is not installed.
func RequirePgBackRest(t testing.TB) string {
	t.Helper()
	out, code := AsPostgres("/", nil, PgBackRest, "version")
	if code != 0 || !strings.Contains(out, "pgBackRest 2.45") {
		t.Fatalf("pgBackRest 2.45 is required at %s (scripts/test.sh installs it): %s", PgBackRest, out)
	}
	return PgBackRest
}

// Cluster is a running PostgreSQL cluster.
type Cluster struct {
	t       testing.TB
	Bin     string // server binaries (initdb, pg_ctl, postgres)
	Major   int    // major version
	Dir     string // the test directory holding everything
	Data    string // PGDATA
	Socket  string // unix socket directory
	Port    int
	running bool
}

// ClusterOptions tunes NewCluster.
type ClusterOptions struct {
	// ArchiveCommand is set as archive_command with archive_mode=on; empty
	// means archive_mode=off.
	ArchiveCommand string
	// NoChecksums initialises without data checksums.
	NoChecksums bool
	// InitdbArgs are extra initdb arguments (e.g. --wal-segsize=1).
	InitdbArgs []string
	// Conf is appended to postgresql.conf.
	Conf string
	// Major is the PostgreSQL major version (0: 15).
	Major int
}

// NewCluster initialises (initdb) a cluster in a fresh directory under dir
// and starts it. It is stopped at the end of the test.
func NewCluster(t testing.TB, dir string, opts ClusterOptions) *Cluster {
	t.Helper()
	major := opts.Major
	if major == 0 {
		major = 15
	}
	c := &Cluster{t: t, Bin: ServerBin(t, major), Major: major, Dir: dir, Data: filepath.Join(dir, "pg"), Socket: filepath.Join(dir, "sock"), Port: FreePort(t)}
	for _, d := range []string{c.Socket} {
		os.MkdirAll(d, 0o755)
	}
	Chown(t, dir)
	args := []string{"-D", c.Data, "-A", "trust", "-U", "postgres", "--encoding=UTF8", "--locale=C"}
	if !opts.NoChecksums {
		args = append(args, "-k")
	} else if major >= 18 {
		args = append(args, "--no-data-checksums") // on by default from 18
	}
	args = append(args, opts.InitdbArgs...)
	if out, code := AsPostgres(dir, nil, filepath.Join(c.Bin, "initdb"), args...); code != 0 {
		t.Fatalf("initdb: %s", out)
	}
	conf := fmt.Sprintf("\nlisten_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\n"+
		"max_wal_senders = 2\nwal_level = replica\nfsync = off\nshared_buffers = 32MB\nlog_min_messages = warning\n",
		c.Port, c.Socket)
	if opts.ArchiveCommand != "" {
		conf += fmt.Sprintf("archive_mode = on\narchive_command = '%s'\n", strings.ReplaceAll(opts.ArchiveCommand, "'", "''"))
	}
	conf += opts.Conf
	f, err := os.OpenFile(filepath.Join(c.Data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(conf)
	f.Close()
	c.Start()
	t.Cleanup(func() { c.Stop() })
	return c
}

// Start starts the cluster (pg_ctl start -w).
func (c *Cluster) Start() {
	c.t.Helper()
	out, code := AsPostgres(c.Dir, nil, filepath.Join(c.Bin, "pg_ctl"), "-D", c.Data, "-l", filepath.Join(c.Dir, "postgres.log"), "-w", "-t", "120", "start")
	if code != 0 {
		logb, _ := os.ReadFile(filepath.Join(c.Dir, "postgres.log"))
		c.t.Fatalf("pg_ctl start: %s\n%s", out, tail(string(logb), 3000))
	}
	c.running = true
}

// StartErr starts the cluster and returns an error instead of failing.
func (c *Cluster) StartErr() error {
	out, code := AsPostgres(c.Dir, nil, filepath.Join(c.Bin, "pg_ctl"), "-D", c.Data, "-l", filepath.Join(c.Dir, "postgres.log"), "-w", "-t", "120", "start")
	if code != 0 {
		logb, _ := os.ReadFile(filepath.Join(c.Dir, "postgres.log"))
		return fmt.Errorf("pg_ctl start: %s\n%s", out, tail(string(logb), 3000))
	}
	c.running = true
	return nil
}

// Stop stops the cluster (fast mode) if running.
func (c *Cluster) Stop() {
	if !c.running {
		return
	}
	AsPostgres(c.Dir, nil, filepath.Join(c.Bin, "pg_ctl"), "-D", c.Data, "-m", "fast", "-w", "-t", "60", "stop")
	c.running = false
}

// Log returns the server log.
func (c *Cluster) Log() string {
	b, _ := os.ReadFile(filepath.Join(c.Dir, "postgres.log"))
	return string(b)
}

// Conn connects as postgres over the unix socket.
func (c *Cluster) Conn(db string) *pgx.Conn {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%d user=postgres dbname=%s", c.Socket, c.Port, db))
	if err != nil {
		c.t.Fatalf("connect: %v", err)
	}
	return conn
}

// Exec runs SQL statements in database db.
func (c *Cluster) Exec(db, sql string) {
	c.t.Helper()
	conn := c.Conn(db)
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		c.t.Fatalf("exec %q: %v", sql, err)
	}
}

// Query returns the first column of every row as text.
func (c *Cluster) Query(db, sql string) []string {
	c.t.Helper()
	conn := c.Conn(db)
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), sql)
	if err != nil {
		c.t.Fatalf("query %q: %v", sql, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			c.t.Fatal(err)
		}
		out = append(out, fmt.Sprint(vals[0]))
	}
	if err := rows.Err(); err != nil {
		c.t.Fatalf("query %q: %v", sql, err)
	}
	return out
}

// QueryOne returns the single text value of a one-row query.
func (c *Cluster) QueryOne(db, sql string) string {
	c.t.Helper()
	r := c.Query(db, sql)
	if len(r) != 1 {
		c.t.Fatalf("query %q returned %d rows", sql, len(r))
	}
	return r[0]
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// StartRestored starts a cluster from a restored data directory on a new
// port and socket, waits until recovery has finished, and stops it at the
// end of the test.
func StartRestored(t testing.TB, dir, data string) *Cluster {
	t.Helper()
	major := dataMajor(data)
	if major == 0 {
		major = 15
	}
	c := &Cluster{t: t, Bin: ServerBin(t, major), Major: major, Dir: dir, Data: data, Socket: filepath.Join(dir, "sock-restored"), Port: FreePort(t)}
	os.MkdirAll(c.Socket, 0o755)
	Chown(t, c.Socket)
	Chown(t, data)
	logFile := filepath.Join(dir, "restored.log")
	out, code := AsPostgres(dir, nil, filepath.Join(c.Bin, "pg_ctl"), "-D", data, "-l", logFile, "-w", "-t", "120",
		"-o", fmt.Sprintf("-p %d -c unix_socket_directories=%s -c listen_addresses=127.0.0.1", c.Port, c.Socket), "start")
	if code != 0 {
		b, _ := os.ReadFile(logFile)
		t.Fatalf("start restored cluster: %s\n%s", out, tail(string(b), 4000))
	}
	c.running = true
	t.Cleanup(func() { c.Stop() })
	deadline := time.Now().Add(120 * time.Second)
	for {
		if r := c.Query("postgres", "select pg_is_in_recovery()::text"); len(r) == 1 && r[0] == "false" {
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logFile)
			t.Fatalf("restored cluster still in recovery after 120s\n%s", tail(string(b), 4000))
		}
		time.Sleep(200 * time.Millisecond)
	}
	return c
}

// RestoredLog returns the log of a cluster started by StartRestored.
func (c *Cluster) RestoredLog() string {
	b, _ := os.ReadFile(filepath.Join(c.Dir, "restored.log"))
	return string(b)
}

// Fixtures returns the folder of the pgBackRest 2.60 fixture repositories:
// shared/fixtures/pgbackrest-2.60 beside the checkout (where CI puts its
// copy of shared/), else /work/shared's; the test fails when neither exists.
func Fixtures(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	for _, d := range []string{
		filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "fixtures", "pgbackrest-2.60"),
		"/work/shared/fixtures/pgbackrest-2.60",
	} {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			return filepath.Clean(d)
		}
	}
	t.Fatal("pgBackRest 2.60 fixtures not found in ../shared/fixtures beside the checkout nor in /work/shared/fixtures")
	return ""
}
