//go:build amd64 && !purego

package pg

import "golang.org/x/sys/cpu"

var hasAVX2 = cpu.X86.HasAVX2

// checksumRowsAVX2 is checksumRowsGo on four 256-bit registers of eight
// lanes each. page points at the first byte of the page.
//
//go:noescape
func checksumRowsAVX2(page *byte, sums *[32]uint32)

func checksumRows(page []byte, sums *[32]uint32) {
	if hasAVX2 {
		checksumRowsAVX2(&page[:PageSize][0], sums)
		return
	}
	checksumRowsGo(page, sums)
}
