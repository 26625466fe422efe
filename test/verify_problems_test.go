package test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/storage/posix"
	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// defaultConsoleLevel removes the test config's log-level-console line so
// that pgbr runs at its default console level (warn), as a user's would.
func defaultConsoleLevel(t *testing.T, e *testenv.Env) {
	t.Helper()
	b := mustRead(t, e.Conf)
	out := strings.Replace(string(b), "log-level-console=info\n", "", 1)
	if out == string(b) {
		t.Fatalf("no log-level-console line in %s", e.Conf)
	}
	if err := os.WriteFile(e.Conf, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
}

// repoSnapshot copies the repository aside and returns a function that
// puts the copy back.
func repoSnapshot(t *testing.T, e *testenv.Env) (reset func()) {
	t.Helper()
	snap := e.Repo + ".orig"
	if out, err := exec.Command("cp", "-a", e.Repo, snap).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	return func() {
		t.Helper()
		os.RemoveAll(e.Repo)
		if out, err := exec.Command("cp", "-a", snap, e.Repo).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v\n%s", err, out)
		}
	}
}

// fixRepoChecksum rewrites a backup's manifest so that its repo checksum
// and size of file name (path below the backup, without the compression
// extension) match the stored bytes now in the repository: the corruption
// the test made is invisible to a check of the stored bytes alone.
// cipherPass is the repository passphrase ("" = not encrypted).
func fixRepoChecksum(t *testing.T, e *testenv.Env, label, name, cipherPass string) {
	t.Helper()
	ctx := context.Background()
	st := posix.New(e.Repo)
	pass := manifestPass(t, e, cipherPass)
	m, err := repo.LoadManifest(ctx, st, e.Stanza, label, pass)
	if err != nil {
		t.Fatal(err)
	}
	f, ok := m.FindFile(name)
	if !ok || f.RepoChecksum.IsZero() {
		t.Fatalf("manifest of %s: no repo checksum for %s (%v)", label, name, ok)
	}
	dir := filepath.Join(e.Repo, "backup", e.Stanza, label)
	var stored []byte
	if f.BundleID != 0 {
		b := mustRead(t, filepath.Join(dir, "bundle", itoa(f.BundleID)))
		stored = b[f.BundleOffset : f.BundleOffset+f.RepoSize]
	} else {
		stored = mustRead(t, filepath.Join(dir, name+repo.CompressExt(m.Option.CompressType)))
	}
	sum := sha1.Sum(stored)
	f.RepoChecksum, f.RepoSize = repo.HexDigest(hex.EncodeToString(sum[:])), uint64(len(stored))
	if err := repo.SaveManifest(ctx, st, e.Stanza, m, pass); err != nil {
		t.Fatal(err)
	}
	testenv.Chown(t, e.Repo)
}

func itoa(n uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// requireLines fails unless out contains every want.
func requireLines(t *testing.T, what, out string, code, wantCode int, want ...string) {
	t.Helper()
	t.Logf("%s: exit %d\n%s", what, code, out)
	if code != wantCode {
		t.Errorf("%s: exit %d, want %d\n%s", what, code, wantCode, out)
		return
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("%s: output lacks %q:\n%s", what, w, out)
		}
	}
}

// TestVerifyProblemsShown: at the default console level verify names every
// problem (each corrupt or missing file, each backup that is not valid, a
// backup directory removed although backup.info lists it, a WAL segment a
// backup needs, a WAL gap) and fails with [028]; a compressed file whose
// stored bytes match the manifest's repo checksum but whose content does
// not is found; an unreadable repository fails with the storage error.
func TestVerifyProblemsShown(t *testing.T) {
	t.Parallel()
	e := testenv.NewEnv(t, testenv.EnvOptions{Global: []string{"process-max=2"}})
	e.MustRun("stanza-create")
	e.Cluster.Exec("postgres", "create table t(id int primary key, v text); insert into t select g, md5(g::text) from generate_series(1,20000) g")
	e.MustRun("backup", "--type=full")
	for i := 0; i < 3; i++ {
		e.Cluster.Exec("postgres", "insert into t select g, 'x' from generate_series(1,100) g on conflict do nothing; select pg_switch_wal()")
	}
	e.Cluster.Exec("postgres", "create table t2(v text); insert into t2 values ('incr')")
	e.MustRun("backup", "--type=incr")
	e.Cluster.Stop()
	defaultConsoleLevel(t, e)
	reset := repoSnapshot(t, e)

	out, code := e.Run("verify")
	if code != 0 || out != "" {
		t.Fatalf("verify of a good repository: exit %d\n%s", code, out)
	}

	ls := labels(t, e)
	if len(ls) != 2 {
		t.Fatalf("labels %v", ls)
	}
	full, incr := ls[0], ls[1]
	fullDir := filepath.Join(e.Repo, "backup", e.Stanza, full)
	files := backupFiles(t, fullDir)
	if len(files) < 5 {
		t.Fatalf("backup files %v", files)
	}
	errLine := "ERROR: [028]: verify found"
	m, fm := loadManifest(t, e, incr, ""), loadManifest(t, e, full, "")
	wal := walFiles(t, e, "15-1")

	t.Run("files", func(t *testing.T) {
		reset()
		flipped, truncated, missing := files[0], files[1], files[2]
		b := mustRead(t, filepath.Join(fullDir, flipped))
		b[len(b)/2] ^= 0x01
		os.WriteFile(filepath.Join(fullDir, flipped), b, 0o640)
		fi, _ := os.Stat(filepath.Join(fullDir, truncated))
		os.Truncate(filepath.Join(fullDir, truncated), fi.Size()/2)
		os.Remove(filepath.Join(fullDir, missing))
		out, code := e.Run("verify")
		requireLines(t, "corrupt files", out, code, 28,
			"WARN: invalid checksum '"+full+"/"+flipped+"'",
			"WARN: invalid checksum '"+full+"/"+truncated+"'",
			"WARN: file missing '"+full+"/"+missing+"'",
			"WARN: backup '"+full+"' is not valid: 3 of ",
			errLine)
	})

	t.Run("backup-dir", func(t *testing.T) {
		reset()
		os.RemoveAll(filepath.Join(e.Repo, "backup", e.Stanza, incr))
		out, code := e.Run("verify")
		requireLines(t, "removed backup directory", out, code, 28,
			"WARN: backup '"+incr+"' is listed in backup.info but its directory '"+filepath.Join(e.Repo, "backup", e.Stanza, incr)+"' is missing",
			errLine)
		out, _ = e.Run("verify", "--output=text", "--log-level-console=off", "--log-level-stderr=off")
		if !strings.Contains(out, "backup: "+incr+", status: directory missing") {
			t.Errorf("result text:\n%s", out)
		}
	})

	t.Run("wal", func(t *testing.T) {
		reset()
		// A segment only the incremental needs, and one between the two
		// backups that none needs (a gap: a warning only).
		var needed, between string
		for _, w := range wal {
			seg := filepath.Base(w)[:24]
			if seg == m.Backup.ArchiveStart {
				needed = w
			}
			if seg > fm.Backup.ArchiveStop && seg < m.Backup.ArchiveStart && between == "" {
				between = w
			}
		}
		if needed == "" || between == "" {
			t.Fatalf("no WAL for %s..%s or between the backups in %v", m.Backup.ArchiveStart, m.Backup.ArchiveStop, wal)
		}
		os.Remove(filepath.Join(e.Repo, "archive", e.Stanza, between))
		out, code := e.Run("verify")
		requireLines(t, "WAL gap outside any backup", out, code, 0, "WARN: archiveId 15-1: WAL gap: no WAL between ")
		os.Remove(filepath.Join(e.Repo, "archive", e.Stanza, needed))
		out, code = e.Run("verify")
		requireLines(t, "missing WAL of a backup", out, code, 28,
			"WARN: backup '"+incr+"' needs WAL "+m.Backup.ArchiveStart,
			"WARN: backup '"+incr+"' is not valid: WAL "+m.Backup.ArchiveStart,
			errLine)
	})

	t.Run("content", func(t *testing.T) {
		reset()
		// Valid gzip of other content, and a gzip stream that fails to
		// decompress (its CRC flipped); the manifest's repo checksums are
		// made to match both, so only the content check finds them.
		changed, broken := files[3], files[4]
		zr, err := gzip.NewReader(bytes.NewReader(mustRead(t, filepath.Join(fullDir, changed))))
		if err != nil {
			t.Fatal(err)
		}
		plain, err := io.ReadAll(zr)
		if err != nil || len(plain) == 0 {
			t.Fatalf("%s: %v (%d bytes)", changed, err, len(plain))
		}
		plain[len(plain)/2] ^= 0xff
		var zb bytes.Buffer
		zw := gzip.NewWriter(&zb)
		zw.Write(plain)
		zw.Close()
		os.WriteFile(filepath.Join(fullDir, changed), zb.Bytes(), 0o640)
		b := mustRead(t, filepath.Join(fullDir, broken))
		b[len(b)-8] ^= 0x01
		os.WriteFile(filepath.Join(fullDir, broken), b, 0o640)
		fixRepoChecksum(t, e, full, strings.TrimSuffix(changed, ".gz"), "")
		fixRepoChecksum(t, e, full, strings.TrimSuffix(broken, ".gz"), "")
		out, code := e.Run("verify")
		requireLines(t, "content differs", out, code, 28,
			"WARN: invalid checksum '"+full+"/"+changed+"'",
			"WARN: invalid result "+full+"/"+broken+": [",
			errLine)
	})

	t.Run("unreadable", func(t *testing.T) {
		reset()
		// The repository path is a file: every read fails with ENOTDIR.
		out, code := e.Run("verify", "--repo1-path="+e.Conf)
		t.Logf("unreadable repository: exit %d\n%s", code, out)
		if code == 0 || code == 28 || !strings.Contains(out, "unable to read the repository '"+e.Conf+"'") ||
			!strings.Contains(out, "not a directory") || strings.Contains(out, "No usable") {
			t.Errorf("verify of an unreadable repository: exit %d\n%s", code, out)
		}
		// Permission denied (pgbr runs as postgres, not root).
		if err := os.Chmod(e.Repo, 0); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(e.Repo, 0o750)
		out, code = e.Run("verify")
		t.Logf("repository without permission: exit %d\n%s", code, out)
		if code == 0 || code == 28 || !strings.Contains(out, "unable to read the repository '"+e.Repo+"'") ||
			!strings.Contains(out, "permission denied") || strings.Contains(out, "No usable") {
			t.Errorf("verify of a repository without permission: exit %d\n%s", code, out)
		}
	})
}

// TestVerifyEncryptedBundleContent: a byte changed inside one file of an
// encrypted bundle, with the manifest's repo checksum made to match the
// changed bytes, is found by decrypting and decompressing the file.
func TestVerifyEncryptedBundleContent(t *testing.T) {
	t.Parallel()
	const pass = "Xk2u8vL0pQ3rT6yW9zB1cE4fH7jM0nP2"
	e := testenv.NewEnv(t, testenv.EnvOptions{Global: []string{"repo1-cipher-type=aes-256-cbc",
		"repo1-cipher-pass=" + pass, "repo1-bundle=y", "process-max=2"}})
	e.MustRun("stanza-create")
	e.Cluster.Exec("postgres", "create table t(id int primary key, v text); insert into t select g, md5(g::text) from generate_series(1,2000) g")
	e.MustRun("backup", "--type=full")
	e.Cluster.Stop()
	defaultConsoleLevel(t, e)
	if out, code := e.Run("verify"); code != 0 || out != "" {
		t.Fatalf("verify of a good repository: exit %d\n%s", code, out)
	}

	label := labels(t, e)[0]
	m := loadManifest(t, e, label, pass)
	// The largest bundled file.
	var f *repo.ManifestFile
	for i := range m.Files {
		if x := &m.Files[i]; x.BundleID != 0 && x.RepoSize > 256 && (f == nil || x.RepoSize > f.RepoSize) {
			f = x
		}
	}
	if f == nil {
		t.Fatal("no bundled file")
	}
	bundle := filepath.Join(e.Repo, "backup", e.Stanza, label, "bundle", itoa(f.BundleID))
	b := mustRead(t, bundle)
	b[f.BundleOffset+f.RepoSize/2] ^= 0x01
	os.WriteFile(bundle, b, 0o640)
	fixRepoChecksum(t, e, label, f.Name, pass)

	out, code := e.Run("verify")
	t.Logf("exit %d\n%s", code, out)
	name := label + "/" + f.Name + repo.CompressExt(m.Option.CompressType)
	if code != 28 || !(strings.Contains(out, "WARN: invalid checksum '"+name+"'") || strings.Contains(out, "WARN: invalid result "+name+": [")) ||
		!strings.Contains(out, "WARN: backup '"+label+"' is not valid: 1 of ") {
		t.Fatalf("verify of a changed file in an encrypted bundle: exit %d\n%s", code, out)
	}
}

// TestVerifyS3Unreadable: verify of an S3 repository it may not read (a
// wrong key secret, a missing bucket) fails with S3's answer instead of
// reporting "No usable backup.info file"; an empty bucket it can read is
// a repository without a stanza.
func TestVerifyS3Unreadable(t *testing.T) {
	t.Parallel()
	m := testenv.StartMinIO(t)
	e := testenv.NewEnv(t, testenv.EnvOptions{NoStart: true})
	// conf writes the S3 options with some replaced.
	conf := func(opts ...string) {
		e.Global = nil
		for _, g := range s3Global(m, m.Port) {
			for _, o := range opts {
				if strings.HasPrefix(o, g[:strings.IndexByte(g, '=')+1]) {
					g = o
				}
			}
			e.Global = append(e.Global, g)
		}
		e.WriteConf()
		defaultConsoleLevel(t, e)
	}
	conf("repo1-s3-key-secret=not-the-secret")
	out, code := e.Run("verify")
	t.Logf("wrong secret: exit %d\n%s", code, out)
	if code != 105 || !strings.Contains(out, "unable to read the repository 's3://") || !strings.Contains(out, "SignatureDoesNotMatch") ||
		strings.Contains(out, "No usable") || strings.Contains(out, "not-the-secret") {
		t.Errorf("verify with a wrong key secret: exit %d\n%s", code, out)
	}
	conf("repo1-s3-bucket=no-such-bucket")
	out, code = e.Run("verify")
	t.Logf("missing bucket: exit %d\n%s", code, out)
	if code != 103 || !strings.Contains(out, "unable to read the repository 's3://") || !strings.Contains(out, "bucket 'no-such-bucket' does not exist") {
		t.Errorf("verify of a missing bucket: exit %d\n%s", code, out)
	}
	conf()
	out, code = e.Run("verify")
	t.Logf("empty bucket: exit %d\n%s", code, out)
	if code != 28 || !strings.Contains(out, "WARN: no usable backup.info file (nor copy): unable to open missing file") {
		t.Errorf("verify of an empty bucket: exit %d\n%s", code, out)
	}
}
