package test

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgbr-dev/pgbr/internal/filter"
	"github.com/pgbr-dev/pgbr/internal/pg"
	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// checkControl checks what internal/pg reads from the cluster's
// global/pg_control and from the header of its current WAL segment against
// what the server itself reports (pg_control_system, pg_control_checkpoint,
// pg_control_init, server_version_num). On 18 it also checks that a data
// directory of a version pgbr does not know (PG_VERSION 19, unknown
// pg_control version) is refused by name.
func checkControl(t *testing.T, c *testenv.Cluster, major int) {
	dir := c.Dir
	c.Exec("postgres", "checkpoint")
	q := func(sql string) string { return c.QueryOne("postgres", sql) }
	sysID := q("select system_identifier::text from pg_control_system()")
	ctlVer := q("select pg_control_version::text from pg_control_system()")
	catVer := q("select catalog_version_no::text from pg_control_system()")
	tli := q("select timeline_id::text from pg_control_checkpoint()")
	ckpt := q("select checkpoint_lsn::text from pg_control_checkpoint()")
	blcksz := q("select database_block_size::text from pg_control_init()")
	segSize := q("select bytes_per_wal_segment::text from pg_control_init()")
	chk := q("select data_page_checksum_version::text from pg_control_init()")
	num, _ := strconv.Atoi(q("select current_setting('server_version_num')"))
	walFile := q("select pg_walfile_name(pg_current_wal_lsn())")

	ctl, err := pg.ReadControl(c.Data)
	if err != nil {
		t.Fatalf("ReadControl on PostgreSQL %d: %v", major, err)
	}
	lsn, err := pg.ParseLSN(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("version=%s sysid=%d control=%d catalog=%d tli=%d checkpoint=%d blcksz=%d seg=%d checksum=%d",
		ctl.Version.Str, ctl.SystemID, ctl.ControlVersion, ctl.CatalogVersion, ctl.Timeline, ctl.Checkpoint,
		ctl.PageSize, ctl.WalSegmentSize, ctl.DataChecksumVersion)
	want := fmt.Sprintf("version=%d sysid=%s control=%s catalog=%s tli=%s checkpoint=%d blcksz=%s seg=%s checksum=%s",
		major, sysID, ctlVer, catVer, tli, uint64(lsn), blcksz, segSize, chk)
	if got != want {
		t.Fatalf("pg_control of PostgreSQL %d parsed as\n  %s\nserver says\n  %s", major, got, want)
	}
	if ctl.DataChecksumVersion != 1 {
		t.Fatalf("cluster was initialised with checksums but data_page_checksum_version is %d", ctl.DataChecksumVersion)
	}
	if v, ok := pg.VersionByNum(num); !ok || v != ctl.Version {
		t.Fatalf("server_version_num %d maps to %+v (%v), pg_control to %+v", num, v, ok, ctl.Version)
	}
	if v, ok := pg.VersionByString(strconv.Itoa(major)); !ok || v != ctl.Version {
		t.Fatalf("version string %d maps to %+v", major, v)
	}

	// The WAL segment header.
	f, err := os.Open(filepath.Join(c.Data, "pg_wal", walFile))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	_, err = f.Read(buf)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	h, err := pg.ParseWalHeader(buf)
	if err != nil {
		t.Fatalf("WAL header of PostgreSQL %d: %v", major, err)
	}
	got = fmt.Sprintf("version=%s sysid=%d seg=%d blcksz=%d tli=%d", h.Version.Str, h.SystemID, h.SegmentSize, h.BlockSize, h.Timeline)
	want = fmt.Sprintf("version=%d sysid=%s seg=%s blcksz=%s tli=%s", major, sysID, segSize, q("select wal_block_size::text from pg_control_init()"), tli)
	if got != want {
		t.Fatalf("WAL header of PostgreSQL %d parsed as\n  %s\nserver says\n  %s", major, got, want)
	}
	if h.Magic != ctl.Version.WalMagic {
		t.Fatalf("WAL magic %#x, table says %#x", h.Magic, ctl.Version.WalMagic)
	}

	if major != 18 {
		return
	}
	// A future version: PG_VERSION 19 and an unknown pg_control
	// version are refused with a message naming it and the
	// supported versions; nothing is written to the repository.
	fake := filepath.Join(dir, "pg19")
	os.MkdirAll(filepath.Join(fake, "global"), 0o700)
	raw, err := os.ReadFile(filepath.Join(c.Data, "global", "pg_control"))
	if err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint32(raw[8:], 1900)
	binary.LittleEndian.PutUint32(raw[12:], 202607011)
	os.WriteFile(filepath.Join(fake, "global", "pg_control"), raw, 0o600)
	os.WriteFile(filepath.Join(fake, "PG_VERSION"), []byte("19\n"), 0o600)
	repoDir := filepath.Join(dir, "repo19")
	os.MkdirAll(repoDir, 0o750)
	testenv.Chown(t, dir)
	for _, cmd := range []string{"stanza-create", "backup"} {
		out, code := testenv.AsPostgres(dir, nil, testenv.Pgbr(t), "--stanza=v19", "--pg1-path="+fake,
			"--repo1-path="+repoDir, "--log-path="+dir, "--lock-path="+dir, "--no-online", "--log-level-console=warn", cmd)
		if code != 46 || !strings.Contains(out, "PostgreSQL 19 (PG_VERSION)") || !strings.Contains(out, "1900") ||
			!strings.Contains(out, "13, 14, 15, 16, 17, 18") || strings.Contains(out, "panic") {
			t.Fatalf("%s on a PostgreSQL 19 data directory: exit %d (want 46 VersionNotSupportedError)\n%s", cmd, code, out)
		}
	}
	if entries, _ := os.ReadDir(repoDir); len(entries) != 0 {
		t.Fatalf("refused stanza-create wrote to the repository:\n%s", testenv.Tree(repoDir))
	}
}

// pgbench runs PostgreSQL 15's pgbench against a cluster of any version.
func pgbench(t *testing.T, c *testenv.Cluster, args ...string) {
	t.Helper()
	a := append([]string{"-h", c.Socket, "-p", strconv.Itoa(c.Port), "-U", "postgres"}, args...)
	a = append(a, "postgres")
	if out, code := testenv.AsPostgres(c.Dir, nil, filepath.Join(testenv.PgBin, "pgbench"), a...); code != 0 {
		t.Fatalf("pgbench %v: exit %d\n%s", args, code, out)
	}
}

// benchLoad is pgbench running in the background until stopped.
type benchLoad struct {
	cmd  *exec.Cmd
	done chan error
	out  *syncBuffer
}

func startPgbench(t *testing.T, c *testenv.Cluster) *benchLoad {
	t.Helper()
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	cmd := exec.Command(filepath.Join(testenv.PgBin, "pgbench"), "-h", c.Socket, "-p", strconv.Itoa(c.Port), "-U", "postgres",
		"-c", "2", "-T", "3600", "-n", "postgres")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	cmd.Dir = c.Dir
	b := &benchLoad{cmd: cmd, done: make(chan error, 1), out: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = b.out, b.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { b.done <- cmd.Wait() }()
	t.Cleanup(func() { b.stop() })
	// Wait until it has committed something.
	deadline := time.Now().Add(60 * time.Second)
	for c.QueryOne("postgres", "select count(*) from pgbench_history") == "0" {
		if time.Now().After(deadline) {
			t.Fatalf("pgbench made no transaction within 60s:\n%s", b.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return b
}

// running reports whether pgbench is still running (it must be, while
// the backups it overlaps run).
func (b *benchLoad) running() bool {
	select {
	case err := <-b.done:
		b.done <- err
		return false
	default:
		return true
	}
}

func (b *benchLoad) stop() {
	if b.cmd.Process == nil {
		return
	}
	if b.running() {
		b.cmd.Process.Signal(syscall.SIGINT)
	}
	err := <-b.done
	b.done <- err
}

// benchDigest is the content of the pgbench tables and of table marker.
func benchDigest(t *testing.T, c *testenv.Cluster) string {
	t.Helper()
	q := func(sql string) string { return c.QueryOne("postgres", sql) }
	return q("select md5(string_agg(aid::text||':'||abalance, ',' order by aid)) from pgbench_accounts") + "/" +
		q("select md5(string_agg(tid::text||':'||tbalance, ',' order by tid)) from pgbench_tellers") + "/" +
		q("select md5(string_agg(bid::text||':'||bbalance, ',' order by bid)) from pgbench_branches") + "/" +
		q("select count(*)::text||':'||coalesce(sum(delta),0)::text from pgbench_history") + "/" +
		q("select coalesce(string_agg(v, ',' order by v), '') from marker")
}

// restoreInto restores with pgbr (or pgBackRest) into data (created when
// missing), starts the cluster and returns it.
func restoreInto(t *testing.T, e *testenv.Env, tool, dir string, extra ...string) *testenv.Cluster {
	t.Helper()
	data := filepath.Join(dir, "pg")
	args := append([]string{"restore", "--pg1-path=" + data, "--archive-mode=off"}, extra...)
	testenv.Chown(t, dir)
	var out string
	if tool == "pgbr" {
		out = e.MustRun(args...)
	} else {
		out = e.MustPgBackRest(args...)
	}
	if !strings.Contains(out, "restore command end: completed successfully") {
		t.Fatalf("%s restore output:\n%s", tool, out)
	}
	return testenv.StartRestored(t, dir, data)
}

var labelLine = regexp.MustCompile(`new backup label = (\S+)`)

func backupLabel(t *testing.T, out string) string {
	t.Helper()
	m := labelLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no backup label in output:\n%s", out)
	}
	return m[1]
}

// TestVersionsMatrix runs pgbr against a real server of every supported
// major version: the full lifecycle on 15 and 18, a shorter round trip on
// 13, 14, 16 and 17.
func TestVersionsMatrix(t *testing.T) {
	t.Parallel()
	testenv.RequirePgBackRest(t)
	for _, major := range testenv.Majors {
		t.Run(strconv.Itoa(major), func(t *testing.T) {
			t.Parallel()
			if major == 15 || major == 18 {
				versionLifecycle(t, major)
			} else {
				versionRoundTrip(t, major)
			}
		})
	}
}

// versionEnv makes the environment; some versions archive asynchronously.
func versionEnv(t *testing.T, major int) *testenv.Env {
	var global []string
	if major == 14 || major == 18 {
		spool := testenv.Dir(t, fmt.Sprintf("spool-%d", major))
		global = append(global, "archive-async=y", "spool-path="+spool, "process-max=2")
	}
	e := testenv.NewEnv(t, testenv.EnvOptions{Global: global, Cluster: testenv.ClusterOptions{Major: major}})
	if e.Cluster.Major != major || !strings.HasPrefix(e.Cluster.QueryOne("postgres", "select current_setting('server_version_num')"), strconv.Itoa(major)) {
		t.Fatalf("cluster is not PostgreSQL %d", major)
	}
	checkControl(t, e.Cluster, major)
	return e
}

func checkAsync(t *testing.T, e *testenv.Env) {
	t.Helper()
	if b, err := os.ReadFile(filepath.Join(e.Dir, "log", e.Stanza+"-archive-push-async.log")); err != nil || !strings.Contains(string(b), "WAL file(s) to the archive") {
		t.Fatalf("archive-async=y but no asynchronous push logged: %v\n%s", err, b)
	}
}

func versionRoundTrip(t *testing.T, major int) {
	e := versionEnv(t, major)
	e.MustRun("stanza-create")
	e.MustRun("check")
	pgbench(t, e.Cluster, "-i", "-s", "1", "-q")
	e.Cluster.Exec("postgres", "create table marker(v text)")
	load := startPgbench(t, e.Cluster)
	full := backupLabel(t, e.MustRun("backup", "--type=full"))
	incr := backupLabel(t, e.MustRun("backup", "--type=incr"))
	if !load.running() {
		t.Fatalf("pgbench stopped during the backups:\n%s", load.out.String())
	}
	load.stop()
	e.Cluster.Exec("postgres", "insert into marker values ('after-incr')")
	want := benchDigest(t, e.Cluster)
	e.ArchiveCaughtUp()
	if major == 14 {
		checkAsync(t, e)
	}
	m := loadManifest(t, e, incr, "")
	if m.Backup.Prior != full || m.DB.Version != strconv.Itoa(major) || !m.Option.ChecksumPage {
		t.Fatalf("incr manifest: prior %s version %s checksum-page %v", m.Backup.Prior, m.DB.Version, m.Option.ChecksumPage)
	}
	tools := []string{"pgbr"}
	if major == 13 {
		// pgBackRest 2.45 restores pgbr's backup of PostgreSQL 13.
		tools = append(tools, "pgbackrest")
	}
	for _, tool := range tools {
		r := restoreInto(t, e, tool, testenv.Dir(t, "restore-"+tool))
		if got := benchDigest(t, r); got != want {
			t.Fatalf("PostgreSQL %d restored by %s: data differs\n got %s\nwant %s\n%s", major, tool, got, want, tailStr(r.RestoredLog()))
		}
		r.Stop()
	}
	if out := e.MustRun("verify"); !strings.Contains(out, "verify command end: completed successfully") {
		t.Fatalf("verify:\n%s", out)
	}
	if major < 15 {
		// pgBackRest 2.45 verifies pgbr's repository of PostgreSQL 13 and 14.
		if out := e.MustPgBackRest("verify"); !strings.Contains(out, "completed successfully") {
			t.Fatalf("pgBackRest verify:\n%s", out)
		}
	}
	info := e.MustRun("info")
	if !strings.Contains(info, "status: ok") || !strings.Contains(info, incr) || !strings.Contains(info, fmt.Sprintf("wal archive min/max (%d)", major)) {
		t.Fatalf("info:\n%s", info)
	}
	if major == 16 {
		compareWithPgBackRest260(t, e, "pg16-block-gz-aes", "fixture-passphrase-0123456789", incr)
	}
}

func tailStr(s string) string {
	if len(s) > 3000 {
		return s[len(s)-3000:]
	}
	return s
}

func versionLifecycle(t *testing.T, major int) {
	e := versionEnv(t, major)
	e.MustRun("stanza-create")
	e.MustRun("check")
	pgbench(t, e.Cluster, "-i", "-s", "1", "-q")
	e.Cluster.Exec("postgres", "create table marker(v text); create table pc(id int, v text); insert into pc select g, md5(g::text) from generate_series(1,2000) g")
	load := startPgbench(t, e.Cluster)
	full := backupLabel(t, e.MustRun("backup", "--type=full"))

	// A corrupt page is reported and recorded by the next backup.
	rel := corruptPages(t, e, "pc")
	out := e.MustRun("backup", "--type=diff")
	diff := backupLabel(t, out)
	if !strings.Contains(out, "invalid page checksum") && !strings.Contains(out, "invalid page checksums") {
		t.Fatalf("diff backup did not warn about the corrupt pages of %s:\n%s", rel, out)
	}
	m := loadManifest(t, e, diff, "")
	checked := 0
	for _, f := range m.Files {
		if f.Name == "pg_data/"+rel {
			if f.ChecksumPage == nil || *f.ChecksumPage || !strings.Contains(f.ChecksumPageError, "1") {
				t.Fatalf("corrupt %s recorded as checksum-page=%v error=%q", rel, f.ChecksumPage, f.ChecksumPageError)
			}
		} else if f.ChecksumPage != nil && *f.ChecksumPage {
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no file of the diff backup was page-checked")
	}
	incr := backupLabel(t, e.MustRun("backup", "--type=incr"))
	if !load.running() {
		t.Fatalf("pgbench stopped during the backups:\n%s", load.out.String())
	}
	load.stop()

	// A time target between two markers.
	e.Cluster.Exec("postgres", "insert into marker values ('before')")
	wantAtTarget := benchDigest(t, e.Cluster)
	time.Sleep(1100 * time.Millisecond)
	target := e.Cluster.QueryOne("postgres", "select now()::text")
	time.Sleep(1100 * time.Millisecond)
	e.Cluster.Exec("postgres", "insert into marker values ('after')")
	want := benchDigest(t, e.Cluster)
	e.ArchiveCaughtUp()
	if major == 18 {
		checkAsync(t, e)
	}

	// Restore to the end of WAL, then --delta over it to the time target.
	rdir := testenv.Dir(t, "restore")
	r := restoreInto(t, e, "pgbr", rdir)
	if got := benchDigest(t, r); got != want {
		t.Fatalf("PostgreSQL %d restored to the end of WAL: data differs\n got %s\nwant %s\n%s", major, got, want, tailStr(r.RestoredLog()))
	}
	r.Stop()
	r = restoreInto(t, e, "pgbr", rdir, "--delta", "--type=time", "--target="+target, "--target-action=promote")
	if got := benchDigest(t, r); got != wantAtTarget {
		t.Fatalf("PostgreSQL %d --delta restore to time %s: data differs\n got %s\nwant %s\n%s", major, target, got, wantAtTarget, tailStr(r.RestoredLog()))
	}
	r.Stop()

	if major == 15 {
		// pgBackRest 2.45 reads the same repository.
		if out := e.MustPgBackRest("verify"); !strings.Contains(out, "completed successfully") {
			t.Fatalf("pgBackRest verify:\n%s", out)
		}
	}
	if major == 18 {
		compareWithPgBackRest260(t, e, "pg18-block-zst", "", incr)
	}

	// Expire: a new full with retention 1 removes the first set.
	full2 := backupLabel(t, e.MustRun("backup", "--type=full"))
	e.MustRun("expire", "--repo1-retention-full=1")
	info := e.MustRun("info")
	for _, l := range []string{full, diff, incr} {
		if strings.Contains(info, l) {
			t.Fatalf("expire kept %s:\n%s", l, info)
		}
	}
	if !strings.Contains(info, full2) || !strings.Contains(info, "status: ok") || !strings.Contains(info, fmt.Sprintf("wal archive min/max (%d)", major)) {
		t.Fatalf("info after expire:\n%s", info)
	}
	if out := e.MustRun("verify"); !strings.Contains(out, "verify command end: completed successfully") {
		t.Fatalf("verify:\n%s", out)
	}
	var js []map[string]any
	if err := json.Unmarshal([]byte(e.MustRun("info", "--output=json")), &js); err != nil || len(js) != 1 {
		t.Fatalf("info json: %v", err)
	}
}

// iniOf parses a (possibly encrypted) info file or manifest.
func iniOf(t *testing.T, path, pass string) *repo.Ini {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if pass != "" {
		if b, err = filter.DecryptBytes(b, pass); err != nil {
			t.Fatalf("decrypt %s: %v", path, err)
		}
	}
	ini, err := repo.ParseIni(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return ini
}

// iniShape lists section/key pairs and, for JSON object values, their
// keys: the format without the values. skip drops keys only block
// incremental or bundling write.
func iniShape(ini *repo.Ini, keyOf func(section, key string) string) []string {
	skip := map[string]bool{"backup-info-repo-size-map": true, "backup-info-repo-size-map-delta": true,
		"backup-block-incr": true, "backup-bundle": true, "backup-bundle-raw": true,
		"bi": true, "bim": true, "bni": true, "bno": true, "reference": true, "backrest-checksum": true,
		"backup-prior": true, "backup-reference": true, "checksum-page-error": true}
	seen := map[string]bool{}
	for _, v := range ini.Values {
		if skip[v.Key] {
			continue
		}
		k := keyOf(v.Section, v.Key)
		if k == "" {
			continue
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal([]byte(v.Value), &obj) == nil && obj != nil {
			var ks []string
			empty := string(obj["size"]) == "0"
			for ok := range obj {
				// Bundling stores no zero-length file: no repo size/checksum.
				if !skip[ok] && !(empty && (ok == "rck" || ok == "repo-size")) {
					ks = append(ks, ok)
				}
			}
			sort.Strings(ks)
			k += "{" + strings.Join(ks, ",") + "}"
		}
		seen[v.Section+"|"+k] = true
	}
	var out []string
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// compareWithPgBackRest260 compares the shape of what pgbr wrote for this
// PostgreSQL version with a repository pgBackRest 2.60 wrote for the same
// major version: archive id, info file and manifest sections, keys and
// JSON fields (values and block incremental fields aside).
func compareWithPgBackRest260(t *testing.T, e *testenv.Env, fixture, pass, label string) {
	t.Helper()
	fx := filepath.Join(testenv.Fixtures(t), fixture, "repo")
	if _, err := os.Stat(fx); err != nil {
		t.Fatalf("pgBackRest 2.60 fixture missing: %v", err)
	}
	fxBackup := filepath.Join(fx, "backup", "fixture")
	fxInfo := iniOf(t, filepath.Join(fxBackup, "backup.info"), pass)
	ourInfo := iniOf(t, filepath.Join(e.Repo, "backup", e.Stanza, "backup.info"), "")
	generic := func(section, key string) string {
		switch {
		case section == "backup:current":
			return "<label>"
		case section == "db:history":
			return "<id>"
		case section == "cipher":
			return ""
		}
		return key
	}
	diffShape(t, "backup.info", iniShape(fxInfo, generic), iniShape(ourInfo, generic))
	fxArch := iniOf(t, filepath.Join(fx, "archive", "fixture", "archive.info"), pass)
	ourArch := iniOf(t, filepath.Join(e.Repo, "archive", e.Stanza, "archive.info"), "")
	diffShape(t, "archive.info", iniShape(fxArch, generic), iniShape(ourArch, generic))
	// Archive id directory: <version>-<history id>.
	ourVer, _ := ourInfo.Get("db", "db-version")
	for _, k := range []string{"db-version", "db-catalog-version", "db-control-version"} {
		theirs, _ := fxInfo.Get("db", k)
		ours, _ := ourInfo.Get("db", k)
		if theirs != ours || ours == "" {
			t.Fatalf("backup.info %s %s, pgBackRest 2.60 writes %s for the same major version", k, ours, theirs)
		}
	}
	if _, err := os.Stat(filepath.Join(e.Repo, "archive", e.Stanza, strings.Trim(ourVer, `"`)+"-1")); err != nil {
		t.Fatalf("archive id directory: %v", err)
	}
	// The incremental manifests.
	var fxLabel, subPass string
	for _, v := range fxInfo.Values {
		if v.Section == "backup:current" && strings.HasSuffix(v.Key, "I") {
			fxLabel = v.Key
		}
	}
	if pass != "" {
		s, _ := fxInfo.Get("cipher", "cipher-pass")
		subPass = strings.Trim(s, `"`)
	}
	fileKey := func(section, key string) string {
		switch {
		case section == "db":
			return "<db>"
		case section == "target:file":
			if strings.HasPrefix(key, "pg_data/base/") || strings.HasPrefix(key, "pg_data/global/") && !strings.HasPrefix(key, "pg_data/global/pg_") {
				return "<relation>"
			}
			return "<other>"
		case section == "target:path":
			if strings.HasPrefix(key, "pg_data/base/") {
				return ""
			}
		case section == "cipher":
			return ""
		}
		return key
	}
	fxMan := iniOf(t, filepath.Join(fxBackup, fxLabel, "backup.manifest"), subPass)
	ourMan := iniOf(t, filepath.Join(e.Repo, "backup", e.Stanza, label, "backup.manifest"), "")
	diffShape(t, "backup.manifest", iniShape(fxMan, fileKey), iniShape(ourMan, fileKey))
	for _, k := range []string{"db-version", "db-catalog-version", "db-control-version"} {
		theirs, _ := fxMan.Get("backup:db", k)
		ours, _ := ourMan.Get("backup:db", k)
		if theirs != ours || ours == "" {
			t.Fatalf("manifest %s %s, pgBackRest 2.60 writes %s for the same major version", k, ours, theirs)
		}
	}
}

func diffShape(t *testing.T, what string, theirs, ours []string) {
	t.Helper()
	in := func(l []string) map[string]bool {
		m := map[string]bool{}
		for _, s := range l {
			m[s] = true
		}
		return m
	}
	ti, oi := in(theirs), in(ours)
	var d []string
	for _, s := range theirs {
		if !oi[s] {
			d = append(d, "only pgBackRest 2.60: "+s)
		}
	}
	for _, s := range ours {
		if !ti[s] {
			d = append(d, "only pgbr:           "+s)
		}
	}
	if len(d) > 0 {
		t.Errorf("%s differs from pgBackRest 2.60's:\n%s", what, strings.Join(d, "\n"))
	}
}
