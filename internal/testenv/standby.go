package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// NewStandby makes a streaming standby of primary in a fresh directory:
// pg_basebackup -R (PostgreSQL 15's client, which serves every major
// version), its own port and socket directory, started with the primary's
// server binaries. It returns once the standby is in recovery and
// streaming, and stops it at the end of the test.
func NewStandby(t testing.TB, primary *Cluster) *Cluster {
	t.Helper()
	dir := Dir(t, "standby")
	c := &Cluster{t: t, Bin: primary.Bin, Major: primary.Major, Dir: dir, Data: filepath.Join(dir, "pg"),
		Socket: filepath.Join(dir, "sock"), Port: FreePort(t)}
	os.MkdirAll(c.Socket, 0o755)
	Chown(t, dir)
	out, code := AsPostgres(dir, nil, filepath.Join(PgBin, "pg_basebackup"), "-h", primary.Socket, "-p", strconv.Itoa(primary.Port),
		"-U", "postgres", "-D", c.Data, "-R", "-X", "stream", "-c", "fast")
	if code != 0 {
		t.Fatalf("pg_basebackup: %s", out)
	}
	f, err := os.OpenFile(filepath.Join(c.Data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "\nport = %d\nunix_socket_directories = '%s'\nhot_standby = on\n", c.Port, c.Socket)
	f.Close()
	// pg_basebackup 15 writes connection options (sslsni) that the libpq
	// of older servers rejects: a plain primary_conninfo overrides it.
	f, err = os.OpenFile(filepath.Join(c.Data, "postgresql.auto.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "primary_conninfo = 'host=%s port=%d user=postgres application_name=standby'\n", primary.Socket, primary.Port)
	f.Close()
	c.Start()
	t.Cleanup(func() { c.Stop() })
	deadline := time.Now().Add(120 * time.Second)
	for {
		if c.QueryOne("postgres", "select pg_is_in_recovery()::text") == "true" &&
			c.QueryOne("postgres", "select count(*)::text from pg_stat_wal_receiver where status = 'streaming'") == "1" {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("standby not streaming after 120s\n%s", tail(c.Log(), 3000))
		}
		time.Sleep(200 * time.Millisecond)
	}
}
