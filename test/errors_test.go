package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgbr-dev/pgbr/internal/lock"
	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// Bad input: every case gets one clear message, pgBackRest 2.45's error
// code as exit code, no Go panic on the console, and an unchanged
// repository. The codes were checked against pgBackRest 2.45; where it is
// cheap (no database involved) the test runs pgBackRest too and compares.

// expectFail checks a failed run's exit code and message fragments, and
// that no Go panic or stack trace reached the console.
func expectFail(t *testing.T, out string, code, want int, msgs ...string) {
	t.Helper()
	if code != want {
		t.Errorf("exit code %d, want %d\n%s", code, want, out)
	}
	for _, m := range msgs {
		if !strings.Contains(out, m) {
			t.Errorf("output lacks %q\n%s", m, out)
		}
	}
	noPanic(t, out)
}

func noPanic(t *testing.T, out string) {
	t.Helper()
	for _, s := range []string{"goroutine ", "panic:", "runtime error", ".go:"} {
		if strings.Contains(out, s) {
			t.Errorf("output contains %q (a Go panic or stack trace)\n%s", s, out)
		}
	}
}

// expectOK checks a successful run printed no error or warning.
func expectOK(t *testing.T, out string, code int) {
	t.Helper()
	if code != 0 {
		t.Fatalf("exit code %d, want 0\n%s", code, out)
	}
	for _, s := range []string{"ERROR", "WARN", "unable to"} {
		if strings.Contains(out, s) {
			t.Errorf("output of a successful run contains %q\n%s", s, out)
		}
	}
	noPanic(t, out)
}

// unchanged fails the test if dir changed while f ran.
func unchanged(t *testing.T, dir string, f func()) {
	t.Helper()
	before := testenv.TreeDigest(t, dir)
	f()
	if after := testenv.TreeDigest(t, dir); after != before {
		t.Errorf("%s changed by a failed command:\n%s", dir, testenv.Tree(dir))
	}
}

// writeFile writes a file owned by postgres (new directories are 0755).
func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o640); err != nil {
		t.Fatal(err)
	}
	testenv.Chown(t, filepath.Dir(path))
}

// corrupt changes one digit in the middle of path: the file still parses,
// only its checksum is wrong.
func corrupt(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := len(b) / 2
	for i < len(b) && (b[i] < '0' || b[i] > '9') {
		i++
	}
	if i == len(b) {
		t.Fatalf("no digit in the second half of %s", path)
	}
	if b[i] == '9' {
		b[i] = '8'
	} else {
		b[i]++
	}
	writeFile(t, path, b)
}

// truncate cuts path to half its size.
func truncate(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, b[:len(b)/2])
}

// saveFiles returns a function that puts the files back as they are now.
func saveFiles(t *testing.T, paths ...string) func() {
	t.Helper()
	saved := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		saved[p] = b
	}
	return func() {
		for p, b := range saved {
			writeFile(t, p, b)
		}
	}
}

// TestErrorsConfig: bad configuration never gets as far as a command.
func TestErrorsConfig(t *testing.T) {
	testenv.RequirePgBackRest(t)
	e := testenv.NewEnv(t, testenv.EnvOptions{NoStart: true})
	conf, err := os.ReadFile(e.Conf)
	if err != nil {
		t.Fatal(err)
	}
	// A config file with one bad line appended (in the [main] section).
	badConf := func(name, line string) (string, int) {
		p := filepath.Join(e.Dir, name)
		writeFile(t, p, append(append([]byte(nil), conf...), []byte(line+"\n")...))
		return p, strings.Count(string(conf), "\n") + 1
	}
	badValue, badValueLine := badConf("bad-value.conf", "process-max=abc")
	badBool, badBoolLine := badConf("bad-bool.conf", "start-fast=yes")
	withStanza := []string{"--config=" + e.Conf, "--stanza=" + e.Stanza}

	cases := []struct {
		name string
		args []string // full command line
		code int
		msgs []string
	}{
		{"unknown option", append(withStanza, "--bogus-option", "backup"), 31,
			[]string{"ERROR: [031]: invalid option '--bogus-option'"}},
		{"bad value on command line", append(withStanza, "--process-max=abc", "backup"), 32,
			[]string{"ERROR: [032]:", "'process-max'", "'abc'"}},
		{"out of range value", append(withStanza, "--process-max=0", "backup"), 32,
			[]string{"ERROR: [032]:", "'process-max'", "'0'", "range"}},
		{"bad value in config file", []string{"--config=" + badValue, "--stanza=main", "backup"}, 32,
			[]string{"ERROR: [032]:", "'process-max'", "'abc'", fmt.Sprintf("'%s' line %d", badValue, badValueLine)}},
		{"boolean not y/n in config file", []string{"--config=" + badBool, "--stanza=main", "backup"}, 32,
			[]string{"ERROR: [032]: boolean option 'start-fast' must be 'y' or 'n'", fmt.Sprintf("'%s' line %d", badBool, badBoolLine)}},
		{"boolean not y/n on command line", append(withStanza, "--start-fast=yes", "backup"), 32,
			[]string{"ERROR: [032]: boolean option '--start-fast' argument must be 'y' or 'n'"}},
		{"option not valid for command", append(withStanza, "--type=full", "archive-get", "000000010000000000000001", "pg_wal/x"), 31,
			[]string{"ERROR: [031]: option 'type' not valid for command 'archive-get'"}},
		{"secure option on command line", append(withStanza, "--repo1-cipher-pass=s3cr3t-pass", "backup"), 31,
			[]string{"ERROR: [031]: option 'repo1-cipher-pass' is not allowed on the command-line",
				"HINT: specify the option in a configuration file or an environment variable instead."}},
		{"missing stanza", []string{"--config=" + e.Conf, "backup"}, 37,
			[]string{"ERROR: [037]: backup command requires option: stanza"}},
		{"unknown command", append(withStanza, "frobnicate"), 48,
			[]string{"ERROR: [048]: invalid command 'frobnicate'"}},
		{"missing config file", []string{"--config=" + filepath.Join(e.Dir, "nope.conf"), "--stanza=main", "backup"}, 55,
			[]string{"ERROR: [055]: unable to open missing file '" + filepath.Join(e.Dir, "nope.conf") + "' for read"}},
		{"option set twice", append(withStanza, "--process-max=1", "--process-max=2", "backup"), 31,
			[]string{"ERROR: [031]: option 'process-max' cannot be set multiple times"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			unchanged(t, e.Repo, func() {
				out, code := testenv.AsPostgres(e.Dir, nil, e.Pgbr, c.args...)
				expectFail(t, out, code, c.code, c.msgs...)
				if strings.Contains(out, "s3cr3t-pass") {
					t.Errorf("secret printed:\n%s", out)
				}
				if _, brCode := testenv.AsPostgres(e.Dir, nil, testenv.PgBackRest, c.args...); brCode != code {
					t.Errorf("pgBackRest 2.45 exits %d, pgbr %d", brCode, code)
				}
			})
		})
	}
}

// TestErrors runs every other bad input against one cluster (A) and its
// repository, plus a second cluster (B) for stanza mismatches.
func TestErrors(t *testing.T) {
	e := testenv.NewEnv(t, testenv.EnvOptions{})
	a := e.Cluster
	data := a.Data
	stanzaArchive := filepath.Join(e.Repo, "archive", e.Stanza)
	stanzaBackup := filepath.Join(e.Repo, "backup", e.Stanza)
	archiveInfo := filepath.Join(stanzaArchive, "archive.info")
	backupInfo := filepath.Join(stanzaBackup, "backup.info")
	notPg := filepath.Join(e.Dir, "not-a-cluster")
	writeFile(t, filepath.Join(notPg, "PG_VERSION"), []byte("15\n"))
	missingPg := filepath.Join(e.Dir, "no-such-dir")
	firstWal := filepath.Join(data, "pg_wal", "000000010000000000000001")

	// settle waits until PostgreSQL has archived every finished segment:
	// a started backup switches WAL, and the archiver (pgbr archive-push)
	// must not change the repository while a failing command is checked.
	settle := func(t *testing.T) {
		t.Helper()
		if _, err := os.Stat(filepath.Join(data, "postmaster.pid")); err != nil {
			return // not running
		}
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			ready, _ := filepath.Glob(filepath.Join(data, "pg_wal", "archive_status", "*.ready"))
			tmp, _ := filepath.Glob(filepath.Join(stanzaArchive, "*", "*", "*.tmp"))
			if len(ready) == 0 && len(tmp) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("PostgreSQL did not finish archiving %v %v\n%s", ready, tmp, a.Log())
			}
		}
	}

	// fail runs pgbr and checks the result and that the repository did not change.
	fail := func(t *testing.T, code int, msgs []string, args ...string) string {
		t.Helper()
		settle(t)
		var out string
		unchanged(t, e.Repo, func() {
			var got int
			out, got = e.Run(args...)
			expectFail(t, out, got, code, msgs...)
		})
		return out
	}

	t.Run("pg1-path", func(t *testing.T) {
		// Before stanza-create (the repository is empty) and after.
		for _, cmd := range []string{"stanza-create", "backup"} {
			if cmd == "backup" {
				e.MustRun("stanza-create")
			}
			t.Run(cmd, func(t *testing.T) {
				fail(t, 37, []string{"ERROR: [037]: " + cmd + " command requires option: pg1-path"}, "--reset-pg1-path", cmd)
				fail(t, 56, []string{"ERROR: [056]: unable to find primary cluster - cannot proceed",
					"pg1: [FileMissingError] unable to open missing file '" + missingPg + "/global/pg_control' for read",
					"pg1-path '" + missingPg + "' does not exist"}, "--pg1-path="+missingPg, cmd)
				fail(t, 56, []string{"ERROR: [056]: unable to find primary cluster - cannot proceed",
					"pg1: [FileMissingError] unable to open missing file '" + notPg + "/global/pg_control' for read",
					"HINT: is pg1-path '" + notPg + "' the PostgreSQL data directory?"}, "--pg1-path="+notPg, cmd)
				// Offline, pg_control's own error (pgBackRest: FileMissingError).
				fail(t, 55, []string{"ERROR: [055]: unable to open missing file '" + missingPg + "/global/pg_control' for read"},
					"--pg1-path="+missingPg, "--no-online", cmd)
			})
		}
		// check's error cases live in check_test.go (pgBackRest 2.45 answers
		// a missing pg1-path directory there with ConfigError [027] "no
		// database found").
	})
	if _, err := os.Stat(backupInfo); err != nil {
		t.Fatalf("stanza-create did not run: %v", err)
	}

	t.Run("repository missing", func(t *testing.T) {
		noRepo := filepath.Join(e.Dir, "no-repo")
		hint := "HINT: has a stanza-create been performed?"
		for _, c := range []struct {
			code int
			msgs []string
			args []string
		}{
			{55, []string{"ERROR: [055]: unable to load info file '" + noRepo + "/backup/main/backup.info' or '" + noRepo + "/backup/main/backup.info.copy':",
				"FileMissingError: unable to open missing file '" + noRepo + "/backup/main/backup.info' for read", hint}, []string{"backup"}},
			// pgBackRest 2.45 says RepoInvalidError [103] for archive-push
			// and archive-get, with the reason per repository.
			{103, []string{"ERROR: [103]: unable to find a valid repository:",
				"repo1: [FileMissingError] unable to load info file '" + noRepo + "/archive/main/archive.info'", hint},
				[]string{"archive-push", firstWal}},
			{103, []string{"WARN: repo1: [FileMissingError] unable to load info file '" + noRepo + "/archive/main/archive.info'", hint,
				"ERROR: [103]: unable to find a valid repository"},
				[]string{"archive-get", "000000010000000000000001", filepath.Join(e.Dir, "got")}},
			// pgBackRest 2.45 exits 75 ("no backup set found to restore",
			// the reason as a warning).
			{75, []string{"WARN: repo1: [FileMissingError] unable to load info file '" + noRepo + "/backup/main/backup.info'", hint,
				"ERROR: [075]: no backup set found to restore"},
				[]string{"restore", "--pg1-path=" + filepath.Join(e.Dir, "restore-norepo")}},
		} {
			t.Run(c.args[0], func(t *testing.T) {
				fail(t, c.code, c.msgs, append([]string{"--repo1-path=" + noRepo}, c.args...)...)
				if _, err := os.Stat(noRepo); !os.IsNotExist(err) {
					t.Errorf("%s created by a failed %s", noRepo, c.args[0])
				}
			})
		}
	})

	// A real segment of cluster A to push under other names.
	seg := a.QueryOne("postgres", "select pg_walfile_name(pg_switch_wal())")
	e.WaitArchived(seg)
	walA, err := os.ReadFile(filepath.Join(data, "pg_wal", seg))
	if err != nil || len(walA) != 16<<20 {
		t.Fatalf("read segment %s: %d bytes, %v", seg, len(walA), err)
	}
	walDir := filepath.Join(e.Dir, "wal")
	pushCopy := func(name string) string {
		p := filepath.Join(walDir, name)
		writeFile(t, p, walA)
		return p
	}
	sysA := a.QueryOne("postgres", "select system_identifier::text from pg_control_system()")

	t.Run("postgres down", func(t *testing.T) {
		a.Stop()
		defer a.Start()
		sock := fmt.Sprintf("%s/.s.PGSQL.%d", a.Socket, a.Port)
		fail(t, 56, []string{"ERROR: [056]: unable to find primary cluster - cannot proceed",
			"pg1: [DbConnectError] unable to connect to", sock, "HINT: is PostgreSQL running"}, "stanza-create")
		fail(t, 56, []string{"ERROR: [056]: unable to connect to", sock, "HINT: is PostgreSQL running"}, "backup")
	})

	t.Run("stanza mismatch", func(t *testing.T) {
		b := testenv.NewCluster(t, testenv.Dir(t, "cluster-b"), testenv.ClusterOptions{})
		sysB := b.QueryOne("postgres", "select system_identifier::text from pg_control_system()")
		segB := b.QueryOne("postgres", "select pg_walfile_name(pg_switch_wal())")
		walB, err := os.ReadFile(filepath.Join(b.Data, "pg_wal", segB))
		if err != nil {
			t.Fatal(err)
		}
		walFromB := filepath.Join(walDir, "b", segB)
		writeFile(t, walFromB, walB)
		onB := []string{"--pg1-path=" + b.Data, "--pg1-port=" + fmt.Sprint(b.Port), "--pg1-socket-path=" + b.Socket}

		fail(t, 28, []string{"ERROR: [028]: backup and archive info files exist but do not match the database",
			"HINT: is this the correct stanza?"}, append(onB, "stanza-create")...)
		fail(t, 51, []string{fmt.Sprintf("ERROR: [051]: PostgreSQL version 15, system-id %s do not match stanza version 15, system-id %s", sysB, sysA),
			"HINT: is this the correct stanza?"}, append(onB, "backup")...)
		// B's archive_command pointed at A's stanza: pgBackRest 2.45 wraps
		// the ArchiveMismatchError [044] in RepoInvalidError [103].
		fail(t, 103, []string{"ERROR: [103]: unable to find a valid repository:",
			fmt.Sprintf("repo1: [ArchiveMismatchError] PostgreSQL version 15, system-id %s do not match repo1 stanza version 15, system-id %s", sysB, sysA),
			"HINT: are you archiving to the correct stanza?"}, "--pg1-path="+b.Data, "archive-push", walFromB)
		// A WAL file of B pushed by A: the header check.
		fail(t, 44, []string{fmt.Sprintf("ERROR: [044]: WAL file '%s' version 15, system-id %s do not match stanza version 15, system-id %s", walFromB, sysB, sysA)},
			"archive-push", walFromB)
		fail(t, 103, []string{fmt.Sprintf("WARN: repo1: [ArchiveMismatchError] unable to retrieve the archive id for database version '15' and system-id '%s'", sysB),
			"ERROR: [103]: unable to find a valid repository"}, "--pg1-path="+b.Data, "archive-get", seg, filepath.Join(e.Dir, "got"))
		b.Stop()
	})

	t.Run("archive-push and archive-get input", func(t *testing.T) {
		missing := filepath.Join(walDir, "000000010000000000000077")
		fail(t, 55, []string{"ERROR: [055]: unable to open missing file '" + missing + "' for read"}, "archive-push", missing)
		// e.Run runs in e.Dir, not in pg1-path.
		fail(t, 32, []string{"ERROR: [032]: PostgreSQL working directory '" + e.Dir + "' is not the same as option pg1-path '" + data + "'"},
			"archive-push", "pg_wal/"+seg)
		fail(t, 43, []string{"ERROR: [043]: WAL segment to push required"}, "archive-push")
		fail(t, 43, []string{"ERROR: [043]: WAL segment to push required"}, "archive-push", firstWal, firstWal)
		fail(t, 43, []string{"ERROR: [043]: WAL segment to get required"}, "archive-get")
		fail(t, 43, []string{"ERROR: [043]: path to copy WAL segment required"}, "archive-get", seg)
		// A segment too short for a WAL header is never archived.
		short := filepath.Join(walDir, "000000010000000000000078")
		writeFile(t, short, walA[:100])
		fail(t, 42, []string{"ERROR: [042]: unable to read 512 byte(s) from '" + short + "'"}, "archive-push", short)
		// pg1-path is set but holds no cluster: pg_control is read first.
		fail(t, 55, []string{"ERROR: [055]: unable to open missing file '" + notPg + "/global/pg_control' for read"},
			"--pg1-path="+notPg, "archive-push", pushCopy("0000000100000000000000D0"))

		// A stored segment that cannot be read is an error, never "not
		// found" (exit 1 would end PostgreSQL's recovery early).
		stored, _ := filepath.Glob(filepath.Join(stanzaArchive, "15-1", seg[:16], seg+"-*"))
		if len(stored) != 1 {
			t.Fatalf("stored %s: %v", seg, stored)
		}
		restoreSeg := saveFiles(t, stored[0])
		defer restoreSeg()
		truncate(t, stored[0])
		dest := filepath.Join(e.Dir, "got-"+seg)
		fail(t, 42, []string{"ERROR: [042]: unable to get " + seg + ":", "repo1: 15-1/" + seg[:16] + "/" + filepath.Base(stored[0]) + " ["},
			"archive-get", seg, dest)
		if _, err := os.Stat(dest); !os.IsNotExist(err) {
			t.Errorf("failed archive-get left %s", dest)
		}
	})

	t.Run("unwritable repository", func(t *testing.T) {
		archiveID := filepath.Join(stanzaArchive, "15-1")
		protect := func(dir string, f func()) {
			if err := os.Chmod(dir, 0o555); err != nil {
				t.Fatal(err)
			}
			defer os.Chmod(dir, 0o750)
			f()
		}
		// A segment whose 16-hex directory must be created.
		protect(archiveID, func() {
			fail(t, 104, []string{"ERROR: [104]: archive-push command encountered error(s):",
				"repo1: [PathCreateError] unable to create path '" + archiveID + "/00000001000000AA'", "permission denied"},
				"archive-push", pushCopy("00000001000000AA000000F0"))
		})
		// A segment in an existing directory.
		protect(filepath.Join(archiveID, "0000000100000000"), func() {
			fail(t, 104, []string{"ERROR: [104]: archive-push command encountered error(s):",
				"repo1: [FileOpenError] unable to open file '" + archiveID + "/0000000100000000/0000000100000000000000F0-", "permission denied"},
				"archive-push", pushCopy("0000000100000000000000F0"))
		})
		// The backup directory.
		protect(stanzaBackup, func() {
			// pgBackRest 2.45 exits PathCreateError [047]; pgbr reports
			// FileWriteError [064] (repo's info-file writer wraps the
			// storage error), so only a non-zero exit is checked here.
			out, code := e.Run("backup", "--type=full")
			if code == 0 {
				t.Fatalf("backup into a read-only directory succeeded:\n%s", out)
			}
			expectFail(t, out, code, code, "unable to create path '"+stanzaBackup+"/", "permission denied")
		})
		settle(t) // the backup started: PostgreSQL archives the segment it switched
		if tmp, _ := filepath.Glob(filepath.Join(e.Repo, "*", "*", "*", "*", "*.tmp")); len(tmp) > 0 {
			t.Errorf("temporary files left: %v", tmp)
		}
	})

	t.Run("backup lock held", func(t *testing.T) {
		lockPath := filepath.Join(e.Dir, "lock")
		l, err := lock.Acquire(lockPath, e.Stanza, lock.Backup, "1-test")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Release()
		lockFile := filepath.Join(lockPath, e.Stanza+"-backup.lock")
		testenv.Chown(t, lockFile) // postgres may open it; the flock is what stops it
		fail(t, 50, []string{"ERROR: [050]: unable to acquire lock on file '" + lockFile + "': Resource temporarily unavailable",
			"HINT: is another pgBackRest process running?"}, "backup")
		fail(t, 50, []string{"HINT: is another pgBackRest process running?"}, "stanza-create")
	})

	t.Run("corrupt archive.info", func(t *testing.T) {
		restoreInfo := saveFiles(t, archiveInfo, archiveInfo+".copy")
		defer restoreInfo()
		// Main file bad: the copy is used, silently.
		corrupt(t, archiveInfo)
		out, code := e.Run("archive-push", pushCopy("0000000100000000000000E0"))
		expectOK(t, out, code)
		truncate(t, archiveInfo)
		out, code = e.Run("archive-get", "0000000100000000000000E0", filepath.Join(e.Dir, "got-e0"))
		expectOK(t, out, code)

		// Both bad: the two-attempt message, nothing written.
		load := "unable to load info file '" + archiveInfo + "' or '" + archiveInfo + ".copy':"
		restoreInfo()
		corrupt(t, archiveInfo)
		truncate(t, archiveInfo+".copy")
		fail(t, 103, []string{"ERROR: [103]: unable to find a valid repository:", "repo1: [FileOpenError] " + load,
			"ChecksumError: invalid checksum", "FormatError:", "HINT: archive.info cannot be opened but is required to push/get WAL segments."},
			"archive-push", pushCopy("0000000100000000000000E1"))
		fail(t, 103, []string{"WARN: repo1: [FileOpenError] " + load, "ERROR: [103]: unable to find a valid repository"},
			"archive-get", "0000000100000000000000E0", filepath.Join(e.Dir, "got-e0-2"))
		// Different error types: FileOpenError [041] (format spec §2.6).
		fail(t, 41, []string{"ERROR: [041]: " + load, "ChecksumError:", "FormatError:"}, "backup")
		restoreInfo()
		corrupt(t, archiveInfo)
		corrupt(t, archiveInfo+".copy")
		// Same type twice: that type (ChecksumError [026]).
		fail(t, 26, []string{"ERROR: [026]: " + load, "ChecksumError: invalid checksum"}, "backup")
	})

	var label string
	t.Run("corrupt backup.info", func(t *testing.T) {
		restoreInfo := saveFiles(t, backupInfo, backupInfo+".copy")
		load := "unable to load info file '" + backupInfo + "' or '" + backupInfo + ".copy':"
		truncate(t, backupInfo)
		truncate(t, backupInfo+".copy")
		fail(t, 29, []string{"ERROR: [029]: " + load, "FormatError:", "HINT: backup.info cannot be opened and is required to perform a backup."},
			"backup", "--type=full")
		restoreInfo()
		// Main file bad: the backup uses the copy (and writes both anew).
		corrupt(t, backupInfo)
		out, code := e.Run("backup", "--type=full")
		expectOK(t, out, code)
		labels, _ := filepath.Glob(filepath.Join(stanzaBackup, "*F"))
		if len(labels) != 1 {
			t.Fatalf("backups: %v\n%s", labels, out)
		}
		label = filepath.Base(labels[0])
	})
	if label == "" {
		t.Fatal("no backup to restore")
	}

	t.Run("restore", func(t *testing.T) {
		target := filepath.Join(e.Dir, "restore")
		writeFile(t, filepath.Join(target, "keep-me"), []byte("x"))
		restoreFail := func(t *testing.T, code int, msgs []string, args ...string) {
			t.Helper()
			unchanged(t, target, func() { fail(t, code, msgs, append([]string{"restore", "--pg1-path=" + target}, args...)...) })
		}
		restoreFail(t, 40, []string{"ERROR: [040]: unable to restore to path '" + target + "' because it contains files",
			"HINT: try using --delta if this is what you intended."})
		restoreFail(t, 75, []string{"ERROR: [075]: backup set 20200101-000000F is not valid"}, "--set=20200101-000000F")
		writeFile(t, filepath.Join(target, "postmaster.pid"), []byte("12345\n"))
		restoreFail(t, 38, []string{"ERROR: [038]: unable to restore while PostgreSQL is running",
			"HINT: presence of 'postmaster.pid' in '" + target + "' indicates PostgreSQL is running."})
		restoreFail(t, 38, []string{"ERROR: [038]: unable to restore while PostgreSQL is running"}, "--delta")
	})

	t.Run("corrupt manifest", func(t *testing.T) {
		manifest := filepath.Join(stanzaBackup, label, "backup.manifest")
		restoreManifest := saveFiles(t, manifest, manifest+".copy")
		defer restoreManifest()
		// Main file bad: restored from the copy.
		corrupt(t, manifest)
		ok := filepath.Join(e.Dir, "restore-ok")
		out, code := e.Run("restore", "--pg1-path="+ok)
		expectOK(t, out, code)
		if _, err := os.Stat(filepath.Join(ok, "global", "pg_control")); err != nil {
			t.Errorf("restore from the manifest copy: %v", err)
		}
		// Both bad: nothing is written to the target.
		truncate(t, manifest+".copy")
		empty := filepath.Join(e.Dir, "restore-empty")
		if err := os.MkdirAll(empty, 0o700); err != nil {
			t.Fatal(err)
		}
		testenv.Chown(t, empty)
		unchanged(t, empty, func() {
			fail(t, 41, []string{"ERROR: [041]: unable to load backup manifest file '" + manifest + "' or '" + manifest + ".copy':",
				"ChecksumError: invalid checksum", "FormatError:"}, "restore", "--pg1-path="+empty)
		})
		if ents, _ := os.ReadDir(empty); len(ents) != 0 {
			t.Errorf("failed restore wrote into %s: %v", empty, ents)
		}
		// An incr on it fails the same way (the prior's head is loaded
		// beside the walk of PGDATA) and leaves the repository as it was.
		fail(t, 41, []string{"ERROR: [041]: unable to load backup manifest file '" + manifest + "' or '" + manifest + ".copy':",
			"ChecksumError: invalid checksum", "FormatError:"}, "backup", "--type=incr")
	})
}
