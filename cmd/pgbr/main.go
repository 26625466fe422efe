// Command pgbr is a drop-in for pgBackRest: same pgbackrest.conf, same
// command line, same repository format.
//
// For profiling, PGBR_CPUPROFILE=<file> writes a CPU profile of the run and
// PGBR_MEMPROFILE=<file> an allocation profile at its end (go tool pprof);
// PGBR_TRACE=<file> an execution trace (go tool trace).
// The background process of an asynchronous archive command inherits them:
// it writes <file>.async.<pid> instead, leaving <file> to the foreground.
package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"

	"github.com/pgbr-dev/pgbr/internal/cli"
	"github.com/pgbr-dev/pgbr/internal/memlimit"
)

// heapFloor is the heap the collector lets grow freely; above it the heap
// follows what is live (internal/memlimit). With the binary's own pages it
// keeps a backup of 100k files within 64 MB.
const heapFloor = 40 << 20

func main() {
	os.Exit(run())
}

func run() int {
	memlimit.Start(heapFloor)
	defer startTrace()()
	if path := profilePath("PGBR_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "pgbr: PGBR_CPUPROFILE: %v\n", err)
			return 1
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(os.Stderr, "pgbr: PGBR_CPUPROFILE: %v\n", err)
			return 1
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	if path := profilePath("PGBR_MEMPROFILE"); path == "" {
		// The profile is only ever written for PGBR_MEMPROFILE: no
		// sampling (a stack walk per 512 KiB allocated) otherwise.
		runtime.MemProfileRate = 0
	} else {
		runtime.MemProfileRate = 64 << 10
		defer func() {
			f, err := os.Create(path)
			if err == nil {
				err = pprof.Lookup("allocs").WriteTo(f, 0)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "pgbr: PGBR_MEMPROFILE: %v\n", err)
			}
		}()
	}
	return cli.Main(os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
}

// profilePath is the profile file named by the environment variable env,
// with ".async.<pid>" appended for a background "<command>:async" process.
func profilePath(env string) string {
	path := os.Getenv(env)
	if path == "" {
		return ""
	}
	for _, a := range os.Args[1:] {
		if !strings.HasPrefix(a, "-") && strings.HasSuffix(a, ":async") {
			return path + ".async." + strconv.Itoa(os.Getpid())
		}
	}
	return path
}
