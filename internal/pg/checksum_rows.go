package pg

import "encoding/binary"

// checksumRowsGo folds rows 1 to 63 of page (128 bytes each: one 32-bit word
// per lane) into PostgreSQL's 32 checksum lanes.
func checksumRowsGo(page []byte, sums *[32]uint32) {
	le := binary.LittleEndian
	for off := 128; off < PageSize; off += 128 {
		row := page[off : off+128 : off+128]
		for j := 0; j < 32; j++ {
			t := sums[j] ^ le.Uint32(row[j*4:])
			sums[j] = t*fnvPrime ^ t>>17
		}
	}
}
