// Package log writes pgBackRest's log line format to the console (stdout),
// stderr and a log file, each with its own level.
//
//	2026-11-25 14:48:15.671 P00   INFO: message
//	2026-11-25 14:48:15.671 P00  ERROR: [055]: message
package log

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Level is a log level, ordered from quietest to loudest.
type Level int

const (
	Off Level = iota
	Error
	Warn
	Info
	Detail
	Debug
	Trace
)

var levelNames = []string{"off", "error", "warn", "info", "detail", "debug", "trace"}

// ParseLevel parses a pgBackRest level name.
func ParseLevel(s string) (Level, error) {
	for i, n := range levelNames {
		if n == s {
			return Level(i), nil
		}
	}
	return Off, fmt.Errorf("invalid log level '%s'", s)
}

func (l Level) label() string {
	return strings.ToUpper(levelNames[l])
}

// Logger is safe for concurrent use.
type Logger struct {
	mu        sync.Mutex
	Console   Level
	Stderr    Level
	FileLevel Level
	Timestamp bool
	stdout    io.Writer
	stderr    io.Writer
	file      io.WriteCloser
	now       func() time.Time
	secrets   []string
	around    func(write func()) // wraps console writes (progress line); nil: none
}

// New returns a logger that writes to the given console writers.
func New(stdout, stderr io.Writer, console, stderrLevel Level) *Logger {
	return &Logger{Console: console, Stderr: stderrLevel, Timestamp: true, stdout: stdout, stderr: stderr, now: time.Now}
}

// Discard returns a logger that writes nothing.
func Discard() *Logger { return New(io.Discard, io.Discard, Off, Off) }

// OpenFile starts logging to <dir>/<name> at level lvl (appending). A
// failure to open the file is returned; the caller decides whether it is
// fatal (pgBackRest warns and goes on).
func (l *Logger) OpenFile(dir, name string, lvl Level) error {
	if lvl == Off {
		return nil
	}
	if err := os.MkdirAll(dir, 0o770); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.file = f
	l.FileLevel = lvl
	l.mu.Unlock()
	fmt.Fprintf(f, "-------------------PROCESS START-------------------\n")
	return nil
}

// Close closes the log file.
func (l *Logger) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file != nil {
		l.file.Close()
		l.file = nil
	}
}

// Redact registers values that must never appear in a log line.
func (l *Logger) Redact(values ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, v := range values {
		if len(v) >= 4 {
			l.secrets = append(l.secrets, v)
		}
	}
}

// SetConsoleHook makes every console write (stdout and stderr, not the
// log file) run inside around, which clears a progress line before and
// redraws it after; nil removes the hook.
func (l *Logger) SetConsoleHook(around func(write func())) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.around = around
}

// Enabled reports whether anything would be written at lvl.
func (l *Logger) Enabled(lvl Level) bool {
	return lvl <= l.Console || lvl <= l.Stderr || (l.file != nil && lvl <= l.FileLevel)
}

// Log writes one message (it may span lines) at lvl for process number
// proc; code > 0 adds the "[NNN]: " error code prefix.
func (l *Logger) Log(lvl Level, proc int, code int, msg string) {
	if !l.Enabled(lvl) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.secrets {
		msg = strings.ReplaceAll(msg, s, "<redacted>")
	}
	if code > 0 {
		msg = fmt.Sprintf("[%03d]: %s", code, msg)
	}
	lines := strings.Split(strings.TrimRight(msg, "\n"), "\n")
	long := l.format(lvl, proc, lines, true)
	var console func()
	if lvl <= l.Stderr && lvl != Off {
		console = func() { io.WriteString(l.stderr, l.format(lvl, proc, lines, false)) }
	} else if lvl <= l.Console {
		console = func() { io.WriteString(l.stdout, long) }
	}
	if console != nil {
		if l.around != nil {
			l.around(console)
		} else {
			console()
		}
	}
	if l.file != nil && lvl <= l.FileLevel {
		io.WriteString(l.file, l.format(lvl, proc, lines, true))
	}
}

func (l *Logger) format(lvl Level, proc int, lines []string, long bool) string {
	var prefix string
	if long {
		if l.Timestamp {
			prefix = l.now().Format("2006-01-02 15:04:05.000") + " "
		}
		prefix += fmt.Sprintf("P%02d %6s: ", proc, lvl.label())
	} else {
		prefix = lvl.label() + ": "
	}
	indent := strings.Repeat(" ", len(prefix))
	var b strings.Builder
	for i, line := range lines {
		if i == 0 {
			b.WriteString(prefix)
		} else {
			b.WriteString(indent)
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// logf formats only when the level is logged (a detail line per file is
// formatted for nothing otherwise).
func (l *Logger) logf(lvl Level, proc, code int, format string, a []any) {
	if l.Enabled(lvl) {
		l.Log(lvl, proc, code, fmt.Sprintf(format, a...))
	}
}

func (l *Logger) Errorf(code int, format string, a ...any) { l.logf(Error, 0, code, format, a) }
func (l *Logger) Warnf(format string, a ...any)            { l.logf(Warn, 0, 0, format, a) }
func (l *Logger) Infof(format string, a ...any)            { l.logf(Info, 0, 0, format, a) }
func (l *Logger) Detailf(format string, a ...any)          { l.logf(Detail, 0, 0, format, a) }
func (l *Logger) Debugf(format string, a ...any)           { l.logf(Debug, 0, 0, format, a) }

// ProcDetailf logs at detail level for worker process proc (P01, P02...).
func (l *Logger) ProcDetailf(proc int, format string, a ...any) { l.logf(Detail, proc, 0, format, a) }
