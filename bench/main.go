// Command bench compares pgbr with pgBackRest 2.45 on the same data in one
// run: full backup and restore of one PostgreSQL 15 cluster into two
// repositories of one stanza (repo1 written by pgbr, repo2 by pgBackRest),
// with the same compression and process-max. It prints times and ratios.
//
//	go run ./bench -scale 64 -tables 2000 -compress lz4 -process-max 1,2
//
// Run as root on a machine with postgresql-15 and pgbackrest installed
// (scripts/test.sh installs both). Nothing here runs in `go test`.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const pgBin = "/usr/lib/postgresql/15/bin"

var (
	scale    = flag.Int("scale", 64, "pgbench scale (64 ≈ 1 GiB)")
	tables   = flag.Int("tables", 2000, "extra small tables (many small files, as real clusters have)")
	compress = flag.String("compress", "lz4", "compress-type for both tools")
	procs    = flag.String("process-max", "1,2", "process-max values to measure")
	keep     = flag.Bool("keep", false, "keep the bench directory")
	dir      = flag.String("dir", "/tmp/pgbr-bench", "work directory")
	pgbrBin  = flag.String("pgbr", "", "pgbr binary (default: build ./cmd/pgbr)")
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	os.RemoveAll(*dir)
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	if !*keep {
		defer os.RemoveAll(*dir)
	}
	pgbr := *pgbrBin
	if pgbr == "" {
		pgbr = filepath.Join(*dir, "pgbr")
		if out, err := exec.Command("go", "build", "-o", pgbr, "./cmd/pgbr").CombinedOutput(); err != nil {
			return fmt.Errorf("build: %v\n%s", err, out)
		}
	}
	data, sock, conf := filepath.Join(*dir, "pg"), filepath.Join(*dir, "sock"), filepath.Join(*dir, "pgbackrest.conf")
	port := freePort()
	for _, d := range []string{sock, "repo1", "repo2", "log", "lock"} {
		p := d
		if !filepath.IsAbs(p) {
			p = filepath.Join(*dir, d)
		}
		os.MkdirAll(p, 0o750)
	}
	writeConf := func(pm string) error {
		c := fmt.Sprintf("[global]\nrepo1-path=%s/repo1\nrepo2-path=%s/repo2\nrepo1-retention-full=9\nrepo2-retention-full=9\nlog-path=%s/log\nlock-path=%s/lock\nstart-fast=y\ncompress-type=%s\nprocess-max=%s\nlog-level-console=warn\nlog-level-file=info\nexpire-auto=n\n\n[bench]\npg1-path=%s\npg1-port=%d\npg1-socket-path=%s\n",
			*dir, *dir, *dir, *dir, *compress, pm, data, port, sock)
		return os.WriteFile(conf, []byte(c), 0o644)
	}
	if err := writeConf("1"); err != nil {
		return err
	}
	sh("chown", "-R", "postgres:postgres", *dir)
	fmt.Printf("initdb + pgbench -i -s %d + %d tables ...\n", *scale, *tables)
	if err := pg(filepath.Join(pgBin, "initdb"), "-k", "-A", "trust", "-U", "postgres", "-D", data); err != nil {
		return err
	}
	extra := fmt.Sprintf("\nport = %d\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\narchive_mode = on\narchive_command = '%s --config=%s --stanza=bench archive-push %%p'\nmax_wal_size = 4GB\nfsync = off\n",
		port, sock, pgbr, conf)
	f, _ := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(extra)
	f.Close()
	pgctl := func(args ...string) error {
		return pg(filepath.Join(pgBin, "pg_ctl"), append([]string{"-D", data, "-l", filepath.Join(*dir, "pg.log"), "-w", "-t", "300"}, args...)...)
	}
	if err := pgctl("start"); err != nil {
		return err
	}
	defer pgctl("stop", "-m", "immediate")
	if err := pg(filepath.Join(pgBin, "pgbench"), "-i", "-q", "-s", strconv.Itoa(*scale), "-h", sock, "-p", strconv.Itoa(port), "-U", "postgres", "postgres"); err != nil {
		return err
	}
	if *tables > 0 {
		sql := fmt.Sprintf("do $$ begin for i in 1..%d loop execute format('create table small_%%s(id int primary key, v text)', i); execute format('insert into small_%%s select g, md5(g::text) from generate_series(1, 20) g', i); end loop; end $$;", *tables)
		if err := pg("psql", "-X", "-q", "-h", sock, "-p", strconv.Itoa(port), "-U", "postgres", "-c", sql); err != nil {
			return err
		}
	}
	pg("psql", "-X", "-q", "-h", sock, "-p", strconv.Itoa(port), "-U", "postgres", "-c", "checkpoint")
	size, files := dirStats(data)
	fmt.Printf("cluster: %.0f MiB in %d files\n", float64(size)/(1<<20), files)
	if err := pg(pgbr, "--config="+conf, "--stanza=bench", "stanza-create"); err != nil {
		return err
	}

	type result struct {
		pm                                 string
		pgbrB, brB, pgbrI, brI, pgbrR, brR time.Duration
	}
	var results []result
	for _, pm := range strings.Split(*procs, ",") {
		if err := writeConf(pm); err != nil {
			return err
		}
		r := result{pm: pm}
		var err error
		if r.brB, err = timed("pgbackrest", "--config="+conf, "--stanza=bench", "--repo=2", "backup", "--type=full"); err != nil {
			return err
		}
		if r.pgbrB, err = timed(pgbr, "--config="+conf, "--stanza=bench", "--repo=1", "backup", "--type=full"); err != nil {
			return err
		}
		// Change a part of the cluster, then an incremental backup with each tool.
		if err := pg(filepath.Join(pgBin, "pgbench"), "-n", "-t", "3000", "-c", "2", "-h", sock, "-p", strconv.Itoa(port), "-U", "postgres", "postgres"); err != nil {
			return err
		}
		pg("psql", "-X", "-q", "-h", sock, "-p", strconv.Itoa(port), "-U", "postgres", "-c", "checkpoint")
		if r.brI, err = timed("pgbackrest", "--config="+conf, "--stanza=bench", "--repo=2", "backup", "--type=incr"); err != nil {
			return err
		}
		if r.pgbrI, err = timed(pgbr, "--config="+conf, "--stanza=bench", "--repo=1", "backup", "--type=incr"); err != nil {
			return err
		}
		for _, tool := range []struct {
			bin  string
			repo string
			dst  *time.Duration
		}{{"pgbackrest", "2", &r.brR}, {pgbr, "1", &r.pgbrR}} {
			target := filepath.Join(*dir, "restore")
			os.RemoveAll(target)
			os.MkdirAll(target, 0o700)
			sh("chown", "postgres:postgres", target)
			sh("sync")
			d, err := timed(tool.bin, "--config="+conf, "--stanza=bench", "--repo="+tool.repo, "--pg1-path="+target, "restore")
			if err != nil {
				return err
			}
			*tool.dst = d
			rs, rf := dirStats(target)
			if rf < files-100 || rs < size*9/10 {
				return fmt.Errorf("%s restored only %d files / %d bytes", tool.bin, rf, rs)
			}
			os.RemoveAll(target)
		}
		results = append(results, r)
	}
	fmt.Printf("\ncompress-type=%s, %.0f MiB, %d files\n", *compress, float64(size)/(1<<20), files)
	fmt.Printf("%-12s %-8s %10s %11s %7s\n", "process-max", "step", "pgbr", "pgbackrest", "ratio")
	for _, r := range results {
		for _, row := range []struct {
			step string
			a, b time.Duration
		}{{"full", r.pgbrB, r.brB}, {"incr", r.pgbrI, r.brI}, {"restore", r.pgbrR, r.brR}} {
			fmt.Printf("%-12s %-8s %9.1fs %10.1fs %6.2fx\n", r.pm, row.step, row.a.Seconds(), row.b.Seconds(), row.b.Seconds()/row.a.Seconds())
		}
	}
	fmt.Println("(ratio = pgBackRest time / pgbr time; > 1 means pgbr is faster)")
	return nil
}

func pg(name string, args ...string) error {
	c := exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
	c.Dir = *dir
	out, err := c.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %v: %v\n%s", name, args, err, out)
	}
	return nil
}

func timed(name string, args ...string) (time.Duration, error) {
	start := time.Now()
	err := pg(name, args...)
	return time.Since(start), err
}

func sh(name string, args ...string) { exec.Command(name, args...).Run() }

func dirStats(root string) (int64, int) {
	var size int64
	var n int
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.IsDir() && fi.Name() == "pg_wal" {
			return filepath.SkipDir // WAL is not part of a backup
		}
		if err == nil && fi.Mode().IsRegular() {
			size += fi.Size()
			n++
		}
		return nil
	})
	return size, n
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 54330
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
