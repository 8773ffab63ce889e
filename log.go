// log.go owns the log output: level and format selection and the human-friendly "pretty" handler.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// levelTrace is below debug: request-by-request detail.
const levelTrace = slog.LevelDebug - 4

func logLevel(c *config) slog.Level {
	switch {
	case c.trace:
		return levelTrace
	case c.debug:
		return slog.LevelDebug
	}
	switch c.logLevel {
	case "trace":
		return levelTrace
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	case "fatal":
		return slog.LevelError + 4
	case "panic":
		return slog.LevelError + 8
	}
	return slog.LevelInfo
}

// newLogger builds the logger for --log-format; auto is pretty on a terminal, logfmt elsewhere.
func newLogger(c *config, w io.Writer, lookup func(string) (string, bool)) *slog.Logger {
	level := logLevel(c)
	_, journal := lookup("JOURNAL_STREAM")
	replace := func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.LevelKey {
			if l, ok := a.Value.Any().(slog.Level); ok && l <= levelTrace {
				a.Value = slog.StringValue("TRACE")
			}
		}
		// The journal stamps every line itself.
		if journal && len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: replace}
	format := c.logFormat
	if format == "auto" {
		format = "logfmt"
		if isTerminal(w) {
			format = "pretty"
		}
	}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts))
	case "pretty":
		return slog.New(&prettyHandler{w: w, level: level, color: !c.noColor, mu: new(sync.Mutex)})
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// prettyHandler writes "15:04:05 INFO  message key=value …" for people at a terminal.
type prettyHandler struct {
	w     io.Writer
	level slog.Level
	color bool
	attrs []slog.Attr
	group string
	mu    *sync.Mutex
}

func (h *prettyHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *prettyHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	if !r.Time.IsZero() {
		b.WriteString(r.Time.Format(time.TimeOnly))
		b.WriteByte(' ')
	}
	name, color := "INFO ", "\x1b[36m"
	switch {
	case r.Level >= slog.LevelError:
		name, color = "ERROR", "\x1b[31m"
	case r.Level >= slog.LevelWarn:
		name, color = "WARN ", "\x1b[33m"
	case r.Level >= slog.LevelInfo:
	case r.Level > levelTrace:
		name, color = "DEBUG", "\x1b[90m"
	default:
		name, color = "TRACE", "\x1b[90m"
	}
	if h.color {
		b.WriteString(color + name + "\x1b[0m")
	} else {
		b.WriteString(name)
	}
	b.WriteByte(' ')
	b.WriteString(r.Message)
	write := func(a slog.Attr) {
		if a.Equal(slog.Attr{}) {
			return
		}
		key := a.Key
		if h.group != "" {
			key = h.group + "." + key
		}
		v := a.Value.Resolve().String()
		if strings.ContainsAny(v, " \"=") || v == "" {
			v = fmt.Sprintf("%q", v)
		}
		b.WriteString(" " + key + "=" + v)
	}
	for _, a := range h.attrs {
		write(a)
	}
	r.Attrs(func(a slog.Attr) bool { write(a); return true })
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h *prettyHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	n.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &n
}

func (h *prettyHandler) WithGroup(name string) slog.Handler {
	n := *h
	if n.group != "" {
		name = n.group + "." + name
	}
	n.group = name
	return &n
}
