package workpool

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRunsEveryJobOnce(t *testing.T) {
	for _, workers := range []int{0, 1, 2, 7, 100} {
		var seen [50]atomic.Int32
		var maxW atomic.Int32
		err := Run(context.Background(), workers, len(seen), func(_ context.Context, w, i int) error {
			seen[i].Add(1)
			for {
				m := maxW.Load()
				if int32(w) <= m || maxW.CompareAndSwap(m, int32(w)) {
					break
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for i := range seen {
			if seen[i].Load() != 1 {
				t.Fatalf("workers %d: job %d ran %d times", workers, i, seen[i].Load())
			}
		}
		if want := int32(max(1, min(workers, len(seen)))); maxW.Load() > want {
			t.Errorf("workers %d: saw worker number %d", workers, maxW.Load())
		}
	}
}

func TestFirstErrorStopsTheRest(t *testing.T) {
	boom := errors.New("boom")
	var ran atomic.Int32
	err := Run(context.Background(), 2, 1000, func(ctx context.Context, _, i int) error {
		ran.Add(1)
		if i == 3 {
			return boom
		}
		if i > 3 {
			// Running jobs see the pool's context end.
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Second):
				t.Error("context not cancelled after a failure")
			}
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
	if ran.Load() > 10 {
		t.Errorf("%d jobs ran after the failure", ran.Load())
	}
}

func TestCancelledContextIsAnError(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var once sync.Once
	err := Run(ctx, 2, 100, func(context.Context, int, int) error {
		once.Do(cancel)
		return nil // a job that swallows the cancellation
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("a pool stopped by its context must fail, got %v", err)
	}
	if err := Run(ctx, 2, 0, func(context.Context, int, int) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("empty pool on a cancelled context: %v", err)
	}
}

func TestEach(t *testing.T) {
	var sum atomic.Int64
	if err := Each(context.Background(), 3, []int{1, 2, 3, 4}, func(_ context.Context, _ int, v int) error {
		sum.Add(int64(v))
		return nil
	}); err != nil || sum.Load() != 10 {
		t.Fatalf("sum %d err %v", sum.Load(), err)
	}
}
