// Package memlimit keeps the heap of a process close to what it holds.
//
// Go's collector lets the heap grow to twice what survived the last
// collection (GOGC=100): a backup holding a 40 MB manifest peaks near
// 80 MB of heap. Start replaces that with a soft limit (runtime/debug
// SetMemoryLimit) that follows the live heap: never below a floor, under
// which the collector runs no more often than before, and a quarter above
// the live heap plus some room above it, so it never chases a heap that
// simply is that large (a collector running back to back).
package memlimit

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// Room is what the limit leaves above a quarter more than the live heap.
const Room = 8 << 20

var (
	startOnce sync.Once
	floor     int64
	sample    = []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	adjusted  func(limit int64) // tests
)

// Start sets the soft limit to floor bytes and has it follow the live heap
// after every collection. It does nothing when the user set GOMEMLIMIT or
// GOGC: their setting wins.
func Start(floorBytes int64) {
	if os.Getenv("GOMEMLIMIT") != "" || os.Getenv("GOGC") != "" {
		return
	}
	startOnce.Do(func() {
		floor = floorBytes
		debug.SetMemoryLimit(floor)
		arm()
	})
}

// Limit returns the limit for a live heap of live bytes.
func Limit(live, floor int64) int64 {
	return max(floor, live+live/4+Room)
}

// sentinel is garbage from the moment arm returns: its finalizer runs after
// the next collection, adjusts the limit and arms the next one.
type sentinel struct{ _ [16]byte }

func arm() {
	runtime.SetFinalizer(&sentinel{}, func(*sentinel) {
		metrics.Read(sample)
		limit := Limit(int64(sample[0].Value.Uint64()), floor)
		debug.SetMemoryLimit(limit)
		if adjusted != nil {
			adjusted(limit)
		}
		arm()
	})
}
