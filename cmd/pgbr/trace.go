package main

import (
	"fmt"
	"os"
	"runtime/trace"
)

// startTrace writes an execution trace of the run (go tool trace) into the
// file PGBR_TRACE names: what each goroutine of a backup or restore waited
// on, which a CPU profile does not show. It returns the function that ends
// the trace.
func startTrace() func() {
	path := profilePath("PGBR_TRACE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		err = trace.Start(f)
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgbr: PGBR_TRACE: %v\n", err)
		return func() {}
	}
	return func() {
		trace.Stop()
		f.Close()
	}
}
