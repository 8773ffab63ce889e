package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestLogFormats(t *testing.T) {
	for _, tt := range []struct {
		format string
		check  func(t *testing.T, out string)
	}{
		{"json", func(t *testing.T, out string) {
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				var m map[string]any
				if err := json.Unmarshal([]byte(line), &m); err != nil {
					t.Fatalf("line %q is not one JSON object: %v", line, err)
				}
				if m["msg"] == "container" && (m["container"] != "web" || m["state"] != "fresh") {
					t.Fatalf("attributes lost: %v", m)
				}
			}
		}},
		{"logfmt", func(t *testing.T, out string) {
			if !strings.Contains(out, `level=INFO msg=container container=web state=fresh`) {
				t.Fatalf("logfmt: %q", out)
			}
		}},
		{"pretty", func(t *testing.T, out string) {
			if !strings.Contains(out, "INFO  container container=web state=fresh") || strings.Contains(out, "\x1b[") {
				t.Fatalf("pretty without colour: %q", out)
			}
		}},
		{"auto", func(t *testing.T, out string) { // not a terminal: logfmt
			if !strings.Contains(out, "msg=container") {
				t.Fatalf("auto off a terminal should be logfmt: %q", out)
			}
		}},
	} {
		t.Run(tt.format, func(t *testing.T) {
			c := defaultConfig()
			c.logFormat, c.noColor = tt.format, true
			var buf bytes.Buffer
			log := newLogger(c, &buf, envMap())
			log.Info("container", "container", "web", "state", "fresh")
			log.Debug("hidden at info")
			if strings.Contains(buf.String(), "hidden") {
				t.Fatal("debug record written at level info")
			}
			tt.check(t, buf.String())
		})
	}
}

func TestLogLevels(t *testing.T) {
	for _, tt := range []struct {
		level        string
		debug, trace bool
		want         slog.Level
	}{
		{"info", false, false, slog.LevelInfo},
		{"warn", false, false, slog.LevelWarn},
		{"error", false, false, slog.LevelError},
		{"fatal", false, false, slog.LevelError + 4},
		{"panic", false, false, slog.LevelError + 8},
		{"debug", false, false, slog.LevelDebug},
		{"trace", false, false, levelTrace},
		{"info", true, false, slog.LevelDebug},
		{"info", false, true, levelTrace},
	} {
		c := defaultConfig()
		c.logLevel, c.debug, c.trace = tt.level, tt.debug, tt.trace
		if got := logLevel(c); got != tt.want {
			t.Errorf("level %s debug %v trace %v = %v, want %v", tt.level, tt.debug, tt.trace, got, tt.want)
		}
	}
	c := defaultConfig()
	c.logFormat, c.trace = "logfmt", true
	var buf bytes.Buffer
	newLogger(c, &buf, envMap()).Log(nil, levelTrace, "wire")
	if !strings.Contains(buf.String(), "level=TRACE msg=wire") {
		t.Fatalf("trace records must say TRACE: %q", buf.String())
	}
}

func TestLogJournalDropsTimestamps(t *testing.T) {
	c := defaultConfig()
	c.logFormat = "logfmt"
	var buf bytes.Buffer
	newLogger(c, &buf, envMap("JOURNAL_STREAM", "8:1234")).Info("hello")
	if strings.Contains(buf.String(), "time=") || !strings.Contains(buf.String(), "msg=hello") {
		t.Fatalf("journal output: %q", buf.String())
	}
}
