package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// The main stanza "bench": repo1 is written by pgbr, repo2 by pgBackRest,
// with the same settings; WAL is archived by pgbr into both (pgBackRest reads
// pgbr's archive: the WAL wait at the end of a backup is the same for both).
var mainConf string

func writeMainConf(ct string, pm int, bundle bool) error {
	b := "n"
	if bundle {
		b = "y"
	}
	c := fmt.Sprintf(`[global]
repo1-path=%[1]s/repo1
repo2-path=%[1]s/repo2
repo1-retention-full=99
repo2-retention-full=99
repo1-bundle=%[2]s
repo2-bundle=%[2]s
log-path=%[1]s/log
lock-path=%[1]s/lock
spool-path=%[1]s/spool
start-fast=y
compress-type=%[3]s
process-max=%[4]d
log-level-console=warn
log-level-file=off
expire-auto=n

[bench]
pg1-path=%[5]s
pg1-port=%[6]d
pg1-socket-path=%[7]s
`, *dir, b, ct, pm, dataDir, pgPort, sockDir)
	return os.WriteFile(mainConf, []byte(c), 0o644)
}

func psql(sql ...string) (string, error) {
	args := []string{"-X", "-q", "-A", "-t", "-h", sockDir, "-p", strconv.Itoa(pgPort), "-U", "postgres", "-d", "postgres"}
	for _, s := range sql {
		args = append(args, "-c", s)
	}
	out, err := pgOut("psql", args...)
	return strings.TrimSpace(out), err
}

func pgbench(t int) error {
	if err := pg(filepath.Join(pgBin, "pgbench"), "-n", "-t", strconv.Itoa(t), "-c", "2", "-h", sockDir, "-p", strconv.Itoa(pgPort), "-U", "postgres", "postgres"); err != nil {
		return err
	}
	_, err := psql("checkpoint")
	return err
}

// makeCluster creates the PostgreSQL 15 cluster of the main cases: pgbench
// at -scale plus -tables small tables, archiving with pgbr, and the stanza in
// both repositories. It returns a function that stops the cluster.
func makeCluster(pgbr string) (func(), error) {
	dataDir, sockDir, mainConf = filepath.Join(*dir, "pg"), filepath.Join(*dir, "sock"), filepath.Join(*dir, "pgbackrest.conf")
	pgPort = freePort()
	for _, d := range []string{sockDir, "repo1", "repo2", "log", "lock", "spool"} {
		if !filepath.IsAbs(d) {
			d = filepath.Join(*dir, d)
		}
		if err := mkdirPG(d); err != nil {
			return nil, err
		}
	}
	if err := writeMainConf(compressTypes[0], 1, false); err != nil {
		return nil, err
	}
	fmt.Printf("initdb + pgbench -i -s %d + %d tables ...\n", *scale, *tables)
	if err := pg(filepath.Join(pgBin, "initdb"), "-k", "-A", "trust", "-U", "postgres", "-D", dataDir); err != nil {
		return nil, err
	}
	extra := fmt.Sprintf("\nport = %d\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\narchive_mode = on\narchive_command = '%s --config=%s --stanza=bench archive-push %%p'\nmax_wal_size = 4GB\nfsync = off\n",
		pgPort, sockDir, pgbr, mainConf)
	f, err := os.OpenFile(filepath.Join(dataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	f.WriteString(extra)
	if err := f.Close(); err != nil {
		return nil, err
	}
	pgctl := func(args ...string) error {
		return pg(filepath.Join(pgBin, "pg_ctl"), append([]string{"-D", dataDir, "-l", filepath.Join(*dir, "pg.log"), "-w", "-t", "300"}, args...)...)
	}
	if err := pgctl("start"); err != nil {
		return nil, err
	}
	var once sync.Once
	stop := func() { once.Do(func() { pgctl("stop", "-m", "fast") }) }
	fail := func(err error) (func(), error) { stop(); return nil, err }
	if err := pg(filepath.Join(pgBin, "pgbench"), "-i", "-q", "-s", strconv.Itoa(*scale), "-h", sockDir, "-p", strconv.Itoa(pgPort), "-U", "postgres", "postgres"); err != nil {
		return fail(err)
	}
	if *tables > 0 {
		sql := fmt.Sprintf("do $$ begin for i in 1..%d loop execute format('create table small_%%s(id int primary key, v text)', i); execute format('insert into small_%%s select g, md5(g::text) from generate_series(1, 20) g', i); end loop; end $$;", *tables)
		if _, err := psql(sql); err != nil {
			return fail(err)
		}
	}
	if _, err := psql("vacuum analyze", "checkpoint"); err != nil {
		return fail(err)
	}
	clusterSize, clusterFiles = dirStats(dataDir)
	fmt.Printf("cluster: %.0f MiB in %d files\n", float64(clusterSize)/(1<<20), clusterFiles)
	if _, err := runTool(pgbrTool, "stanza-create", "--config="+mainConf, "--stanza=bench", "stanza-create"); err != nil {
		return fail(err)
	}
	return stop, nil
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 54330
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
