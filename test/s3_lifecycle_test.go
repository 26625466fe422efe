package test

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// TestS3Lifecycle runs the lifecycle on an S3 repository (MinIO, encrypted,
// bundled, process-max 2): full → incr → diff → incr with pgbench between
// them, verify, expire by retention, restore by pgbr and pgBackRest 2.45.
func TestS3Lifecycle(t *testing.T) {
	testenv.RequirePgBackRest(t)
	m := testenv.StartMinIO(t)
	global := append(s3Global(m, m.Port), "compress-type=zst", "repo1-bundle=y", "process-max=2",
		"repo1-cipher-type=aes-256-cbc", "repo1-cipher-pass=s3-lifecycle-Pq8vT2mW5xZ7")
	e := testenv.NewEnv(t, testenv.EnvOptions{Global: global})
	pgbench := func(args ...string) {
		a := append([]string{"-u", "postgres", "--", filepath.Join(testenv.PgBin, "pgbench"), "-h", e.Cluster.Socket,
			"-p", strconv.Itoa(e.Cluster.Port), "-U", "postgres"}, args...)
		if out, err := exec.Command("runuser", append(a, "postgres")...).CombinedOutput(); err != nil {
			t.Fatalf("pgbench %v: %v\n%s", args, err, out)
		}
	}
	pgbench("-i", "-q", "-s", "3")
	e.MustRun("stanza-create")
	var labels []string
	label := regexp.MustCompile(`new backup label = (\S+)`)
	for _, typ := range []string{"full", "incr", "diff", "incr"} {
		out := e.MustRun("backup", "--type="+typ)
		labels = append(labels, label.FindStringSubmatch(out)[1])
		pgbench("-n", "-t", "300", "-c", "2")
	}
	e.Cluster.Exec("postgres", "select pg_switch_wal()")
	want := e.Cluster.QueryOne("postgres", "select md5(string_agg(aid::text || abalance::text, ',' order by aid)) from pgbench_accounts")
	e.Cluster.Stop()
	if out, code := e.Run("verify"); code != 0 || strings.Contains(out, "status: error") {
		t.Fatalf("verify on S3: exit %d\n%s", code, out)
	}
	for _, tool := range []string{"pgbr", "pgbackrest"} {
		r := restoreWith(t, e, tool)
		if got := r.QueryOne("postgres", "select md5(string_agg(aid::text || abalance::text, ',' order by aid)) from pgbench_accounts"); got != want {
			t.Fatalf("%s restore from S3: data differs", tool)
		}
		r.Stop()
	}
	// A second full, then retention 1: the first chain goes, with its WAL.
	e.Cluster.Start()
	e.MustRun("backup", "--type=full")
	e.Cluster.Stop()
	out := e.MustRun("expire", "--repo1-retention-full=1")
	if !strings.Contains(out, "expire full backup set "+strings.Join(labels, ", ")) {
		t.Fatalf("expire on S3:\n%s", out)
	}
	info := e.MustPgBackRest("info")
	for _, l := range labels {
		if strings.Contains(info, l) {
			t.Fatalf("expired backup %s still listed by pgBackRest:\n%s", l, info)
		}
	}
	keys := strings.Join(m.ListKeys(t), "\n")
	if strings.Contains(keys, "/"+labels[0]+"/") {
		t.Fatalf("expired backup %s still in the bucket", labels[0])
	}
}
