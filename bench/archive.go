package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"
)

var walName = regexp.MustCompile(`^[0-9A-F]{24}$`)

// realSegments copies up to n complete WAL segments of the cluster (written
// by pgbench, before the current one) into dst and returns their paths.
func realSegments(dst string, n int) ([]string, error) {
	for try := 0; try < 5; try++ {
		if err := pg("/usr/lib/postgresql/15/bin/pgbench", "-n", "-t", "2000", "-c", "2", "-h", sockDir, "-p", fmt.Sprint(pgPort), "-U", "postgres", "postgres"); err != nil {
			return nil, err
		}
		cur, err := psql("select pg_walfile_name(pg_current_wal_lsn())")
		if err != nil {
			return nil, err
		}
		ents, err := os.ReadDir(filepath.Join(dataDir, "pg_wal"))
		if err != nil {
			return nil, err
		}
		var names []string
		for _, e := range ents {
			if fi, err := e.Info(); err == nil && walName.MatchString(e.Name()) && e.Name() < cur && fi.Size() == 16<<20 {
				names = append(names, e.Name())
			}
		}
		sort.Strings(names)
		if len(names) > n {
			names = names[len(names)-n:]
		}
		if len(names) == 0 {
			continue
		}
		var out []string
		for i, nm := range names {
			p := filepath.Join(dst, fmt.Sprintf("src%d", i))
			if err := copyFile(filepath.Join(dataDir, "pg_wal", nm), p); err != nil {
				return nil, err
			}
			out = append(out, p)
		}
		return out, nil
	}
	return nil, fmt.Errorf("no complete WAL segment found in %s/pg_wal", dataDir)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// segName is the i-th segment name of the bench (timeline 1, far past the
// cluster's own WAL).
func segName(i int) string { return fmt.Sprintf("%08X%08X%08X", 1, 0x100+i/256, i%256) }

func archConf(t tool) string { return filepath.Join(*dir, "arch-"+t.name+".conf") }

// writeArchConf: stanza arch, own repository, spool and lock path per tool,
// lz4, process-max 2 (used by the async process only).
func writeArchConf(t tool) error {
	c := fmt.Sprintf(`[global]
repo1-path=%[1]s/arch-repo-%[2]s
log-path=%[1]s/log
lock-path=%[1]s/arch-lock-%[2]s
spool-path=%[1]s/arch-spool-%[2]s
compress-type=lz4
process-max=2
log-level-console=warn
log-level-file=off

[arch]
pg1-path=%[3]s
pg1-port=%[4]d
pg1-socket-path=%[5]s
`, *dir, t.name, dataDir, pgPort, sockDir)
	for _, d := range []string{"arch-repo-", "arch-lock-", "arch-spool-"} {
		if err := mkdirPG(filepath.Join(*dir, d+t.name)); err != nil {
			return err
		}
	}
	return os.WriteFile(archConf(t), []byte(c), 0o644)
}

// archiveCase measures archive-push of 16 MiB segments: sync (one process per
// segment, as PostgreSQL's archive_command runs it) and async with
// process-max 2 on a burst of ready segments, in a fake PGDATA (pg_control of
// the cluster, pg_wal with copies of real segments) so both tools push new
// segments into their own repository (archive.info present).
func archiveCase(rep *report) error {
	fmt.Println("archive: preparing segments ...")
	fake := filepath.Join(*dir, "fake")
	wal := filepath.Join(fake, "pg_wal")
	status := filepath.Join(wal, "archive_status")
	for _, d := range []string{fake, filepath.Join(fake, "global"), wal, status, filepath.Join(*dir, "wal-src")} {
		if err := mkdirPG(d); err != nil {
			return err
		}
	}
	if err := copyFile(filepath.Join(dataDir, "global", "pg_control"), filepath.Join(fake, "global", "pg_control")); err != nil {
		return err
	}
	os.WriteFile(filepath.Join(fake, "PG_VERSION"), []byte("15\n"), 0o644)
	srcs, err := realSegments(filepath.Join(*dir, "wal-src"), 8)
	if err != nil {
		return err
	}
	total := *archReps + *archBurst
	for i := 0; i < total; i++ {
		if err := os.Link(srcs[i%len(srcs)], filepath.Join(wal, segName(i))); err != nil {
			return err
		}
	}
	for _, t := range []tool{pgbrTool, brTool} {
		if err := writeArchConf(t); err != nil {
			return err
		}
		if _, err := runTool(t, "archive stanza-create", "--config="+archConf(t), "--stanza=arch", "stanza-create"); err != nil {
			return err
		}
	}
	syncPair := newPair()
	fmt.Printf("archive: sync push x %d per tool\n", *archReps)
	for i := 0; i < *archReps; i++ {
		for _, t := range nextOrder() {
			s, err := runTool(t, "archive-push sync lz4", "--config="+archConf(t), "--stanza=arch", "--pg1-path="+fake,
				"archive-push", filepath.Join(wal, segName(i)))
			if err != nil {
				return err
			}
			syncPair[t.name].add(s)
		}
	}
	rep.add("archive", &row{name: "archive-push sync 16MiB lz4 (per segment)", m: syncPair, minRatio: 2, unit: "ms"})

	fmt.Printf("archive: async burst of %d segments, process-max 2\n", *archBurst)
	asyncPair := newPair()
	for _, t := range nextOrder() {
		s, err := asyncBurst(t, fake)
		if err != nil {
			return err
		}
		asyncPair[t.name].add(s)
	}
	rep.add("archive", &row{name: fmt.Sprintf("archive-push async burst of %d, pm2 (total)", *archBurst), m: asyncPair, minRatio: 2})
	return nil
}

// asyncBurst marks the burst segments ready and calls archive-push
// --archive-async for each in order as PostgreSQL does (the next call after
// the previous one returned, .ready renamed to .done), timing the whole
// burst. The result's RSS is the first foreground process's.
func asyncBurst(t tool, fake string) (sample, error) {
	wal := filepath.Join(fake, "pg_wal")
	status := filepath.Join(wal, "archive_status")
	ents, _ := os.ReadDir(status)
	for _, e := range ents {
		os.Remove(filepath.Join(status, e.Name()))
	}
	var names []string
	for i := *archReps; i < *archReps+*archBurst; i++ {
		names = append(names, segName(i))
		f, err := os.Create(filepath.Join(status, segName(i)+".ready"))
		if err != nil {
			return sample{}, err
		}
		f.Close()
		os.Chown(f.Name(), int(pgUID), int(pgGID))
	}
	var tot sample
	start := time.Now()
	for i, n := range names {
		args := []string{"--config=" + archConf(t), "--stanza=arch", "--pg1-path=" + fake,
			"--archive-async", "archive-push", filepath.Join(wal, n)}
		// The first call (which starts the background process) runs under
		// the wrapper for its RSS; the others run directly, so the burst's
		// time has no wrapper start in it (see runTool).
		if i == 0 {
			s, err := runTool(t, "archive-push async lz4", args...)
			if err != nil {
				return sample{}, err
			}
			tot.rssKB = s.rssKB
		} else if out, err := asPostgres(t.bin, args...).CombinedOutput(); err != nil {
			return sample{}, fmt.Errorf("%s (archive-push async lz4): %v\n%s", t.name, err, out)
		}
		if err := os.Rename(filepath.Join(status, n+".ready"), filepath.Join(status, n+".done")); err != nil {
			return sample{}, err
		}
	}
	tot.dur = time.Since(start)
	// Let the async process finish and exit before the next tool starts.
	if err := waitAsyncDone(t); err != nil {
		return tot, err
	}
	return tot, nil
}

// waitAsyncDone waits until the tool's archive lock is free (the async
// process holds it while it runs), at most 60 s.
func waitAsyncDone(t tool) error {
	lockDir := filepath.Join(*dir, "arch-lock-"+t.name)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		busy := false
		ents, _ := os.ReadDir(lockDir)
		for _, e := range ents {
			if strings.Contains(e.Name(), "archive") && lockHeld(filepath.Join(lockDir, e.Name())) {
				busy = true
			}
		}
		if !busy {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s: async archive-push still running 60s after the burst", t.name)
}

// lockHeld reports whether another process holds an flock on path (both
// tools lock their lock files with flock).
func lockHeld(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return err == syscall.EWOULDBLOCK
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}
