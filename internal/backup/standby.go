package backup

import "github.com/pgbr-dev/pgbr/internal/lazyre"

// standbyFile matches the manifest names that may be copied from the
// standby (pg_control excepted).
var standbyFile = lazyre.New(`^((pg_data/(base|global|pg_xact|pg_clog|pg_multixact))|pg_tblspc)/`)

// CopiedFromStandby reports whether a backup from a standby reads the
// manifest file name from the standby.
func CopiedFromStandby(name string) bool {
	return name != "pg_data/global/pg_control" && standbyFile.MatchString(name)
}
