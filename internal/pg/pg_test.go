package pg

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/errs"
)

func TestVersionLookups(t *testing.T) {
	tests := []struct {
		control, catalog uint32
		str              string
		num              int
		magic            uint16
	}{
		{937, 201306121, "9.3", 90300, 0xD075},
		{942, 201409291, "9.4", 90400, 0xD07E},
		{942, 201510051, "9.5", 90500, 0xD087},
		{960, 201608131, "9.6", 90600, 0xD093},
		{1002, 201707211, "10", 100000, 0xD097},
		{1100, 201809051, "11", 110000, 0xD098},
		{1201, 201909212, "12", 120000, 0xD101},
		{1300, 202007201, "13", 130000, 0xD106},
		{1300, 202107181, "14", 140000, 0xD10D},
		{1300, 202209061, "15", 150000, 0xD110},
		{1300, 202307071, "16", 160000, 0xD113},
		{1700, 202406281, "17", 170000, 0xD116},
		{1800, 202506291, "18", 180000, 0xD118},
	}
	for _, tt := range tests {
		v, err := VersionByControl(tt.control, tt.catalog)
		if err != nil || v.Str != tt.str || v.Num != tt.num || v.WalMagic != tt.magic {
			t.Errorf("VersionByControl(%d,%d) = %+v, %v", tt.control, tt.catalog, v, err)
		}
		if v2, ok := VersionByString(tt.str); !ok || v2 != v {
			t.Errorf("VersionByString(%q) = %+v, %v", tt.str, v2, ok)
		}
		if v2, ok := VersionByWalMagic(tt.magic); !ok || v2 != v {
			t.Errorf("VersionByWalMagic(%#x) = %+v, %v", tt.magic, v2, ok)
		}
		if v2, ok := VersionByNum(tt.num + 4); !ok || v2 != v {
			t.Errorf("VersionByNum(%d) = %+v, %v", tt.num+4, v2, ok)
		}
		if n, ok := VersionNumFromString(tt.str); !ok || n != tt.num {
			t.Errorf("VersionNumFromString(%q) = %d, %v", tt.str, n, ok)
		}
	}
	_, err := VersionByControl(1300, 202209062)
	if !errs.Is(err, errs.VersionNotSupported) ||
		!strings.HasPrefix(err.Error(), "unexpected control version = 1300 and catalog version = 202209062") {
		t.Errorf("unknown version error = %v", err)
	}
	for _, s := range []string{"", "9", "9.", ".6", "15.x", "x", "+1", "9.+6"} {
		if _, ok := VersionByString(s); ok && s != "9" {
			t.Errorf("VersionByString(%q) ok", s)
		}
		if n, ok := VersionNumFromString(s); ok && s != "9" {
			t.Errorf("VersionNumFromString(%q) = %d ok", s, n)
		}
	}
	if v, ok := VersionByNum(90624); !ok || v.Str != "9.6" {
		t.Errorf("VersionByNum(90624) = %v %v", v, ok)
	}
	for _, n := range []int{0, 90200, 80400, 190000, 150000 * 10} {
		if _, ok := VersionByNum(n); ok {
			t.Errorf("VersionByNum(%d) ok", n)
		}
	}
	if !(Version{Num: 150000}).Supported() || (Version{Num: 160000}).Supported() {
		t.Error("Supported")
	}
}

// makeControl builds a synthetic pg_control for version str.
func makeControl(t *testing.T, str string, blcksz, segSize, checksum uint32) []byte {
	t.Helper()
	v, ok := VersionByString(str)
	if !ok {
		t.Fatalf("no version %s", str)
	}
	b := make([]byte, ControlFileSize)
	le := binary.LittleEndian
	le.PutUint64(b[0:], 7123456789012345678)
	le.PutUint32(b[8:], v.ControlVersion)
	le.PutUint32(b[12:], v.CatalogVersion)
	le.PutUint64(b[32:], 0x2C000060)
	o := offsetsFor(v)
	le.PutUint32(b[o.timeline:], 3)
	le.PutUint32(b[o.blcksz:], blcksz)
	le.PutUint32(b[o.walSegSize:], segSize)
	le.PutUint32(b[o.checksum:], checksum)
	return b
}

func TestParseControl(t *testing.T) {
	// Offsets from the format spec §7.3, written independently of offsetsFor.
	offsets := map[string][4]int{
		"9.3": {56, 192, 204, 224}, "9.4": {56, 200, 212, 236}, "9.5": {56, 216, 228, 252},
		"9.6": {56, 216, 228, 252}, "10": {56, 216, 228, 252}, "11": {48, 208, 220, 244},
		"12": {48, 216, 228, 252}, "13": {48, 216, 228, 252}, "14": {48, 216, 228, 252},
		"15": {48, 216, 228, 252}, "16": {48, 216, 228, 252}, "17": {48, 216, 228, 252},
		"18": {48, 216, 228, 252},
	}
	for str, o := range offsets {
		v, _ := VersionByString(str)
		b := make([]byte, ControlFileSize)
		le := binary.LittleEndian
		le.PutUint64(b[0:], 42)
		le.PutUint32(b[8:], v.ControlVersion)
		le.PutUint32(b[12:], v.CatalogVersion)
		le.PutUint64(b[32:], 0x1_0000_0028)
		le.PutUint32(b[o[0]:], 5)
		le.PutUint32(b[o[1]:], 8192)
		le.PutUint32(b[o[2]:], 16<<20)
		le.PutUint32(b[o[3]:], 1)
		c, err := ParseControl(b)
		want := Control{SystemID: 42, ControlVersion: v.ControlVersion, CatalogVersion: v.CatalogVersion,
			Checkpoint: 0x1_0000_0028, Timeline: 5, PageSize: 8192, WalSegmentSize: 16 << 20,
			DataChecksumVersion: 1, Version: v}
		if err != nil || c != want {
			t.Errorf("%s: ParseControl = %+v, %v; want %+v", str, c, err, want)
		}
	}

	bad := []struct {
		name string
		b    []byte
		code errs.Code
		msg  string
	}{
		{"empty", nil, errs.Format, "pg_control is too short: 0 byte(s)"},
		{"short", makeControl(t, "15", 8192, 16<<20, 0)[:100], errs.Format, "pg_control is too short: 100 byte(s)"},
		{"page size", makeControl(t, "15", 16384, 16<<20, 0), errs.Format, "page size is 16384 but must be 8192"},
		{"seg size pg10", makeControl(t, "10", 8192, 64<<20, 0), errs.Format,
			"wal segment size is 67108864 but must be 16777216 for PostgreSQL <= 10"},
		{"seg size invalid", makeControl(t, "15", 8192, 3<<20, 0), errs.Format, "wal segment size is 3145728"},
		{"version", func() []byte { b := makeControl(t, "15", 8192, 16<<20, 0); b[12]++; return b }(),
			errs.VersionNotSupported, "unexpected control version = 1300 and catalog version = 202209062"},
	}
	for _, tt := range bad {
		_, err := ParseControl(tt.b)
		if !errs.Is(err, tt.code) || !strings.HasPrefix(err.Error(), tt.msg) {
			t.Errorf("%s: error %v (code %d), want code %d and %q", tt.name, err, errs.CodeOf(err), tt.code, tt.msg)
		}
	}
	if c, err := ParseControl(makeControl(t, "15", 8192, 64<<20, 0)); err != nil || c.WalSegmentSize != 64<<20 {
		t.Errorf("pg15 64MiB segments: %+v %v", c, err)
	}
}

func TestReadControl(t *testing.T) {
	dir := t.TempDir()
	_, err := ReadControl(dir)
	want := "unable to open missing file '" + filepath.Join(dir, "global", "pg_control") + "' for read"
	if !errs.Is(err, errs.FileMissing) || err.Error() != want {
		t.Errorf("missing: %v (code %d), want %q", err, errs.CodeOf(err), want)
	}
	os.Mkdir(filepath.Join(dir, "global"), 0o700)
	os.WriteFile(filepath.Join(dir, "global", "pg_control"), makeControl(t, "13", 8192, 16<<20, 1), 0o600)
	c, err := ReadControl(dir)
	if err != nil || c.Version.Str != "13" || c.SystemID != 7123456789012345678 || c.Timeline != 3 {
		t.Errorf("ReadControl = %+v, %v", c, err)
	}
}

func makeWal(magic, info uint16, segSize uint32) []byte {
	b := make([]byte, 512)
	le := binary.LittleEndian
	le.PutUint16(b[0:], magic)
	le.PutUint16(b[2:], info)
	le.PutUint32(b[4:], 2)
	le.PutUint64(b[8:], 0x3000000)
	le.PutUint64(b[24:], 7123456789012345678)
	le.PutUint32(b[32:], segSize)
	le.PutUint32(b[36:], 8192)
	return b
}

func TestParseWalHeader(t *testing.T) {
	h, err := ParseWalHeader(makeWal(0xD110, 0x0006, 16<<20))
	want := WalHeader{Magic: 0xD110, Info: 6, Timeline: 2, PageAddr: 0x3000000, SystemID: 7123456789012345678,
		SegmentSize: 16 << 20, BlockSize: 8192}
	want.Version, _ = VersionByString("15")
	if err != nil || h != want {
		t.Errorf("ParseWalHeader = %+v, %v", h, err)
	}
	bad := []struct {
		name string
		b    []byte
		code errs.Code
		msg  string
	}{
		{"short", makeWal(0xD110, 2, 16<<20)[:39], errs.Format, "WAL file is too short: 39 byte(s)"},
		{"short header", makeWal(0xD110, 0, 16<<20), errs.Format,
			"first page header in WAL file is expected to be in long format"},
		{"magic", makeWal(0xD111, 2, 16<<20), errs.VersionNotSupported, "unexpected WAL magic 53521\nHINT:"},
		{"seg size 9.6", makeWal(0xD093, 2, 32<<20), errs.Format, "wal segment size is 33554432 but must be 16777216"},
		{"seg size 0", makeWal(0xD110, 2, 0), errs.Format, "wal segment size is 0"},
	}
	for _, tt := range bad {
		_, err := ParseWalHeader(tt.b)
		if !errs.Is(err, tt.code) || !strings.HasPrefix(err.Error(), tt.msg) {
			t.Errorf("%s: error %v (code %d), want code %d and %q", tt.name, err, errs.CodeOf(err), tt.code, tt.msg)
		}
	}
}

func TestLSN(t *testing.T) {
	good := []struct {
		s    string
		v    LSN
		norm string
	}{
		{"0/3000028", 0x3000028, "0/3000028"},
		{"0/0", 0, "0/0"},
		{"1/2C000100", 0x1_2C000100, "1/2C000100"},
		{"ffffffff/ffffffff", 0xFFFFFFFF_FFFFFFFF, "FFFFFFFF/FFFFFFFF"},
		{"00000000/00000001", 1, "0/1"},
	}
	for _, tt := range good {
		v, err := ParseLSN(tt.s)
		if err != nil || v != tt.v || v.String() != tt.norm {
			t.Errorf("ParseLSN(%q) = %v (%s), %v", tt.s, uint64(v), v, err)
		}
	}
	for _, s := range []string{"", "/", "0/", "/0", "0", "0/3000028/1", "g/0", "0/123456789", "0 /1", "-1/0"} {
		if _, err := ParseLSN(s); !errs.Is(err, errs.Format) {
			t.Errorf("ParseLSN(%q) error = %v", s, err)
		}
	}
}

func TestWalSegments(t *testing.T) {
	names := []struct {
		tli     uint32
		lsn     string
		segSize uint32
		want    string
	}{
		{1, "0/3000028", 16 << 20, "000000010000000000000003"},
		{1, "0/2C000100", 16 << 20, "00000001000000000000002C"},
		{2, "1/FF000000", 16 << 20, "0000000200000001000000FF"},
		{1, "0/FFFFFFFF", 16 << 20, "0000000100000000000000FF"},
		{1, "5/0", 16 << 20, "000000010000000500000000"},
		{3, "0/8000000", 64 << 20, "000000030000000000000002"},
		{1, "A/C0000000", 1 << 30, "000000010000000A00000003"},
		{1, "0/100000", 1 << 20, "000000010000000000000001"},
	}
	for _, tt := range names {
		lsn, _ := ParseLSN(tt.lsn)
		if got := WalSegmentName(tt.tli, lsn, tt.segSize); got != tt.want {
			t.Errorf("WalSegmentName(%d, %s, %d) = %s, want %s", tt.tli, tt.lsn, tt.segSize, got, tt.want)
		}
	}
	next := []struct {
		name, want string
		segSize    uint32
	}{
		{"000000010000000000000003", "000000010000000000000004", 16 << 20},
		{"0000000100000000000000FF", "000000010000000100000000", 16 << 20},
		{"000000010000000000000003", "000000010000000100000000", 1 << 30},
		{"0000000100000000000000FE", "0000000100000000000000FF", 16 << 20},
		{"00000001000000000000003F", "000000010000000100000000", 64 << 20},
	}
	for _, tt := range next {
		if got, err := WalSegmentNext(tt.name, tt.segSize); err != nil || got != tt.want {
			t.Errorf("WalSegmentNext(%s, %d) = %s, %v; want %s", tt.name, tt.segSize, got, err, tt.want)
		}
	}
	for _, tt := range []struct {
		name    string
		segSize uint32
	}{{"00000001000000000000004", 16 << 20}, {"000000010000000000000040", 64 << 20},
		{"0000000100000000000000ff", 16 << 20}, {"000000010000000000000001", 0},
		{"0000000100000000000000001", 16 << 20}, {"00000001FFFFFFFF000000FF", 16 << 20}} {
		if _, err := WalSegmentNext(tt.name, tt.segSize); !errs.Is(err, errs.Format) {
			t.Errorf("WalSegmentNext(%s, %d) error = %v", tt.name, tt.segSize, err)
		}
	}

	got, err := WalSegmentRange("0000000100000000000000FE", "000000010000000100000001", 16<<20)
	want := []string{"0000000100000000000000FE", "0000000100000000000000FF", "000000010000000100000000",
		"000000010000000100000001"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("WalSegmentRange = %v, %v", got, err)
	}
	got, err = WalSegmentRange("000000010000000000000003", "000000010000000000000003", 16<<20)
	if err != nil || !reflect.DeepEqual(got, []string{"000000010000000000000003"}) {
		t.Errorf("WalSegmentRange single = %v, %v", got, err)
	}
	for _, tt := range [][2]string{
		{"000000010000000000000004", "000000010000000000000003"},
		{"000000010000000000000003", "000000020000000000000004"},
		{"00000001000000000000000", "000000010000000000000003"},
		{"000000010000000000000000", "0000000100FFFFFF00000000"},
	} {
		if _, err := WalSegmentRange(tt[0], tt[1], 16<<20); !errs.Is(err, errs.Format) {
			t.Errorf("WalSegmentRange(%s, %s) error = %v", tt[0], tt[1], err)
		}
	}
}

func TestNamePredicates(t *testing.T) {
	tests := []struct {
		name                           string
		segment, partial, hist, backup bool
		dir                            string
	}{
		{"000000010000000000000003", true, false, false, false, "0000000100000000"},
		{"00000001000000000000000a", false, false, false, false, ""},
		{"00000001000000000000000", false, false, false, false, ""},
		{"0000000100000000000000033", false, false, false, false, "0000000100000000"},
		{"000000010000000000000003.partial", false, true, false, false, "0000000100000000"},
		{"000000010000000000000003.partia", false, false, false, false, "0000000100000000"},
		{"00000002.history", false, false, true, false, ""},
		{"0000000g.history", false, false, false, false, ""},
		{"00000002.History", false, false, false, false, ""},
		{"000000010000000000000003.00000028.backup", false, false, false, true, "0000000100000000"},
		{"000000010000000000000003.0000002x.backup", false, false, false, false, "0000000100000000"},
		{"", false, false, false, false, ""},
	}
	for _, tt := range tests {
		if IsWalSegment(tt.name) != tt.segment || IsWalPartial(tt.name) != tt.partial ||
			IsHistoryFile(tt.name) != tt.hist || IsBackupHistory(tt.name) != tt.backup || WalSegmentDir(tt.name) != tt.dir {
			t.Errorf("%q: segment=%v partial=%v history=%v backup=%v dir=%q", tt.name, IsWalSegment(tt.name),
				IsWalPartial(tt.name), IsHistoryFile(tt.name), IsBackupHistory(tt.name), WalSegmentDir(tt.name))
		}
	}
}
