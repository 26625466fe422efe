package command

import (
	"os"

	"github.com/pgbr-dev/pgbr/internal/storage/local"
)

// writeFileAtomicIn writes a small file inside a destination through a
// temporary name, durably (local.Root.WriteFileAtomic with fileSync).
func writeFileAtomicIn(root *local.Root, name string, data []byte, mode os.FileMode, uid, gid int) error {
	return root.WriteFileAtomic(name, data, mode, uid, gid, fileSync)
}
