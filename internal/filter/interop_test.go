package filter

import (
	"bytes"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/errs"
)

// tool returns the path of a command line tool the interop tests need; the
// test fails (never skips) when it is missing.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("interop test needs %q: install it (apt-get install -y lz4 zstd bzip2 gzip openssl): %v", name, err)
	}
	return p
}

func run(t *testing.T, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(tool(t, name), args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out.Bytes()
}

func compressBytes(t testing.TB, data []byte, ct CompressType, level int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewCompressor(&buf, ct, level)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func decompressBytes(data []byte, ct CompressType) ([]byte, error) {
	r, err := NewDecompressor(bytes.NewReader(data), ct)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

var cliDecompress = map[CompressType][]string{
	Gz:  {"gzip", "-dc"},
	Bz2: {"bzip2", "-dc"},
	Lz4: {"lz4", "-dc"},
	Zst: {"zstd", "-dcq"},
}

func TestCLIReadsOurStreams(t *testing.T) {
	sizes := []int{0, 1, 100, 65536, 65537, 1<<20 + 3}
	for _, ct := range []CompressType{Gz, Bz2, Lz4, Zst} {
		lo, hi := LevelRange(ct)
		for _, level := range []int{lo, DefaultLevel(ct), hi} {
			for _, size := range sizes {
				if ct == Bz2 && size > 70000 && level != DefaultLevel(ct) {
					continue // keep the slow codec quick
				}
				data := testData(size, uint64(size)+7)
				z := compressBytes(t, data, ct, level)
				if len(z) == 0 {
					t.Fatalf("%s level %d size %d: empty stream", ct, level, size)
				}
				c := cliDecompress[ct]
				if got := run(t, z, c[0], c[1:]...); !bytes.Equal(got, data) {
					t.Errorf("%s level %d size %d: %s output differs", ct, level, size, c[0])
				}
			}
		}
	}
}

func TestStreamHeaders(t *testing.T) {
	tests := []struct {
		ct     CompressType
		level  int
		prefix string // hex
	}{
		{Gz, 6, "1f8b08000000000000" + "03"},
		{Bz2, 9, "425a6839"},
		{Bz2, 1, "425a6831"},
		{Lz4, 1, "04224d18"},
		{Zst, 3, "28b52ffd"},
	}
	for _, tt := range append(tests, tests...) { // twice: fresh and pooled encoders
		z := compressBytes(t, testData(1000, 1), tt.ct, tt.level)
		got := hex.EncodeToString(z)
		want := tt.prefix
		if tt.ct == Gz { // XFL (byte 8) depends on the level; check the rest
			got = got[:16] + "00" + got[18:]
		}
		if !strings.HasPrefix(got, want) {
			t.Errorf("%s: stream starts %s, want %s", tt.ct, hex.EncodeToString(z[:min(len(z), 8)]), want)
		}
	}
	// lz4 frame descriptor: version 01, content checksum on, no content
	// size, block max 64 KB.
	z := compressBytes(t, testData(200000, 2), Lz4, 1)
	flg, bd := z[4], z[5]
	if flg&0xC0 != 0x40 || flg&0x04 == 0 || flg&0x08 != 0 || bd != 0x40 {
		t.Errorf("lz4 FLG %#x BD %#x: want version 01, content checksum, no size, 64KB blocks", flg, bd)
	}
}

func TestWeReadCLIStreams(t *testing.T) {
	dir := t.TempDir()
	data := testData(3<<20+11, 99)
	small := testData(1000, 98)
	cases := []struct {
		ct   CompressType
		name string
		args []string
	}{
		{Gz, "gzip", []string{"-c", "-6"}},
		{Gz, "gzip", []string{"-c", "-1"}},
		{Gz, "gzip", []string{"-c", "-9"}},
		{Bz2, "bzip2", []string{"-c", "-9"}},
		{Bz2, "bzip2", []string{"-c", "-1"}},
		{Lz4, "lz4", []string{"-c", "-1"}},
		{Lz4, "lz4", []string{"-c", "-9", "--content-size"}},
		{Lz4, "lz4", []string{"-c", "-B4", "-BD", "--no-frame-crc"}},
		{Lz4, "lz4", []string{"-c", "-B7", "-BX"}},
		{Zst, "zstd", []string{"-c", "-q", "-3"}},
		{Zst, "zstd", []string{"-c", "-q", "-19", "--content-size"}},
		{Zst, "zstd", []string{"-c", "-q", "--fast=5", "--no-check"}},
	}
	for _, c := range cases {
		for _, d := range [][]byte{data, small, {}} {
			z := run(t, d, c.name, c.args...)
			got, err := decompressBytes(z, c.ct)
			if err != nil || !bytes.Equal(got, d) {
				t.Errorf("%s %v (%d bytes): %v, equal=%v", c.name, c.args, len(d), err, bytes.Equal(got, d))
			}
		}
		// Concatenated streams decode as one.
		z1 := run(t, small, c.name, c.args...)
		z2 := run(t, data[:100000], c.name, c.args...)
		got, err := decompressBytes(append(bytes.Clone(z1), z2...), c.ct)
		want := append(bytes.Clone(small), data[:100000]...)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s %v concatenated: %v, equal=%v", c.name, c.args, err, bytes.Equal(got, want))
		}
	}
	_ = dir
}

func TestDecompressCorrupt(t *testing.T) {
	data := testData(300000, 5)
	for _, ct := range []CompressType{Gz, Bz2, Lz4, Zst} {
		z := compressBytes(t, data, ct, DefaultLevel(ct))
		cases := map[string][]byte{
			"empty":          {},
			"garbage":        []byte("this is not compressed at all, not even a little bit"),
			"truncated head": z[:5],
			"truncated half": z[:len(z)/2],
			"truncated tail": z[:len(z)-1],
			"trailing junk":  append(bytes.Clone(z), "junk"...),
			"flipped":        func() []byte { b := bytes.Clone(z); b[len(b)/2] ^= 0x55; return b }(),
		}
		for name, in := range cases {
			got, err := decompressBytes(in, ct)
			if err == nil {
				if name == "flipped" && !bytes.Equal(got, data) {
					t.Errorf("%s %s: corrupt data returned without error", ct, name)
				} else if name != "flipped" {
					t.Errorf("%s %s: no error (%d bytes)", ct, name, len(got))
				}
				continue
			}
			if !errs.Is(err, errs.Format) {
				t.Errorf("%s %s: error %v has code %d, want FormatError", ct, name, err, errs.CodeOf(err))
			}
		}
	}
}

func TestCompressTypes(t *testing.T) {
	for _, tt := range []struct {
		s   string
		ext string
		lvl int
	}{{"none", "", 0}, {"gz", ".gz", 6}, {"bz2", ".bz2", 9}, {"lz4", ".lz4", 1}, {"zst", ".zst", 3}} {
		ct, err := ParseCompressType(tt.s)
		if err != nil || ct.Ext() != tt.ext || DefaultLevel(ct) != tt.lvl {
			t.Errorf("%s: %v %q %d", tt.s, err, ct.Ext(), DefaultLevel(ct))
		}
		if tt.ext != "" && CompressTypeFromName("000000010000000000000003-"+strings.Repeat("a", 40)+tt.ext) != ct {
			t.Errorf("CompressTypeFromName %s", tt.ext)
		}
	}
	for _, s := range []string{"", "xz", "gzip", "GZ", "lz"} {
		if _, err := ParseCompressType(s); !errs.Is(err, errs.OptionInvalidValue) {
			t.Errorf("ParseCompressType(%q) = %v", s, err)
		}
	}
	if CompressTypeFromName("a.xz") != Xz || CompressTypeFromName("a.gzip") != None || CompressTypeFromName("file") != None {
		t.Error("CompressTypeFromName")
	}
	if _, err := NewDecompressor(bytes.NewReader(nil), Xz); !errs.Is(err, errs.FeatureNotSupported) {
		t.Errorf("xz decompress: %v", err)
	}
	if _, err := NewCompressor(io.Discard, Xz, 1); !errs.Is(err, errs.FeatureNotSupported) {
		t.Errorf("xz compress: %v", err)
	}
	for _, tt := range []struct {
		ct    CompressType
		level int
	}{{Gz, 10}, {Gz, -2}, {Bz2, 0}, {Lz4, 13}, {Lz4, -6}, {Zst, 23}, {Zst, -8}} {
		if _, err := NewCompressor(io.Discard, tt.ct, tt.level); !errs.Is(err, errs.OptionInvalidValue) {
			t.Errorf("NewCompressor(%s, %d) = %v", tt.ct, tt.level, err)
		}
	}
}

// errWriter fails after n bytes.
type errWriter struct{ n int }

func (w *errWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		k := w.n
		w.n = 0
		return k, errs.New(errs.FileWrite, "disk full")
	}
	w.n -= len(p)
	return len(p), nil
}

func TestWriteErrorsPropagate(t *testing.T) {
	data := testData(1<<20, 3)
	for _, ct := range allTypes {
		for _, pass := range []string{"", "p"} {
			p, err := NewWritePipeline(&errWriter{n: 1000}, ct, DefaultLevel(ct), pass)
			if err != nil {
				t.Fatal(err)
			}
			_, werr := p.Write(data)
			cerr := p.Close()
			if werr == nil && cerr == nil {
				t.Errorf("%s/%q: write error lost", ct, pass)
			}
			if e := cerr; e != nil && !errs.Is(e, errs.FileWrite) {
				t.Errorf("%s/%q: close error %v", ct, pass, e)
			}
		}
	}
}

func TestEncryptionOpenSSL(t *testing.T) {
	dir := t.TempDir()
	pass := "S3cr3t pass/+=" // spaces and symbols are passed as they are
	for _, size := range []int{0, 1, 15, 16, 17, 65536, 1<<20 + 5} {
		data := testData(size, uint64(size))
		// Ours → openssl.
		var buf bytes.Buffer
		w, err := NewEncryptor(&buf, pass)
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off < len(data); off += 4093 {
			w.Write(data[off:min(off+4093, len(data))])
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if want := 16 + (size/16+1)*16; buf.Len() != want || !bytes.HasPrefix(buf.Bytes(), []byte("Salted__")) {
			t.Fatalf("size %d: encrypted length %d, want %d with Salted__", size, buf.Len(), want)
		}
		f := filepath.Join(dir, "enc")
		os.WriteFile(f, buf.Bytes(), 0o600)
		got := run(t, nil, "openssl", "enc", "-d", "-aes-256-cbc", "-md", "sha1", "-pass", "pass:"+pass, "-in", f)
		if !bytes.Equal(got, data) {
			t.Errorf("size %d: openssl decrypt of ours differs", size)
		}
		eb, err := EncryptBytes(data, pass)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(f, eb, 0o600)
		if got := run(t, nil, "openssl", "enc", "-d", "-aes-256-cbc", "-md", "sha1", "-pass", "pass:"+pass, "-in", f); !bytes.Equal(got, data) {
			t.Errorf("size %d: openssl decrypt of EncryptBytes differs", size)
		}

		// openssl → ours.
		os.WriteFile(f, data, 0o600)
		enc := run(t, nil, "openssl", "enc", "-aes-256-cbc", "-md", "sha1", "-salt", "-pass", "pass:"+pass, "-in", f)
		dec, err := DecryptBytes(enc, pass)
		if err != nil || !bytes.Equal(dec, data) {
			t.Errorf("size %d: DecryptBytes of openssl output: %v", size, err)
		}
		r, err := NewDecryptor(iotestHalfReader(enc), pass)
		if err != nil {
			t.Fatal(err)
		}
		dec, err = io.ReadAll(r)
		if err != nil || !bytes.Equal(dec, data) {
			t.Errorf("size %d: NewDecryptor of openssl output: %v", size, err)
		}
	}
}

// iotestHalfReader returns a reader that returns small, odd-sized reads.
func iotestHalfReader(b []byte) io.Reader { return &oddReader{b: b} }

type oddReader struct {
	b []byte
	i int
}

func (r *oddReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	r.i++
	n := min(len(p), len(r.b), 1+(r.i*37)%5000)
	copy(p, r.b[:n])
	r.b = r.b[n:]
	return n, nil
}

func TestKeyDerivationMatchesOpenSSL(t *testing.T) {
	salt := [8]byte{1, 2, 3, 4, 0xA5, 0xB6, 0xC7, 0xD8}
	out := string(run(t, nil, "openssl", "enc", "-aes-256-cbc", "-md", "sha1", "-pass", "pass:secret",
		"-S", hex.EncodeToString(salt[:]), "-P"))
	key, iv := deriveKey("secret", salt[:])
	if !strings.Contains(out, "key="+strings.ToUpper(hex.EncodeToString(key))) ||
		!strings.Contains(out, "iv ="+strings.ToUpper(hex.EncodeToString(iv))) {
		t.Errorf("openssl -P says\n%s\nwe derive key=%x iv=%x", out, key, iv)
	}
}

func TestDecryptErrors(t *testing.T) {
	salt := [8]byte{9, 8, 7, 6, 5, 4, 3, 2}
	good, _ := encryptBytesSalt([]byte("hello, this is the plaintext of a file"), "right", salt)
	cases := []struct {
		name string
		data []byte
		pass string
		msg  string
	}{
		{"wrong pass", good, "wrong", "unable to flush: bad decrypt"},
		{"wrong pass 2", good, "Right", "unable to flush: bad decrypt"},
		{"empty", nil, "right", "cipher header missing"},
		{"no magic", []byte("this is a plain text file, not encrypted"), "right", "cipher header invalid"},
		{"short header", []byte("Salted_"), "right", "cipher header invalid"},
		{"header only", good[:16], "right", "unable to flush"},
		{"truncated", good[:len(good)-1], "right", "unable to flush"},
		{"truncated block", good[:len(good)-16], "right", "unable to flush: bad decrypt"},
	}
	for _, c := range cases {
		_, err := DecryptBytes(c.data, c.pass)
		check := func(how string, err error) {
			if !errs.Is(err, errs.Crypto) || !strings.HasPrefix(err.Error(), c.msg) ||
				!strings.HasSuffix(err.Error(), "\nHINT: is or was the repo encrypted?") {
				t.Errorf("%s (%s): %v (code %d), want CryptoError %q with hint", c.name, how, err, errs.CodeOf(err), c.msg)
			}
		}
		check("bytes", err)
		r, _ := NewDecryptor(bytes.NewReader(c.data), c.pass)
		_, err = io.ReadAll(r)
		check("stream", err)
	}
	if _, err := NewDecryptor(bytes.NewReader(good), ""); !errs.Is(err, errs.Crypto) {
		t.Error("empty passphrase accepted")
	}
	// Wrong passphrases with random salts: no plaintext ever comes back
	// without an error except through a 1/256 padding accident, which the
	// pipeline's checksum catches; here require at least 90% detection.
	plain := testData(5000, 1)
	detected := 0
	for i := 0; i < 200; i++ {
		enc, _ := EncryptBytes(plain, "right")
		if _, err := DecryptBytes(enc, "wrong"); errs.Is(err, errs.Crypto) {
			detected++
		}
	}
	if detected < 180 {
		t.Errorf("only %d/200 wrong passphrases detected", detected)
	}
}

func TestSubPassphrase(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		p, err := NewSubPassphrase()
		if err != nil || len(p) != 64 || seen[p] || strings.ContainsAny(p, "\n=") {
			t.Fatalf("NewSubPassphrase = %q, %v", p, err)
		}
		seen[p] = true
	}
}

func TestCounter(t *testing.T) {
	var c Counter
	if c.Sum() != "da39a3ee5e6b4b0d3255bfef95601890afd80709" || c.Size() != 0 {
		t.Errorf("empty counter %s %d", c.Sum(), c.Size())
	}
	c.Write([]byte("ab"))
	c.Write([]byte("c"))
	if c.Sum() != "a9993e364706816aba3e25717850c26c9cd0d89d" || c.Size() != 3 {
		t.Errorf("abc counter %s %d", c.Sum(), c.Size())
	}
	c.Reset()
	if c.Size() != 0 || c.Sum() != "da39a3ee5e6b4b0d3255bfef95601890afd80709" {
		t.Error("reset")
	}
}
