package test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/storage/posix"
	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// runCheckTool runs `check` with pgbr or pgBackRest for a stanza, giving
// the pg1 options on the command line (the config file has them only in
// the env's own stanza section).
func runCheckTool(e *testenv.Env, tool, stanza string, args ...string) (string, int) {
	bin := e.Pgbr
	if tool == "pgbackrest" {
		bin = testenv.PgBackRest
	}
	all := []string{"--config=" + e.Conf, "--stanza=" + stanza, "--pg1-path=" + e.Cluster.Data,
		"--pg1-socket-path=" + e.Cluster.Socket, "--pg1-port=" + strconv.Itoa(e.Cluster.Port), "check"}
	return testenv.AsPostgres(e.Dir, nil, bin, append(all, args...)...)
}

// consoleError returns the "ERROR: [nnn]: ..." block (with its
// continuation lines) that both tools print on stderr.
func consoleError(out string) string {
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "ERROR: [") {
			block := []string{l}
			for _, c := range lines[i+1:] {
				if !strings.HasPrefix(c, " ") {
					break
				}
				block = append(block, c)
			}
			return strings.Join(block, "\n")
		}
	}
	return ""
}

var (
	walNameRe  = regexp.MustCompile(`\b[0-9A-F]{24}\b`)
	walStoreRe = regexp.MustCompile(`\b[0-9A-F]{24}-[0-9a-f]{40}(\.[a-z0-9]+)?\b`)
)

// normalizeWal replaces WAL names (each check switches to a new segment).
func normalizeWal(s string) string {
	s = walStoreRe.ReplaceAllString(s, "<stored segment>")
	s = regexp.MustCompile(`/[0-9A-F]{16}/`).ReplaceAllString(s, "/<dir>/")
	return walNameRe.ReplaceAllString(s, "<segment>")
}

// infoLines returns the INFO messages of a run without the command
// begin/end lines.
func infoLines(out string) []string {
	var msgs []string
	for _, l := range strings.Split(out, "\n") {
		i := strings.Index(l, " INFO: ")
		if i < 0 || strings.Contains(l, " command begin ") || strings.Contains(l, " command end: ") {
			continue
		}
		msgs = append(msgs, l[i+len(" INFO: "):])
	}
	return msgs
}

// sameCheckError runs check with both tools and fails unless both exit
// with code and print the same error (WAL names normalized).
func sameCheckError(t *testing.T, e *testenv.Env, stanza string, code int, args ...string) string {
	t.Helper()
	want, wcode := runCheckTool(e, "pgbackrest", stanza, args...)
	got, gcode := runCheckTool(e, "pgbr", stanza, args...)
	if wcode != code || gcode != code {
		t.Fatalf("check %v: want exit %d, pgBackRest %d, pgbr %d\npgBackRest:\n%s\npgbr:\n%s", args, code, wcode, gcode, want, got)
	}
	w, g := normalizeWal(consoleError(want)), normalizeWal(consoleError(got))
	if w == "" || g != w {
		t.Fatalf("check %v: error differs from pgBackRest 2.45\n--- pgBackRest:\n%s\n--- pgbr:\n%s", args, want, got)
	}
	if !strings.Contains(got, fmt.Sprintf("check command end: aborted with exception [%03d]", code)) {
		t.Fatalf("check %v: no end line\n%s", args, got)
	}
	return g
}

func setArchiveCommand(t *testing.T, e *testenv.Env, cmd string) {
	t.Helper()
	e.Cluster.Exec("postgres", "alter system set archive_command = '"+strings.ReplaceAll(cmd, "'", "''")+"'")
	e.Cluster.Exec("postgres", "select pg_reload_conf()")
	// The reload is asynchronous: wait until this session sees it.
	for i := 0; i < 100 && e.Cluster.QueryOne("postgres", "show archive_command") != cmd; i++ {
		e.Cluster.Exec("postgres", "select pg_sleep(0.05)")
	}
}

func TestCheck(t *testing.T) {
	testenv.RequirePgBackRest(t)
	e := testenv.NewEnv(t, testenv.EnvOptions{Global: []string{"compress-type=lz4"}})
	e.MustRun("stanza-create")
	pgbrArchive := e.Cluster.QueryOne("postgres", "show archive_command")

	// Success with pgbr archiving.
	out := e.MustRun("check")
	lines := infoLines(out)
	if len(lines) != 3 || lines[0] != "check repo1 configuration (primary)" || lines[1] != "check repo1 archive for WAL (primary)" {
		t.Fatalf("check output:\n%s", out)
	}
	m := regexp.MustCompile(`^WAL segment ([0-9A-F]{24}) successfully archived to '(.*)' on repo1$`).FindStringSubmatch(lines[2])
	if m == nil {
		t.Fatalf("check success line: %q", lines[2])
	}
	seg, path := m[1], m[2]
	if dir := filepath.Join(e.Repo, "archive", e.Stanza, "15-1", seg[:16]); filepath.Dir(path) != dir ||
		!regexp.MustCompile(`^`+seg+`-[0-9a-f]{40}\.lz4$`).MatchString(filepath.Base(path)) {
		t.Fatalf("archived path %s", path)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("reported segment missing: %v", err)
	}

	t.Run("success like pgBackRest", func(t *testing.T) {
		setArchiveCommand(t, e, fmt.Sprintf("%s --config=%s --stanza=%s archive-push %%p", testenv.PgBackRest, e.Conf, e.Stanza))
		defer setArchiveCommand(t, e, pgbrArchive)
		want := infoLines(e.MustPgBackRest("check"))
		got := infoLines(e.MustRun("check"))
		if w, g := normalizeWal(strings.Join(want, "\n")), normalizeWal(strings.Join(got, "\n")); w != g {
			t.Fatalf("check messages differ\n--- pgBackRest:\n%s\n--- pgbr:\n%s", w, g)
		}
	})

	t.Run("archive timeout", func(t *testing.T) {
		// PostgreSQL believes the segment is archived; it never reaches the repo.
		setArchiveCommand(t, e, "/bin/true pgbackrest")
		defer setArchiveCommand(t, e, pgbrArchive)
		msg := sameCheckError(t, e, e.Stanza, 82, "--archive-timeout=2")
		if !strings.HasPrefix(msg, "ERROR: [082]: WAL segment <segment> was not archived before the 2000ms timeout\n") ||
			!strings.Contains(msg, "HINT: check the archive_command to ensure that all options are correct (especially --stanza).") {
			t.Fatalf("timeout message:\n%s", msg)
		}
	})

	t.Run("archive_command not calling pgbackrest", func(t *testing.T) {
		setArchiveCommand(t, e, "/bin/true")
		defer setArchiveCommand(t, e, pgbrArchive)
		want, wcode := runCheckTool(e, "pgbackrest", e.Stanza)
		got, gcode := runCheckTool(e, "pgbr", e.Stanza)
		// Deliberate difference: pgbr names both programs it accepts.
		if wcode != 68 || gcode != 68 || consoleError(want) != "ERROR: [068]: archive_command '/bin/true' must contain pgbackrest" ||
			consoleError(got) != "ERROR: [068]: archive_command '/bin/true' must contain pgbackrest or pgbr" {
			t.Fatalf("pgBackRest exit %d:\n%s\npgbr exit %d:\n%s", wcode, want, gcode, got)
		}
		// An archive_command calling pgbr is accepted by pgbr only.
		setArchiveCommand(t, e, "/bin/true pgbr")
		want, wcode = runCheckTool(e, "pgbackrest", e.Stanza)
		got, gcode = runCheckTool(e, "pgbr", e.Stanza, "--archive-timeout=1")
		if wcode != 68 || gcode != 82 || !strings.Contains(got, "was not archived before the 1000ms timeout") {
			t.Fatalf("pgBackRest exit %d:\n%s\npgbr exit %d:\n%s", wcode, want, gcode, got)
		}
		// --no-archive-check skips the settings, not the WAL switch.
		setArchiveCommand(t, e, "/bin/true")
		got, gcode = runCheckTool(e, "pgbr", e.Stanza, "--no-archive-check", "--archive-timeout=1")
		if gcode != 82 || !strings.Contains(got, "was not archived before the 1000ms timeout") {
			t.Fatalf("--no-archive-check: exit %d\n%s", gcode, got)
		}
	})

	ctx := context.Background()
	st := posix.New(e.Repo)
	sysID, err := strconv.ParseUint(e.Cluster.QueryOne("postgres", "select system_identifier::text from pg_control_system()"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	makeStanza := func(name string, a repo.ArchiveHistory, b repo.BackupDB) {
		t.Helper()
		ai := &repo.ArchiveInfo{BackrestVersion: "2.45", DB: a, History: []repo.ArchiveHistory{a}}
		bi := &repo.BackupInfo{BackrestVersion: "2.45", DB: b, History: []repo.BackupHistory{b}}
		if err := repo.SaveArchiveInfo(ctx, st, name, ai, ""); err != nil {
			t.Fatal(err)
		}
		if err := repo.SaveBackupInfo(ctx, st, name, bi, ""); err != nil {
			t.Fatal(err)
		}
		testenv.Chown(t, e.Repo)
	}

	t.Run("stanza not created", func(t *testing.T) {
		msg := sameCheckError(t, e, "nostanza", 55)
		if !strings.Contains(msg, "archive.info") {
			t.Fatalf("message:\n%s", msg)
		}
	})

	t.Run("stanza of another cluster", func(t *testing.T) {
		makeStanza("other", repo.ArchiveHistory{ID: 1, SystemID: sysID + 1, Version: "15"},
			repo.BackupDB{ID: 1, SystemID: sysID + 1, Version: "15", CatalogVersion: 202209061, ControlVersion: 1300})
		msg := sameCheckError(t, e, "other", 28)
		if msg != "ERROR: [028]: backup and archive info files exist but do not match the database\n"+
			"       HINT: is this the correct stanza?\n       HINT: did an error occur during stanza-upgrade?" {
			t.Fatalf("message:\n%s", msg)
		}
	})

	t.Run("info files disagree", func(t *testing.T) {
		makeStanza("mixed", repo.ArchiveHistory{ID: 1, SystemID: sysID, Version: "15"},
			repo.BackupDB{ID: 2, SystemID: sysID, Version: "15", CatalogVersion: 202209061, ControlVersion: 1300})
		msg := sameCheckError(t, e, "mixed", 28)
		if !strings.HasPrefix(msg, "ERROR: [028]: backup info file and archive info file do not match\n") {
			t.Fatalf("message:\n%s", msg)
		}
	})

	t.Run("archive_mode off", func(t *testing.T) {
		e.Cluster.Exec("postgres", "alter system set archive_mode = off")
		e.Cluster.Stop()
		e.Cluster.Start()
		if msg := sameCheckError(t, e, e.Stanza, 87); msg != "ERROR: [087]: archive_mode must be enabled" {
			t.Fatalf("message:\n%s", msg)
		}
	})

	t.Run("cluster down", func(t *testing.T) {
		e.Cluster.Stop()
		msg := sameCheckError(t, e, e.Stanza, 27)
		if msg != "ERROR: [027]: no database found\n       HINT: check indexed pg-path/pg-host configurations" {
			t.Fatalf("message:\n%s", msg)
		}
	})
}
