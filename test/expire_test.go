package test

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/storage/posix"
	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// repoListing lists every file and directory under a repository (no
// contents: expire only removes), with info-file copies left out since
// their bytes embed nothing that expire decides.
func repoListing(t *testing.T, root string) []string {
	t.Helper()
	out, err := exec.Command("find", root, "-mindepth", "1").Output()
	if err != nil {
		t.Fatal(err)
	}
	var list []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		list = append(list, strings.TrimPrefix(l, root))
	}
	sort.Strings(list)
	return list
}

// TestExpireMatchesPgBackRest builds one repository with a chain of
// backups and WAL, copies it, and runs pgbr expire on one copy and
// pgBackRest 2.45 expire on the other with the same options: the remaining
// backups and WAL must be identical.
func TestExpireMatchesPgBackRest(t *testing.T) {
	testenv.RequirePgBackRest(t)
	e := testenv.NewEnv(t, testenv.EnvOptions{})
	e.MustRun("stanza-create")
	e.Cluster.Exec("postgres", "create table t(id int)")
	labels := map[string]string{}
	for _, typ := range []string{"full", "incr", "diff", "full", "incr", "diff", "incr", "full", "diff"} {
		e.Cluster.Exec("postgres", "insert into t select generate_series(1,1000)")
		e.Cluster.Exec("postgres", "select pg_switch_wal()")
		out := e.MustRun("backup", "--type="+typ, "--repo1-retention-full=99")
		m := regexp.MustCompile(`new backup label = (\S+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no label in:\n%s", out)
		}
		labels[typ+string(rune('0'+len(labels)))] = m[1]
	}
	e.Cluster.Exec("postgres", "select pg_switch_wal()")
	e.Cluster.Stop()
	var diff1 string
	for k, v := range labels {
		if k == "diff2" {
			diff1 = v
		}
	}
	cases := []struct {
		name string
		args []string
		aged int // backups (oldest first) whose stop time is moved 10 days back
	}{
		{"full2", []string{"--repo1-retention-full=2"}, 0},
		{"full1", []string{"--repo1-retention-full=1"}, 0},
		{"full3_archive1", []string{"--repo1-retention-full=3", "--repo1-retention-archive=1"}, 0},
		{"diff1", []string{"--repo1-retention-full=3", "--repo1-retention-diff=1"}, 0},
		{"archive_incr", []string{"--repo1-retention-full=3", "--repo1-retention-archive-type=incr", "--repo1-retention-archive=2"}, 0},
		{"adhoc_diff", []string{"--set=" + diff1}, 0},
		{"time_recent", []string{"--repo1-retention-full-type=time", "--repo1-retention-full=1"}, 0},
		{"time_aged", []string{"--repo1-retention-full-type=time", "--repo1-retention-full=3"}, 7},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var listings [2][]string
			var outs [2]string
			for i, tool := range []string{"pgbr", "pgbackrest"} {
				dir := testenv.Dir(t, "expire-"+tool)
				copyRepo := filepath.Join(dir, "repo")
				if out, err := exec.Command("cp", "-a", e.Repo, copyRepo).CombinedOutput(); err != nil {
					t.Fatalf("cp: %v %s", err, out)
				}
				if c.aged > 0 {
					ageBackups(t, copyRepo, e.Stanza, c.aged)
				}
				args := append([]string{"expire", "--repo1-path=" + copyRepo}, c.args...)
				var out string
				if tool == "pgbr" {
					out = e.MustRun(args...)
				} else {
					out = e.MustPgBackRest(args...)
				}
				outs[i] = out
				listings[i] = repoListing(t, copyRepo)
			}
			a, b := strings.Join(listings[0], "\n"), strings.Join(listings[1], "\n")
			if a != b {
				t.Fatalf("repositories differ after expire %v\npgbr output:\n%s\npgbackrest output:\n%s\n%s", c.args, outs[0], outs[1], lineDiff(listings[0], listings[1]))
			}
		})
	}
}

func lineDiff(a, b []string) string {
	in := func(s []string) map[string]bool {
		m := map[string]bool{}
		for _, x := range s {
			m[x] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	var out []string
	for _, x := range a {
		if !mb[x] {
			out = append(out, "only pgbr:       "+x)
		}
	}
	for _, x := range b {
		if !ma[x] {
			out = append(out, "only pgbackrest: "+x)
		}
	}
	return strings.Join(out, "\n")
}

// ageBackups moves the stop time of the n oldest backups 10 days back in
// backup.info (both copies), so time-based retention has something to do.
func ageBackups(t *testing.T, root, stanza string, n int) {
	t.Helper()
	ctx := context.Background()
	st := posix.New(root)
	bi, err := repo.LoadBackupInfo(ctx, st, stanza, "")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n && i < len(bi.Current); i++ {
		bi.Current[i].TimestampStop -= 10 * 86400
		bi.Current[i].TimestampStart -= 10 * 86400
	}
	if err := repo.SaveBackupInfo(ctx, st, stanza, bi, ""); err != nil {
		t.Fatal(err)
	}
	testenv.Chown(t, root)
}
