package repo

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"fmt"
	"github.com/pgbr-dev/pgbr/internal/errs"
	"reflect"
)

// withChecksum reads a template whose checksum is a placeholder and returns
// the same bytes with the correct checksum line.
func withChecksum(t *testing.T, tmpl []byte) []byte {
	t.Helper()
	ini, err := ParseIniUnchecked(tmpl)
	if err != nil {
		t.Fatalf("template: %v", err)
	}
	sum := ini.Checksum()
	out := bytes.Replace(tmpl, []byte(`backrest-checksum="..."`), []byte(`backrest-checksum="`+sum+`"`), 1)
	if _, err := ParseIni(out); err != nil {
		t.Fatalf("fixed template does not verify: %v", err)
	}
	return out
}

func readTemplate(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return withChecksum(t, b)
}

func diffBytes(t *testing.T, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		wl, gl := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
		for i := 0; i < max(len(wl), len(gl)); i++ {
			var w, g string
			if i < len(wl) {
				w = wl[i]
			}
			if i < len(gl) {
				g = gl[i]
			}
			if w != g {
				t.Fatalf("bytes differ at line %d:\nwant %q\ngot  %q", i+1, w, g)
			}
		}
		t.Fatal("bytes differ")
	}
}

func TestArchiveInfoRoundTrip(t *testing.T) {
	data, _ := os.ReadFile("testdata/archive.info")
	a, err := ParseArchiveInfo(data)
	if err != nil {
		t.Fatal(err)
	}
	want := &ArchiveInfo{BackrestVersion: "2.45", DB: ArchiveHistory{1, 7712118519663905687, "15"},
		History: []ArchiveHistory{{1, 7712118519663905687, "15"}}}
	if !reflect.DeepEqual(want, a) {
		t.Fatalf("%+v", a)
	}
	diffBytes(t, a.Bytes(), data)
	if a.ArchiveID() != "15-1" {
		t.Fatal(a.ArchiveID())
	}
}

func TestArchiveInfoUpgraded(t *testing.T) {
	a := &ArchiveInfo{
		CipherPass: "PCDjiFkbFSWQSB82awswk9eOOJjPMLdL9d3LhBtelBqu1uzKiCC9Ef/qjfnqMAeW",
		DB:         ArchiveHistory{2, 7712121970788412377, "15"},
		History: []ArchiveHistory{
			{2, 7712121970788412377, "15"}, {1, 7712118519663905687, "15"},
			{10, 7712118519663905687, "15"}, {3, 1, "14"},
		},
	}
	out := a.Bytes()
	want := "[backrest]\nbackrest-format=5\nbackrest-version=\"2.45\"\n\n" +
		"[cipher]\ncipher-pass=\"PCDjiFkbFSWQSB82awswk9eOOJjPMLdL9d3LhBtelBqu1uzKiCC9Ef/qjfnqMAeW\"\n\n" +
		"[db]\ndb-id=2\ndb-system-id=7712121970788412377\ndb-version=\"15\"\n\n" +
		"[db:history]\n" +
		"1={\"db-id\":7712118519663905687,\"db-version\":\"15\"}\n" +
		"2={\"db-id\":7712121970788412377,\"db-version\":\"15\"}\n" +
		"3={\"db-id\":1,\"db-version\":\"14\"}\n" +
		"10={\"db-id\":7712118519663905687,\"db-version\":\"15\"}\n\n[backrest]\nbackrest-checksum=\""
	if !strings.HasPrefix(string(out), want) {
		t.Fatalf("got\n%s", out)
	}
	back, err := ParseArchiveInfo(out)
	if err != nil {
		t.Fatal(err)
	}
	if back.ArchiveID() != "15-2" || back.CipherPass != a.CipherPass {
		t.Fatalf("%+v", back)
	}
	if got := back.ArchiveIDs(7712118519663905687, "15"); !slices_equal(got, []string{"15-10", "15-1"}) {
		t.Fatalf("ArchiveIDs %v", got)
	}
	if got := back.ArchiveIDs(7712118519663905687, "14"); len(got) != 0 {
		t.Fatalf("ArchiveIDs %v", got)
	}
}

func slices_equal(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

func TestArchiveInfoErrors(t *testing.T) {
	base := "[backrest]\nbackrest-format=5\nbackrest-version=\"2.45\"\n\n"
	tests := []struct {
		name, body, msg string
	}{
		{"no history", "[db]\ndb-id=1\n", "history is missing"},
		{"no current", "[db:history]\n1={\"db-id\":1,\"db-version\":\"15\"}\n", "current id is missing"},
		{"current not found", "[db]\ndb-id=2\n\n[db:history]\n1={\"db-id\":1,\"db-version\":\"15\"}\n", "unable to find current id in history"},
		{"missing version", "[db]\ndb-id=1\n\n[db:history]\n1={\"db-id\":1}\n", "missing key 'db-version'"},
		{"bad history id", "[db]\ndb-id=1\n\n[db:history]\nx={\"db-id\":1,\"db-version\":\"15\"}\n", "invalid history id"},
		{"string system id", "[db]\ndb-id=1\n\n[db:history]\n1={\"db-id\":\"1\",\"db-version\":\"15\"}\n", "expected unsigned integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := withChecksum(t, []byte(base+tt.body+"\n[backrest]\nbackrest-checksum=\"...\"\n"))
			_, err := ParseArchiveInfo(data)
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error %v, want %q", err, tt.msg)
			}
		})
	}
}

func TestBackupInfoRoundTrip(t *testing.T) {
	data := readTemplate(t, "backup.info.tmpl")
	b, err := ParseBackupInfo(data)
	if err != nil {
		t.Fatal(err)
	}
	diffBytes(t, b.Bytes(), data)
	if len(b.Current) != 2 {
		t.Fatalf("%d entries", len(b.Current))
	}
	e, ok := b.Find("20261125-143955F_20261125-143958I")
	if !ok {
		t.Fatal("entry not found")
	}
	if e.Prior != "20261125-143955F" || len(e.Reference) != 1 || e.Type != "incr" || e.RepoSizeDelta != 2617639 ||
		!e.OptionCompress || e.LsnStop != "0/22000100" || e.ErrorMissing || e.TimestampStop != 1795617600 {
		t.Fatalf("%+v", e)
	}
	want := BackupDB{CatalogVersion: 202209061, ControlVersion: 1300, ID: 1, SystemID: 7712118519663905687, Version: "15"}
	if b.DB != want || len(b.History) != 1 || b.History[0] != want {
		t.Fatalf("%+v %+v", b.DB, b.History)
	}
}

func TestBackupInfoNullsAndOptional(t *testing.T) {
	b := &BackupInfo{
		CipherPass: "pass",
		DB:         BackupDB{202209061, 1300, 1, 1, "15"},
		History:    []BackupHistory{{202209061, 1300, 1, 1, "15"}},
	}
	m := uint64(7)
	b.Add(BackupInfoEntry{Label: "20261125-143955F", BackrestFormat: 5, BackrestVersion: "2.45", Type: "full", DbID: 1,
		Annotation: map[string]string{"z": "1", "a": "x\ty<>&"}, RepoSizeMap: &m, RepoSizeMapDelta: &m})
	b.Add(BackupInfoEntry{Label: "20261125-143000F", BackrestFormat: 5, BackrestVersion: "2.45", Type: "full", DbID: 1, ErrorMissing: true})
	out := b.Bytes()
	for _, s := range []string{
		`20261125-143000F={"backrest-format":5,"backrest-version":"2.45","backup-archive-start":null,"backup-archive-stop":null,"backup-info-repo-size":0,`,
		`20261125-143955F={"backrest-format":5,"backrest-version":"2.45","backup-annotation":{"a":"x\ty<>&","z":"1"},"backup-archive-start":null,"backup-archive-stop":null,"backup-error":false,"backup-info-repo-size":0,"backup-info-repo-size-delta":0,"backup-info-repo-size-map":7,"backup-info-repo-size-map-delta":7,"backup-info-size":0,`,
		"\n\n[cipher]\ncipher-pass=\"pass\"\n\n[db]\n",
	} {
		if !strings.Contains(string(out), s) {
			t.Fatalf("missing %s in\n%s", s, out)
		}
	}
	if strings.Index(string(out), "20261125-143000F") > strings.Index(string(out), "20261125-143955F") {
		t.Fatal("entries not sorted")
	}
	back, err := ParseBackupInfo(out)
	if err != nil {
		t.Fatal(err)
	}
	diffBytes(t, back.Bytes(), out)
	if back.Current[0].ArchiveStart != "" || !back.Current[0].ErrorMissing || back.Current[1].Annotation["a"] != "x\ty<>&" {
		t.Fatalf("%+v", back.Current)
	}
	back.Remove("20261125-143000F")
	if len(back.Current) != 1 {
		t.Fatal("remove")
	}
}

func TestBackupInfoEntryMissingKey(t *testing.T) {
	data := readTemplate(t, "backup.info.tmpl")
	ini, _ := ParseIniUnchecked(bytes.Replace(data, []byte(`"backup-type":"full",`), nil, 1))
	_, err := ParseBackupInfo(ini.Bytes())
	if err == nil || errs.CodeOf(err) != errs.Format || !strings.Contains(err.Error(), "missing key 'backup-type'") {
		t.Fatalf("err %v", err)
	}
}

// manifestTemplate returns the §3.15 manifest with a correct checksum.
func manifestTemplate(t *testing.T) []byte { return readTemplate(t, "manifest.tmpl") }

func TestManifestRoundTrip(t *testing.T) {
	data := manifestTemplate(t)
	m, err := ParseManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	diffBytes(t, m.Bytes(), data)

	if m.Backup.Label != "20261125-144758F_20261125-144908I" || m.Backup.Type != BackupTypeIncr ||
		len(m.Backup.Reference) != 2 || m.Backup.TimestampCopyStart != 1795618149 {
		t.Fatalf("%+v", m.Backup)
	}
	if m.Option.CompressType != "gz" || m.Option.BufferSize != 1048576 || m.Option.CompressLevel != 6 || !m.Option.Delta {
		t.Fatalf("%+v", m.Option)
	}
	if m.DB.SystemID != 7712118519663905687 || m.DB.CatalogVersion != 202209061 {
		t.Fatalf("%+v", m.DB)
	}
	ts, ok := m.FindTarget("pg_tblspc/16384")
	if !ok || ts.TablespaceID != "16384" || ts.TablespaceName != "ts1" || ts.Type != "link" {
		t.Fatalf("%+v", ts)
	}
	db, ok := m.FindDatabase("db2")
	if !ok || db.OID != 16396 || db.LastSystemID != 4 {
		t.Fatalf("%+v", db)
	}
	f, ok := m.FindFile("pg_data/base/5/16390_init")
	if !ok || f.Size != 0 || !f.Checksum.IsZero() || f.EffectiveChecksum() != EmptySHA1 || f.RepoSize != 20 ||
		f.Reference != "20261125-144758F" || f.Mode != "0600" || f.User != (Owner{Name: "postgres"}) || f.ChecksumPage == nil || !*f.ChecksumPage {
		t.Fatalf("%+v", f)
	}
	if got := m.FileRepoPath(f); got != "20261125-144758F/pg_data/base/5/16390_init.gz" {
		t.Fatal(got)
	}
	p, ok := m.FindPath("pg_data")
	if !ok || p.Mode != "0700" || p.Group.Name != "postgres" {
		t.Fatalf("%+v", p)
	}
	l, ok := m.FindLink("pg_data/pg_tblspc/16384")
	if !ok || l.Destination != "/srv/lab/ts-r1" || l.User.Name != "postgres" {
		t.Fatalf("%+v", l)
	}
	if _, ok := m.FindFile("pg_data/nope"); ok {
		t.Fatal("found missing file")
	}
	if err := m.Validate(true); err != nil {
		t.Fatal(err)
	}

	e := NewBackupInfoEntry(m)
	if e.Size != 3+260+7233536+0+8192+8192+459+188416 || e.SizeDelta != 260+7233536+8192+459 ||
		e.RepoSize != 23+196+2792260+20+210+49+253+21503 || e.RepoSizeDelta != 196+2792260+210+253 ||
		e.Error || e.Prior != "20261125-144758F" || !slices_equal(e.Reference, []string{"20261125-144758F"}) ||
		!e.OptionCompress || e.Type != "incr" || e.BackrestVersion != "2.45" || e.ArchiveStart != "00000002000000000000002E" {
		t.Fatalf("%+v", e)
	}
}

// TestManifestVariants adds the other real entries of §3.15 (bundle, page
// errors, odd names, owners), a cipher and an annotation, and checks the
// canonical re-serialisation.
func TestManifestVariants(t *testing.T) {
	ini, err := ParseIniUnchecked(manifestTemplate(t))
	if err != nil {
		t.Fatal(err)
	}
	add := func(s, k, v string) { ini.Values = append(ini.Values, IniValue{s, k, v}) }
	add("backup", "backup-bundle", "true")
	add("cipher", "cipher-pass", `"PCDjiFkbFSWQSB82awswk9eOOJjPMLdL9d3LhBtelBqu1uzKiCC9Ef/qjfnqMAeW"`)
	add("metadata", "annotation", `{"a":"b","key":"va\"lue"}`)
	add("target:file", "pg_data/PG_VERSION", `{"bni":1,"bno":2738,"checksum":"587b596f04f7db9c2cad3d6b87dd2b3a05de4f35","rck":"b8b3ecfaf3ed3d6865df5807d66c5fd8cde3289e","repo-size":23,"size":3,"timestamp":1795617518}`)
	add("target:file", "pg_data/base/1/13394", `{"checksum-page":true,"size":0,"timestamp":1795617519}`)
	add("target:file", "pg_data/base/5/16385", `{"checksum":"fa8a8164552c17995a54a90c59689f3415b91217","checksum-page":false,"checksum-page-error":[[3,5],10],"rck":"2b5137759d2f1329b7f3aff6e36639b4722e16a3","repo-size":2795242,"size":7258112,"timestamp":1795618442}`)
	add("target:file", `pg_data/we=ird "q".txt`, `{"checksum":"86f7e437faa5a7fce15d1ddcb9eaeaea377667b8","group":"root","mode":"0644","rck":"734be48f248d947436dcd71ba76a75eef229ac7c","repo-size":21,"size":1,"timestamp":1795618373}`)
	add("target:file", "pg_data/t\tab\\back\"q[x]é", `{"checksum":"86f7e437faa5a7fce15d1ddcb9eaeaea377667b8","size":1,"timestamp":1,"user":false}`)
	add("target:path", "pg_data/odd", `{"group":false,"mode":"0750"}`)
	data := ini.Bytes() // canonical order and checksum
	m, err := ParseManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	diffBytes(t, m.Bytes(), data)

	if !m.Backup.Bundle || m.CipherPass == "" || m.Annotation["key"] != `va"lue` {
		t.Fatalf("%+v %q", m.Backup, m.Annotation)
	}
	f, _ := m.FindFile("pg_data/PG_VERSION")
	if f.BundleID != 1 || f.BundleOffset != 2738 || m.FileRepoPath(f) != "20261125-144758F_20261125-144908I/bundle/1" {
		t.Fatalf("%+v", f)
	}
	f, _ = m.FindFile("pg_data/base/1/13394")
	if f.RepoSize != 0 || f.Size != 0 || !f.RepoChecksum.IsZero() {
		t.Fatalf("%+v", f)
	}
	f, _ = m.FindFile("pg_data/base/5/16385")
	pe, err := f.PageErrors()
	if err != nil || len(pe) != 2 || pe[0] != (PageRange{3, 5}) || pe[1] != (PageRange{10, 10}) {
		t.Fatalf("%v %v", pe, err)
	}
	if FormatPageErrors(pe) != "[[3,5],10]" {
		t.Fatal(FormatPageErrors(pe))
	}
	f, _ = m.FindFile(`pg_data/we=ird "q".txt`)
	if f.Group.Name != "root" || f.Mode != "0644" || f.User.Name != "postgres" {
		t.Fatalf("%+v", f)
	}
	f, ok := m.FindFile("pg_data/t\tab\\back\"q[x]é")
	if !ok || !f.User.None || f.Group.Name != "postgres" {
		t.Fatalf("%+v", f)
	}
	p, _ := m.FindPath("pg_data/odd")
	if !p.Group.None || p.Mode != "0750" || p.User.Name != "postgres" {
		t.Fatalf("%+v", p)
	}
	if e := NewBackupInfoEntry(m); !e.Error {
		t.Fatal("backup-error not set")
	}
}

func TestManifestBlockIncr(t *testing.T) {
	ini, _ := ParseIniUnchecked(manifestTemplate(t))
	ini.Values = append(ini.Values,
		IniValue{"backup", "backup-block-incr", "true"},
		IniValue{"backup", "backup-bundle", "true"},
		IniValue{"backup", "backup-bundle-raw", "true"},
		IniValue{"target:file", "pg_data/base/1/1247", `{"bi":1,"bim":101,"bni":1,"bno":2836473,"checksum":"2768611c4b55dcaacb6d173c2b4a06de594b40ca","checksum-page":true,"rck":"77076e7eb2c4e4d6299604d3e1442d1c0f7a778c","repo-size":13226,"size":122880,"timestamp":1795617519}`})
	data := ini.Bytes()
	m, err := ParseManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	diffBytes(t, m.Bytes(), data)
	if err := m.CheckRestorable(); err != nil {
		t.Fatalf("CheckRestorable: %v", err)
	}
	bf, _ := m.FindFile("pg_data/base/1/1247")
	bf.BlockIncrMap = bf.RepoSize + 1 // map larger than the stored file
	if err := m.CheckRestorable(); errs.CodeOf(err) != errs.Format {
		t.Fatalf("CheckRestorable: %v", err)
	}
	bf.BlockIncrMap = 101
	e := NewBackupInfoEntry(m)
	if e.RepoSizeMap == nil || *e.RepoSizeMap != 101 || *e.RepoSizeMapDelta != 101 {
		t.Fatalf("%+v", e)
	}
}

func TestManifestErrors(t *testing.T) {
	tests := []struct {
		name, section, key, value, msg string
		code                           errs.Code
	}{
		{"no size", "target:file", "pg_data/x", `{"timestamp":1}`, "missing size for file 'pg_data/x'", errs.Format},
		{"no timestamp", "target:file", "pg_data/x", `{"size":1}`, "missing timestamp for file 'pg_data/x'", errs.Format},
		{"bad checksum", "target:file", "pg_data/x", `{"checksum":"xyz","size":1,"timestamp":1}`, "invalid SHA-1", errs.Format},
		{"owner true", "target:file", "pg_data/x", `{"size":1,"timestamp":1,"user":true}`, "owner bool must be false", errs.Format},
		{"bad mode", "target:path", "pg_data/x", `{"mode":"999"}`, "invalid mode", errs.Format},
		{"size string", "target:file", "pg_data/x", `{"size":"1","timestamp":1}`, "expected unsigned integer", errs.JSONFormat},
		{"not object", "target:file", "pg_data/x", `1`, "expected object", errs.JSONFormat},
		{"bad type", "backup", "backup-type", `"weekly"`, "invalid backup type", errs.Format},
		{"link no dest", "target:link", "pg_data/l", `{}`, "missing key 'destination'", errs.Format},
		{"target no path", "backup:target", "pg_data/l", `{"type":"link"}`, "missing key 'path'", errs.Format},
		{"db no id", "db", "x", `{"db-last-system-id":1}`, "missing key", errs.Format},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ini, _ := ParseIniUnchecked(manifestTemplate(t))
			ini.Values = append(ini.Values, IniValue{tt.section, tt.key, tt.value})
			_, err := ParseManifest(ini.Bytes())
			if err == nil || errs.CodeOf(err) != tt.code || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error %v (code %d), want %q code %d", err, errs.CodeOf(err), tt.msg, tt.code)
			}
		})
	}
}

func TestManifestNoReferenceKey(t *testing.T) {
	ini, _ := ParseIniUnchecked(manifestTemplate(t))
	ini.Values = slicesDelete(ini.Values, "backup", "backup-reference")
	m, err := ParseManifest(ini.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !slices_equal(m.Backup.Reference, []string{"20261125-144758F", "20261125-144758F_20261125-144908I"}) {
		t.Fatal(m.Backup.Reference)
	}
}

func slicesDelete(v []IniValue, section, key string) []IniValue {
	out := v[:0]
	for _, e := range v {
		if e.Section != section || e.Key != key {
			out = append(out, e)
		}
	}
	return out
}

func TestManifestBuildAndSave(t *testing.T) {
	tr := true
	m := &Manifest{
		Backup:  ManifestBackup{Label: "20261125-143852F", Type: BackupTypeFull, Reference: []string{"20261125-143852F"}},
		DB:      BackupDB{CatalogVersion: 202209061, ControlVersion: 1300, ID: 1, SystemID: 1, Version: "15"},
		Option:  ManifestOption{CompressType: "zst", Online: false},
		Targets: []ManifestTarget{{Name: "pg_data", Path: "/pg", Type: "path"}},
		Paths: []ManifestPath{
			{Name: "pg_data/base", Mode: "0750", User: Owner{Name: "pg"}, Group: Owner{Name: "pg"}},
			{Name: "pg_data", Mode: "0750", User: Owner{Name: "pg"}, Group: Owner{Name: "pg"}},
		},
		Files: []ManifestFile{
			{Name: "pg_data/b", Size: 0, Timestamp: 5, Mode: "0640", User: Owner{Name: "pg"}, Group: Owner{None: true}, ChecksumPage: &tr},
			{Name: "pg_data/a", Size: 10, RepoSize: 0, Timestamp: 5, Mode: "0600", User: Owner{Name: "pg"}, Group: Owner{Name: "pg"}},
		},
	}
	if _, ok := m.FindFile("pg_data/a"); ok {
		// unsorted: binary search is not reliable until Sort
		t.Log("found before sort (allowed)")
	}
	if err := m.SetDefaultsFromPgData(); err == nil {
		t.Log("pg_data found by luck before sort")
	}
	m.Sort()
	if err := m.SetDefaultsFromPgData(); err != nil {
		t.Fatal(err)
	}
	if m.FileDefault.Mode != "0640" || m.PathDefault.Mode != "0750" || m.LinkDefault.User.Name != "pg" {
		t.Fatalf("%+v %+v", m.FileDefault, m.PathDefault)
	}
	out := string(m.Bytes())
	for _, s := range []string{
		"[target:file]\npg_data/a={\"mode\":\"0600\",\"repo-size\":0,\"size\":10,\"timestamp\":5}\npg_data/b={\"checksum-page\":true,\"group\":false,\"size\":0,\"timestamp\":5}\n",
		"[target:file:default]\ngroup=\"pg\"\nmode=\"0640\"\nuser=\"pg\"\n",
		"[target:path]\npg_data={}\npg_data/base={}\n\n[target:path:default]\ngroup=\"pg\"\nmode=\"0750\"\nuser=\"pg\"\n",
		"option-compress=true\n", "option-compress-type=\"zst\"\n", "backup-reference=\"20261125-143852F\"\n",
	} {
		if !strings.Contains(out, s) {
			t.Fatalf("missing %q in\n%s", s, out)
		}
	}
	if strings.Contains(out, "[target:link") || strings.Contains(out, "[cipher]") || strings.Contains(out, "[db]") {
		t.Fatalf("unexpected section in\n%s", out)
	}
	err := m.Validate(true)
	if err == nil || !strings.Contains(err.Error(), "missing checksum for file 'pg_data/a'") {
		t.Fatalf("validate: %v", err)
	}
	back, err := ParseManifest([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	m.BackrestVersion = BackrestVersion
	m.LinkDefault = ManifestDefaults{} // not written without links
	if !reflect.DeepEqual(m, back) {
		t.Fatalf("re-parse differs:\n%s\n%s", fmt.Sprintf("%+v", m), fmt.Sprintf("%+v", back))
	}
}

func TestManifestValidateNames(t *testing.T) {
	m := &Manifest{Files: []ManifestFile{{Name: "pg_data/a\nb", Size: 0}}}
	if err := m.Validate(false); err == nil || !strings.Contains(err.Error(), "invalid file name") {
		t.Fatalf("%v", err)
	}
	m.Files[0].Name = "pg_data/ok"
	if err := m.Validate(true); err != nil {
		t.Fatal(err)
	}
}
