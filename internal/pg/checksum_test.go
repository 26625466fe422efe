package pg

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"reflect"
	"testing"
)

// makePage returns a page with pd_upper set and a valid checksum for blkno.
func makePage(r *rand.Rand, blkno uint32) []byte {
	p := make([]byte, PageSize)
	for i := 24; i < PageSize; i++ {
		p[i] = byte(r.Uint32())
	}
	binary.LittleEndian.PutUint16(p[12:], 40)   // pd_lower
	binary.LittleEndian.PutUint16(p[14:], 8000) // pd_upper
	binary.LittleEndian.PutUint16(p[8:], PageChecksum(p, blkno))
	return p
}

func TestPageChecksumIgnoresStoredChecksum(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	p := makePage(r, 7)
	c := PageChecksum(p, 7)
	q := bytes.Clone(p)
	q[8], q[9] = 0xAB, 0xCD
	if PageChecksum(q, 7) != c {
		t.Error("checksum depends on pd_checksum")
	}
	q[10] ^= 1 // pd_flags is covered
	if PageChecksum(q, 7) == c {
		t.Error("checksum ignores pd_flags")
	}
	if PageChecksum(p, 8) == c {
		t.Error("checksum ignores the block number")
	}
	if !bytes.Equal(p[8:10], binary.LittleEndian.AppendUint16(nil, c)) {
		t.Error("page modified")
	}
	if PageChecksum(p[:100], 0) != 0 {
		t.Error("short page")
	}
}

func TestPageChecker(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	build := func(seg uint32, n int, corrupt map[int]string) []byte {
		var f []byte
		for i := 0; i < n; i++ {
			var p []byte
			switch corrupt[i] {
			case "zero":
				p = make([]byte, PageSize)
			case "zero-dirty": // pd_upper 0 but not all zero
				p = make([]byte, PageSize)
				p[5000] = 1
			case "upper0": // valid checksum but pd_upper 0: still an error
				p = makePage(r, seg*SegmentPages+uint32(i))
				p[14], p[15] = 0, 0
				binary.LittleEndian.PutUint16(p[8:], PageChecksum(p, seg*SegmentPages+uint32(i)))
			case "flip":
				p = makePage(r, seg*SegmentPages+uint32(i))
				p[300] ^= 0x80
			case "badsum":
				p = makePage(r, seg*SegmentPages+uint32(i))
				p[8]++
			default:
				p = makePage(r, seg*SegmentPages+uint32(i))
			}
			f = append(f, p...)
		}
		return f
	}
	tests := []struct {
		name    string
		seg     uint32
		file    []byte
		valid   bool
		aligned bool
		errors  []uint32
	}{
		{"empty", 0, nil, true, true, nil},
		{"good", 0, build(0, 12, nil), true, true, nil},
		{"zero page", 0, build(0, 3, map[int]string{1: "zero"}), true, true, nil},
		{"all zero", 0, make([]byte, 5*PageSize), true, true, nil},
		{"dirty zero", 0, build(0, 3, map[int]string{1: "zero-dirty"}), false, true, []uint32{1}},
		{"upper 0 with data", 0, build(0, 3, map[int]string{2: "upper0"}), false, true, []uint32{2}},
		{"errors", 0, build(0, 12, map[int]string{3: "flip", 4: "badsum", 5: "flip", 10: "badsum"}),
			false, true, []uint32{3, 4, 5, 10}},
		{"segment 2", 2, build(2, 4, map[int]string{0: "flip", 3: "flip"}), false, true,
			[]uint32{2 * SegmentPages, 2*SegmentPages + 3}},
		{"wrong segment", 1, build(0, 2, map[int]string{1: "zero"}), false, true, []uint32{SegmentPages}},
		{"misaligned", 0, build(0, 3, nil)[:3*PageSize-100], false, false, nil},
		{"misaligned with errors", 0, build(0, 3, map[int]string{0: "flip"})[:2*PageSize+512], false, false, nil},
		{"tiny", 0, []byte{1, 2, 3}, false, false, nil},
	}
	for _, tt := range tests {
		for _, chunk := range []int{1 << 20, PageSize, 1000, 8191, 8193, 7} {
			if chunk == 7 && len(tt.file) > 3*PageSize {
				continue
			}
			pc := NewPageChecker(tt.seg)
			for i := 0; i < len(tt.file); i += chunk {
				if n, err := pc.Write(tt.file[i:min(i+chunk, len(tt.file))]); err != nil || n != min(chunk, len(tt.file)-i) {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			valid, aligned, errors := pc.Result()
			if valid != tt.valid || aligned != tt.aligned || !reflect.DeepEqual(errors, tt.errors) {
				t.Errorf("%s (chunk %d): valid=%v aligned=%v errors=%v; want %v %v %v", tt.name, chunk,
					valid, aligned, errors, tt.valid, tt.aligned, tt.errors)
			}
			for _, b := range errors {
				off := pc.PageOffset(b)
				if off < 0 || off+PageSize > int64(len(tt.file)) || PageValid(tt.file[off:off+PageSize], b) {
					t.Errorf("%s: PageOffset(%d) = %d does not point at the bad page", tt.name, b, off)
				}
			}
		}
	}
	// Reset reuses the checker.
	pc := NewPageChecker(0)
	pc.Write(build(0, 2, map[int]string{0: "flip"}))
	pc.Reset(0)
	pc.Write(build(0, 2, nil))
	if valid, aligned, errors := pc.Result(); !valid || !aligned || errors != nil {
		t.Errorf("after Reset: %v %v %v", valid, aligned, errors)
	}
}

func TestPageErrorsFormat(t *testing.T) {
	tests := []struct {
		pages []uint32
		json  string
		warn  string
	}{
		{[]uint32{}, "[]", ""},
		{[]uint32{10}, "[10]", "invalid page checksum found in file F at page 10"},
		{[]uint32{3, 4, 5, 10}, "[[3,5],10]", "invalid page checksums found in file F at pages 3-5, 10"},
		{[]uint32{3, 4}, "[[3,4]]", "invalid page checksums found in file F at pages 3-4"},
		{[]uint32{0, 2, 4}, "[0,2,4]", "invalid page checksums found in file F at pages 0, 2, 4"},
		{[]uint32{1, 2, 3, 7, 8, 131072}, "[[1,3],[7,8],131072]",
			"invalid page checksums found in file F at pages 1-3, 7-8, 131072"},
	}
	for _, tt := range tests {
		if got := PageErrorsJSON(tt.pages); got != tt.json {
			t.Errorf("PageErrorsJSON(%v) = %s, want %s", tt.pages, got, tt.json)
		}
		if len(tt.pages) > 0 {
			if got := PageErrorsWarning("F", tt.pages); got != tt.warn {
				t.Errorf("PageErrorsWarning(%v) = %q, want %q", tt.pages, got, tt.warn)
			}
		}
	}
}

func BenchmarkPageChecker(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	var f []byte
	for i := 0; i < 128; i++ {
		f = append(f, makePage(r, uint32(i))...)
	}
	b.SetBytes(int64(len(f)))
	for b.Loop() {
		pc := NewPageChecker(0)
		pc.Write(f)
		if v, _, _ := pc.Result(); !v {
			b.Fatal("invalid")
		}
	}
}

// The vector fold of the rows (where the CPU has one) equals the plain Go
// one on random pages, which TestRealCluster (integration) ties to PostgreSQL.
func TestChecksumRowsMatchGo(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	page := make([]byte, PageSize)
	for range 200 {
		for i := range page {
			page[i] = byte(r.Uint32())
		}
		a, b := checksumBaseOffsets, checksumBaseOffsets
		a[r.IntN(32)] ^= r.Uint32()
		b = a
		checksumRows(page, &a)
		checksumRowsGo(page, &b)
		if a != b {
			t.Fatalf("lanes differ:\n%x\n%x", a, b)
		}
	}
}

func BenchmarkPageChecksum(b *testing.B) {
	page := makePage(rand.New(rand.NewPCG(7, 8)), 3)
	b.SetBytes(PageSize)
	for b.Loop() {
		PageChecksum(page, 3)
	}
}
