package test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// TestArchivePushAsyncBurst: a burst of ready segments pushed as
// PostgreSQL pushes them with archive-async (one archive-push per segment
// in order, the next after the previous returned, .ready renamed .done):
// the first call starts one background process that takes every ready
// segment at once; every call succeeds, every segment reaches the
// archive (lz4, named with its SHA-1) with its .ok in the spool, and
// pgBackRest 2.45 fetches them.
func TestArchivePushAsyncBurst(t *testing.T) {
	t.Parallel()
	testenv.RequirePgBackRest(t)
	spool := testenv.Dir(t, "burst-spool")
	e := testenv.NewEnv(t, testenv.EnvOptions{Global: []string{"spool-path=" + spool, "process-max=2", "compress-type=lz4"},
		Cluster: testenv.ClusterOptions{InitdbArgs: []string{"--wal-segsize=1"}}})
	e.MustRun("stanza-create")
	e.Cluster.Exec("postgres", "create table t as select g from generate_series(1, 20000) g")
	seg := e.Cluster.QueryOne("postgres", "select pg_walfile_name(pg_switch_wal())")
	e.WaitArchived(seg)
	src := filepath.Join(e.Dir, "src-segment")
	e.MustRun("archive-get", seg, src)
	data, err := os.ReadFile(src)
	if err != nil || len(data) != 1<<20 {
		t.Fatalf("segment %s: %d bytes, %v", seg, len(data), err)
	}

	const n = 24
	wal := filepath.Join(e.Dir, "burst", "pg_wal")
	status := filepath.Join(wal, "archive_status")
	if err := os.MkdirAll(status, 0o750); err != nil {
		t.Fatal(err)
	}
	var names []string
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("000000010000000A%08X", i)
		names = append(names, name)
		if err := os.WriteFile(filepath.Join(wal, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(status, name+".ready"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Chown(t, filepath.Join(e.Dir, "burst"))
	for _, name := range names {
		if out, code := e.Run("--archive-async", "archive-push", filepath.Join(wal, name)); code != 0 {
			t.Fatalf("archive-push %s: exit %d\n%s", name, code, out)
		}
		if err := os.Rename(filepath.Join(status, name+".ready"), filepath.Join(status, name+".done")); err != nil {
			t.Fatal(err)
		}
	}

	out := filepath.Join(spool, "archive", e.Stanza, "out")
	stored, _ := filepath.Glob(filepath.Join(e.Repo, "archive", e.Stanza, "15-1", "000000010000000A", "*"))
	if len(stored) != n {
		t.Fatalf("%d files in the archive for the burst, want %d: %v", len(stored), n, stored)
	}
	for i, name := range names {
		if _, err := os.Stat(filepath.Join(out, name+".ok")); err != nil {
			t.Errorf("no .ok status for %s: %v", name, err)
		}
		if !strings.HasPrefix(filepath.Base(stored[i]), name+"-") || !strings.HasSuffix(stored[i], ".lz4") {
			t.Errorf("archive file %s for %s", stored[i], name)
		}
	}
	log, err := os.ReadFile(filepath.Join(e.Dir, "log", e.Stanza+"-archive-push-async.log"))
	if err != nil || !strings.Contains(string(log), fmt.Sprintf("push %d WAL file(s) to the archive: %s...", n, names[0])) {
		t.Fatalf("the first background process did not take the whole burst: %v\n%s", err, log)
	}
	for _, name := range []string{names[0], names[n-1]} {
		dest := filepath.Join(e.Dir, "got-"+name)
		e.MustPgBackRest("archive-get", name, dest)
		if got, err := os.ReadFile(dest); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("pgBackRest archive-get %s: %d bytes, %v", name, len(got), err)
		}
	}
}
