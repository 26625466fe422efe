package backup

import (
	"path/filepath"
	"regexp"
	"strings"
)

// standbyFile matches the manifest names that may be copied from the
// standby (pg_control excepted).
var standbyFile = regexp.MustCompile(`^((pg_data/(base|global|pg_xact|pg_clog|pg_multixact))|pg_tblspc)/`)

// CopiedFromStandby reports whether a backup from a standby reads the
// manifest file name from the standby.
func CopiedFromStandby(name string) bool {
	return name != "pg_data/global/pg_control" && standbyFile.MatchString(name)
}

// standbySources points the files the standby holds at its data directory
// (tablespaces through its pg_tblspc links).
func (b *Backup) standbySources() {
	for name := range b.srcPath {
		if !CopiedFromStandby(name) {
			continue
		}
		var rel string
		if strings.HasPrefix(name, "pg_data/") {
			rel = strings.TrimPrefix(name, "pg_data/")
		} else {
			rel = name // pg_tblspc/<oid>/...: through the standby's link
		}
		b.srcPath[name] = filepath.Join(b.opt.StandbyPath, filepath.FromSlash(rel))
	}
}
