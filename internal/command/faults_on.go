//go:build pgbr_faults

package command

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/storage"
	"github.com/pgbr-dev/pgbr/internal/storage/faulty"
)

// Test builds only (-tags pgbr_faults): faults injected per environment.
//
//	PGBR_FAULTS="op=commit,nth=3,err=enospc;..."  repository storage faults
//	                                              (faulty.Parse syntax)
//	PGBR_FAULTS_SYNCFS=N                          the Nth local syncfs (restore)
//	                                              fails with EIO
//	PGBR_FAULTS_LOG=file                          one line appended per
//	                                              injected fault

var faultLogMu sync.Mutex

func faultLog(line string) {
	p := os.Getenv("PGBR_FAULTS_LOG")
	if p == "" {
		return
	}
	faultLogMu.Lock()
	defer faultLogMu.Unlock()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o666)
	if err != nil {
		return
	}
	fmt.Fprintf(f, "%d %s\n", os.Getpid(), line)
	f.Close()
}

func init() {
	n, _ := strconv.Atoi(os.Getenv("PGBR_FAULTS_SYNCFS"))
	if n <= 0 {
		return
	}
	var mu sync.Mutex
	calls := 0
	real := fsSync
	fsSync = func(fd int) error {
		mu.Lock()
		calls++
		c := calls
		mu.Unlock()
		if c == n {
			faultLog(fmt.Sprintf("eio syncfs call %d", c))
			return syscall.EIO
		}
		return real(fd)
	}
}

func wrapRepoStorage(e *Env, st storage.Storage) (storage.Storage, error) {
	spec := os.Getenv("PGBR_FAULTS")
	if spec == "" {
		return st, nil
	}
	faults, seed, err := faulty.Parse(spec)
	if err != nil {
		return nil, errs.New(errs.OptionInvalidValue, "PGBR_FAULTS: %v", err)
	}
	f := faulty.New(st, seed, faults...)
	f.OnInject = func(in faulty.Injection) { faultLog(in.String()) }
	return f, nil
}
