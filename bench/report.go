package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// row is one line of the main table.
type row struct {
	section   string
	name      string
	m         pair // by tool name; pgBackRest may be empty
	minRatio  float64
	bound     time.Duration
	boundGoal float64 // pgbr/bound must be <= this
	boundHow  string
	unit      string // "" (seconds) or "ms"
	rssLimit  int64  // KiB, 0 for none
}

type scalingRow struct {
	ct                     string
	pgbr1, pgbr2, br1, br2 time.Duration
}

type scaleRow struct {
	files                     int
	bytes                     int64
	full, incr, restore       *meas
	brFull, brIncr, brRestore *meas
	rssLimitKB                int64
}

type report struct {
	rows     []*row
	scaling  []scalingRow
	scale    []scaleRow
	settings string
	machine  string
	warnings []string
	wall     time.Duration
}

func (r *report) add(section string, x *row) {
	x.section = section
	r.rows = append(r.rows, x)
}

func ratio(a, b time.Duration) float64 {
	if a == 0 || b == 0 {
		return 0
	}
	return a.Seconds() / b.Seconds()
}

func fmtDur(d time.Duration, unit string) string {
	if d == 0 {
		return "-"
	}
	if unit == "ms" {
		return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond))
	}
	return secs(d)
}

func fx(f float64) string {
	if f == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", f)
}

// table is a simple column-aligned table that renders as text and Markdown.
type table struct {
	head []string
	rows [][]string
}

func (t *table) text() string {
	w := make([]int, len(t.head))
	for i, h := range t.head {
		w[i] = len([]rune(h))
	}
	for _, r := range t.rows {
		for i, c := range r {
			w[i] = max(w[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		for i, c := range cells {
			pad := w[i] - len([]rune(c))
			if i == 0 {
				b.WriteString(c + strings.Repeat(" ", pad))
			} else {
				b.WriteString("  " + strings.Repeat(" ", pad) + c)
			}
		}
		b.WriteString("\n")
	}
	line(t.head)
	for _, r := range t.rows {
		line(r)
	}
	return b.String()
}

func (t *table) md() string {
	var b strings.Builder
	b.WriteString("| " + strings.Join(t.head, " | ") + " |\n|")
	for i := range t.head {
		if i == 0 {
			b.WriteString("---|")
		} else {
			b.WriteString("--:|")
		}
	}
	b.WriteString("\n")
	for _, r := range t.rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
	return b.String()
}

func check(ok bool) string {
	if ok {
		return "ok"
	}
	return "MISS"
}

// render returns the report as text and as Markdown.
func (r *report) render() (string, string) {
	var txt, md strings.Builder
	hdr := fmt.Sprintf("pgbr vs pgBackRest 2.45: %s; cluster %.0f MiB in %d files\n", r.settings, float64(clusterSize)/(1<<20), clusterFiles)
	txt.WriteString(hdr + r.machine + "\n")
	md.WriteString("# pgbr benchmark\n\n" + hdr + "\n```\n" + r.machine + "```\n\n")

	main := &table{head: []string{"case", "pgBackRest", "pgbr", "ratio", "goal", "bound", "pgbr/bound", "RSS MiB pgbr", "RSS MiB pgBackRest", "met"}}
	var hows []string
	seenHow := map[string]bool{}
	for _, x := range r.rows {
		br, pb := x.m["pgBackRest"], x.m["pgbr"]
		rt := ratio(br.median(), pb.median())
		goal, met := "", true
		if x.minRatio > 0 {
			goal = fmt.Sprintf(">=%gx", x.minRatio)
			met = met && rt >= x.minRatio
		}
		bound, pbb := "-", "-"
		if x.bound > 0 {
			bound = fmtDur(x.bound, x.unit)
			q := ratio(pb.median(), x.bound)
			pbb = fx(q)
			goal += fmt.Sprintf(", <=%gx bound", x.boundGoal)
			met = met && q <= x.boundGoal
			if !seenHow[x.boundHow] && x.boundHow != "" {
				seenHow[x.boundHow] = true
				hows = append(hows, x.boundHow)
			}
		}
		main.rows = append(main.rows, []string{x.name, fmtDur(br.median(), x.unit), fmtDur(pb.median(), x.unit), fx(rt), strings.TrimPrefix(goal, ", "),
			bound, pbb, mib(pb.maxRSS()), mib(br.maxRSS()), check(met)})
	}
	if len(main.rows) > 0 {
		txt.WriteString(main.text())
		txt.WriteString("ratio = pgBackRest / pgbr (medians; > 1: pgbr is faster). RSS: peak of the process and its children (max, not sum; floor: see RSS floor above).\n")
		md.WriteString("## Cases\n\n" + main.md() + "\nratio = pgBackRest time / pgbr time (medians; > 1: pgbr is faster). RSS: peak RSS of the process and its children (the largest one, not a sum; for async archive-push the foreground process only).\n\nBounds:\n")
		for _, h := range hows {
			md.WriteString("- " + h + "\n")
		}
		md.WriteString("\n")
	}

	if len(r.scaling) > 0 {
		t := &table{head: []string{"full backup", "pgbr pm1", "pgbr pm2", "pgbr speed-up", "goal", "pgBackRest speed-up", "met"}}
		for _, s := range r.scaling {
			q := ratio(s.pgbr1, s.pgbr2)
			t.rows = append(t.rows, []string{s.ct, secs(s.pgbr1), secs(s.pgbr2), fx(q), ">=1.7x (CPU-bound types)", fx(ratio(s.br1, s.br2)), check(q >= 1.7)})
		}
		txt.WriteString("\nprocess-max 1 -> 2\n" + t.text())
		md.WriteString("## process-max 1 -> 2\n\n" + t.md() + "\n")
	}

	if len(r.scale) > 0 {
		t := &table{head: []string{"files", "MiB", "full", "us/file", "incr (1 changed)", "us/file", "restore", "us/file", "peak RSS MiB", "RSS goal", "pgBackRest full/incr/restore", "met"}}
		for _, s := range r.scale {
			per := func(m *meas) string {
				if !m.ok() {
					return "-"
				}
				return fmt.Sprintf("%.1f", float64(m.median().Microseconds())/float64(s.files))
			}
			rss := max(s.full.maxRSS(), s.incr.maxRSS(), s.restore.maxRSS())
			brs := "-"
			if s.brFull.ok() {
				brs = fmt.Sprintf("%s/%s/%s", secs(s.brFull.median()), secs(s.brIncr.median()), secs(s.brRestore.median()))
			}
			met := rss <= s.rssLimitKB && s.incr.median() <= time.Duration(s.files)*perFileGoal
			t.rows = append(t.rows, []string{fmt.Sprint(s.files), fmt.Sprintf("%.0f", float64(s.bytes)/(1<<20)),
				secs(s.full.median()), per(s.full), secs(s.incr.median()), per(s.incr), secs(s.restore.median()), per(s.restore),
				mib(rss), "<=" + mib(s.rssLimitKB), brs, check(met)})
		}
		note := fmt.Sprintf("offline (--no-online) backups of a generated PGDATA (files of %d bytes in base/5), lz4, process-max %d, pgbr; linear time means a flat us/file; incr: one file grew by a page (an offline incr of nothing fails in both tools); goal < 10 us/file.\n", *scaleSize, *scalePM)
		txt.WriteString("\nscale\n" + t.text() + note)
		md.WriteString("## Scale\n\n" + t.md() + "\n" + note + "\n")
	}
	for _, w := range r.warnings {
		txt.WriteString("warning: " + w + "\n")
		md.WriteString("warning: " + w + "\n\n")
	}
	wall := fmt.Sprintf("wall time of the bench: %s\n", r.wall.Round(time.Second))
	txt.WriteString(wall)
	md.WriteString(wall)
	return txt.String(), md.String()
}

// printProfiles prints the top 10 functions of every profile written.
func printProfiles() {
	var names []string
	for n := range profiled {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, kind := range []struct{ ext, flag string }{{"cpu", ""}, {"mem", "-sample_index=alloc_space"}} {
			p := filepath.Join(*profileDir, n+"."+kind.ext+".pprof")
			if _, err := os.Stat(p); err != nil {
				continue
			}
			args := []string{"tool", "pprof", "-top", "-nodecount=10"}
			if kind.flag != "" {
				args = append(args, kind.flag)
			}
			out, err := exec.Command("go", append(args, pgbrTool.bin, p)...).CombinedOutput()
			fmt.Printf("\n== %s (%s) ==\n%s", n, kind.ext, out)
			if err != nil {
				fmt.Printf("(go tool pprof: %v)\n", err)
			}
		}
	}
}
