package pg

import (
	"encoding/binary"
	"fmt"

	"github.com/pgbr-dev/pgbr/internal/errs"
)

// WalHeaderSize is the size of the long page header that starts every WAL
// segment. pgBackRest reads 512 bytes; 40 are enough.
const WalHeaderSize = 40

// walLongHeader is XLP_LONG_HEADER in xlp_info.
const walLongHeader = 0x0002

// WalHeader holds the long page header of the first page of a WAL segment.
type WalHeader struct {
	Magic       uint16
	Info        uint16
	Timeline    uint32
	PageAddr    uint64
	SystemID    uint64
	SegmentSize uint32
	BlockSize   uint32
	Version     Version
}

// ParseWalHeader parses the first bytes (at least 40) of a WAL segment.
func ParseWalHeader(b []byte) (WalHeader, error) {
	if len(b) < WalHeaderSize {
		return WalHeader{}, errs.New(errs.Format,
			"WAL file is too short: %d byte(s), expected a header of at least %d", len(b), WalHeaderSize)
	}
	le := binary.LittleEndian
	h := WalHeader{
		Magic:       le.Uint16(b[0:]),
		Info:        le.Uint16(b[2:]),
		Timeline:    le.Uint32(b[4:]),
		PageAddr:    le.Uint64(b[8:]),
		SystemID:    le.Uint64(b[24:]),
		SegmentSize: le.Uint32(b[32:]),
		BlockSize:   le.Uint32(b[36:]),
	}
	if h.Info&walLongHeader == 0 {
		return WalHeader{}, errs.New(errs.Format, "first page header in WAL file is expected to be in long format")
	}
	v, ok := VersionByWalMagic(h.Magic)
	if !ok {
		return WalHeader{}, errs.New(errs.VersionNotSupported,
			"unexpected WAL magic %d\nHINT: is this version of PostgreSQL supported?", h.Magic)
	}
	h.Version = v
	if err := checkWalSegmentSize(v, h.SegmentSize); err != nil {
		return WalHeader{}, err
	}
	return h, nil
}

// LSN is a PostgreSQL log sequence number.
type LSN uint64

// ParseLSN parses the text form "X/Y" (hex, 1 to 8 digits each part).
func ParseLSN(s string) (LSN, error) {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			hi, ok1 := parseHex32(s[:i])
			lo, ok2 := parseHex32(s[i+1:])
			if ok1 && ok2 {
				return LSN(uint64(hi)<<32 | uint64(lo)), nil
			}
			break
		}
	}
	return 0, errs.New(errs.Format, "invalid LSN '%s': expected the form 'X/Y' with hexadecimal X and Y", s)
}

func parseHex32(s string) (uint32, bool) {
	if len(s) == 0 || len(s) > 8 {
		return 0, false
	}
	var v uint32
	for i := 0; i < len(s); i++ {
		d, ok := hexVal(s[i])
		if !ok {
			return 0, false
		}
		v = v<<4 | uint32(d)
	}
	return v, true
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// String returns the text form, e.g. "0/3000028".
func (l LSN) String() string {
	return fmt.Sprintf("%X/%X", uint64(l)>>32, uint64(l)&0xFFFFFFFF)
}

// validSegSize reports whether size is a power of two from 1 MiB to 1 GiB,
// as PostgreSQL requires.
func validSegSize(size uint32) bool {
	return size >= 1<<20 && size <= 1<<30 && size&(size-1) == 0
}

func segSizeError(size uint32) error {
	return errs.New(errs.Format, "invalid WAL segment size %d: must be a power of 2 between 1MiB and 1GiB", size)
}

// WalSegmentName returns the name of the segment containing lsn.
func WalSegmentName(timeline uint32, lsn LSN, segSize uint32) string {
	if segSize == 0 {
		segSize = WalSegmentSizeDefault
	}
	segNo := uint64(lsn) / uint64(segSize)
	perLog := uint64(0x100000000) / uint64(segSize)
	return walName(timeline, uint32(segNo/perLog), uint32(segNo%perLog))
}

func walName(tli, log, seg uint32) string {
	const digits = "0123456789ABCDEF"
	var b [24]byte
	for i, v := range [3]uint32{tli, log, seg} {
		for j := 7; j >= 0; j-- {
			b[i*8+j] = digits[v&0xF]
			v >>= 4
		}
	}
	return string(b[:])
}

// parseWalName splits a 24-hex segment name (a suffix after 24 chars is
// ignored by callers that strip it first).
func parseWalName(name string) (tli, log, seg uint32, ok bool) {
	if !IsWalSegment(name) {
		return 0, 0, 0, false
	}
	tli, _ = parseHex32(name[0:8])
	log, _ = parseHex32(name[8:16])
	seg, _ = parseHex32(name[16:24])
	return tli, log, seg, true
}

// WalSegmentNext returns the name of the segment after name.
func WalSegmentNext(name string, segSize uint32) (string, error) {
	if !validSegSize(segSize) {
		return "", segSizeError(segSize)
	}
	tli, log, seg, ok := parseWalName(name)
	if !ok {
		return "", errs.New(errs.Format, "'%s' is not a WAL segment name", name)
	}
	perLog := uint32(uint64(0x100000000) / uint64(segSize))
	if seg >= perLog {
		return "", errs.New(errs.Format, "WAL segment '%s' is invalid for segment size %d", name, segSize)
	}
	seg++
	if seg == perLog {
		seg = 0
		if log == 0xFFFFFFFF {
			return "", errs.New(errs.Format, "WAL segment '%s' is the last possible segment", name)
		}
		log++
	}
	return walName(tli, log, seg), nil
}

// maxWalRange bounds WalSegmentRange so that a corrupt label cannot make it
// allocate without limit (16M segments = 256 TiB of 16 MiB WAL).
const maxWalRange = 1 << 24

// WalSegmentRange lists the segments from start through stop inclusive. Both
// must be on the same timeline and stop must not be before start.
func WalSegmentRange(start, stop string, segSize uint32) ([]string, error) {
	if !validSegSize(segSize) {
		return nil, segSizeError(segSize)
	}
	t1, l1, s1, ok1 := parseWalName(start)
	t2, l2, s2, ok2 := parseWalName(stop)
	if !ok1 || !ok2 {
		return nil, errs.New(errs.Format, "invalid WAL segment range '%s' to '%s'", start, stop)
	}
	if t1 != t2 {
		return nil, errs.New(errs.Format, "WAL segments '%s' and '%s' are on different timelines", start, stop)
	}
	perLog := uint64(0x100000000) / uint64(segSize)
	if uint64(s1) >= perLog || uint64(s2) >= perLog {
		return nil, errs.New(errs.Format, "invalid WAL segment range '%s' to '%s' for segment size %d", start, stop, segSize)
	}
	n1 := uint64(l1)*perLog + uint64(s1)
	n2 := uint64(l2)*perLog + uint64(s2)
	if n2 < n1 {
		return nil, errs.New(errs.Format, "WAL segment '%s' is before '%s'", stop, start)
	}
	if n2-n1 >= maxWalRange {
		return nil, errs.New(errs.Format, "WAL segment range '%s' to '%s' is too large", start, stop)
	}
	out := make([]string, 0, n2-n1+1)
	for n := n1; n <= n2; n++ {
		out = append(out, walName(t1, uint32(n/perLog), uint32(n%perLog)))
	}
	return out, nil
}

func isUpperHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// IsWalSegment reports whether name is a WAL segment name: ^[0-9A-F]{24}$.
func IsWalSegment(name string) bool { return len(name) == 24 && isUpperHex(name) }

// IsWalPartial reports whether name is a partial segment: ^[0-9A-F]{24}\.partial$.
func IsWalPartial(name string) bool {
	return len(name) == 32 && isUpperHex(name[:24]) && name[24:] == ".partial"
}

// IsHistoryFile reports whether name is a timeline history file: ^[0-9A-F]{8}\.history$.
func IsHistoryFile(name string) bool {
	return len(name) == 16 && isUpperHex(name[:8]) && name[8:] == ".history"
}

// IsBackupHistory reports whether name is a backup history file:
// ^[0-9A-F]{24}\.[0-9A-F]{8}\.backup$.
func IsBackupHistory(name string) bool {
	return len(name) == 40 && isUpperHex(name[:24]) && name[24] == '.' && isUpperHex(name[25:33]) &&
		name[33:] == ".backup"
}

// WalSegmentDir returns the archive subdirectory of a name that starts with
// 24 uppercase hex characters (its first 16), or "" for any other name.
func WalSegmentDir(name string) string {
	if len(name) >= 24 && isUpperHex(name[:24]) {
		return name[:16]
	}
	return ""
}
