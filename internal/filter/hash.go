package filter

import (
	"crypto/sha1"
	"encoding/hex"
	"hash"
)

// Counter is an io.Writer that computes the SHA-1 and the size of what is
// written. The zero value is ready to use.
type Counter struct {
	h hash.Hash
	n int64
}

// NewCounter returns a new Counter.
func NewCounter() *Counter { return &Counter{h: sha1.New()} }

// Write adds p to the hash and the size. It never fails.
func (c *Counter) Write(p []byte) (int, error) {
	if c.h == nil {
		c.h = sha1.New()
	}
	c.h.Write(p)
	c.n += int64(len(p))
	return len(p), nil
}

// Sum returns the SHA-1 of the bytes written so far, 40 lowercase hex chars.
func (c *Counter) Sum() string {
	if c.h == nil {
		c.h = sha1.New()
	}
	var b [sha1.Size]byte
	return hex.EncodeToString(c.h.Sum(b[:0]))
}

// Size returns the number of bytes written so far.
func (c *Counter) Size() int64 { return c.n }

// Reset clears the hash and the size.
func (c *Counter) Reset() {
	if c.h != nil {
		c.h.Reset()
	}
	c.n = 0
}
