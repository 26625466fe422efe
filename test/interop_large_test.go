package test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/filter"
	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// A relation file larger than filter.ParallelMin (8 MiB) is compressed on
// two goroutines at process-max 2 (lz4 blocks, gz chunks) and restored with
// its hash and writes on a second goroutine: pgBackRest 2.45 restores what
// pgbr stored so, and pgbr restores it too, to the same data.
func TestInteropLargeFileParallel(t *testing.T) {
	testenv.RequirePgBackRest(t)
	t.Parallel()
	for _, compress := range []string{"gz", "lz4"} {
		t.Run(compress, func(t *testing.T) {
			e := testenv.NewEnv(t, testenv.EnvOptions{Global: []string{"compress-type=" + compress, "process-max=2"}})
			// About 14 MiB in one relation file.
			e.Cluster.Exec("postgres", "create table big(id int, v text); insert into big select g, md5(g::text) || md5((g*7)::text) from generate_series(1,150000) g")
			if size, _ := strconv.Atoi(e.Cluster.QueryOne("postgres", "select pg_relation_size('big')")); size <= filter.ParallelMin {
				t.Fatalf("relation big is %d bytes, not above the %d of a parallel file", size, filter.ParallelMin)
			}
			want := e.Cluster.QueryOne("postgres", "select md5(string_agg(id::text || v, ',' order by id)) from big")
			e.MustRun("stanza-create")
			e.MustRun("backup", "--type=full")
			e.Cluster.Stop()
			for _, tool := range []string{"pgbackrest", "pgbr"} {
				r := restoreWith(t, e, tool)
				got := r.QueryOne("postgres", "select md5(string_agg(id::text || v, ',' order by id)) from big")
				if got != want {
					t.Fatalf("%s restored big with digest %s, want %s", tool, got, want)
				}
				if out := r.RestoredLog(); strings.Contains(out, "invalid page") {
					t.Fatalf("%s restore: %s", tool, out)
				}
				r.Stop()
			}
		})
	}
}
