package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgbr-dev/pgbr/internal/filter"
	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// restoreAndStart restores with pgbr into a fresh data directory (no
// archiving), starts the cluster and returns it.
func restoreAndStart(t *testing.T, e *testenv.Env, args ...string) *testenv.Cluster {
	t.Helper()
	dir := testenv.Dir(t, "restore")
	data := filepath.Join(dir, "pg")
	e.MustRun(append([]string{"restore", "--pg1-path=" + data, "--archive-mode=off"}, args...)...)
	return testenv.StartRestored(t, dir, data)
}

func mustContain(t *testing.T, what, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Fatalf("%s: %q missing from:\n%s", what, w, out)
		}
	}
}

// sameError runs a failing command with both tools and requires the same
// exit code and that both print want.
func sameError(t *testing.T, e *testenv.Env, code int, want string, args ...string) {
	t.Helper()
	out, c := e.Run(args...)
	pout, pc := e.RunPgBackRest(args...)
	if c != code || pc != code {
		t.Fatalf("%v: pgbr exit %d, pgbackrest exit %d, want %d\npgbr:\n%s\npgbackrest:\n%s", args, c, pc, code, out, pout)
	}
	mustContain(t, "pgbr", out, want)
	mustContain(t, "pgbackrest", pout, want)
}

// TestStanzaUpgrade: a new initdb in the same pg1-path (new system id),
// stanza-upgrade writes the same info files as pgBackRest 2.45 (encrypted
// repository: the sub-passphrases are kept), WAL then
// goes to archive id 15-2, backups work, pgBackRest accepts the stanza,
// and backups of both histories restore.
func TestStanzaUpgrade(t *testing.T) {
	testenv.RequirePgBackRest(t)
	const pass = "Xk2u8vL0pQ3rT6yW9zB1cE4fH7jM0nP2"
	e := testenv.NewEnv(t, testenv.EnvOptions{Global: []string{"repo1-cipher-type=aes-256-cbc", "repo1-cipher-pass=" + pass}})
	e.MustRun("stanza-create")
	// Info files are encrypted with the repository passphrase.
	plain := func(p string) string {
		t.Helper()
		b, err := filter.DecryptBytes(mustRead(t, p), pass)
		if err != nil {
			t.Fatalf("decrypt %s: %v", p, err)
		}
		return string(b)
	}
	cipherLine := func(p string) string {
		for _, l := range strings.Split(plain(p), "\n") {
			if strings.HasPrefix(l, "cipher-pass=") {
				return l
			}
		}
		t.Fatalf("%s has no cipher-pass", p)
		return ""
	}
	subPass := cipherLine(filepath.Join(e.Repo, "archive/main/archive.info")) + cipherLine(filepath.Join(e.Repo, "backup/main/backup.info"))
	if out, code := e.Run("stop"); code != 0 {
		t.Fatal(out)
	}
	if out, code := e.Run("stanza-upgrade"); code != 62 || !strings.Contains(out, "stop file exists for stanza main") {
		t.Fatalf("stanza-upgrade with a stop file: exit %d\n%s", code, out)
	}
	e.MustRun("start")
	mustContain(t, "stanza-upgrade of a current stanza", e.MustRun("stanza-upgrade"),
		"stanza-upgrade for stanza 'main' on repo1", "stanza 'main' on repo1 is already up to date")
	e.Cluster.Exec("postgres", "create table old(v text); insert into old values ('old cluster')")
	e.MustRun("backup", "--type=full")
	oldLabel := labels(t, e)[0]
	oldSys := e.Cluster.QueryOne("postgres", "select system_identifier::text from pg_control_system()")
	e.Cluster.Stop()

	// Same pg1-path, new cluster.
	data := e.Cluster.Data
	conf := mustRead(t, filepath.Join(data, "postgresql.conf"))
	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}
	if out, code := testenv.AsPostgres(e.Dir, nil, filepath.Join(testenv.PgBin, "initdb"), "-D", data, "-A", "trust",
		"-U", "postgres", "--encoding=UTF8", "--locale=C", "-k"); code != 0 {
		t.Fatalf("initdb: %s", out)
	}
	os.WriteFile(filepath.Join(data, "postgresql.conf"), conf, 0o600)
	testenv.Chown(t, data)
	e.Cluster.Start()
	newSys := e.Cluster.QueryOne("postgres", "select system_identifier::text from pg_control_system()")
	if newSys == oldSys {
		t.Fatal("initdb kept the system id")
	}
	// The stanza does not match the cluster yet.
	if out, code := e.Run("check"); code == 0 {
		t.Fatalf("check before stanza-upgrade succeeded:\n%s", out)
	}

	// pgBackRest upgrades a copy of the repository: pgbr must write the
	// same content (the ciphertexts differ by their salt).
	copyRepo := filepath.Join(e.Dir, "repo-pgbackrest")
	if out, err := exec.Command("cp", "-a", e.Repo, copyRepo).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	e.MustPgBackRest("stanza-upgrade", "--repo1-path="+copyRepo)
	mustContain(t, "stanza-upgrade", e.MustRun("stanza-upgrade"), "stanza-upgrade for stanza 'main' on repo1")
	for _, f := range []string{"archive/main/archive.info", "archive/main/archive.info.copy",
		"backup/main/backup.info", "backup/main/backup.info.copy"} {
		got, want := plain(filepath.Join(e.Repo, f)), plain(filepath.Join(copyRepo, f))
		if got != want {
			t.Fatalf("%s differs from pgBackRest's\npgbr:\n%s\npgbackrest:\n%s", f, got, want)
		}
	}
	if got := cipherLine(filepath.Join(e.Repo, "archive/main/archive.info")) + cipherLine(filepath.Join(e.Repo, "backup/main/backup.info")); got != subPass {
		t.Fatal("stanza-upgrade changed the sub-passphrases")
	}
	mustContain(t, "archive.info", plain(filepath.Join(e.Repo, "archive/main/archive.info")),
		"db-id=2\n", `1={"db-id":`+oldSys+`,"db-version":"15"}`, `2={"db-id":`+newSys+`,"db-version":"15"}`)
	mustContain(t, "second stanza-upgrade", e.MustRun("stanza-upgrade"), "stanza 'main' on repo1 is already up to date")

	// New WAL goes to 15-2; backups work; pgBackRest accepts the stanza.
	e.Cluster.Exec("postgres", "create table new(v text); insert into new values ('new cluster')")
	// (The old cluster archived segments of the same names into 15-1.)
	seg := e.Cluster.QueryOne("postgres", "select pg_walfile_name(pg_switch_wal())")
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if m, _ := filepath.Glob(filepath.Join(e.Repo, "archive", "main", "15-2", seg[:16], seg+"-*")); len(m) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not archived in 15-2:\n%s", seg, testenv.Tree(filepath.Join(e.Repo, "archive")))
		}
	}
	e.MustRun("backup", "--type=full")
	info := e.MustPgBackRest("info")
	mustContain(t, "pgBackRest info", info, "status: ok", oldLabel, "wal archive min/max (15)")
	e.MustPgBackRest("check")
	e.MustRun("check")
	out, _ := sameVerify(t, e, "--verbose")
	mustContain(t, "verify", out, "status: ok", "archiveId: 15-1,", "archiveId: 15-2,")
	e.Cluster.Stop()

	// Both histories restore.
	old := restoreAndStart(t, e, "--set="+oldLabel)
	if v := old.QueryOne("postgres", "select v from old"); v != "old cluster" {
		t.Fatalf("old backup restored %q", v)
	}
	if s := old.QueryOne("postgres", "select system_identifier::text from pg_control_system()"); s != oldSys {
		t.Fatalf("old backup has system id %s, want %s", s, oldSys)
	}
	cur := restoreAndStart(t, e)
	if v := cur.QueryOne("postgres", "select v from new"); v != "new cluster" {
		t.Fatalf("new backup restored %q", v)
	}
	if s := cur.QueryOne("postgres", "select system_identifier::text from pg_control_system()"); s != newSys {
		t.Fatalf("new backup has system id %s, want %s", s, newSys)
	}
}

// TestStanzaDelete: stop/start interoperate with pgBackRest; stanza-delete
// refuses without the stop file and while PostgreSQL runs (pgBackRest's
// codes and messages), then removes the stanza, which pgBackRest can
// create again.
func TestStanzaDelete(t *testing.T) {
	testenv.RequirePgBackRest(t)
	e := testenv.NewEnv(t, testenv.EnvOptions{})
	e.MustRun("stanza-create")
	e.MustRun("backup", "--type=full")
	stopFile := filepath.Join(e.Dir, "lock", "main.stop")
	before := testenv.TreeDigest(t, e.Repo)

	sameError(t, e, 55, "stop file does not exist for stanza 'main'", "stanza-delete")
	mustContain(t, "stanza-delete", func() string { out, _ := e.Run("stanza-delete"); return out }(),
		"HINT: has the pgbackrest stop command been run on this server for this stanza?")

	// stop and start, either tool.
	e.MustRun("stop")
	if _, err := os.Stat(stopFile); err != nil {
		t.Fatalf("pgbr stop: %v", err)
	}
	mustContain(t, "second stop", e.MustRun("stop"), "stop file already exists for stanza main")
	if out, code := e.RunPgBackRest("backup"); code != 62 || !strings.Contains(out, "stop file exists for stanza main") {
		t.Fatalf("pgBackRest backup after pgbr stop: exit %d\n%s", code, out)
	}
	e.MustPgBackRest("start")
	mustContain(t, "start without stop file", e.MustRun("start"), "stop file does not exist for stanza main")
	e.MustPgBackRest("stop")
	if out, code := e.Run("backup"); code != 62 || !strings.Contains(out, "stop file exists for stanza main") {
		t.Fatalf("pgbr backup after pgBackRest stop: exit %d\n%s", code, out)
	}
	e.MustRun("start")
	if _, err := os.Stat(stopFile); err == nil {
		t.Fatal("pgbr start left the stop file")
	}
	e.MustRun("stop")

	sameError(t, e, 38, "postmaster.pid exists - looks like PostgreSQL is running. To delete stanza 'main' on repo1, shut down PostgreSQL for stanza 'main' and try again, or use --force.", "stanza-delete")
	if after := testenv.TreeDigest(t, e.Repo); after != before {
		t.Fatal("a refused stanza-delete changed the repository")
	}

	e.Cluster.Stop()
	e.MustRun("stanza-delete")
	for _, p := range []string{filepath.Join(e.Repo, "archive", "main"), filepath.Join(e.Repo, "backup", "main"), stopFile} {
		if _, err := os.Stat(p); err == nil {
			t.Fatalf("%s still exists after stanza-delete", p)
		}
	}
	e.MustRun("stanza-delete") // nothing left: nothing to do

	// pgBackRest creates it again; pgbr finds it valid.
	e.Cluster.Start()
	e.MustPgBackRest("stanza-create")
	mustContain(t, "stanza-create", e.MustRun("stanza-create"), "already exists on repo1 and is valid")
	e.MustPgBackRest("check")

	// --force deletes while PostgreSQL runs (the stop file is still needed).
	e.MustRun("stop")
	e.MustRun("stanza-delete", "--force")
	if _, err := os.Stat(filepath.Join(e.Repo, "backup", "main")); err == nil {
		t.Fatal("stanza-delete --force left backup/main")
	}
}
