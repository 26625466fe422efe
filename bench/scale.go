package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// scaleCase: a stopped, initdb'd cluster plus N generated files of
// -scale-file-size bytes (zero pages, valid for page checksums) in base/5
// with relfilenode-like names; --no-online full, incr with no change and
// restore at each N, time and peak RSS. Before the incr one file grows by a
// page (an offline incr of nothing is an error), so it stats N files and
// copies one.
func scaleCase(rep *report) error {
	var counts []int
	for _, s := range strings.Split(*scaleArg, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("-scale-files: bad count %q", s)
		}
		counts = append(counts, n)
	}
	sort.Ints(counts)
	data := filepath.Join(*dir, "scale-pg")
	fmt.Println("scale: initdb ...")
	if err := pg(filepath.Join(pgBin, "initdb"), "-k", "-A", "trust", "-U", "postgres", "-D", data); err != nil {
		return err
	}
	db := filepath.Join(data, "base", "5")
	if _, err := os.Stat(db); err != nil {
		return fmt.Errorf("scale: %v (expected the postgres database at base/5)", err)
	}
	page := make([]byte, *scaleSize)
	made := 0
	for _, n := range counts {
		fmt.Printf("scale: %d files ...\n", n)
		for ; made < n; made++ {
			p := filepath.Join(db, strconv.Itoa(1000000+made))
			if err := os.WriteFile(p, page, 0o600); err != nil {
				return err
			}
			if err := os.Chown(p, int(pgUID), int(pgGID)); err != nil {
				return err
			}
		}
		size, files := dirStats(data)
		r := scaleRow{files: files, bytes: size, full: &meas{}, incr: &meas{}, restore: &meas{},
			brFull: &meas{}, brIncr: &meas{}, brRestore: &meas{}}
		if n <= 100000 {
			r.rssLimitKB = int64(64+8**scalePM) << 10
		} else {
			r.rssLimitKB = 400 << 10
		}
		tools := []tool{pgbrTool}
		if n <= *scaleBRMax {
			tools = nextOrder()
		}
		for _, t := range tools {
			f, i, rs, err := scaleRun(t, data, n)
			if err != nil {
				return err
			}
			if t.isPgbr() {
				r.full.add(f)
				r.incr.add(i)
				r.restore.add(rs)
			} else {
				r.brFull.add(f)
				r.brIncr.add(i)
				r.brRestore.add(rs)
			}
		}
		rep.scale = append(rep.scale, r)
	}
	return nil
}

// scaleRun makes a fresh repository for one tool, then times full, incr and
// restore of the generated cluster.
func scaleRun(t tool, data string, n int) (full, incr, restore sample, err error) {
	repoDir := filepath.Join(*dir, "scale-repo-"+t.name)
	os.RemoveAll(repoDir)
	if err = mkdirPG(repoDir); err != nil {
		return
	}
	defer os.RemoveAll(repoDir)
	conf := filepath.Join(*dir, "scale-"+t.name+".conf")
	c := fmt.Sprintf(`[global]
repo1-path=%s
repo1-retention-full=9
log-path=%s/log
lock-path=%s/lock
compress-type=lz4
process-max=%d
log-level-console=warn
log-level-file=off
expire-auto=n

[scale]
pg1-path=%s
`, repoDir, *dir, *dir, *scalePM, data)
	if err = os.WriteFile(conf, []byte(c), 0o644); err != nil {
		return
	}
	base := []string{"--config=" + conf, "--stanza=scale"}
	if _, err = runTool(t, "scale stanza-create", append(base, "--no-online", "stanza-create")...); err != nil {
		return
	}
	name := fmt.Sprintf("scale %d ", n)
	dropCaches()
	if full, err = runTool(t, name+"full", append(base, "--no-online", "backup", "--type=full")...); err != nil {
		return
	}
	// An offline incr with nothing changed is an error for both tools
	// ("no files have changed"): one file grows by a page.
	if err = growOne(data); err != nil {
		return
	}
	dropCaches()
	if incr, err = runTool(t, name+"incr", append(base, "--no-online", "backup", "--type=incr")...); err != nil {
		return
	}
	target := filepath.Join(*dir, "scale-restore")
	os.RemoveAll(target)
	if err = mkdirPG(target); err != nil {
		return
	}
	defer os.RemoveAll(target)
	dropCaches()
	if restore, err = runTool(t, name+"restore", append(base, "--pg1-path="+target, "restore")...); err != nil {
		return
	}
	wantSize, wantFiles := dirStats(data)
	size, files := dirStats(target)
	// Both tools skip the contents of pg_subtrans and the like: a few
	// files less, but every generated file.
	_, gen := dirStats(filepath.Join(target, "base", "5"))
	if files < wantFiles-10 || size < wantSize*95/100 || gen < n {
		err = fmt.Errorf("%s: scale restore of %d files: %d files / %d bytes, want %d / %d; missing: %v", t.name, n, files, size, wantFiles, wantSize, missing(data, target))
	}
	return
}

// growOne appends a zero page to the first generated file.
func growOne(data string) error {
	f, err := os.OpenFile(filepath.Join(data, "base", "5", "1000000"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.Write(make([]byte, 8192)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// missing lists (up to 10) regular files of src that dst lacks.
func missing(src, dst string) []string {
	var out []string
	filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() || len(out) >= 10 {
			return nil
		}
		rel, _ := filepath.Rel(src, p)
		if _, err := os.Stat(filepath.Join(dst, rel)); err != nil {
			out = append(out, rel)
		}
		return nil
	})
	return out
}
