package backup

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// linkedTree makes a PGDATA whose pg_wal, pg_replslot, pg_stat_tmp,
// pg_dynshmem and a user directory are links to directories outside it.
func linkedTree(t *testing.T) string {
	t.Helper()
	top := t.TempDir()
	pg, out := filepath.Join(top, "pg"), filepath.Join(top, "outside")
	files := map[string]string{
		"pg/PG_VERSION":                        "15\n",
		"pg/global/pg_control":                 "c",
		"pg/base/1/1259":                       "r",
		"pg/base/1/pg_internal.init":           "i",
		"pg/pg_notify/0000":                    "n",
		"pg/postmaster.pid":                    "1",
		"outside/wal/000000010000000000000001": "w",
		"outside/wal/000000010000000000000001.00000028.backup":      "b",
		"outside/wal/archive_status/000000010000000000000001.ready": "",
		"outside/wal/extra/kept":                                    "k",
		"outside/slot/s1/state":                                     "s",
		"outside/stat/pgss_query_texts.stat":                        "q",
		"outside/shm/mem":                                           "m",
		"outside/conf/a.conf":                                       "a",
		"outside/skip/x":                                            "x",
		"outside/tmp/t":                                             "t",
		"outside/postgresql.conf":                                   "p",
		"outside/postmaster.opts":                                   "o",
	}
	for name, body := range files {
		p := filepath.Join(top, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"pg_wal": "wal", "pg_replslot": "slot", "pg_stat_tmp": "stat", "pg_dynshmem": "shm",
		"conf": "conf", "skipme": "skip", "pgsql_tmp_link": "tmp", "postgresql.conf": "postgresql.conf",
		"postmaster.opts": "postmaster.opts",
	}
	for name, dest := range links {
		if err := os.Symlink(filepath.Join(out, dest), filepath.Join(pg, name)); err != nil {
			t.Fatal(err)
		}
	}
	return pg
}

func walkNames(t *testing.T, res *walkResult) []string {
	t.Helper()
	var names []string
	res.Entries.each(func(e *fsEntry) {
		names = append(names, []string{"file", "path", "link"}[e.Type]+" "+e.Name)
	})
	sort.Strings(names)
	return names
}

// TestWalkLinkedExclusions: the exclusion rules go by manifest name, so a
// linked pg_wal, pg_replslot, pg_stat_tmp or pg_dynshmem keeps its link and
// path but none of its contents, and a user exclusion applies through a link.
func TestWalkLinkedExclusions(t *testing.T) {
	pg := linkedTree(t)
	res, err := walkPgData(pg, true, "PG_15_202209061", []string{"conf/", "skipme"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"file pg_data/PG_VERSION",
		"file pg_data/base/1/1259",
		"file pg_data/global/pg_control",
		"file pg_data/pg_wal/extra/kept",
		"file pg_data/postgresql.conf",
		"link pg_data/conf",
		"link pg_data/pg_dynshmem",
		"link pg_data/pg_replslot",
		"link pg_data/pg_stat_tmp",
		"link pg_data/pg_wal",
		"link pg_data/postgresql.conf",
		"link pg_data/postmaster.opts",
		"path pg_data",
		"path pg_data/base",
		"path pg_data/base/1",
		"path pg_data/conf",
		"path pg_data/global",
		"path pg_data/pg_dynshmem",
		"path pg_data/pg_notify",
		"path pg_data/pg_replslot",
		"path pg_data/pg_stat_tmp",
		"path pg_data/pg_wal",
		"path pg_data/pg_wal/archive_status",
		"path pg_data/pg_wal/extra",
	}
	if got := walkNames(t, res); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("online walk:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var links []string
	for _, l := range res.Links {
		links = append(links, l.Name)
	}
	sort.Strings(links)
	if strings.Join(links, " ") != "pg_data/conf pg_data/pg_dynshmem pg_data/pg_replslot pg_data/pg_stat_tmp pg_data/pg_wal pg_data/postgresql.conf pg_data/postmaster.opts" {
		t.Fatalf("links: %v", links)
	}

	// Offline, pg_wal is copied whole, through the link too.
	res, err = walkPgData(pg, false, "PG_15_202209061", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(walkNames(t, res), "\n")
	for _, need := range []string{
		"file pg_data/pg_wal/000000010000000000000001",
		"file pg_data/pg_wal/000000010000000000000001.00000028.backup",
		"file pg_data/pg_wal/archive_status/000000010000000000000001.ready",
		"file pg_data/conf/a.conf",
		"file pg_data/skipme/x",
	} {
		if !strings.Contains(got, need+"\n") {
			t.Fatalf("offline walk lacks %s:\n%s", need, got)
		}
	}
	for _, never := range []string{"pg_replslot/", "pg_stat_tmp/", "pg_dynshmem/", "pgsql_tmp", "postmaster.opts\n", "pg_internal.init"} {
		if strings.Contains(got, "file pg_data/"+never) {
			t.Fatalf("offline walk holds %s:\n%s", never, got)
		}
	}
}

// A large directory is statted on several goroutines, in order, as
// os.Lstat sees each entry, with an entry that vanished after the listing
// left with mode 0.
func TestLstatAll(t *testing.T) {
	dir := t.TempDir()
	for i := range 3*statChunk + 7 {
		p := filepath.Join(dir, fmt.Sprintf("%d", 10000+i))
		if err := os.WriteFile(p, make([]byte, i%5), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("10001", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o750); err != nil {
		t.Fatal(err)
	}
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	vanished := names[300]
	if err := os.Remove(filepath.Join(dir, vanished)); err != nil {
		t.Fatal(err)
	}
	// A buffer too small is replaced, one large enough is used.
	for _, buf := range [][]statInfo{nil, make([]statInfo, 5), make([]statInfo, len(names)+3)} {
		for i := range buf {
			buf[i] = statInfo{mode: 0o100600, size: 99}
		}
		infos := lstatAll(int(d.Fd()), names, buf)
		if len(infos) != len(names) || (cap(buf) >= len(names) && &infos[0] != &buf[0]) {
			t.Fatalf("%d infos for %d names (buffer %d)", len(infos), len(names), cap(buf))
		}
		for i := range infos {
			fi, name := &infos[i], names[i]
			if name == vanished {
				if fi.mode != 0 {
					t.Fatalf("vanished entry has info %+v", *fi)
				}
				continue
			}
			want, err := os.Lstat(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if got := statOfInfo(want); *fi != got || fi.perm() != want.Mode().Perm() ||
				fi.isDir() != want.IsDir() || fi.isLink() != (want.Mode()&os.ModeSymlink != 0) ||
				fi.isRegular() != want.Mode().IsRegular() || fi.mtime != want.ModTime().Unix() ||
				(want.Mode().IsRegular() && fi.size != want.Size()) {
				t.Fatalf("entry %s: %+v, os.Lstat %v", name, *fi, want)
			}
		}
	}
}

// TestWalkSources: every file walked is read from where it lies, through
// linked directories and a link to a file, and from a standby's data
// directory for the files a standby backup takes from it.
func TestWalkSources(t *testing.T) {
	pg := linkedTree(t)
	out := filepath.Join(filepath.Dir(pg), "outside")
	res, err := walkPgData(pg, false, "PG_15_202209061", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"pg_data/base/1/1259":           filepath.Join(pg, "base/1/1259"),
		"pg_data/postgresql.conf":       filepath.Join(out, "postgresql.conf"),
		"pg_data/conf/a.conf":           filepath.Join(out, "conf/a.conf"),
		"pg_data/pg_wal/extra/kept":     filepath.Join(out, "wal/extra/kept"),
		"pg_data/global/pg_control":     filepath.Join(pg, "global/pg_control"),
		"pg_data/not-walked/x":          "",
		"no-directory-in-this-manifest": "",
	}
	for name, path := range want {
		if got := res.Src.path(name); got != path {
			t.Errorf("%s: read from %q, want %q", name, got, path)
		}
	}
	n := 0
	res.Entries.each(func(e *fsEntry) {
		if e.Type != entFile {
			return
		}
		n++
		fi, err := os.Stat(res.Src.path(e.Name))
		if err != nil || fi.Size() != e.Size {
			t.Errorf("%s: %v", e.Name, err)
		}
	})
	if n < 8 {
		t.Fatalf("only %d files walked", n)
	}
	// PGDATA named with a trailing slash: the same files, each read from
	// where it lies.
	res2, err := walkPgData(pg+"/", false, "PG_15_202209061", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := walkNames(t, res2), walkNames(t, res); !slices.Equal(got, want) {
		t.Fatalf("walk of %s/: %v, want %v", pg, got, want)
	}
	res2.Entries.each(func(e *fsEntry) {
		if e.Type != entFile {
			return
		}
		fi, err := os.Stat(res2.Src.path(e.Name))
		if err != nil || fi.Size() != e.Size || fi.ModTime().Unix() != e.MTime {
			t.Errorf("%s/: %s: %v", pg, e.Name, err)
		}
	})
	res.Src.standby = "/standby"
	if got := res.Src.path("pg_data/base/1/1259"); got != "/standby/base/1/1259" {
		t.Errorf("standby relation read from %q", got)
	}
	if got := res.Src.path("pg_data/global/pg_control"); got != filepath.Join(pg, "global/pg_control") {
		t.Errorf("standby backup reads pg_control from %q", got)
	}
	if got := res.Src.path("pg_tblspc/16400/PG_15_202209061/1/2"); got != "/standby/pg_tblspc/16400/PG_15_202209061/1/2" {
		t.Errorf("standby tablespace file read from %q", got)
	}
}
