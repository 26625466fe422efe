package repo

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/errs"
)

// The unencrypted pgBackRest 2.60 block incremental fixture (read only).
// blockFixtureRepo is the backup folder of the pgBackRest 2.60 zst fixture:
// in shared/ beside the checkout (CI's copy), else /work/shared.
var blockFixtureRepo = func() string {
	_, file, _, _ := runtime.Caller(0)
	rel := filepath.Join("fixtures", "pgbackrest-2.60", "pg18-block-zst", "repo", "backup", "fixture")
	d := filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", rel)
	if _, err := os.Stat(d); err == nil {
		return filepath.Clean(d)
	}
	return filepath.Join("/work/shared", rel)
}()

type fixtureMap struct {
	label, file            string
	data                   []byte
	blockSize, checksum    uint64
	size                   uint64
	refIndex, refsInBackup int
}

// fixtureMaps returns every block map stored by a backup of the fixture.
func fixtureMaps(t testing.TB) []fixtureMap {
	t.Helper()
	manifests, _ := filepath.Glob(filepath.Join(blockFixtureRepo, "*", "backup.manifest"))
	if len(manifests) != 4 {
		t.Fatalf("fixture %s: %d manifests, expected 4", blockFixtureRepo, len(manifests))
	}
	var maps []fixtureMap
	for _, mf := range manifests {
		data, err := os.ReadFile(mf)
		if err != nil {
			t.Fatal(err)
		}
		m, err := ParseManifest(data)
		if err != nil {
			t.Fatalf("%s: %v", mf, err)
		}
		if !m.Backup.BlockIncr || !m.Backup.BundleRaw {
			t.Fatalf("%s: backup-block-incr %v, backup-bundle-raw %v", mf, m.Backup.BlockIncr, m.Backup.BundleRaw)
		}
		if err := m.CheckRestorable(); err != nil {
			t.Fatal(err)
		}
		bundles := map[uint64][]byte{}
		for i := range m.Files {
			f := &m.Files[i]
			if f.BlockIncr == 0 || f.Reference != "" {
				continue
			}
			if f.BundleID == 0 {
				t.Fatalf("%s: %s not bundled", mf, f.Name)
			}
			b, ok := bundles[f.BundleID]
			if !ok {
				if b, err = os.ReadFile(filepath.Join(filepath.Dir(mf), "bundle", itoa(f.BundleID))); err != nil {
					t.Fatal(err)
				}
				bundles[f.BundleID] = b
			}
			start := f.BundleOffset + f.RepoSize - f.BlockIncrMap
			cs := f.BlockIncrChecksum
			if cs == 0 {
				cs = BlockIncrChecksumSizeDefault
			}
			maps = append(maps, fixtureMap{label: m.Backup.Label, file: f.Name, data: b[start : start+f.BlockIncrMap],
				blockSize: f.BlockIncr * BlockIncrSizeFactor, checksum: cs, size: f.Size,
				refIndex: slices.Index(m.Backup.Reference, m.Backup.Label), refsInBackup: len(m.Backup.Reference)})
		}
	}
	return maps
}

func itoa(n uint64) string { return string(appendUint(nil, n)) }

func appendUint(b []byte, n uint64) []byte {
	if n >= 10 {
		b = appendUint(b, n/10)
	}
	return append(b, byte('0'+n%10))
}

// TestBlockMapFixture decodes every block map of a real pgBackRest 2.60
// repository, checks it against the manifest and encodes it back to the
// same bytes.
func TestBlockMapFixture(t *testing.T) {
	maps := fixtureMaps(t)
	var multiRef, multiSuper, incrMaps int
	for _, fm := range maps {
		items, err := ParseBlockMap(fm.data, fm.blockSize, fm.checksum)
		if err != nil {
			t.Fatalf("%s %s: %v", fm.label, fm.file, err)
		}
		if want := (fm.size + fm.blockSize - 1) / fm.blockSize; uint64(len(items)) != want {
			t.Fatalf("%s %s: %d blocks, expected %d", fm.label, fm.file, len(items), want)
		}
		refs, supers := map[uint64]bool{}, map[[3]uint64]bool{}
		for _, it := range items {
			// Blocks come from this backup or from earlier ones of the set.
			if it.Reference > uint64(fm.refIndex) || it.BundleID == 0 || it.Size == 0 ||
				it.Block*fm.blockSize >= it.SuperBlockSize || len(it.Checksum) != int(fm.checksum) {
				t.Fatalf("%s %s: bad item %+v", fm.label, fm.file, it)
			}
			refs[it.Reference] = true
			supers[[3]uint64{it.Reference, it.BundleID, it.Offset}] = true
		}
		if !refs[uint64(fm.refIndex)] {
			t.Fatalf("%s %s: stored in this backup but no block from it", fm.label, fm.file)
		}
		if len(refs) > 1 {
			multiRef++
		}
		if len(supers) > 1 {
			multiSuper++
		}
		if fm.refIndex > 0 {
			incrMaps++
		}
		enc, err := AppendBlockMap(nil, items, fm.blockSize, fm.checksum)
		if err != nil {
			t.Fatalf("%s %s: encode: %v", fm.label, fm.file, err)
		}
		if !bytes.Equal(enc, fm.data) {
			t.Fatalf("%s %s: encoded map differs\n got %x\nwant %x", fm.label, fm.file, enc, fm.data)
		}
	}
	t.Logf("%d maps, %d in diff/incr backups, %d with blocks of several backups, %d with several super blocks",
		len(maps), incrMaps, multiRef, multiSuper)
	if len(maps) < 100 || multiRef == 0 || multiSuper == 0 || incrMaps == 0 {
		t.Fatalf("fixture does not exercise the format: %d maps, %d incr, %d multi-reference, %d multi-super-block",
			len(maps), incrMaps, multiRef, multiSuper)
	}
}

// TestBlockMapErrors: every truncation of a real map, and malformed
// headers and sizes, give a FormatError.
func TestBlockMapErrors(t *testing.T) {
	maps := fixtureMaps(t)
	fm := maps[0]
	for _, m := range maps {
		if len(m.data) > len(fm.data) && len(m.data) < 400 {
			fm = m
		}
	}
	for n := 0; n < len(fm.data); n++ {
		if _, err := ParseBlockMap(fm.data[:n], fm.blockSize, fm.checksum); errs.CodeOf(err) != errs.Format {
			t.Fatalf("prefix %d of %d: %v", n, len(fm.data), err)
		}
	}
	if _, err := ParseBlockMap(append(slices.Clone(fm.data), 0), fm.blockSize, fm.checksum); errs.CodeOf(err) != errs.Format {
		t.Fatalf("trailing byte: %v", err)
	}
	bad := []struct {
		name      string
		data      []byte
		bs, cs    uint64
		substring string
	}{
		{"version", []byte{1, 1, 8, 0, 0, 0, 0, 0, 0}, 8192, 6, "version"},
		{"block size", fm.data, 0, 6, "block size"},
		{"block size unit", fm.data, 8191, 6, "block size"},
		{"checksum size", fm.data, 8192, 0, "checksum size"},
		{"checksum size large", fm.data, 8192, 17, "checksum size"},
		{"varint", []byte{0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, 8192, 6, "varint"},
		{"huge block total", []byte{0, 1, 5<<3 | 4 | 1, 0xfe, 0xff, 0xff, 0x7f}, 8192, 6, "truncated"},
	}
	for _, b := range bad {
		_, err := ParseBlockMap(b.data, b.bs, b.cs)
		if errs.CodeOf(err) != errs.Format || !bytes.Contains([]byte(err.Error()), []byte(b.substring)) {
			t.Errorf("%s: %v", b.name, err)
		}
	}
}

// TestBlockMapRoundTrip encodes hand-made maps with continued super blocks,
// gaps, partial super blocks and changing super block sizes.
func TestBlockMapRoundTrip(t *testing.T) {
	for _, items := range handMadeMaps() {
		enc, err := AppendBlockMap(nil, items, 8192, 6)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseBlockMap(enc, 8192, 6)
		if err != nil {
			t.Fatalf("%v\n%x", err, enc)
		}
		if !reflect.DeepEqual(got, items) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, items)
		}
	}
}

func handMadeMaps() [][]BlockMapItem {
	cs := func(i int) []byte { return []byte{byte(i), 1, 2, 3, 4, byte(i >> 8)} }
	const bs = 8192
	var full []BlockMapItem // full backup: 10 blocks in 3 super blocks of 4, 4 and 2 blocks
	for i := 0; i < 10; i++ {
		sb := uint64(i / 4)
		size := uint64(4 * bs)
		if sb == 2 {
			size = 2*bs - 100 // last block partial
		}
		// super blocks of a backup are stored one after the other
		full = append(full, BlockMapItem{Reference: 0, SuperBlockSize: size, BundleID: 1, Offset: 1000 + sb*4000 + sb*(sb-1)/2*7,
			Size: 4000 + sb*7, Block: uint64(i % 4), Checksum: cs(i)})
	}
	// incr: blocks 1, 2 and 9 changed (one new super block of 3 blocks in
	// bundle 2 at offset 0), the rest from the full backup.
	incr := slices.Clone(full)
	for n, b := range []int{1, 2, 9} {
		incr[b] = BlockMapItem{Reference: 1, SuperBlockSize: 3*bs - 100, BundleID: 2, Offset: 0, Size: 3000,
			Block: uint64(n), Checksum: cs(100 + b)}
	}
	// and a second incr whose new super block sits after a gap.
	incr2 := slices.Clone(incr)
	incr2[5] = BlockMapItem{Reference: 2, SuperBlockSize: bs, BundleID: 3, Offset: 777, Size: 900, Block: 0, Checksum: cs(55)}
	one := []BlockMapItem{{Reference: 0, SuperBlockSize: 100, BundleID: 0, Offset: 0, Size: 50, Block: 0, Checksum: cs(1)}}
	return [][]BlockMapItem{full, incr, incr2, one}
}

// FuzzParseBlockMap: no input makes the parser panic, and a map it accepts
// and the encoder can write decodes again to the same blocks.
func FuzzParseBlockMap(f *testing.F) {
	for _, fm := range fixtureMaps(f) {
		if fm.blockSize == 8192 && fm.checksum == 6 && len(fm.data) < 2000 {
			f.Add(fm.data)
		}
	}
	for _, items := range handMadeMaps() {
		enc, err := AppendBlockMap(nil, items, 8192, 6)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		items, err := ParseBlockMap(data, 8192, 6)
		if err != nil {
			if errs.CodeOf(err) != errs.Format {
				t.Fatalf("error code %v: %v", errs.CodeOf(err), err)
			}
			return
		}
		enc, err := AppendBlockMap(nil, items, 8192, 6)
		if err != nil {
			return // valid encoding of a map a backup would not build
		}
		again, err := ParseBlockMap(enc, 8192, 6)
		if err != nil || !reflect.DeepEqual(again, items) {
			t.Fatalf("re-encoded map: %v\n%+v\n%+v", err, again, items)
		}
	})
}
