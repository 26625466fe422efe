package test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/storage/posix"
	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// verifyText runs verify with its result on stdout and no log lines.
// --job-retry=0: pgBackRest retries a file that fails to decompress after
// 0 s and 15 s before it counts it as "other"; pgbr does not retry (its
// storage drivers retry transient errors themselves).
func verifyText(e *testenv.Env, tool string, args ...string) (string, int) {
	a := append([]string{"verify", "--output=text", "--log-level-console=off", "--log-level-stderr=off", "--job-retry=0"}, args...)
	if tool == "pgbr" {
		return e.Run(a...)
	}
	return e.RunPgBackRest(a...)
}

var (
	verifyFileLine   = regexp.MustCompile(`(invalid checksum|invalid size|file missing) '([^']+)'`)
	verifyResultLine = regexp.MustCompile(`invalid result (\S+): \[`)
)

// invalidFiles returns the files a verify log reports, as "path: reason"
// lines, sorted.
func invalidFiles(log string) []string {
	seen := map[string]bool{}
	for _, m := range verifyFileLine.FindAllStringSubmatch(log, -1) {
		seen[m[2]+": "+m[1]] = true
	}
	for _, m := range verifyResultLine.FindAllStringSubmatch(log, -1) {
		seen[m[1]+": other"] = true
	}
	var list []string
	for k := range seen {
		list = append(list, k)
	}
	sort.Strings(list)
	return list
}

// sameVerify runs verify with both tools and requires the same exit code,
// the same result text and the same invalid files in their logs (the
// config logs at detail level to <stanza>-verify.log). It returns the text
// and the invalid files.
func sameVerify(t *testing.T, e *testenv.Env, args ...string) (string, []string) {
	t.Helper()
	logFile := filepath.Join(e.Dir, "log", e.Stanza+"-verify.log")
	var text, files [2]string
	var codes [2]int
	var lists [2][]string
	for i, tool := range []string{"pgbr", "pgbackrest"} {
		os.Remove(logFile)
		text[i], codes[i] = verifyText(e, tool, args...)
		log, err := os.ReadFile(logFile)
		if err != nil {
			t.Fatalf("%s verify wrote no log file: %v", tool, err)
		}
		lists[i] = invalidFiles(string(log))
		files[i] = strings.Join(lists[i], "\n")
	}
	// pgbr fails ([028]) when the result is invalid; pgBackRest 2.45 always
	// exits 0 from verify.
	wantCode := 0
	if strings.Contains(text[1], "status: invalid") || strings.Contains(text[1], "status: error") {
		wantCode = 28
	}
	if text[0] != text[1] || codes[1] != 0 || codes[0] != wantCode {
		t.Fatalf("verify %v differs\npgbr (exit %d):\n%s\npgbackrest (exit %d):\n%s", args, codes[0], text[0], codes[1], text[1])
	}
	if files[0] != files[1] {
		t.Fatalf("verify %v: invalid files differ\npgbr:\n%s\npgbackrest:\n%s", args, files[0], files[1])
	}
	return text[0], lists[0]
}

// backupFiles lists the stored files of a backup (relative to its
// directory), largest first.
func backupFiles(t *testing.T, dir string) []string {
	t.Helper()
	type f struct {
		name string
		size int64
	}
	var list []f
	filepath.Walk(filepath.Join(dir, "pg_data"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			list = append(list, f{rel, fi.Size()})
		}
		return nil
	})
	sort.Slice(list, func(i, j int) bool { return list[i].size > list[j].size })
	var out []string
	for _, x := range list {
		out = append(out, x.name)
	}
	return out
}

func labels(t *testing.T, e *testenv.Env) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(e.Repo, "backup", e.Stanza))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range ents {
		if d.IsDir() && regexp.MustCompile(`^\d{8}-\d{6}F`).MatchString(d.Name()) {
			out = append(out, d.Name())
		}
	}
	sort.Strings(out)
	return out
}

// walFiles lists the stored WAL segments of an archive id, relative to the
// stanza's archive directory, in name order.
func walFiles(t *testing.T, e *testenv.Env, archiveID string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(e.Repo, "archive", e.Stanza, archiveID, "*", "????????????????????????-*"))
	var out []string
	for _, p := range m {
		rel, _ := filepath.Rel(filepath.Join(e.Repo, "archive", e.Stanza), p)
		out = append(out, rel)
	}
	sort.Strings(out)
	return out
}

// TestVerify: pgbr and pgBackRest 2.45 agree on a good repository, then on
// one with a flipped byte, a truncated file and a missing file in a backup
// and two corrupt WAL segments (a broken gz stream, and a valid gz stream
// of other content).
func TestVerify(t *testing.T) {
	testenv.RequirePgBackRest(t)
	e := testenv.NewEnv(t, testenv.EnvOptions{Global: []string{"process-max=2"}})
	// No stanza yet.
	out, _ := sameVerify(t, e)
	if !strings.Contains(out, "status: error\n  No usable backup.info file\n  No usable archive.info file") {
		t.Fatalf("verify without a stanza:\n%s", out)
	}
	e.MustRun("stanza-create")
	e.Cluster.Exec("postgres", "create table t(id int primary key, v text); insert into t select g, md5(g::text) from generate_series(1,20000) g")
	e.MustRun("backup", "--type=full")
	for i := 0; i < 3; i++ {
		e.Cluster.Exec("postgres", "insert into t select g, 'x' from generate_series(1,100) g on conflict do nothing; select pg_switch_wal()")
	}
	e.Cluster.Exec("postgres", "create table t2(v text); insert into t2 values ('incr')")
	e.MustPgBackRest("backup", "--type=incr")
	e.Cluster.Exec("postgres", "insert into t2 values ('after')")
	e.Cluster.Stop() // archives the last segment; nothing changes from here

	// Good repository.
	out, _ = sameVerify(t, e, "--verbose")
	if !strings.Contains(out, "status: ok") || strings.Count(out, "status: valid") != 2 {
		t.Fatalf("verify of a good repository:\n%s", out)
	}
	if out, _ := sameVerify(t, e); out != "" {
		t.Fatalf("verify without --verbose printed:\n%s", out)
	}

	// Corrupt it.
	ls := labels(t, e)
	if len(ls) != 2 {
		t.Fatalf("labels %v", ls)
	}
	full := filepath.Join(e.Repo, "backup", e.Stanza, ls[0])
	// Files of the full the incremental references, so that both are
	// invalid (the incremental copies again what the full read in the
	// second it was written, recorded a second early).
	im, err := repo.LoadManifest(context.Background(), posix.New(e.Repo), e.Stanza, ls[1], "")
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	ext := repo.CompressExt(im.Option.CompressType)
	for _, p := range backupFiles(t, full) {
		if f, ok := im.FindFile(strings.TrimSuffix(p, ext)); ok && f.Reference == ls[0] {
			files = append(files, p)
		}
	}
	if len(files) < 3 {
		t.Fatalf("backup files %v", files)
	}
	flipped, truncated, missing := files[0], files[1], files[2]
	b, _ := os.ReadFile(filepath.Join(full, flipped))
	b[len(b)/2] ^= 0x01
	os.WriteFile(filepath.Join(full, flipped), b, 0o640)
	fi, _ := os.Stat(filepath.Join(full, truncated))
	os.Truncate(filepath.Join(full, truncated), fi.Size()/2)
	os.Remove(filepath.Join(full, missing))

	wal := walFiles(t, e, "15-1")
	if len(wal) < 4 {
		t.Fatalf("WAL %v", wal)
	}
	// The first segment of an archive id gives the segment size: leave it.
	brokenWal, otherWal := wal[len(wal)-1], wal[len(wal)-2]
	walPath := func(rel string) string { return filepath.Join(e.Repo, "archive", e.Stanza, rel) }
	// A flipped byte inside the deflate stream of a mostly-zero segment may
	// well decode to the same bytes (another distance into the same run of
	// zeros), which both tools then rightly find valid: flip a byte of the
	// gzip trailer's CRC instead, which every reader must reject.
	b, _ = os.ReadFile(walPath(brokenWal))
	b[len(b)-8] ^= 0x01
	os.WriteFile(walPath(brokenWal), b, 0o640)
	zr, err := gzip.NewReader(bytes.NewReader(mustRead(t, walPath(otherWal))))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	plain[len(plain)-1] ^= 0xff
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write(plain)
	zw.Close()
	os.WriteFile(walPath(otherWal), zb.Bytes(), 0o640)
	testenv.Chown(t, e.Repo)

	// Same result text, counts, exit code and files as pgBackRest.
	out, got := sameVerify(t, e, "--verbose")
	if !strings.Contains(out, "status: error") || strings.Count(out, "status: invalid") != 2 {
		t.Fatalf("verify of a corrupt repository:\n%s", out)
	}
	t.Logf("verify --verbose:\n%s", out)
	joined := strings.Join(got, "\n")
	for _, want := range []string{
		ls[0] + "/" + flipped + ": invalid checksum",
		ls[0] + "/" + truncated + ": invalid checksum",
		ls[0] + "/" + missing + ": file missing",
		brokenWal + ": other",
		otherWal + ": invalid checksum",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("verify does not report %q:\n%s", want, joined)
		}
	}

	// --set: one backup and the WAL it needs (pgBackRest 2.55 semantics;
	// 2.45 ignores --set).
	out, code := verifyText(e, "pgbr", "--set="+ls[1], "--verbose")
	if code != 28 || strings.Contains(out, "backup: "+ls[0]+",") || !strings.Contains(out, "backup: "+ls[1]+", status: invalid") {
		t.Fatalf("verify --set=%s: exit %d\n%s", ls[1], code, out)
	}
	// Only the incremental's own WAL (archive start through stop: one
	// segment, the one rewritten above).
	if !strings.Contains(out, "archiveId: 15-1, total WAL checked: 1, ") {
		t.Fatalf("verify --set=%s checked other WAL:\n%s", ls[1], out)
	}
	out, _ = verifyText(e, "pgbr", "--set=bogus")
	if !strings.Contains(out, "status: error\n  'bogus' is not a valid backup label format") {
		t.Fatalf("verify --set=bogus:\n%s", out)
	}
	out, _ = verifyText(e, "pgbr", "--set=20990101-000000F")
	if !strings.Contains(out, "status: error\n  backup set 20990101-000000F is not valid") {
		t.Fatalf("verify --set of a missing backup:\n%s", out)
	}

	// An expired-looking backup (no manifest at all) and an archive id that
	// is not in the history.
	os.Remove(filepath.Join(e.Repo, "backup", e.Stanza, ls[1], "backup.manifest"))
	os.Remove(filepath.Join(e.Repo, "backup", e.Stanza, ls[1], "backup.manifest.copy"))
	os.MkdirAll(filepath.Join(e.Repo, "archive", e.Stanza, "14-9"), 0o750)
	testenv.Chown(t, e.Repo)
	out, _ = sameVerify(t, e, "--verbose")
	if !strings.Contains(out, "backup: "+ls[1]+", status: manifest missing") {
		t.Fatalf("verify with a missing manifest:\n%s", out)
	}
}

// TestVerifyEncryptedBundle: an encrypted repository with bundled backups
// (a full by pgBackRest, an incremental by pgbr); pgbr reads them with the
// sub-passphrases and the bundle offsets, and finds a flipped byte inside a
// bundle as pgBackRest does.
func TestVerifyEncryptedBundle(t *testing.T) {
	testenv.RequirePgBackRest(t)
	e := testenv.NewEnv(t, testenv.EnvOptions{Global: []string{"repo1-cipher-type=aes-256-cbc",
		"repo1-cipher-pass=Xk2u8vL0pQ3rT6yW9zB1cE4fH7jM0nP2", "compress-type=zst"}})
	e.MustRun("stanza-create")
	e.Cluster.Exec("postgres", "create table t(id int primary key, v text); insert into t select g, md5(g::text) from generate_series(1,5000) g")
	e.MustPgBackRest("backup", "--type=full", "--repo1-bundle")
	e.Cluster.Exec("postgres", "insert into t values (0, 'x')")
	e.MustRun("backup", "--type=incr", "--repo1-bundle")
	e.Cluster.Stop()

	out, _ := sameVerify(t, e, "--verbose")
	if !strings.Contains(out, "status: ok") {
		t.Fatalf("verify:\n%s", out)
	}
	ls := labels(t, e)
	bundles, _ := filepath.Glob(filepath.Join(e.Repo, "backup", e.Stanza, ls[0], "bundle", "*"))
	if len(bundles) == 0 {
		t.Fatal("no bundle")
	}
	if b, _ := filepath.Glob(filepath.Join(e.Repo, "backup", e.Stanza, ls[1], "bundle", "*")); len(b) == 0 {
		t.Fatal("pgbr's incremental has no bundle")
	}
	b := mustRead(t, bundles[0])
	b[len(b)/3] ^= 0x01
	os.WriteFile(bundles[0], b, 0o640)
	out, got := sameVerify(t, e)
	if !strings.Contains(out, "status: error") || len(got) == 0 {
		t.Fatalf("verify of a corrupt bundle:\n%s\n%s", out, strings.Join(got, "\n"))
	}
	t.Logf("verify:\n%s\n%s", out, strings.Join(got, "\n"))
	sameVerify(t, e, "--verbose")
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
