package config

import (
	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/lazyre"
)

// Options of pgBackRest releases after 2.45 that change what a command does
// and that pgbr does not implement. pgBackRest 2.45 would only warn about an
// unknown option in a configuration file or the environment and go on;
// pgbr refuses these, unless they have the value that changes nothing, so
// that a configuration written for a newer pgBackRest is never silently
// half-applied. (Performance or transport options of newer releases, e.g.
// repo-storage-prefetch, keep the usual warning.) repo-block is in the
// option table (beta in 2.45) and refused by backup (backup_block.go).
var newerOptions = map[string]struct {
	noop string // value that is accepted ("" = none)
	what string
}{
	"repo-target-time":  {"", "reads the repository as of a point in time"},
	"repo-symlink":      {"y", "disables the repository symlinks"},
	"page-header-check": {"y", "disables the page header check"},
}

var indexedName = lazyre.New(`^(repo|pg)[0-9]+-`)

// refuseNewer returns an error for an option of a newer pgBackRest that
// pgbr does not implement (see newerOptions), nil for any other name.
func refuseNewer(key, value, where string) error {
	name := indexedName.ReplaceAllString(key, "$1-")
	n, ok := newerOptions[name]
	if !ok || (n.noop != "" && value == n.noop) {
		return nil
	}
	return errs.New(errs.OptionInvalid,
		"%s contains option '%s' of a newer pgBackRest (it %s), which pgbr does not implement\n"+
			"HINT: remove the option to use pgbr with this configuration.", where, key, n.what)
}
