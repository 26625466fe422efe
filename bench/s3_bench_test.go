//go:build bench

// S3 benchmark: a full backup of the same cluster to MinIO (TLS, static
// keys) with pgbr and with pgBackRest 2.45, same settings, same run.
//
//	go test -tags bench -run TestS3Bench -v -timeout 60m ./bench/
//
// Not part of `go test ./...` (build tag): it measures, it asserts nothing
// about speed.
package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/pgbr-dev/pgbr/internal/testenv"
)

func TestS3Bench(t *testing.T) {
	testenv.RequirePgBackRest(t)
	m := testenv.StartMinIO(t)
	global := []string{
		"repo1-type=s3", "repo1-s3-bucket=" + m.Bucket, "repo1-s3-endpoint=localhost",
		fmt.Sprintf("repo1-storage-port=%d", m.Port), "repo1-s3-region=" + m.Region, "repo1-s3-uri-style=path",
		"repo1-storage-ca-file=" + m.CAFile, "repo1-s3-key=" + m.RootUser, "repo1-s3-key-secret=" + m.RootPassword,
		"compress-type=lz4", "expire-auto=n",
	}
	e := testenv.NewEnv(t, testenv.EnvOptions{Global: global})
	scale := 20
	out, err := exec.Command("runuser", "-u", "postgres", "--", filepath.Join(testenv.PgBin, "pgbench"), "-i", "-q",
		"-s", strconv.Itoa(scale), "-h", e.Cluster.Socket, "-p", strconv.Itoa(e.Cluster.Port), "-U", "postgres", "postgres").CombinedOutput()
	if err != nil {
		t.Fatalf("pgbench: %v\n%s", err, out)
	}
	size := e.Cluster.QueryOne("postgres", "select pg_size_pretty(sum(pg_database_size(datname))) from pg_database")
	e.MustRun("stanza-create")
	e.ArchiveCaughtUp()
	// Both tools write full backups into the same stanza, one after the other.
	for _, pm := range []string{"1", "2"} {
		var times [2]time.Duration
		for i, tool := range []string{"pgbackrest", "pgbr"} {
			run := e.MustRun
			if tool == "pgbackrest" {
				run = e.MustPgBackRest
			}
			start := time.Now()
			run("backup", "--type=full", "--process-max="+pm)
			times[i] = time.Since(start)
		}
		t.Logf("S3 full backup of %s (pgbench scale %d, lz4, process-max %s): pgbr %.1fs, pgBackRest %.1fs, ratio %.2fx",
			size, scale, pm, times[1].Seconds(), times[0].Seconds(), times[0].Seconds()/times[1].Seconds())
	}
}
