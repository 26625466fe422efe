package test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/filter"
	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// A relation file larger than filter.ParallelMin (8 MiB) is compressed on
// two goroutines at process-max 2 (gz chunks, lz4 and zst frames) and
// restored with its hash and writes on a second goroutine: pgBackRest 2.45
// restores what pgbr stored so, and pgbr restores it too, to the same
// data. The lz4 and zst files are several frames, which pgBackRest's
// verify and pgbr's read as one stream.
func TestInteropLargeFileParallel(t *testing.T) {
	testenv.RequirePgBackRest(t)
	t.Parallel()
	for _, compress := range []string{"gz", "lz4", "zst"} {
		t.Run(compress, func(t *testing.T) {
			e := testenv.NewEnv(t, testenv.EnvOptions{Global: []string{"compress-type=" + compress, "process-max=2"}})
			// About 14 MiB in one relation file.
			e.Cluster.Exec("postgres", "create table big(id int, v text); insert into big select g, md5(g::text) || md5((g*7)::text) from generate_series(1,150000) g")
			if size, _ := strconv.Atoi(e.Cluster.QueryOne("postgres", "select pg_relation_size('big')")); size <= filter.ParallelMin {
				t.Fatalf("relation big is %d bytes, not above the %d of a parallel file", size, filter.ParallelMin)
			}
			want := e.Cluster.QueryOne("postgres", "select md5(string_agg(id::text || v, ',' order by id)) from big")
			e.MustRun("stanza-create")
			e.MustRun("backup", "--type=full")
			if compress != "gz" {
				rel := e.Cluster.QueryOne("postgres", "select pg_relation_filepath('big')")
				stored, _ := filepath.Glob(filepath.Join(e.Repo, "backup", e.Stanza, "*F", "pg_data", rel+"."+compress))
				if len(stored) != 1 {
					t.Fatalf("no one stored file of big: %v", stored)
				}
				data, err := os.ReadFile(stored[0])
				if err != nil {
					t.Fatal(err)
				}
				count := zstFrames
				if compress == "lz4" {
					count = lz4Frames
				}
				n, err := count(data)
				if err != nil || n < 2 {
					t.Fatalf("%s: %d %s frames (%v), want several", stored[0], n, compress, err)
				}
				t.Logf("big is stored in %d bytes, %d frames", len(data), n)
				for _, tool := range []string{"pgbackrest", "pgbr"} {
					args := []string{"verify", "--output=text", "--verbose"}
					var out string
					if tool == "pgbr" {
						out = e.MustRun(args...)
					} else {
						out = e.MustPgBackRest(args...)
					}
					if !strings.Contains(out, "status: valid") || regexp.MustCompile(`(missing|checksum invalid|size invalid|other): [1-9]`).MatchString(out) {
						t.Fatalf("%s verify:\n%s", tool, out)
					}
				}
			}
			e.Cluster.Stop()
			for _, tool := range []string{"pgbackrest", "pgbr"} {
				r := restoreWith(t, e, tool)
				got := r.QueryOne("postgres", "select md5(string_agg(id::text || v, ',' order by id)) from big")
				if got != want {
					t.Fatalf("%s restored big with digest %s, want %s", tool, got, want)
				}
				if out := r.RestoredLog(); strings.Contains(out, "invalid page") {
					t.Fatalf("%s restore: %s", tool, out)
				}
				r.Stop()
			}
		})
	}
}

// countFrames counts the frames of b, which must be whole frames end to
// end; frameSize returns the size of the frame b starts with, which may
// be more than b holds (a cut frame), or an error when none starts there.
func countFrames(b []byte, frameSize func(b []byte) (int, error)) (int, error) {
	n := 0
	for len(b) > 0 {
		size, err := frameSize(b)
		if err != nil {
			return n, fmt.Errorf("frame %d: %v (%d bytes before the end)", n+1, err, len(b))
		}
		if len(b) < size {
			return n, fmt.Errorf("frame %d is cut", n+1)
		}
		b = b[size:]
		n++
	}
	return n, nil
}

// errCut is a frame that ends after the bytes given.
var errCut = errors.New("cut")

// zstFrames counts the zstd frames of b: each is a header, blocks up to
// the last and an optional checksum.
func zstFrames(b []byte) (int, error) {
	return countFrames(b, func(b []byte) (int, error) {
		if len(b) < 6 || binary.LittleEndian.Uint32(b) != 0xFD2FB528 {
			return 0, errors.New("no zstd frame")
		}
		fhd := b[4]
		single := fhd>>5&1 == 1
		size := 5 + [...]int{0, 1, 2, 4}[fhd&3] // descriptor, dictionary ID
		if !single {
			size++ // window descriptor
		}
		switch fcs := fhd >> 6; {
		case fcs == 0 && single:
			size++
		case fcs > 0:
			size += 1 << fcs
		}
		for last := false; !last; {
			if len(b) < size+3 {
				return 0, errCut
			}
			h := uint32(b[size]) | uint32(b[size+1])<<8 | uint32(b[size+2])<<16
			last = h&1 == 1
			size += 3
			if h>>1&3 == 1 { // RLE: one byte
				size++
			} else {
				size += int(h >> 3)
			}
		}
		if fhd>>2&1 == 1 {
			size += 4 // content checksum
		}
		return size, nil
	})
}

// lz4Frames counts the lz4 frames of b: each is a header, blocks up to
// the end mark and an optional checksum.
func lz4Frames(b []byte) (int, error) {
	return countFrames(b, func(b []byte) (int, error) {
		if len(b) < 7 || binary.LittleEndian.Uint32(b) != 0x184D2204 {
			return 0, errors.New("no lz4 frame")
		}
		flg := b[4]
		size := 7 // magic, FLG, BD, header checksum
		if flg&0x08 != 0 {
			size += 8 // content size
		}
		if flg&0x01 != 0 {
			size += 4 // dictionary ID
		}
		for {
			if len(b) < size+4 {
				return 0, errCut
			}
			bs := binary.LittleEndian.Uint32(b[size:])
			size += 4
			if bs == 0 {
				break
			}
			size += int(bs &^ (1 << 31))
			if flg&0x10 != 0 {
				size += 4 // block checksum
			}
		}
		if flg&0x04 != 0 {
			size += 4 // content checksum
		}
		return size, nil
	})
}
