package test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/lock"
	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// consoleLogLine matches one console log line ("2026-11-25 14:48:15.671 P00
// INFO: ..."). pgBackRest logs info's begin/end at debug level, pgbr may log
// them at info: those lines are the only accepted difference, so they are
// removed from both outputs (also when glued to the end of the JSON, which
// has no trailing newline).
var consoleLogLine = regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} P\d\d +(INFO|DETAIL|DEBUG|TRACE): [^\n]*\n?`)

func stripConsoleLog(s string) string { return consoleLogLine.ReplaceAllString(s, "") }

// runInfoTool runs pgbr ("pgbr") or pgBackRest with the env's config, with
// --stanza=<env stanza> when stanza is true.
func runInfoTool(e *testenv.Env, tool string, stanza bool, args ...string) (string, int) {
	bin := e.Pgbr
	if tool == "pgbackrest" {
		bin = testenv.PgBackRest
	}
	all := []string{"--config=" + e.Conf}
	if stanza {
		all = append(all, "--stanza="+e.Stanza)
	}
	return testenv.AsPostgres(e.Dir, nil, bin, append(all, args...)...)
}

// sameInfo runs `info args` with both tools and fails unless both exit 0
// and print the same bytes (log lines aside). It returns the output.
func sameInfo(t *testing.T, e *testenv.Env, stanza bool, args ...string) string {
	t.Helper()
	args = append([]string{"info"}, args...)
	want, wcode := runInfoTool(e, "pgbackrest", stanza, args...)
	got, gcode := runInfoTool(e, "pgbr", stanza, args...)
	want, got = stripConsoleLog(want), stripConsoleLog(got)
	if wcode != 0 || gcode != 0 {
		t.Fatalf("info %v: pgBackRest exit %d, pgbr exit %d\npgBackRest:\n%s\npgbr:\n%s", args, wcode, gcode, want, got)
	}
	if got != want {
		t.Fatalf("info %v differs from pgBackRest 2.45\n--- pgBackRest:\n%s\n--- pgbr:\n%s\n--- first difference at byte %d",
			args, want, got, firstDiff(want, got))
	}
	if strings.Contains(strings.Join(args, " "), "--output=json") {
		// Valid JSON, and the system id survived as an exact integer.
		var v []map[string]any
		d := json.NewDecoder(strings.NewReader(got))
		d.UseNumber()
		if err := d.Decode(&v); err != nil {
			t.Fatalf("info %v: invalid JSON: %v\n%s", args, err, got)
		}
		if strings.HasSuffix(got, "\n") {
			t.Fatalf("info %v: JSON must not end with a newline", args)
		}
	}
	return got
}

func firstDiff(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// backupLabels returns the labels of the backups in the repo, oldest first.
func backupLabels(t *testing.T, e *testenv.Env) []string {
	t.Helper()
	out := sameInfo(t, e, true, "--output=json")
	var v []struct {
		Backup []struct {
			Label string `json:"label"`
		} `json:"backup"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || len(v) != 1 {
		t.Fatalf("info json: %v\n%s", err, out)
	}
	var labels []string
	for _, b := range v[0].Backup {
		labels = append(labels, b.Label)
	}
	return labels
}

// corruptPages overwrites bytes inside pages 1 and 2 of a table's first
// segment so that page checksums fail (after a checkpoint, so the page
// headers and LSNs are already on disk).
func corruptPages(t *testing.T, e *testenv.Env, table string) string {
	t.Helper()
	e.Cluster.Exec("postgres", "checkpoint")
	rel := e.Cluster.QueryOne("postgres", "select pg_relation_filepath('"+table+"')")
	f, err := os.OpenFile(filepath.Join(e.Cluster.Data, rel), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, page := range []int64{1, 2} {
		if _, err := f.WriteAt([]byte("CORRUPTED PAGE DATA"), page*8192+4000); err != nil {
			t.Fatal(err)
		}
	}
	return rel
}

func TestInfoMatchesPgBackRest(t *testing.T) {
	testenv.RequirePgBackRest(t)
	e := testenv.NewEnv(t, testenv.EnvOptions{Global: []string{"compress-type=lz4"}})

	// Nothing in the repository yet.
	if out := sameInfo(t, e, false); out != "No stanzas exist in the repository.\n" {
		t.Fatalf("empty repository: %q", out)
	}
	if out := sameInfo(t, e, false, "--output=json"); out != "[]" {
		t.Fatalf("empty repository json: %q", out)
	}
	if out := sameInfo(t, e, true); !strings.Contains(out, "status: error (missing stanza path)") {
		t.Fatalf("missing stanza:\n%s", out)
	}
	sameInfo(t, e, true, "--output=json")

	// A stanza without backups.
	e.MustRun("stanza-create")
	if out := sameInfo(t, e, true); !strings.Contains(out, "status: error (no valid backups)") ||
		!strings.Contains(out, "wal archive min/max (15): ") {
		t.Fatalf("no backups:\n%s", out)
	}
	sameInfo(t, e, true, "--output=json")

	// Backups by pgBackRest (full, then a diff with annotations) and by pgbr
	// (incr on top of them, then a full and an incr with page checksum
	// errors), over a tablespace and a second database.
	ts := filepath.Join(e.Dir, "ts1")
	os.MkdirAll(ts, 0o700)
	testenv.Chown(t, ts)
	e.Cluster.Exec("postgres", "create tablespace ts1 location '"+ts+"'")
	e.Cluster.Exec("postgres", "create database db2")
	e.Cluster.Exec("postgres", "create table t(id int, v text) tablespace ts1; insert into t select g, md5(g::text) from generate_series(1,5000) g")
	e.MustPgBackRest("backup", "--type=full")
	e.Cluster.Exec("postgres", "insert into t select g, md5(g::text) from generate_series(1,1000) g")
	e.MustPgBackRest("backup", "--type=diff", "--annotation=note=made by pgBackRest", `--annotation=a key=x "y"`)
	e.Cluster.Exec("postgres", "create table c as select g, md5(g::text) v from generate_series(1,2000) g")
	e.MustRun("backup", "--type=incr")
	e.MustRun("backup", "--type=full")
	bad := corruptPages(t, e, "c")
	e.MustRun("backup", "--type=incr")

	for _, args := range [][]string{{}, {"--output=json"}, {"--type=full"}, {"--type=incr", "--output=json"}} {
		sameInfo(t, e, true, args...)
		sameInfo(t, e, false, args...)
	}
	labels := backupLabels(t, e)
	if len(labels) != 5 {
		t.Fatalf("want 5 backups, info lists %v", labels)
	}
	for _, l := range labels {
		text := sameInfo(t, e, true, "--set="+l)
		sameInfo(t, e, true, "--set="+l, "--output=json")
		if !strings.Contains(text, "database list: db2 (") || !strings.Contains(text, "tablespaces:\n                ts1 (") {
			t.Fatalf("--set=%s detail:\n%s", l, text)
		}
	}
	if text := sameInfo(t, e, true, "--set="+labels[1]); !strings.Contains(text, "annotation(s)\n                a key: x \"y\"\n                note: made by pgBackRest\n") {
		t.Fatalf("annotations:\n%s", text)
	}
	if text := sameInfo(t, e, true, "--set="+labels[4]); !strings.Contains(text, "error list: "+bad+"\n") {
		t.Fatalf("page checksum errors:\n%s", text)
	}
	if out := sameInfo(t, e, true, "--set=20990101-000000F"); !strings.Contains(out, "status: error (requested backup not found)") {
		t.Fatalf("missing --set:\n%s", out)
	}
	sameInfo(t, e, true, "--set=20990101-000000F", "--output=json")
	good := sameInfo(t, e, true)

	t.Run("backup lock held", func(t *testing.T) {
		lockPath := filepath.Join(e.Dir, "lock")
		l, err := lock.Acquire(lockPath, e.Stanza, lock.Backup, "1-0123abcd")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Release()
		testenv.Chown(t, lockPath)
		if out := sameInfo(t, e, true); !strings.Contains(out, "status: ok (backup/expire running)\n") {
			t.Fatalf("lock held:\n%s", out)
		}
		l.Progress(2313)
		if out := sameInfo(t, e, true); !strings.Contains(out, "status: ok (backup/expire running - 23.13% complete)\n") {
			t.Fatalf("lock held with progress:\n%s", out)
		}
		sameInfo(t, e, true, "--output=json")
		sameInfo(t, e, true, "--set=20990101-000000F")
	})

	t.Run("corrupt info files", func(t *testing.T) {
		dir := filepath.Join(e.Repo, "backup", e.Stanza)
		main, cp := filepath.Join(dir, "backup.info"), filepath.Join(dir, "backup.info.copy")
		saveMain, _ := os.ReadFile(main)
		saveCopy, _ := os.ReadFile(cp)
		restore := func() {
			os.WriteFile(main, saveMain, 0o640)
			os.WriteFile(cp, saveCopy, 0o640)
			testenv.Chown(t, dir)
		}
		defer restore()
		corrupt := func(p string) {
			b, _ := os.ReadFile(p)
			b = bytes.Replace(b, []byte(`"backup-type":"full"`), []byte(`"backup-type":"fulx"`), 1)
			if err := os.WriteFile(p, b, 0o640); err != nil {
				t.Fatal(err)
			}
		}
		// A corrupt main file: the copy is used, nothing shows.
		corrupt(main)
		if out := sameInfo(t, e, true); out != good {
			t.Fatalf("fallback to backup.info.copy:\n%s\nwant:\n%s", out, good)
		}
		// Both corrupt: status 99 with the load error, exit 0.
		corrupt(cp)
		out := sameInfo(t, e, true)
		if !strings.Contains(out, "    status: error (other)\n            [ChecksumError] unable to load info file '"+main+"' or '"+cp+"':\n") {
			t.Fatalf("both corrupt:\n%s", out)
		}
		sameInfo(t, e, true, "--output=json")
		sameInfo(t, e, false)
		// Main corrupt and copy missing.
		os.Remove(cp)
		sameInfo(t, e, true)
		// Both missing: missing stanza data.
		os.Remove(main)
		if out := sameInfo(t, e, true); !strings.Contains(out, "status: error (missing stanza data)") {
			t.Fatalf("both missing:\n%s", out)
		}
		sameInfo(t, e, true, "--output=json")
		restore()

		// archive.info missing.
		adir := filepath.Join(e.Repo, "archive", e.Stanza)
		for _, n := range []string{"archive.info", "archive.info.copy"} {
			os.Rename(filepath.Join(adir, n), filepath.Join(e.Dir, n))
			defer os.Rename(filepath.Join(e.Dir, n), filepath.Join(adir, n))
		}
		if out := sameInfo(t, e, true); !strings.Contains(out, "[FileMissingError] unable to load info file '"+filepath.Join(adir, "archive.info")) {
			t.Fatalf("archive.info missing:\n%s", out)
		}
		sameInfo(t, e, true, "--output=json")
	})

	t.Run("several stanzas", func(t *testing.T) {
		// An empty stanza directory: missing stanza data, listed in order.
		other := filepath.Join(e.Repo, "backup", "a-other")
		os.MkdirAll(other, 0o750)
		testenv.Chown(t, other)
		defer os.RemoveAll(other)
		out := sameInfo(t, e, false)
		if !strings.HasPrefix(out, "stanza: a-other\n    status: error (missing stanza data)\n    cipher: none\n\nstanza: main\n") {
			t.Fatalf("two stanzas:\n%s", out)
		}
		sameInfo(t, e, false, "--output=json")
	})

	t.Run("two repositories", func(t *testing.T) {
		// repo2 is encrypted: cipher is mixed and, until it has a backup,
		// the status differs across repos.
		repo2 := filepath.Join(e.Dir, "repo2")
		os.MkdirAll(repo2, 0o750)
		testenv.Chown(t, repo2)
		e.Global = append(e.Global, "repo2-path="+repo2, "repo2-cipher-type=aes-256-cbc", "repo2-cipher-pass=info-test-pass", "repo2-retention-full=9")
		e.WriteConf()
		e.MustRun("stanza-create")
		out := sameInfo(t, e, true)
		if !strings.Contains(out, "    status: mixed\n        repo1: ok\n        repo2: error (no valid backups)\n    cipher: mixed\n        repo1: none\n        repo2: aes-256-cbc\n") {
			t.Fatalf("two repositories:\n%s", out)
		}
		sameInfo(t, e, true, "--output=json")
		e.MustRun("backup", "--repo=2", "--type=full")
		out = sameInfo(t, e, true)
		if !strings.Contains(out, "    status: ok\n") || !strings.Contains(out, "repo2: backup set size: ") {
			t.Fatalf("two repositories with backups:\n%s", out)
		}
		for _, args := range [][]string{{"--output=json"}, {"--repo=1"}, {"--repo=2", "--output=json"}} {
			sameInfo(t, e, true, args...)
		}
		labels := backupLabels(t, e)
		last := labels[len(labels)-1]
		sameInfo(t, e, true, "--set="+last)
		sameInfo(t, e, true, "--set="+last, "--output=json")
		sameInfo(t, e, true, "--set="+last, "--repo=1")
	})
}
