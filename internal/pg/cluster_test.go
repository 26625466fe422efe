//go:build integration

package pg

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const pgBin = "/usr/lib/postgresql/15/bin"

// initCluster creates a throwaway PostgreSQL 15 cluster with data checksums
// (initdb -k, run as the postgres user) and returns its data directory. The
// test fails, never skips, when PostgreSQL is missing.
func initCluster(t testing.TB) string {
	t.Helper()
	initdb := filepath.Join(pgBin, "initdb")
	if _, err := os.Stat(initdb); err != nil {
		t.Fatalf("PostgreSQL 15 is required for this test but %s is missing (apt-get install postgresql-15): %v", initdb, err)
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("the postgres OS user is required to run initdb: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// A directory directly in the system temp dir, so that the postgres
	// user can reach it (t.TempDir's parents are private to root).
	base, err := os.MkdirTemp("", "pgbr-pg-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(base, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(data, uid, gid); err != nil {
		t.Fatal(err)
	}
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.Command("runuser", "-u", "postgres", "--", initdb, "-k", "-A", "trust", "-U", "postgres", "-D", data)
	} else {
		cmd = exec.Command(initdb, "-k", "-A", "trust", "-D", data)
	}
	cmd.Dir = base
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("initdb failed: %v\n%s", err, out)
	}
	return data
}

// controldata runs pg_controldata and returns its "name: value" lines.
func controldata(t *testing.T, data string) map[string]string {
	t.Helper()
	out, err := exec.Command(filepath.Join(pgBin, "pg_controldata"), data).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_controldata failed: %v\n%s", err, out)
	}
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}

func TestRealCluster(t *testing.T) {
	data := initCluster(t)

	t.Run("control", func(t *testing.T) {
		c, err := ReadControl(data)
		if err != nil {
			t.Fatal(err)
		}
		cd := controldata(t, data)
		want := map[string]string{
			"Database system identifier":     strconv.FormatUint(c.SystemID, 10),
			"Catalog version number":         strconv.FormatUint(uint64(c.CatalogVersion), 10),
			"pg_control version number":      strconv.FormatUint(uint64(c.ControlVersion), 10),
			"Data page checksum version":     strconv.FormatUint(uint64(c.DataChecksumVersion), 10),
			"Database block size":            strconv.FormatUint(uint64(c.PageSize), 10),
			"Bytes per WAL segment":          strconv.FormatUint(uint64(c.WalSegmentSize), 10),
			"Latest checkpoint's TimeLineID": strconv.FormatUint(uint64(c.Timeline), 10),
			"Latest checkpoint location":     LSN(c.Checkpoint).String(),
		}
		for k, v := range want {
			if cd[k] != v {
				t.Errorf("%s: pg_controldata says %q, ParseControl gives %q", k, cd[k], v)
			}
		}
		if c.Version.Str != "15" || c.DataChecksumVersion != 1 {
			t.Errorf("version %q checksum version %d, want 15 and 1", c.Version.Str, c.DataChecksumVersion)
		}
	})

	t.Run("pages", func(t *testing.T) {
		files, err := filepath.Glob(filepath.Join(data, "base", "1", "*"))
		if err != nil {
			t.Fatal(err)
		}
		pages, checked := 0, 0
		var victim string
		for _, f := range files {
			name := filepath.Base(f)
			if _, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSuffix(name, "_fsm"), "_vm")); err != nil {
				continue // PG_VERSION, pg_filenode.map, ...
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if len(b)%PageSize != 0 {
				t.Fatalf("%s: size %d not page aligned", name, len(b))
			}
			pc := NewPageChecker(0)
			pc.Write(b)
			valid, aligned, bad := pc.Result()
			if !valid || !aligned || bad != nil {
				t.Errorf("%s: valid=%v aligned=%v errors=%v", name, valid, aligned, bad)
			}
			for i := 0; i < len(b); i += PageSize {
				pages++
				page := b[i : i+PageSize]
				if pageIsZero(page) {
					continue
				}
				checked++
				stored := uint16(page[8]) | uint16(page[9])<<8
				if got := PageChecksum(page, uint32(i/PageSize)); got != stored {
					t.Errorf("%s page %d: checksum %d, PostgreSQL wrote %d", name, i/PageSize, got, stored)
				}
			}
			if victim == "" && len(b) >= 4*PageSize {
				victim = f
			}
		}
		if checked < 100 {
			t.Fatalf("only %d non-empty pages checked (of %d); cluster looks wrong", checked, pages)
		}
		t.Logf("%d pages in %d files, %d checksummed pages agree with PostgreSQL", pages, len(files), checked)

		// A flipped byte (in the data area, and in the header) fails exactly
		// that page; another block number fails every page.
		b, _ := os.ReadFile(victim)
		for _, off := range []int{2*PageSize + 5000, 3*PageSize + 20} {
			bad := bytes.Clone(b)
			bad[off] ^= 0x01
			pc := NewPageChecker(0)
			for i := 0; i < len(bad); i += 1000 { // odd write sizes
				pc.Write(bad[i:min(i+1000, len(bad))])
			}
			valid, aligned, pagesBad := pc.Result()
			if valid || !aligned || len(pagesBad) != 1 || pagesBad[0] != uint32(off/PageSize) {
				t.Errorf("flip at %d: valid=%v aligned=%v errors=%v, want page %d", off, valid, aligned, pagesBad, off/PageSize)
			}
		}
		pc := NewPageChecker(1)
		pc.Write(b)
		if valid, _, bad := pc.Result(); valid || len(bad) == 0 || bad[0] != SegmentPages {
			t.Errorf("segment 1: valid=%v errors=%v, want errors from block %d", valid, bad, SegmentPages)
		}
	})
}
