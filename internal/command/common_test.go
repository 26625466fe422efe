package command

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/log"
)

// A panic in a worker goroutine becomes AssertError [025]; the stack goes
// to the debug log only.
func TestGuardWorkerPanic(t *testing.T) {
	var console, debugLog bytes.Buffer
	e := &Env{Log: log.New(&console, &console, log.Warn, log.Warn)}
	done := make(chan error)
	go func() {
		_, err := guard(e, func() (bool, error) {
			var m map[string]int
			m["x"] = 1 // nil map write: a runtime panic
			return true, nil
		})
		done <- err
	}()
	err := <-done
	if errs.CodeOf(err) != errs.Assert || !strings.Contains(err.Error(), "internal error: assignment to entry in nil map") {
		t.Fatalf("got %v (code %d), want AssertError", err, errs.CodeOf(err))
	}
	if strings.Contains(err.Error(), "goroutine ") || console.Len() != 0 {
		t.Fatalf("stack trace in the error or on the console:\n%v\n%s", err, console.String())
	}

	e.Log = log.New(&debugLog, &debugLog, log.Debug, log.Off)
	if err := guardErr(e, func() error { panic("boom") }); errs.CodeOf(err) != errs.Assert ||
		!strings.Contains(debugLog.String(), "goroutine ") {
		t.Fatalf("got %v; debug log:\n%s", err, debugLog.String())
	}
	want := errors.New("plain")
	if err := guardErr(e, func() error { return want }); err != want {
		t.Fatalf("error not passed through: %v", err)
	}
}

// Every pool of the commands fails with [063] once a signal ended the
// context, even when its jobs swallow the cancellation (the asynchronous
// archive-get once exited 0 on SIGTERM); a panic in a job is [025] and
// stops the pool.
func TestRunPool(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	e := &Env{Ctx: ctx, Log: log.Discard()}
	ran := 0
	err := e.runPool(1, 10, func(context.Context, int, int) error {
		ran++
		if ran == 3 {
			cancel()
		}
		return nil
	})
	if errs.CodeOf(err) != errs.Term || ran != 3 {
		t.Fatalf("got %v after %d jobs, want [063] after 3", err, ran)
	}
	e.Ctx = context.Background()
	ran = 0
	err = e.runPool(1, 10, func(_ context.Context, _, i int) error {
		ran++
		if i == 1 {
			panic("boom")
		}
		return nil
	})
	if errs.CodeOf(err) != errs.Assert || ran != 2 {
		t.Fatalf("got %v after %d jobs, want [025] after 2", err, ran)
	}
	if err := e.runPool(2, 5, func(context.Context, int, int) error { return nil }); err != nil {
		t.Fatal(err)
	}
}
