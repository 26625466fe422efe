package pg

import (
	"testing"
)

func FuzzParseControl(f *testing.F) {
	for _, v := range versions {
		b := make([]byte, 512)
		b[8], b[9] = byte(v.ControlVersion), byte(v.ControlVersion>>8)
		b[12], b[13], b[14], b[15] = byte(v.CatalogVersion), byte(v.CatalogVersion>>8),
			byte(v.CatalogVersion>>16), byte(v.CatalogVersion>>24)
		o := offsetsFor(v)
		b[o.blcksz+1] = 0x20
		b[o.walSegSize+3] = 0x01
		f.Add(b)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseControl(b)
		if err == nil {
			if c.PageSize != PageSize || c.Version.Num == 0 || !validSegSize(c.WalSegmentSize) {
				t.Fatalf("accepted invalid control %+v", c)
			}
		}
	})
}

func FuzzParseWalHeader(f *testing.F) {
	for _, v := range versions {
		f.Add(makeWal(v.WalMagic, 2, 16<<20))
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseWalHeader(b)
		if err == nil && (h.Info&walLongHeader == 0 || h.Version.WalMagic != h.Magic) {
			t.Fatalf("accepted invalid header %+v", h)
		}
	})
}

// FuzzWalNames covers the name and LSN parsers.
func FuzzWalNames(f *testing.F) {
	f.Add("000000010000000000000003", "0/3000028", uint32(16<<20))
	f.Add("0000000100000000000000FF", "FFFFFFFF/FFFFFFFF", uint32(1<<30))
	f.Fuzz(func(t *testing.T, name, lsn string, segSize uint32) {
		if next, err := WalSegmentNext(name, segSize); err == nil {
			if !IsWalSegment(next) || next[:8] != name[:8] {
				t.Fatalf("next of %s = %s", name, next)
			}
			r, err := WalSegmentRange(name, next, segSize)
			if err != nil || len(r) != 2 || r[0] != name || r[1] != next {
				t.Fatalf("range %s..%s = %v, %v", name, next, r, err)
			}
		}
		if l, err := ParseLSN(lsn); err == nil {
			if l2, err := ParseLSN(l.String()); err != nil || l2 != l {
				t.Fatalf("LSN round trip %s", lsn)
			}
			if validSegSize(segSize) && !IsWalSegment(WalSegmentName(1, l, segSize)) {
				t.Fatal("bad segment name")
			}
		}
		IsWalPartial(name)
		IsHistoryFile(name)
		IsBackupHistory(name)
		WalSegmentDir(name)
		VersionNumFromString(name)
	})
}
