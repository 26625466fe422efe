package command

import (
	"os"
	"time"

	"github.com/pgbr-dev/pgbr/internal/config"
	"github.com/pgbr-dev/pgbr/internal/progress"
)

// progressInterval is how often the progress line is redrawn.
const progressInterval = 150 * time.Millisecond

// withProgress runs a long command (backup, restore, verify) with a live
// progress line on stderr when --progress=y, or when --progress is not
// given and stdout and stderr are terminals. The line is cleared around
// every console log write and removed at the end; the log file is not
// touched.
func (e *Env) withProgress(label string, run func(*Env) error) error {
	mode := ""
	if e.Cfg.IsSet(config.Progress) {
		mode = "n"
		if e.Cfg.Bool(config.Progress) {
			mode = "y"
		}
	}
	if e.Stderr == nil {
		return run(e)
	}
	out, _ := e.Stdout.(*os.File)
	errOut, _ := e.Stderr.(*os.File)
	if !progress.Enabled(mode, out, errOut) {
		return run(e)
	}
	e.progress = &progress.Counter{}
	r := progress.Start(e.Stderr, label, e.progress, progressInterval)
	e.Log.SetConsoleHook(r.Around)
	defer func() {
		r.Stop()
		e.Log.SetConsoleHook(nil)
	}()
	return run(e)
}
