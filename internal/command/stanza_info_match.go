package command

import "github.com/pgbr-dev/pgbr/internal/repo"

// stanzaInfoMatch is repo.StanzaInfoMatch (stanza-upgrade; verify calls
// it from internal/verify).
func stanzaInfoMatch(a *repo.ArchiveInfo, b *repo.BackupInfo) error {
	return repo.StanzaInfoMatch(a, b)
}
