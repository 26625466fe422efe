package restore

import (
	"os"

	"github.com/pgbr-dev/pgbr/internal/repo"
)

// restoreLeftovers drops from a destination listing what only an
// interrupted restore can have left in an otherwise empty directory: the
// temporary file of the backup.manifest a restore writes first (killed
// before its rename, nothing of the backup is restored yet). Such a
// directory counts as empty, so the restore can simply run again.
func restoreLeftovers(ents []os.DirEntry) []os.DirEntry {
	out := ents[:0:0]
	for _, en := range ents {
		if en.Name() == repo.ManifestName+".pgbackrest.tmp" && en.Type().IsRegular() {
			continue
		}
		out = append(out, en)
	}
	return out
}
