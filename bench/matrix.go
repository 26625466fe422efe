package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// repoOf is the repository of each tool in the main stanza.
func repoOf(t tool) string {
	if t.isPgbr() {
		return "1"
	}
	return "2"
}

// pair holds the measurements of both tools for one row.
type pair map[string]*meas

func newPair() pair { return pair{"pgbr": {}, "pgBackRest": {}} }

// group is the measurements of one (compress type, process-max, bundle)
// setting.
type group struct {
	ct                          string
	pm                          int
	bundle                      bool
	fullOnly                    bool // bundle: full and restore only
	full, incrNC, incr, restore pair
	deltaBytes                  int64 // bytes pgbr's incr copied
}

// backupCmd runs one backup of a tool into its repository of the main stanza.
func backupCmd(t tool, caseName, typ string) (sample, error) {
	dropCaches()
	return runTool(t, caseName, "--config="+mainConf, "--stanza=bench", "--repo="+repoOf(t), "backup", "--type="+typ)
}

// restoreCmd restores the latest backup of a tool into a fresh directory and
// checks that the whole cluster arrived.
//
// Restored directories stay until the next repetition starts (pruneRestores):
// on this ext4 (no journal) creating files skips the inodes freed in the
// last minute or so, and removing the previous restore right before the
// next one made that skipping a sixth of a restore's CPU, for either tool.
func restoreCmd(t tool, caseName string, conf, stanza string, extra ...string) (sample, error) {
	restoreSeq++
	target := filepath.Join(*dir, fmt.Sprintf("restore-%d", restoreSeq))
	if err := mkdirPG(target); err != nil {
		return sample{}, err
	}
	wantSize, wantFiles := dirStats(dataDir)
	dropCaches()
	args := append([]string{"--config=" + conf, "--stanza=" + stanza, "--pg1-path=" + target}, extra...)
	s, err := runTool(t, caseName, append(args, "restore")...)
	if err != nil {
		return s, err
	}
	size, files := dirStats(target)
	if files < wantFiles*95/100 || size < wantSize*9/10 {
		return s, fmt.Errorf("%s (%s) restored %d files / %d bytes of %d files / %d bytes", t.name, caseName, files, size, wantFiles, wantSize)
	}
	return s, nil
}

var restoreSeq int

// pruneRestores removes the restored directories, a backup or two before
// the next restore.
func pruneRestores() {
	old, _ := filepath.Glob(filepath.Join(*dir, "restore-*"))
	for _, d := range old {
		os.RemoveAll(d)
	}
}

var deltaRE = regexp.MustCompile(`"backup-info-size-delta":(\d+)`)

// lastDelta reads the bytes copied by the newest backup of a repository
// (backup.info's backup-info-size-delta).
func lastDelta(repoDir, stanza string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(repoDir, "backup", stanza, "backup.info"))
	if err != nil {
		return 0, err
	}
	var last string
	in := false
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "[") {
			in = l == "[backup:current]"
			continue
		}
		if in && strings.Contains(l, "=") {
			last = l
		}
	}
	m := deltaRE.FindStringSubmatch(last)
	if m == nil {
		return 0, fmt.Errorf("%s: no backup-info-size-delta in the last backup", repoDir)
	}
	return strconv.ParseInt(m[1], 10, 64)
}

// expireAll keeps only the newest full backup in each repository (each tool
// expires its own), outside the timings, so the repositories stay small.
func expireAll() error {
	for _, t := range []tool{pgbrTool, brTool} {
		r := repoOf(t)
		if _, err := runTool(t, "expire", "--config="+mainConf, "--stanza=bench", "--repo="+r, "--repo"+r+"-retention-full=1", "expire"); err != nil {
			return err
		}
	}
	return nil
}

func (g *group) label(step string) string {
	s := fmt.Sprintf("%s %s pm%d", step, g.ct, g.pm)
	if g.bundle {
		s = fmt.Sprintf("%s bundle %s pm%d", step, g.ct, g.pm)
	}
	return s
}

// runGroup measures one setting: full, incr with no change, incr after
// pgbench, restore of that incr (bundle: full and restore only).
func runGroup(g *group, n int) error {
	g.full, g.incrNC, g.incr, g.restore = newPair(), newPair(), newPair(), newPair()
	for rep := 0; rep < n; rep++ {
		fmt.Printf("  %s rep %d/%d\n", g.label("group"), rep+1, n)
		pruneRestores()
		if err := writeMainConf(g.ct, g.pm, g.bundle); err != nil {
			return err
		}
		for _, t := range nextOrder() {
			s, err := backupCmd(t, g.label("full"), "full")
			if err != nil {
				return err
			}
			g.full[t.name].add(s)
		}
		if !g.fullOnly {
			for _, t := range nextOrder() {
				s, err := backupCmd(t, g.label("incr-nochange"), "incr")
				if err != nil {
					return err
				}
				g.incrNC[t.name].add(s)
			}
			if err := pgbench(*pgbenchT); err != nil {
				return err
			}
			for _, t := range nextOrder() {
				s, err := backupCmd(t, g.label("incr"), "incr")
				if err != nil {
					return err
				}
				g.incr[t.name].add(s)
			}
			d, err := lastDelta(filepath.Join(*dir, "repo1"), "bench")
			if err != nil {
				return err
			}
			g.deltaBytes = d
		}
		for _, t := range nextOrder() {
			s, err := restoreCmd(t, g.label("restore"), mainConf, "bench", "--repo="+repoOf(t))
			if err != nil {
				return err
			}
			g.restore[t.name].add(s)
		}
		if err := expireAll(); err != nil {
			return err
		}
	}
	return nil
}

func repsFor(ct string) int {
	if ct == compressTypes[0] {
		return *reps
	}
	return *repsOther
}

// matrix runs every compress type x process-max and adds their rows.
func matrix(rep *report) error {
	byCT := map[string]map[int]*group{}
	for _, ct := range compressTypes {
		byCT[ct] = map[int]*group{}
		for _, pm := range pms {
			g := &group{ct: ct, pm: pm}
			fmt.Printf("matrix: compress-type=%s process-max=%d\n", ct, pm)
			start := time.Now()
			if err := runGroup(g, repsFor(ct)); err != nil {
				return err
			}
			byCT[ct][pm] = g
			fixed := g.incrNC["pgbr"].median()
			size, files := dirStats(dataDir)
			rep.add("matrix", &row{name: g.label("full"), m: g.full, minRatio: 4,
				bound: fullBound(fixed, size, ct, pm), boundGoal: 1.25,
				boundHow: "incr-nochange + max(bytes / (backup rate x workers), cold read)"})
			rep.add("matrix", &row{name: g.label("incr"), m: g.incr, minRatio: 4,
				bound: fullBound(fixed, g.deltaBytes, ct, pm), boundGoal: 1.25,
				boundHow: fmt.Sprintf("incr-nochange + %.0f MiB changed at the full-backup bound", float64(g.deltaBytes)/(1<<20))})
			rep.add("matrix", &row{name: g.label("incr-nochange"), m: g.incrNC, minRatio: 4,
				bound: mach.pgFixed + time.Duration(files)*perFileGoal, boundGoal: 1,
				boundHow: fmt.Sprintf("PostgreSQL start/stop + %d files x 10us", files)})
			rep.add("matrix", &row{name: g.label("restore"), m: g.restore, minRatio: 3,
				bound: restoreBound(size, ct, pm), boundGoal: 1.25,
				boundHow: "max(bytes / disk write, bytes / (restore rate x workers))"})
			fmt.Printf("  done in %s\n", secs(time.Since(start)))
		}
	}
	// process-max scaling: CPU-bound full backups should be >= 1.7x faster
	// with 2 workers than with 1.
	for _, ct := range compressTypes {
		g1, g2 := byCT[ct][1], byCT[ct][2]
		if g1 == nil || g2 == nil {
			continue
		}
		rep.scaling = append(rep.scaling, scalingRow{ct: ct,
			pgbr1: g1.full["pgbr"].median(), pgbr2: g2.full["pgbr"].median(),
			br1: g1.full["pgBackRest"].median(), br2: g2.full["pgBackRest"].median()})
	}
	return nil
}

// bundle runs full + restore with repo-bundle=y for both tools at lz4.
func bundle(rep *report) error {
	for _, pm := range pms {
		g := &group{ct: "lz4", pm: pm, bundle: true, fullOnly: true}
		fmt.Printf("bundle: compress-type=lz4 process-max=%d\n", pm)
		if err := runGroup(g, *repsOther); err != nil {
			return err
		}
		size, _ := dirStats(dataDir)
		// The fixed cost is not measured with bundling: PostgreSQL's share.
		rep.add("bundle", &row{name: g.label("full"), m: g.full, minRatio: 2,
			bound: fullBound(mach.pgFixed, size, "lz4", pm), boundGoal: 1.25,
			boundHow: "PostgreSQL start/stop + max(bytes / (backup rate x workers), cold read)"})
		rep.add("bundle", &row{name: g.label("restore"), m: g.restore, minRatio: 3,
			bound: restoreBound(size, "lz4", pm), boundGoal: 1.25,
			boundHow: "max(bytes / disk write, bytes / (restore rate x workers))"})
	}
	return writeMainConf(compressTypes[0], 1, false)
}
