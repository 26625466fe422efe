package test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// Repositories written by pgBackRest 2.60.0dev with block incremental
// (repo1-bundle=y repo1-block=y), see their README.md.

const blockHashQuery = `SELECT count(*) || ' ' || md5(string_agg(g || ':' || v, ',' ORDER BY g)) FROM t`

type blockFixture struct {
	name   string
	cipher string // repo1-cipher-pass, "" = not encrypted
}

// copyFixture copies a fixture repository into dir/repo (never touching the
// original) and returns the repository path and the expected contents.
func copyFixture(t *testing.T, name, dir string) (string, []string, map[string]string) {
	t.Helper()
	src := filepath.Join(testenv.Fixtures(t), name)
	if _, err := os.Stat(filepath.Join(src, "repo")); err != nil {
		t.Fatalf("fixture %s missing: %v", name, err)
	}
	repo := filepath.Join(dir, "repo")
	if out, err := exec.Command("cp", "-r", filepath.Join(src, "repo"), repo).CombinedOutput(); err != nil {
		t.Fatalf("copy fixture: %v\n%s", err, out)
	}
	exec.Command("chmod", "-R", "u+w", repo).Run()
	b, err := os.ReadFile(filepath.Join(src, "expected.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	want := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("expected.txt: bad line %q", line)
		}
		want[f[0]] = f[1] + " " + f[2]
		if f[0] != "end-of-wal" {
			labels = append(labels, f[0])
		}
	}
	if len(labels) != 4 || want["end-of-wal"] == "" {
		t.Fatalf("expected.txt: %v", want)
	}
	return repo, labels, want
}

// TestBlockIncrFixtures restores every backup of the pgBackRest 2.60 block
// incremental repositories (zst; gz with aes-256-cbc) on a real server of
// their major version and compares table t with what the cluster held, then
// restores the latest backup with --delta over a restore of the full backup
// and replays to the end of the archived WAL; info, verify (also of a
// corrupt copy) and expire work on them.
func TestBlockIncrFixtures(t *testing.T) {
	t.Parallel()
	pgbr := testenv.Pgbr(t)
	for _, fx := range []blockFixture{{name: "pg18-block-zst"}, {name: "pg16-block-gz-aes", cipher: "fixture-passphrase-0123456789"}} {
		t.Run(fx.name, func(t *testing.T) {
			t.Parallel()
			dir := testenv.Dir(t, "block-"+fx.name)
			repo, labels, want := copyFixture(t, fx.name, dir)
			testenv.Chown(t, repo)
			conf := filepath.Join(dir, "pgbackrest.conf")
			c := fmt.Sprintf("[global]\nrepo1-path=%s\nlog-path=%s\nlock-path=%s\nlog-level-console=warn\nlog-level-file=off\n",
				repo, filepath.Join(dir, "log"), filepath.Join(dir, "lock"))
			if fx.cipher != "" {
				c += "repo1-cipher-type=aes-256-cbc\nrepo1-cipher-pass=" + fx.cipher + "\n"
			}
			if err := os.WriteFile(conf, []byte(c), 0o644); err != nil {
				t.Fatal(err)
			}
			testenv.Chown(t, dir)
			run := func(args ...string) (string, int) {
				a := append([]string{"--config=" + conf, "--stanza=fixture"}, args...)
				return testenv.AsPostgres(dir, nil, pgbr, a...)
			}
			mustRun := func(args ...string) string {
				t.Helper()
				out, code := run(args...)
				if code != 0 {
					t.Fatalf("pgbr %v: exit %d\n%s", args, code, out)
				}
				return out
			}

			// info lists the block incremental backups as pgBackRest 2.60:
			// repository size-map/delta-map, no set size.
			var info []struct {
				Backup []struct {
					Label string
					Info  struct {
						Repository map[string]uint64
					}
					Timestamp struct{ Start, Stop int64 }
				}
			}
			if err := json.Unmarshal([]byte(mustRun("info", "--output=json")), &info); err != nil {
				t.Fatal(err)
			}
			if len(info) != 1 || len(info[0].Backup) != 4 {
				t.Fatalf("info: %+v", info)
			}
			for i, b := range info[0].Backup {
				r := b.Info.Repository
				_, hasSize := r["size"]
				if b.Label != labels[i] || hasSize || r["delta"] == 0 || r["size-map"] == 0 || r["delta-map"] == 0 {
					t.Fatalf("info backup %d: %+v", i, b)
				}
			}
			if text := mustRun("info"); !strings.Contains(text, "repo1: backup size: ") || strings.Contains(text, "backup set size") {
				t.Fatalf("info text:\n%s", text)
			}

			// Every backup at its consistency point.
			var fullData string
			for i, label := range labels {
				data := filepath.Join(dir, fmt.Sprintf("pg%d", i))
				mustRun("restore", "--pg1-path="+data, "--set="+label, "--type=immediate", "--target-action=promote", "--archive-mode=off")
				cl := testenv.StartRestored(t, dir, data)
				if got := cl.QueryOne("postgres", blockHashQuery); got != want[label] {
					t.Errorf("%s: table t is %q, expected %q", label, got, want[label])
				}
				cl.Stop()
				if i == 0 {
					fullData = data
				}
			}

			// A time target: from the first incr, replayed to one second
			// into the diff (nothing writes while a backup runs, and the
			// changes before the diff committed before it started), gives
			// the diff's content.
			diff := info[0].Backup[2].Timestamp
			if diff.Stop-diff.Start < 2 {
				t.Fatalf("diff %s ran %d s: no second inside it for a time target", labels[2], diff.Stop-diff.Start)
			}
			target := time.Unix(diff.Start+1, 0).UTC().Format("2006-01-02 15:04:05") + "+00"
			timeData := filepath.Join(dir, "pg-time")
			mustRun("restore", "--pg1-path="+timeData, "--set="+labels[1], "--type=time", "--target="+target,
				"--target-action=promote", "--archive-mode=off")
			cl := testenv.StartRestored(t, dir, timeData)
			if got := cl.QueryOne("postgres", blockHashQuery); got != want[labels[2]] {
				t.Errorf("time target %s from %s: table t is %q, expected %q (%s)", target, labels[1], got, want[labels[2]], labels[2])
			}
			cl.Stop()

			// The latest backup with --delta over the restored full backup,
			// to the end of the archived WAL.
			mustRun("restore", "--pg1-path="+fullData, "--delta", "--archive-mode=off")
			cl = testenv.StartRestored(t, dir, fullData)
			if got := cl.QueryOne("postgres", blockHashQuery); got != want["end-of-wal"] {
				t.Errorf("end of WAL: table t is %q, expected %q", got, want["end-of-wal"])
			}
			cl.Stop()

			// pgbr continues the set with an offline block incremental incr
			// of that cluster: it reads pgBackRest's maps as the prior ones.
			mustRun("backup", "--pg1-path="+fullData, "--type=incr", "--no-online", "--repo1-bundle", "--repo1-block", "--beta")
			if err := json.Unmarshal([]byte(mustRun("info", "--output=json")), &info); err != nil {
				t.Fatal(err)
			}
			if n := len(info[0].Backup); n != 5 || info[0].Backup[4].Info.Repository["delta-map"] == 0 {
				t.Fatalf("info after pgbr's incr: %+v", info[0].Backup)
			}
			pgbrIncr := info[0].Backup[4].Label
			data := filepath.Join(dir, "pgbr-incr")
			mustRun("restore", "--pg1-path="+data, "--set="+pgbrIncr, "--type=none")
			cl = testenv.StartRestored(t, dir, data)
			if got := cl.QueryOne("postgres", blockHashQuery); got != want["end-of-wal"] {
				t.Errorf("pgbr's incr %s: table t is %q, expected %q", pgbrIncr, got, want["end-of-wal"])
			}
			cl.Stop()

			// verify checks every block incremental file end to end.
			if out, code := run("verify"); code != 0 {
				t.Fatalf("verify: exit %d\n%s", code, out)
			}

			// expire --set of the diff removes it and the incr based on it.
			mustRun("expire", "--set="+labels[2])
			for i, label := range labels {
				_, err := os.Stat(filepath.Join(repo, "backup", "fixture", label))
				if (i < 2) != (err == nil) {
					t.Errorf("after expire of %s: backup %s exists %v", labels[2], label, err == nil)
				}
			}
			if out, code := run("verify"); code != 0 {
				t.Fatalf("verify after expire: exit %d\n%s", code, out)
			}

			// A flipped byte in the full backup's first bundle is found.
			bundle := filepath.Join(repo, "backup", "fixture", labels[0], "bundle", "1")
			b, err := os.ReadFile(bundle)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 0x55
			if err := os.WriteFile(bundle, b, 0o640); err != nil {
				t.Fatal(err)
			}
			if out, code := run("verify"); code == 0 {
				t.Fatalf("verify of a corrupt bundle succeeded\n%s", out)
			}
		})
	}
}
