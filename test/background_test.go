package test

import (
	"sync"
	"testing"
)

// background runs fn on its own goroutine. fn must not call t.Fatal and
// friends (they are for the test goroutine only): it returns its error
// instead, and should return early once stop is closed. wait closes stop,
// waits for fn and returns its error; the test goroutine calls it and
// checks the error. wait is also registered as a cleanup, so the goroutine
// never outlives the test, even when the test fails before calling it.
func background(t *testing.T, fn func(stop <-chan struct{}) error) (wait func() error) {
	t.Helper()
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- fn(stop) }()
	var once sync.Once
	var err error
	wait = func() error {
		once.Do(func() {
			close(stop)
			err = <-done
		})
		return err
	}
	t.Cleanup(func() { wait() })
	return wait
}
