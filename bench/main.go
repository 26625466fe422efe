// Command bench measures pgbr against pgBackRest 2.45 on the same data, side
// by side in one run, for every performance case of issue #12, next to the
// bounds of this machine (measured in the same run), and prints one table.
//
//	go run ./bench            # the whole set (see bench/README.md for the time it takes)
//	go run ./bench -quick     # a small smoke run of every case
//
// Run as root on a machine with postgresql-15, pgbackrest 2.45 and MinIO
// (scripts/test.sh installs all three). Nothing here runs in `go test`.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

const pgBin = "/usr/lib/postgresql/15/bin"

var (
	quick       = flag.Bool("quick", false, "small smoke run of every case (tiny sizes; flags given explicitly still win)")
	scale       = flag.Int("scale", 64, "pgbench scale of the cluster (64 ≈ 1 GiB)")
	tables      = flag.Int("tables", 2000, "extra small tables (many small files, as real clusters have)")
	compressArg = flag.String("compress", "lz4,none,zst,gz,bz2", "compress types of the matrix (the first is the headline)")
	procsArg    = flag.String("process-max", "1,2,4", "process-max values of the matrix")
	reps        = flag.Int("reps", 3, "repetitions of the headline compress type's rows (medians are reported)")
	repsOther   = flag.Int("reps-other", 1, "repetitions of every other row")
	casesArg    = flag.String("cases", "matrix,bundle,s3,archive,scale", "cases to run")
	pgbenchT    = flag.Int("pgbench-t", 4000, "pgbench transactions per client (2 clients) before each incr")
	sampleMiB   = flag.Int("sample", 256, "MiB of the cluster's files used to measure the CPU bounds")
	diskMiB     = flag.Int("disk", 1024, "MiB written with fsync to measure the disk")
	archReps    = flag.Int("archive-reps", 10, "sync archive-push runs per tool (median)")
	archBurst   = flag.Int("archive-burst", 200, "segments of the async archive-push burst")
	scaleArg    = flag.String("scale-files", "10000,100000,1000000", "file counts of the scale case")
	scaleSize   = flag.Int("scale-file-size", 8192, "bytes per generated file in the scale case")
	scalePM     = flag.Int("scale-process-max", 1, "process-max of the scale case")
	scaleBRMax  = flag.Int("scale-pgbackrest-max", 10000, "also run pgBackRest in the scale case up to this file count")
	keep        = flag.Bool("keep", false, "keep the bench directory")
	dir         = flag.String("dir", "/tmp/pgbr-bench", "work directory (removed at the start)")
	pgbrBin     = flag.String("pgbr", "", "pgbr binary (default: build ./cmd/pgbr)")
	profileDir  = flag.String("profile", "", "write pgbr CPU and allocation profiles of every case into this directory and print their tops")
	outFile     = flag.String("out", "bench-results.md", "also write the tables as Markdown to this file")
)

var (
	compressTypes []string
	pms           []int
	cases         = map[string]bool{}
	dataDir       string
	sockDir       string
	pgPort        int
	clusterSize   int64
	clusterFiles  int
)

func main() {
	os.Exit(run())
}

func run() int {
	if ids := os.Getenv(wrapEnv); ids != "" {
		return wrapMode(ids)
	}
	flag.Parse()
	if err := setup(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	start := time.Now()
	rep := &report{}
	err := bench(rep)
	rep.wall = time.Since(start)
	// A case that fails late in a long run still leaves the rows measured
	// before it: they are printed (and written) first, marked partial.
	if err != nil {
		rep.settings += "; PARTIAL: the run stopped at an error"
	}
	code := 0
	text, md := rep.render()
	fmt.Print("\n" + text)
	if *outFile != "" {
		if werr := os.WriteFile(*outFile, []byte(md), 0o644); werr != nil {
			fmt.Fprintln(os.Stderr, "bench:", werr)
			code = 1
		} else {
			fmt.Println("Markdown written to", *outFile)
		}
	}
	if *profileDir != "" && err == nil {
		printProfiles()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		code = 1
	}
	return code
}

// setup applies -quick, checks the flags and the machine.
func setup() error {
	if *quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, v := range map[string]string{
			"scale": "4", "tables": "200", "reps": "1", "reps-other": "1", "pgbench-t": "500", "sample": "16",
			"disk": "64", "archive-reps": "3", "archive-burst": "20", "scale-files": "1000,2000", "scale-pgbackrest-max": "2000",
			"out": "bench-quick.md",
		} {
			if !set[name] {
				flag.Set(name, v)
			}
		}
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("run as root (the bench drops the page cache and runs the tools as postgres)")
	}
	if err := lookupPostgres(); err != nil {
		return err
	}
	for _, c := range strings.Split(*compressArg, ",") {
		switch c = strings.TrimSpace(c); c {
		case "none", "lz4", "zst", "gz", "bz2":
			compressTypes = append(compressTypes, c)
		default:
			return fmt.Errorf("-compress: unknown type %q", c)
		}
	}
	for _, p := range strings.Split(*procsArg, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 {
			return fmt.Errorf("-process-max: bad value %q", p)
		}
		pms = append(pms, n)
	}
	for _, c := range strings.Split(*casesArg, ",") {
		switch c = strings.TrimSpace(c); c {
		case "matrix", "bundle", "s3", "archive", "scale":
			cases[c] = true
		default:
			return fmt.Errorf("-cases: unknown case %q", c)
		}
	}
	if *reps < 1 || *repsOther < 1 || *archReps < 1 || *archBurst < 1 {
		return fmt.Errorf("-reps, -reps-other, -archive-reps and -archive-burst must be at least 1")
	}
	for _, p := range []string{pgBin + "/initdb", "/usr/bin/pgbackrest"} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%s: %v (scripts/test.sh installs PostgreSQL 15 and pgBackRest 2.45)", p, err)
		}
	}
	out, err := exec.Command("/usr/bin/pgbackrest", "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "2.45") {
		warnings = append(warnings, fmt.Sprintf("pgbackrest version is %q, not 2.45", strings.TrimSpace(string(out))))
	}
	mach.ncpu = runtime.NumCPU()
	return nil
}

func bench(rep *report) error {
	os.RemoveAll(*dir)
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	if err := os.Chown(*dir, int(pgUID), int(pgGID)); err != nil {
		return err
	}
	os.Chmod(*dir, 0o755)
	if !*keep {
		defer os.RemoveAll(*dir)
	}
	if *profileDir != "" {
		p, err := filepath.Abs(*profileDir)
		if err != nil {
			return err
		}
		*profileDir = p
		if err := mkdirPG(p); err != nil {
			return err
		}
		os.Chmod(p, 0o755)
	}
	bin := *pgbrBin
	if bin == "" {
		bin = filepath.Join(*dir, "pgbr")
		if *profileDir != "" {
			bin = filepath.Join(*profileDir, "pgbr") // kept for go tool pprof
		}
		fmt.Println("building pgbr ...")
		// As the README builds it: without cgo a process starts 2-5 ms
		// faster (an archive-push per WAL segment).
		build := exec.Command("go", "build", "-o", bin, "./cmd/pgbr")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("build (run from the repository root): %v\n%s", err, out)
		}
	} else if p, err := filepath.Abs(bin); err == nil {
		bin = p
	}
	pgbrTool = tool{name: "pgbr", bin: bin}
	brTool = tool{name: "pgBackRest", bin: "/usr/bin/pgbackrest"}
	rep.settings = fmt.Sprintf("pgbench scale %d + %d tables; compress %s; process-max %s; reps %d (%s) / %d (other rows)",
		*scale, *tables, strings.Join(compressTypes, ","), *procsArg, *reps, compressTypes[0], *repsOther)

	stop, err := makeCluster(bin)
	if err != nil {
		return err
	}
	defer stop()

	fmt.Println("measuring bounds ...")
	if err := measureDisk(*diskMiB); err != nil {
		return fmt.Errorf("disk probe: %v", err)
	}
	sample, err := loadSample(dataDir, *sampleMiB)
	if err != nil {
		return err
	}
	codecs := compressTypes
	if !slices.Contains(codecs, "lz4") { // bundle, S3 and scale use lz4
		codecs = append(slices.Clone(codecs), "lz4")
	}
	if err := measureCodecs(sample, codecs); err != nil {
		return err
	}
	sample = nil
	if err := measurePgFixed(3); err != nil {
		return err
	}
	if mach.rssFloorKB, err = measureRSSFloor(); err != nil {
		return err
	}
	fmt.Print(mach.describe())

	if cases["matrix"] {
		if err := matrix(rep); err != nil {
			return err
		}
	}
	if cases["bundle"] {
		if err := bundle(rep); err != nil {
			return err
		}
	}
	if cases["s3"] {
		if err := s3Case(rep); err != nil {
			return err
		}
	}
	if cases["archive"] {
		if err := archiveCase(rep); err != nil {
			return err
		}
	}
	if cases["scale"] {
		stop() // the scale case uses its own, stopped cluster
		if err := scaleCase(rep); err != nil {
			return err
		}
	}
	rep.machine = mach.describe()
	rep.warnings = warnings
	return nil
}
