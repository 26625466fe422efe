package log

import (
	"context"
	"log/slog"
	"strings"
)

// slog levels for pgBackRest's levels that slog lacks.
const (
	SlogDetail = slog.Level(-2) // between debug and info
	SlogTrace  = slog.Level(-8)
)

// String returns the level's pgBackRest name ("info", "debug"...).
func (l Level) String() string {
	if int(l) < len(levelNames) {
		return levelNames[l]
	}
	return "off"
}

// FromSlog maps a slog level to pgBackRest's.
func FromSlog(l slog.Level) Level {
	switch {
	case l >= slog.LevelError:
		return Error
	case l >= slog.LevelWarn:
		return Warn
	case l >= slog.LevelInfo:
		return Info
	case l >= SlogDetail:
		return Detail
	case l >= slog.LevelDebug:
		return Debug
	}
	return Trace
}

// NewSlog returns a *slog.Logger that hands each record, as one message
// with its attributes appended as key=value, to emit. enabled may be nil
// (everything enabled).
func NewSlog(emit func(Level, string), enabled func(Level) bool) *slog.Logger {
	return slog.New(&handler{emit: emit, enabled: enabled})
}

// Slog returns a *slog.Logger writing through l (same format, levels and
// secret redaction), for packages that take a standard logger.
func (l *Logger) Slog() *slog.Logger {
	return NewSlog(func(lvl Level, msg string) { l.Log(lvl, 0, 0, msg) }, l.Enabled)
}

// Discarding is a *slog.Logger that writes nothing.
var Discarding = NewSlog(func(Level, string) {}, func(Level) bool { return false })

type handler struct {
	emit    func(Level, string)
	enabled func(Level) bool
	attrs   []slog.Attr
	group   string
}

func (h *handler) Enabled(_ context.Context, l slog.Level) bool {
	return h.enabled == nil || h.enabled(FromSlog(l))
}

func (h *handler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	add := func(a slog.Attr) bool {
		if a.Equal(slog.Attr{}) {
			return true
		}
		b.WriteByte(' ')
		if h.group != "" {
			b.WriteString(h.group + ".")
		}
		b.WriteString(a.Key + "=" + a.Value.String())
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	h.emit(FromSlog(r.Level), b.String())
	return nil
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	n := *h
	n.attrs = append(append([]slog.Attr(nil), h.attrs...), attrs...)
	return &n
}

func (h *handler) WithGroup(name string) slog.Handler {
	n := *h
	if n.group != "" {
		name = n.group + "." + name
	}
	n.group = name
	return &n
}
