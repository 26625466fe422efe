package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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
	faultsOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		os.MkdirAll(baseDir, 0o755)
		dir, err := os.MkdirTemp(baseDir, "bin-faults-")
		if err != nil {
			faultsErr = err
			return
		}
		os.Chmod(dir, 0o755)
		faultsPath = filepath.Join(dir, "pgbr")
		c := exec.Command("go", "build", "-tags", "pgbr_faults", "-o", faultsPath, "./cmd/pgbr")
		c.Dir = root
		if out, err := c.CombinedOutput(); err != nil {
			faultsErr = fmt.Errorf("go build -tags pgbr_faults: %v\n%s", err, out)
		}
	})
	if faultsErr != nil {
		t.Fatal(faultsErr)
	}
	return faultsPath
}
