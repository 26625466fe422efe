package pg

import (
	"encoding/binary"
	"strconv"
	"strings"
)

// SegmentPages is the number of pages in a 1 GiB relation segment; the block
// number of page i of segment file "<rel>.N" is N*SegmentPages + i.
const SegmentPages = 131072

// checksumBaseOffsets are PostgreSQL's fixed seeds for the 32 parallel sums
// (src/include/storage/checksum_impl.h).
var checksumBaseOffsets = [32]uint32{
	0x5B1F36E9, 0xB8525960, 0x02AB50AA, 0x1DE66D2A,
	0x79FF467A, 0x9BB9F8A3, 0x217E7CD2, 0x83E13D2C,
	0xF8D4474F, 0xE39EB970, 0x42C6AE16, 0x993216FA,
	0x7B093B5D, 0x98DAFF3C, 0xF718902A, 0x0B1C9CDB,
	0xE58F764B, 0x187636BC, 0x5D7B3BB1, 0xE73DE7DE,
	0x92BEC979, 0xCCA6C0B2, 0x304A0979, 0x85AA43D4,
	0x783125BB, 0x6CA8EAA2, 0xE407EAC6, 0x4B5CFC3E,
	0x9FBF8C76, 0x15CA20BE, 0xF2CA9FD3, 0x959BD756,
}

const fnvPrime = 16777619

// PageChecksum computes PostgreSQL's pg_checksum_page for an 8192-byte page
// at block number blkno, as if pd_checksum (bytes 8..9) were zero. page is not
// modified. It returns 0 if page is shorter than PageSize.
func PageChecksum(page []byte, blkno uint32) uint16 {
	if len(page) < PageSize {
		return 0
	}
	page = page[:PageSize]
	sums := checksumBaseOffsets
	le := binary.LittleEndian
	// Row 0 holds the page header; word 2 holds pd_checksum in its low 16
	// bits (little-endian), which counts as zero.
	for j := 0; j < 32; j++ {
		w := le.Uint32(page[j*4:])
		if j == 2 {
			w &^= 0xFFFF
		}
		t := sums[j] ^ w
		sums[j] = t*fnvPrime ^ t>>17
	}
	checksumRows(page, &sums)
	var result uint32
	for j := 0; j < 32; j++ {
		t := sums[j]
		t = t*fnvPrime ^ t>>17
		t = t*fnvPrime ^ t>>17
		result ^= t
	}
	result ^= blkno
	return uint16(result%65535 + 1)
}

// pageIsZero reports whether every byte of the page is zero.
func pageIsZero(page []byte) bool {
	for i := 0; i+8 <= len(page); i += 8 {
		if binary.LittleEndian.Uint64(page[i:]) != 0 {
			return false
		}
	}
	return true
}

// PageValid applies pgBackRest's page rule (§6.1) to one 8192-byte page at
// block number blkno: an all-zero page with pd_upper == 0 is valid (new
// page); a page with pd_upper == 0 and any non-zero byte is invalid;
// otherwise pd_checksum must equal PageChecksum.
func PageValid(page []byte, blkno uint32) bool {
	if len(page) < PageSize {
		return false
	}
	le := binary.LittleEndian
	if le.Uint16(page[14:]) == 0 { // pd_upper
		return pageIsZero(page[:PageSize]) // new page valid, else corrupt
	}
	return le.Uint16(page[8:]) == PageChecksum(page, blkno)
}

// PageChecker validates page checksums of one relation segment file as its
// bytes stream through Write, in order. It never fails a Write.
type PageChecker struct {
	blockBase uint32 // segmentNo * SegmentPages
	pageIdx   uint32 // index in the file of the next complete page
	partial   [PageSize]byte
	nPartial  int
	errors    []uint32
}

// NewPageChecker returns a checker for segment file number segmentNo (the
// ".N" suffix of the relation file name; 0 when there is none).
func NewPageChecker(segmentNo uint32) *PageChecker {
	return &PageChecker{blockBase: segmentNo * SegmentPages}
}

// Reset makes p ready for a new file, keeping its memory.
func (p *PageChecker) Reset(segmentNo uint32) {
	p.blockBase = segmentNo * SegmentPages
	p.pageIdx = 0
	p.nPartial = 0
	p.errors = p.errors[:0]
}

func (p *PageChecker) check(page []byte) {
	blk := p.blockBase + p.pageIdx
	if !PageValid(page, blk) {
		p.errors = append(p.errors, blk)
	}
	p.pageIdx++
}

// Write feeds the next bytes of the file. It always returns len(b), nil.
func (p *PageChecker) Write(b []byte) (int, error) {
	n := len(b)
	if p.nPartial > 0 {
		c := copy(p.partial[p.nPartial:], b)
		p.nPartial += c
		b = b[c:]
		if p.nPartial < PageSize {
			return n, nil
		}
		p.check(p.partial[:])
		p.nPartial = 0
	}
	for len(b) >= PageSize {
		p.check(b[:PageSize])
		b = b[PageSize:]
	}
	if len(b) > 0 {
		p.nPartial = copy(p.partial[:], b)
	}
	return n, nil
}

// Result reports the outcome after the whole file was written. aligned is
// false when the file size is not a multiple of PageSize; then valid is false
// and errorPages is nil (pgBackRest records no list). Otherwise errorPages
// are the block numbers (relative to the whole relation, as stored in the
// manifest) of the pages that failed, ascending, and valid is
// len(errorPages) == 0. The page of block b is at file offset
// (b - segmentNo*SegmentPages) * PageSize (see PageOffset) so the caller can
// re-read it and drop it from the list if it changed meanwhile.
func (p *PageChecker) Result() (valid bool, aligned bool, errorPages []uint32) {
	if p.nPartial != 0 {
		return false, false, nil
	}
	if len(p.errors) == 0 {
		return true, true, nil
	}
	return false, true, append([]uint32(nil), p.errors...)
}

// PageOffset returns the file offset of block blkno in the segment file the
// checker was created for.
func (p *PageChecker) PageOffset(blkno uint32) int64 {
	return int64(blkno-p.blockBase) * PageSize
}

// PageErrorsJSON renders block numbers (ascending) in pgBackRest's manifest
// form: runs of consecutive pages as [first,last], single pages as numbers,
// e.g. [[3,5],10]. Unsorted input is rendered in the order given.
func PageErrorsJSON(pages []uint32) string {
	var sb strings.Builder
	sb.WriteByte('[')
	pageRuns(pages, func(first, last uint32) {
		if sb.Len() > 1 {
			sb.WriteByte(',')
		}
		if last != first {
			sb.WriteByte('[')
			sb.WriteString(strconv.FormatUint(uint64(first), 10))
			sb.WriteByte(',')
			sb.WriteString(strconv.FormatUint(uint64(last), 10))
			sb.WriteByte(']')
		} else {
			sb.WriteString(strconv.FormatUint(uint64(first), 10))
		}
	})
	sb.WriteByte(']')
	return sb.String()
}

// pageRuns groups ascending block numbers into runs of consecutive pages.
func pageRuns(pages []uint32, fn func(first, last uint32)) {
	for i := 0; i < len(pages); {
		j := i
		for j+1 < len(pages) && pages[j+1] == pages[j]+1 {
			j++
		}
		fn(pages[i], pages[j])
		i = j + 1
	}
}

// PageErrorsWarning returns pgBackRest's warning text for page checksum
// errors in file (as logged): "invalid page checksums found in file F at
// pages 3-5, 10". A range counts as two for the plural, as in pgBackRest.
func PageErrorsWarning(file string, pages []uint32) string {
	var list strings.Builder
	total := 0
	pageRuns(pages, func(first, last uint32) {
		if list.Len() > 0 {
			list.WriteString(", ")
		}
		list.WriteString(strconv.FormatUint(uint64(first), 10))
		total++
		if last != first {
			list.WriteByte('-')
			list.WriteString(strconv.FormatUint(uint64(last), 10))
			total++
		}
	})
	plural := ""
	if total > 1 {
		plural = "s"
	}
	return "invalid page checksum" + plural + " found in file " + file + " at page" + plural + " " + list.String()
}
