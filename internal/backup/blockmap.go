package backup

import "github.com/pgbr-dev/pgbr/internal/repo"

// priorBlockMap reads and decodes the block map of the prior backup's file
// f (its reference, or the prior backup itself, stores it), as restore and
// verify read block maps (repo.BlockIncrSource).
func (b *Backup) priorBlockMap(f *repo.ManifestFile) ([]repo.BlockMapItem, error) {
	src := &repo.BlockIncrSource{Ctx: b.ctx, St: b.st, Stanza: b.stanza, M: b.prior}
	items, _, err := src.BlockMap(f)
	return items, err
}
