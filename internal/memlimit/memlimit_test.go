package memlimit

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestLimit(t *testing.T) {
	for _, c := range []struct{ live, floor, want int64 }{
		{0, 48 << 20, 48 << 20},
		{30 << 20, 48 << 20, 48 << 20},
		{40 << 20, 48 << 20, 58 << 20},
		{400 << 20, 48 << 20, 508 << 20},
	} {
		if got := Limit(c.live, c.floor); got != c.want {
			t.Errorf("Limit(%d, %d) = %d, want %d", c.live, c.floor, got, c.want)
		}
	}
}

// TestFollowsLiveHeap: with 100 MiB held, the limit rises above it after a
// collection (instead of the collector running back to back under a 16 MiB
// floor), and comes back to the floor once it is freed.
func TestFollowsLiveHeap(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	t.Setenv("GOGC", "")
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	limits := make(chan int64, 64)
	adjusted = func(l int64) {
		select {
		case limits <- l:
		default:
		}
	}
	defer func() { adjusted = nil }()
	Start(16 << 20)
	if got := debug.SetMemoryLimit(-1); got < 16<<20 {
		t.Fatalf("limit %d after Start", got)
	}
	held := make([]byte, 100<<20)
	for i := range held {
		held[i] = byte(i)
	}
	last := waitLimit(t, limits)
	if last < 100<<20+100<<20/4 {
		t.Fatalf("limit %d with 100 MiB live", last)
	}
	runtime.KeepAlive(held)
	held = nil
	last = waitLimit(t, limits)
	if last != 16<<20 && last >= 100<<20 {
		t.Fatalf("limit %d after the 100 MiB were freed", last)
	}
}

// waitLimit forces collections until the finalizer reports a limit.
func waitLimit(t *testing.T, limits chan int64) int64 {
	t.Helper()
	for len(limits) > 0 {
		<-limits
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		runtime.GC()
		select {
		case l := <-limits:
			return l
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatal("no adjustment after collections")
	return 0
}
