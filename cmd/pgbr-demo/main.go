// Command pgbr-demo shows pgbr end to end on a throwaway PostgreSQL 15
// cluster: it creates the cluster (installing postgresql-15 when missing),
// writes some data, backs it up with pgbr, deletes the data directory,
// restores it with pgbr, starts the cluster again and shows the data back.
// Everything lives in one temporary directory that is removed at the end.
//
//	go run ./cmd/pgbr-demo [--keep]
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pgbr-dev/pgbr/internal/cli"
)

const pgBin = "/usr/lib/postgresql/15/bin"

func main() {
	// The demo binary doubles as pgbr: PostgreSQL's archive_command and
	// restore_command call it under the name "pgbr".
	if filepath.Base(os.Args[0]) == "pgbr" {
		os.Exit(cli.Main(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
	}
	keep := flag.Bool("keep", false, "keep the demo directory (cluster, repository, logs)")
	flag.Parse()
	if err := run(*keep); err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo failed: %v\n", err)
		os.Exit(1)
	}
}

type demo struct {
	dir, data, sock, repo, conf, pgbr string
	port                              int
	uid, gid                          int
}

func step(format string, a ...any) { fmt.Printf("\n==> "+format+"\n", a...) }

func run(keep bool) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("run the demo as root (it installs postgresql-15 if needed and runs PostgreSQL as the postgres user): sudo go run ./cmd/pgbr-demo")
	}
	if _, err := os.Stat(filepath.Join(pgBin, "initdb")); err != nil {
		step("installing postgresql-15 (apt-get)")
		if err := sh("apt-get", "update", "-qq"); err != nil {
			return err
		}
		if err := shEnv([]string{"DEBIAN_FRONTEND=noninteractive"}, "apt-get", "install", "-y", "-qq", "postgresql-15"); err != nil {
			return err
		}
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("user postgres missing: %v", err)
	}
	d := &demo{}
	d.uid, _ = strconv.Atoi(u.Uid)
	d.gid, _ = strconv.Atoi(u.Gid)
	if d.dir, err = os.MkdirTemp("", "pgbr-demo-"); err != nil {
		return err
	}
	os.Chmod(d.dir, 0o755)
	d.data, d.sock, d.repo = filepath.Join(d.dir, "pgdata"), filepath.Join(d.dir, "sock"), filepath.Join(d.dir, "repo")
	d.conf, d.pgbr = filepath.Join(d.dir, "pgbackrest.conf"), filepath.Join(d.dir, "pgbr")
	d.port = freePort()
	for _, p := range []string{d.sock, d.repo, filepath.Join(d.dir, "log"), filepath.Join(d.dir, "lock")} {
		os.MkdirAll(p, 0o750)
	}
	defer func() {
		d.pgctl("stop", "-m", "immediate")
		if keep {
			fmt.Printf("\nkept %s\n", d.dir)
			return
		}
		os.RemoveAll(d.dir)
	}()
	self, _ := os.Executable()
	if err := copyFile(self, d.pgbr); err != nil {
		return err
	}
	conf := fmt.Sprintf("[global]\nrepo1-path=%s\nrepo1-retention-full=2\nlog-path=%s/log\nlock-path=%s/lock\nstart-fast=y\ncompress-type=lz4\nlog-level-console=info\n\n[demo]\npg1-path=%s\npg1-port=%d\npg1-socket-path=%s\n",
		d.repo, d.dir, d.dir, d.data, d.port, d.sock)
	if err := os.WriteFile(d.conf, []byte(conf), 0o644); err != nil {
		return err
	}
	chownAll(d.dir, d.uid, d.gid)

	step("creating a PostgreSQL 15 cluster in %s (port %d)", d.data, d.port)
	if err := d.asPostgres(filepath.Join(pgBin, "initdb"), "-k", "-A", "trust", "-U", "postgres", "-D", d.data); err != nil {
		return err
	}
	pgconf := fmt.Sprintf("\nport = %d\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\narchive_mode = on\narchive_command = '%s --config=%s --stanza=demo archive-push %%p'\n",
		d.port, d.sock, d.pgbr, d.conf)
	if err := appendFile(filepath.Join(d.data, "postgresql.conf"), pgconf); err != nil {
		return err
	}
	if err := d.pgctl("start"); err != nil {
		return err
	}
	step("writing data")
	if err := d.psql("create table accounts(id int primary key, owner text, balance numeric);" +
		" insert into accounts select g, 'owner ' || g, g * 10 from generate_series(1, 100000) g;"); err != nil {
		return err
	}
	if err := d.psql("select count(*) as accounts, sum(balance) as total_balance from accounts;"); err != nil {
		return err
	}
	step("pgbr stanza-create")
	if err := d.pgbrRun("stanza-create"); err != nil {
		return err
	}
	step("pgbr backup --type=full")
	if err := d.pgbrRun("backup", "--type=full"); err != nil {
		return err
	}
	step("pgbr info")
	if err := d.pgbrRun("info", "--log-level-console=warn"); err != nil {
		return err
	}
	step("more writes after the backup (they come back through WAL replay)")
	if err := d.psql("update accounts set balance = balance + 1 where id <= 1000; select pg_switch_wal();"); err != nil {
		return err
	}
	if err := d.psql("select count(*) as accounts, sum(balance) as total_balance from accounts;"); err != nil {
		return err
	}
	step("disaster: stopping PostgreSQL and deleting the data directory")
	if err := d.pgctl("stop", "-m", "fast"); err != nil {
		return err
	}
	if err := os.RemoveAll(d.data); err != nil {
		return err
	}
	fmt.Printf("%s exists: %v\n", d.data, exists(d.data))
	step("pgbr restore")
	if err := d.pgbrRun("restore"); err != nil {
		return err
	}
	step("starting PostgreSQL on the restored data directory")
	if err := d.pgctl("start"); err != nil {
		return err
	}
	for i := 0; i < 600; i++ {
		out, _ := d.psqlOut("select pg_is_in_recovery();")
		if strings.Contains(out, "f") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	step("the data is back")
	if err := d.psql("select count(*) as accounts, sum(balance) as total_balance from accounts;"); err != nil {
		return err
	}
	fmt.Println("\ndemo complete: backed up, destroyed, restored, and the data is identical")
	return nil
}

func (d *demo) pgctl(args ...string) error {
	a := append([]string{"-D", d.data, "-l", filepath.Join(d.dir, "postgres.log"), "-w", "-t", "120"}, args...)
	return d.asPostgres(filepath.Join(pgBin, "pg_ctl"), a...)
}

func (d *demo) psql(sql string) error {
	return d.asPostgres("psql", "-X", "-h", d.sock, "-p", strconv.Itoa(d.port), "-U", "postgres", "-d", "postgres", "-c", sql)
}

func (d *demo) psqlOut(sql string) (string, error) {
	c := exec.Command("runuser", "-u", "postgres", "--", "psql", "-X", "-At", "-h", d.sock, "-p", strconv.Itoa(d.port), "-U", "postgres", "-d", "postgres", "-c", sql)
	c.Dir = d.dir
	out, err := c.CombinedOutput()
	return string(out), err
}

func (d *demo) pgbrRun(args ...string) error {
	fmt.Printf("$ pgbr --stanza=demo %s\n", strings.Join(args, " "))
	return d.asPostgres(d.pgbr, append([]string{"--config=" + d.conf, "--stanza=demo"}, args...)...)
}

func (d *demo) asPostgres(name string, args ...string) error {
	c := exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
	c.Dir = d.dir
	c.Stdout, c.Stderr = os.Stdout, os.Stderr
	if err := c.Run(); err != nil {
		return fmt.Errorf("%s %s: %v", filepath.Base(name), strings.Join(args, " "), err)
	}
	return nil
}

func sh(name string, args ...string) error { return shEnv(nil, name, args...) }

func shEnv(env []string, name string, args ...string) error {
	c := exec.Command(name, args...)
	c.Env = append(os.Environ(), env...)
	c.Stdout, c.Stderr = os.Stdout, os.Stderr
	return c.Run()
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 54329
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o755)
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(text)
	return err
}

func chownAll(dir string, uid, gid int) {
	filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err == nil {
			os.Lchown(p, uid, gid)
		}
		return nil
	})
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }
