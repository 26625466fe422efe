package repo

import "encoding/hex"

// Digest is a SHA-1 as a manifest holds it: 20 bytes instead of a string
// of 40 hex digits (56 bytes and a pointer more per checksum, two per
// file). The zero value means absent; no real content hashes to it.
type Digest [20]byte

// ParseDigest reads 40 hex digits (either case).
func ParseDigest(s string) (Digest, bool) {
	var d Digest
	if len(s) != 2*len(d) {
		return d, false
	}
	if _, err := hex.Decode(d[:], []byte(s)); err != nil {
		return Digest{}, false
	}
	return d, true
}

// HexDigest is the Digest of a checksum pgbr computed (40 lower-case hex
// digits); "" gives the zero Digest, and so does anything that is not a
// SHA-1.
func HexDigest(s string) Digest {
	d, _ := ParseDigest(s)
	return d
}

// IsZero reports an absent checksum.
func (d Digest) IsZero() bool { return d == Digest{} }

// String returns the 40 lower-case hex digits, "" when absent.
func (d Digest) String() string {
	if d.IsZero() {
		return ""
	}
	return hex.EncodeToString(d[:])
}
