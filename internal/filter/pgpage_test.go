package filter

import (
	"encoding/binary"
	"math/rand/v2"
)

// pgbenchPages returns n bytes of heap pages like those of pgbench_accounts
// after pgbench -i and some transactions (the bench cluster's largest
// file): 8 KiB pages of 61 tuples (aid, bid, abalance, 84 blank filler
// characters) behind a page header and line pointers, frozen, the
// abalance of a tuple in 20 random, the LSN and checksum of every page
// differing, a page in 20 carrying newer tuple versions.
func pgbenchPages(n int, seed uint64) []byte {
	const (
		pageSize = 8192
		tupLen   = 24 + 12 + 85 // header, three int4, short varlena char(84)
		tupSpace = 128          // MAXALIGN'ed
		perPage  = 61
	)
	r := rand.New(rand.NewPCG(seed, 2))
	b := make([]byte, n)
	aid := uint32(1)
	lsn := uint64(0x1_6000_0000)
	var page [pageSize]byte
	for off := 0; off < n; off += pageSize {
		clear(page[:])
		le := binary.LittleEndian
		lsn += uint64(r.IntN(1 << 16))
		le.PutUint32(page[0:], uint32(lsn>>32))
		le.PutUint32(page[4:], uint32(lsn))
		le.PutUint16(page[8:], uint16(r.Uint32())) // checksum
		le.PutUint16(page[12:], 24+perPage*4)      // lower
		le.PutUint16(page[14:], pageSize-perPage*tupSpace)
		le.PutUint16(page[16:], pageSize)   // special
		le.PutUint16(page[18:], pageSize|4) // size and layout version
		updated := r.IntN(20) == 0
		for i := range perPage {
			at := pageSize - (i+1)*tupSpace
			le.PutUint32(page[24+i*4:], uint32(at)|1<<15|uint32(tupLen)<<17) // lp_off, LP_NORMAL, lp_len
			t := page[at:]
			xmin, infomask := uint32(735), uint16(0x0B00) // frozen, xmax invalid
			balance := uint32(0)
			if updated || r.IntN(20) == 0 {
				xmin, infomask = 1000+uint32(r.IntN(200000)), 0x0902
				balance = uint32(int32(r.IntN(10000) - 5000))
			}
			le.PutUint32(t[0:], xmin)
			le.PutUint16(t[10:], uint16((off/pageSize)>>16)) // ctid: block, offset
			le.PutUint16(t[12:], uint16(off/pageSize))
			le.PutUint16(t[14:], uint16(i+1))
			le.PutUint16(t[16:], 4) // natts
			le.PutUint16(t[18:], infomask)
			t[20] = 24 // t_hoff
			le.PutUint32(t[24:], aid)
			le.PutUint32(t[28:], (aid-1)/100000+1)
			le.PutUint32(t[32:], balance)
			t[36] = 85<<1 | 1
			for j := range 84 {
				t[37+j] = ' '
			}
			aid++
		}
		copy(b[off:], page[:])
	}
	return b
}
