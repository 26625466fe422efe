package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/command"
	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/log"
)

// A configuration error is printed like pgBackRest prints it on stderr:
// continuation lines indented by the width of "ERROR: ".
func TestConfigErrorFormat(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := Main([]string{"--no-config", "--stanza=main", "--repo1-cipher-pass=secret", "backup"}, nil, &stdout, &stderr)
	want := "ERROR: [031]: option 'repo1-cipher-pass' is not allowed on the command-line\n" +
		"       HINT: this option could expose secrets in the process list.\n" +
		"       HINT: specify the option in a configuration file or an environment variable instead.\n"
	if code != 31 || stderr.String() != want || stdout.Len() != 0 {
		t.Fatalf("exit %d\nstderr:\n%s\nwant:\n%s\nstdout:\n%s", code, stderr.String(), want, stdout.String())
	}
}

// A panic in a command becomes AssertError [025] with a short message; the
// stack goes only to the debug log, never to the console.
func TestPanicBecomesAssertError(t *testing.T) {
	var console bytes.Buffer
	env := &command.Env{Log: log.New(&console, &console, log.Info, log.Warn)} // no Cfg: Run panics
	err := safeRun(env)
	if errs.CodeOf(err) != errs.Assert || !strings.HasPrefix(err.Error(), "internal error: ") {
		t.Fatalf("got %v (code %d), want an AssertError", err, errs.CodeOf(err))
	}
	if strings.Contains(err.Error(), "goroutine ") || strings.Contains(console.String(), "goroutine ") {
		t.Fatalf("stack trace reached the console:\n%s\n%s", err, console.String())
	}
}
