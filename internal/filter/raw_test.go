package filter

import (
	"bytes"
	"testing"
)

// TestRawRoundTrip: every compress type, with and without encryption,
// through EncodeRaw and DecodeRaw / NewReadPipelineRaw.
func TestRawRoundTrip(t *testing.T) {
	data := bytes.Repeat([]byte("pgbr block incremental "), 5000)
	for _, ct := range []CompressType{None, Gz, Bz2, Lz4, Zst} {
		for _, pass := range []string{"", "secret-pass"} {
			enc, err := EncodeRaw(data, ct, DefaultLevel(ct), pass)
			if err != nil {
				t.Fatalf("%s %q: %v", ct, pass, err)
			}
			if pass != "" && bytes.HasPrefix(enc, []byte(cipherMagic)) {
				t.Fatalf("%s: raw encryption has the magic", ct)
			}
			if ct == Gz && pass == "" && (enc[0] != 0x78 || bytes.HasPrefix(enc, []byte{0x1f, 0x8b})) {
				t.Fatalf("raw gz is not zlib: %x", enc[:4])
			}
			dec, err := DecodeRaw(enc, ct, pass, len(data))
			if err != nil || !bytes.Equal(dec, data) {
				t.Fatalf("%s %q: decode %v", ct, pass, err)
			}
			if _, err := DecodeRaw(enc, ct, pass, len(data)+1); err == nil {
				t.Fatalf("%s %q: wrong size accepted", ct, pass)
			}
			if ct != None || pass != "" {
				bad := bytes.Clone(enc)
				bad[len(bad)/2] ^= 0x40
				if dec, err := DecodeRaw(bad, ct, pass, len(data)); err == nil && bytes.Equal(dec, data) {
					t.Fatalf("%s %q: corruption not noticed", ct, pass)
				}
			}
		}
	}
}
