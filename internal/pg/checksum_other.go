//go:build !amd64 || purego

package pg

func checksumRows(page []byte, sums *[32]uint32) { checksumRowsGo(page, sums) }
