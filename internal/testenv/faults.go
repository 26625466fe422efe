package testenv

import (
	"sync"
	"testing"
)

var (
	faultsOnce sync.Once
	faultsPath string
	faultsErr  error
)

// PgbrFaults builds, once per test binary, the test variant of pgbr with
// fault injection (-tags pgbr_faults: the repository storage is wrapped by
// internal/storage/faulty per PGBR_FAULTS, local syncfs fails per
// PGBR_FAULTS_SYNCFS, injections are logged to PGBR_FAULTS_LOG) and returns
// its path.
func PgbrFaults(t testing.TB) string {
	t.Helper()
	faultsOnce.Do(func() { faultsPath, faultsErr = buildPgbr("bin-faults-", "-tags", "pgbr_faults") })
	if faultsErr != nil {
		t.Fatal(faultsErr)
	}
	return faultsPath
}
