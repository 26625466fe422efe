package filter

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// parTypes are the types a parStream compresses, with their chunk sizes.
var parTypes = []struct {
	ct    CompressType
	chunk int
}{{Gz, parGzChunk}, {Lz4, parLz4Chunk}, {Zst, parZstChunk}}

// A failing destination fails the stream with its error, on a Write or
// at Close.
func TestParStreamWriteError(t *testing.T) {
	for _, pt := range parTypes {
		data := testData(5*pt.chunk, 3)
		w, err := newCompressor(&failWriter{after: 100_000}, pt.ct, DefaultLevel(pt.ct), 2)
		if err != nil {
			t.Fatal(err)
		}
		var werr error
		for off := 0; off < len(data) && werr == nil; off += 65536 {
			_, werr = w.Write(data[off : off+65536])
		}
		cerr := w.Close()
		if err := errors.Join(werr, cerr); err == nil || !bytes.Contains([]byte(err.Error()), []byte("disk full")) {
			t.Fatalf("%s: error %v does not name the cause", pt.ct, err)
		}
	}
	if len(parSlots) != 0 {
		t.Fatalf("%d slots still taken", len(parSlots))
	}
}

// More large streams at once than CPUs, gz, lz4 and zst together: the chunks
// that find no free slot are compressed by their stream itself, in order,
// and every stream still reads back; afterwards every slot is free again.
func TestParStreamManyStreams(t *testing.T) {
	n := 3*cap(parSlots) + 1
	data := make([][]byte, len(parTypes))
	for i, pt := range parTypes {
		data[i] = testData(3*pt.chunk+999, 13)
	}
	outs := make([]bytes.Buffer, n)
	errc := make(chan error, n)
	for i := range n {
		go func() {
			pt := parTypes[i%len(parTypes)]
			w, err := newCompressor(&outs[i], pt.ct, DefaultLevel(pt.ct), 4)
			if err == nil {
				_, err = w.Write(data[i%len(parTypes)])
				err = errors.Join(err, w.Close())
			}
			errc <- err
		}()
	}
	for range n {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	for i := range outs {
		ct := parTypes[i%len(parTypes)].ct
		if back, err := decompressBytes(outs[i].Bytes(), ct); err != nil || !bytes.Equal(back, data[i%len(parTypes)]) {
			t.Fatalf("%s stream %d read back %d bytes (%v)", ct, i, len(back), err)
		}
	}
	if len(parSlots) != 0 {
		t.Fatalf("%d slots still taken", len(parSlots))
	}
}

// parCompress compresses data with ct at level on conc goroutines, in writes of 70000
// bytes.
func parCompress(t *testing.T, ct CompressType, data []byte, level, conc int) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := newCompressor(&out, ct, level, conc)
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(data); off += 70000 {
		if _, err := w.Write(data[off:min(off+70000, len(data))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// checkParCommand compresses in with ct at level on 2 goroutines and checks
// that the format's command (cmd) reads the stream back to in, and that it
// is at most 2 % larger than the serial stream.
func checkParCommand(t *testing.T, ct CompressType, in []byte, level int, cmd ...string) {
	t.Helper()
	out := parCompress(t, ct, in, level, 2)
	if got := run(t, out, cmd[0], cmd[1:]...); !bytes.Equal(got, in) {
		t.Fatalf("%s read %d bytes, want %d", strings.Join(cmd, " "), len(got), len(in))
	}
	serial := compressBytes(t, in, ct, level)
	if len(out) > len(serial)+len(serial)/50 {
		t.Errorf("%s: %d bytes, serial %d", ct, len(out), len(serial))
	}
}
