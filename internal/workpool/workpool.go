// Package workpool runs a list of jobs on a fixed number of workers: the one
// worker pool of backup, restore, verify and the asynchronous archive
// processes (pgBackRest's process-max). The first error, or the end of the
// context (a signal), stops handing out jobs; jobs already running see the
// pool's context cancelled. Built on errgroup.
package workpool

import (
	"context"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
)

// Run calls fn(ctx, worker, i) for every i in [0, n) on workers goroutines
// (numbered 1..workers, pgBackRest's P01, P02...), in order of i as far as
// the workers keep up. It returns the first error fn returned; when no job
// failed but ctx ended before every job ran, it returns ctx's error. The
// ctx given to fn is cancelled as soon as any job fails.
func Run(ctx context.Context, workers, n int, fn func(ctx context.Context, worker, i int) error) error {
	workers = max(1, min(workers, n))
	if n == 0 {
		return ctx.Err()
	}
	g, gctx := errgroup.WithContext(ctx)
	var next atomic.Int64
	for w := 1; w <= workers; w++ {
		g.Go(func() error {
			for gctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return nil
				}
				if err := fn(gctx, w, i); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// No job failed: a pool whose context ended (a signal) still fails,
	// whether or not jobs were left.
	return ctx.Err()
}

// Each runs fn on every item of items with Run.
func Each[T any](ctx context.Context, workers int, items []T, fn func(ctx context.Context, worker int, item T) error) error {
	return Run(ctx, workers, len(items), func(ctx context.Context, w, i int) error { return fn(ctx, w, items[i]) })
}
