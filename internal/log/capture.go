package log

import (
	"bytes"
	"sync"
)

// Capture is an output for a Logger that keeps what was written, safe for
// the concurrent writes of worker goroutines (tests read it with String).
type Capture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *Capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

// String returns everything written so far.
func (c *Capture) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}
