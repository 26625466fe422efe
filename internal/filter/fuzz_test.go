package filter

import (
	"bytes"
	"io"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/errs"
)

// readAllLimit reads r up to limit bytes (a decompression bomb must not eat
// the fuzzer's memory).
func readAllLimit(r io.Reader, limit int64) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r, limit))
}

func FuzzDecompress(f *testing.F) {
	for i, ct := range []CompressType{Gz, Bz2, Lz4, Zst} {
		for _, d := range [][]byte{nil, []byte("hello hello hello hello"), testData(3000, 1)} {
			f.Add(uint8(i), compressBytes(f, d, ct, DefaultLevel(ct)))
		}
	}
	f.Add(uint8(0), []byte{})
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		types := []CompressType{Gz, Bz2, Lz4, Zst, None}
		ct := types[int(which)%len(types)]
		r, err := NewDecompressor(bytes.NewReader(data), ct)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		_, err = readAllLimit(r, 64<<20)
		if err != nil && ct != None && !errs.Is(err, errs.Format) {
			t.Fatalf("%s: error without FormatError code: %v", ct, err)
		}
	})
}

func FuzzDecrypt(f *testing.F) {
	salt := [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
	for _, d := range [][]byte{nil, []byte("x"), testData(100, 1)} {
		e, _ := encryptBytesSalt(d, "pass", salt)
		f.Add(e, "pass")
		f.Add(e, "other")
	}
	f.Add([]byte("Salted__"), "pass")
	f.Fuzz(func(t *testing.T, data []byte, pass string) {
		if pass == "" {
			pass = "p"
		}
		plain, err := DecryptBytes(data, pass)
		if err != nil && !errs.Is(err, errs.Crypto) {
			t.Fatalf("error without CryptoError code: %v", err)
		}
		r, _ := NewDecryptor(iotestHalfReader(data), pass)
		plain2, err2 := io.ReadAll(r)
		if (err == nil) != (err2 == nil) || (err == nil && !bytes.Equal(plain, plain2)) {
			t.Fatalf("bytes and stream disagree: %v / %v", err, err2)
		}
		if err == nil {
			// Whatever decrypts re-encrypts (with the same salt) to the input.
			var s [8]byte
			copy(s[:], data[8:16])
			again, _ := encryptBytesSalt(plain, pass, s)
			if !bytes.Equal(again, data) {
				t.Fatal("decrypt/encrypt round trip differs")
			}
		}
	})
}
