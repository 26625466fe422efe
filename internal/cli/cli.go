// Package cli is pgbr's entry point: parse options, dispatch a command,
// log, and map errors to pgBackRest's exit codes.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/pgbr-dev/pgbr/internal/command"
	"github.com/pgbr-dev/pgbr/internal/config"
	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/lock"
	"github.com/pgbr-dev/pgbr/internal/log"
)

// fileLogCommands are the commands that write <stanza>-<command>.log.
var fileLogCommands = map[string]bool{
	"backup": true, "restore": true, "expire": true, "stanza-create": true, "stanza-upgrade": true,
	"stanza-delete": true, "verify": true,
}

// Main runs pgbr with args (without the program name) and returns the exit code.
func Main(args, environ []string, stdout, stderr io.Writer) (code int) {
	cfg, err := config.Parse(args, environ)
	if err != nil {
		c := int(errs.CodeOf(err))
		// The logger's stderr form: continuation lines under the message,
		// indented by the width of "ERROR: " as pgBackRest does.
		fmt.Fprintf(stderr, "ERROR: [%03d]: %s\n", c, indent(err.Error(), len("ERROR: ")))
		return c
	}
	switch cfg.Command() {
	case "version":
		fmt.Fprintf(stdout, "pgbr %s (pgBackRest %s repository format)\n", command.Version, command.BackrestVersion)
		return 0
	case "help", "":
		fmt.Fprint(stdout, config.Help(cfg.Params()))
		return 0
	}

	console, _ := log.ParseLevel(cfg.String(config.LogLevelConsole))
	stderrLvl, _ := log.ParseLevel(cfg.String(config.LogLevelStderr))
	logger := log.New(stdout, stderr, console, stderrLvl)
	logger.Timestamp = cfg.Bool(config.LogTimestamp)
	async := cfg.Role() == "async"
	if (fileLogCommands[cfg.Command()] || async) && cfg.String(config.Stanza) != "" {
		fileLvl, _ := log.ParseLevel(cfg.String(config.LogLevelFile))
		name := fmt.Sprintf("%s-%s.log", cfg.String(config.Stanza), cfg.Command())
		if async {
			// The background archive-push/get process has no console.
			name = fmt.Sprintf("%s-%s-async.log", cfg.String(config.Stanza), cfg.Command())
			logger.Console, logger.Stderr = log.Off, log.Off
		}
		if err := logger.OpenFile(cfg.String(config.LogPath), name, fileLvl); err != nil {
			logger.Warnf("unable to open log file '%s/%s': %v\nNOTE: process will continue without log file.", cfg.String(config.LogPath), name, err)
		}
	}
	defer logger.Close()

	start := time.Now()
	// Like pgBackRest, info logs its begin/end lines at debug so its output
	// stays clean on the console.
	beginEnd := logger.Infof
	if c := cfg.Command(); c == "info" || c == "repo-ls" || c == "repo-get" {
		beginEnd = logger.Debugf
	}
	beginEnd("%s command begin %s: %s", cfg.Command(), command.Version, cfg.LogParams())
	for _, w := range cfg.Warnings() {
		logger.Warnf("%s", w)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()
	cwd, _ := os.Getwd()
	self, _ := os.Executable()
	env := &command.Env{Ctx: ctx, Cfg: cfg, Log: logger, Stdout: stdout, Stderr: stderr, Cwd: cwd, Now: time.Now,
		ExecID: lock.ExecID(), Self: self}

	err = safeRun(env)
	if err != nil && ctx.Err() != nil {
		err = errs.New(errs.Term, "terminated on signal")
	}
	var ee *command.ExitError
	switch {
	case err == nil:
		beginEnd("%s command end: completed successfully (%dms)", cfg.Command(), time.Since(start).Milliseconds())
		return 0
	case errors.As(err, &ee):
		if ee.Msg != "" {
			logger.Infof("%s", ee.Msg)
		}
		beginEnd("%s command end: completed successfully (%dms)", cfg.Command(), time.Since(start).Milliseconds())
		return ee.Code
	default:
		c := int(errs.CodeOf(err))
		logger.Errorf(c, "%s", err.Error())
		beginEnd("%s command end: aborted with exception [%03d]", cfg.Command(), c)
		return c
	}
}

// safeRun turns a panic into an AssertError so none reaches the user as a
// Go stack dump on the console (the stack goes to the log file).
func safeRun(env *command.Env) (err error) {
	defer func() {
		if r := recover(); r != nil {
			env.Log.Debugf("panic: %v\n%s", r, debug.Stack())
			err = errs.New(errs.Assert, "internal error: %v\nHINT: please report this to the pgbr developers with the log file", r)
		}
	}()
	return command.Run(env)
}

func indent(s string, n int) string {
	return strings.ReplaceAll(s, "\n", "\n"+strings.Repeat(" ", n))
}
