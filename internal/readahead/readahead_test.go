package readahead

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Every item is read once and taken with its own value, and an item is
// read only when fewer than window items before it are still untaken.
func TestWindowBound(t *testing.T) {
	const n, window = 500, 8
	var started, early atomic.Int64 // takes begun; items read too early
	w := Start(context.Background(), n, window, 3, func(_ context.Context, i int) int {
		if i >= int(started.Load())+window {
			early.Add(1)
		}
		return i * 7
	})
	for i := range n {
		started.Add(1) // Take(i) frees a token before it returns
		v, ok := w.Take(context.Background(), i)
		if !ok || v != i*7 {
			t.Fatalf("item %d: %d %v", i, v, ok)
		}
		if i%50 == 0 {
			time.Sleep(time.Millisecond) // let the readers run ahead
		}
	}
	w.Stop(nil)
	if e := early.Load(); e > 0 {
		t.Fatalf("%d items read more than %d ahead of the takes", e, window)
	}
}

// Stop gives back the items read and not taken; a take after Stop, or
// whose context ended, reports false instead of waiting.
func TestWindowStop(t *testing.T) {
	var mu sync.Mutex
	read := map[int]bool{}
	w := Start(context.Background(), 100, 4, 2, func(_ context.Context, i int) int {
		mu.Lock()
		read[i] = true
		mu.Unlock()
		return i
	})
	if v, ok := w.Take(context.Background(), 0); !ok || v != 0 {
		t.Fatalf("take 0: %d %v", v, ok)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(read)
		mu.Unlock()
		if n >= 5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	released := map[int]bool{}
	w.Stop(func(v int) { released[v] = true })
	mu.Lock()
	defer mu.Unlock()
	for i := range read {
		if i != 0 && !released[i] {
			t.Errorf("item %d read, not taken, not released", i)
		}
	}
	if len(released) == 0 || released[0] {
		t.Fatalf("released %v", released)
	}
	if _, ok := w.Take(context.Background(), 50); ok {
		t.Fatal("take after Stop")
	}

	blocked := Start(context.Background(), 10, 1, 1, func(ctx context.Context, i int) int {
		if i == 1 {
			<-ctx.Done() // never read while the window runs
		}
		return i
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, ok := blocked.Take(context.Background(), 0); !ok {
		t.Fatal("take 0")
	}
	if _, ok := blocked.Take(ctx, 1); ok {
		t.Fatal("take of an item never read returned when its context ended")
	}
	blocked.Stop(nil)
}

// Bytes gives the bytes read ahead, then the error that stopped the read
// (io.EOF when none).
func TestBytes(t *testing.T) {
	boom := errors.New("read failed")
	for _, end := range []error{nil, boom} {
		var b Bytes
		b.Reset([]byte("abc"), end)
		got, err := io.ReadAll(&b)
		if string(got) != "abc" || err != end {
			t.Fatalf("end %v: read %q, %v", end, got, err)
		}
	}
}
