package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// envMap makes a lookup function from pairs.
func envMap(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func mustParse(t *testing.T, args []string, env func(string) (string, bool)) *config {
	t.Helper()
	c, err := parseConfig(args, env, &bytes.Buffer{})
	if err != nil {
		t.Fatalf("parseConfig(%q): %v", args, err)
	}
	return c
}

func TestConfigDefaults(t *testing.T) {
	c := mustParse(t, nil, envMap())
	if c.host != "unix:///var/run/docker.sock" || c.interval != 24*time.Hour || c.stopTimeout != 10*time.Second ||
		c.concurrency != 16 || c.logFormat != "auto" || c.logLevel != "info" || c.apiVersion != "" || c.monitorOnly || c.runOnce {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestConfigFlagsBeatEnvironment(t *testing.T) {
	env := envMap(
		"WATCHTOWER_POLL_INTERVAL", "60",
		"DOCKER_HOST", "tcp://127.0.0.1:2375",
		"WATCHTOWER_MONITOR_ONLY", "true",
		"WATCHTOWER_LOG_LEVEL", "debug",
		"WATCHTOWER_DISABLE_CONTAINERS", "db, cache proxy",
		"OUTPOST_CONCURRENCY", "3",
		"DOCKER_API_VERSION", "1.41",
	)
	c := mustParse(t, []string{"--interval", "5m", "-H", "unix:///run/other.sock", "--log-level=warn"}, env)
	if c.interval != 5*time.Minute {
		t.Errorf("interval = %s, want the flag's 5m", c.interval)
	}
	if c.host != "unix:///run/other.sock" {
		t.Errorf("host = %s, want the flag's", c.host)
	}
	if c.logLevel != "warn" {
		t.Errorf("log level = %s, want the flag's warn", c.logLevel)
	}
	if !c.monitorOnly || c.concurrency != 3 || c.apiVersion != "1.41" {
		t.Errorf("environment not applied: monitor-only %v concurrency %d api %s", c.monitorOnly, c.concurrency, c.apiVersion)
	}
	if strings.Join(c.disableContainers, "|") != "db|cache|proxy" {
		t.Errorf("disable-containers = %q", c.disableContainers)
	}
}

func TestConfigOutpostVariableBeatsWatchtowerOne(t *testing.T) {
	c := mustParse(t, nil, envMap("WATCHTOWER_POLL_INTERVAL", "60", "OUTPOST_INTERVAL", "120"))
	if c.interval != 2*time.Minute {
		t.Fatalf("interval = %s, want OUTPOST_INTERVAL's 2m", c.interval)
	}
}

func TestConfigShortFlagsAndPositionals(t *testing.T) {
	c := mustParse(t, []string{"web", "-R", "/db", "-m", "-i", "30", "-S", "-e", "api-.*"}, envMap())
	if !c.runOnce || !c.monitorOnly || !c.includeStopped || !c.labelEnable || c.interval != 30*time.Second {
		t.Fatalf("short flags not applied: %+v", c)
	}
	if strings.Join(c.names, " ") != "web /db api-.*" {
		t.Fatalf("names = %q", c.names)
	}
	for name, want := range map[string]bool{"web": true, "db": true, "api-1": true, "api-": true, "xapi-1": false, "webx": false, "weba": false} {
		if got := matchesAny(c.patterns, name); got != want {
			t.Errorf("%q selected = %v, want %v", name, got, want)
		}
	}
}

func TestConfigNoColorSetAtAll(t *testing.T) {
	if c := mustParse(t, nil, envMap("NO_COLOR", "")); !c.noColor {
		t.Fatal("NO_COLOR set to the empty string must still mean no colour")
	}
}

func TestConfigSecretFromFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var v secretValue
	if err := v.Set(p); err != nil || string(v) != "s3cret" {
		t.Fatalf("secret from file = %q, %v", v, err)
	}
	if err := v.Set("literal"); err != nil || string(v) != "literal" {
		t.Fatalf("literal secret = %q, %v", v, err)
	}
}

func TestConfigInvalidInput(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"bad interval", []string{"--interval", "soon"}, nil, `invalid value "soon" for --interval`},
		{"negative interval", []string{"--interval=-5"}, nil, `--interval`},
		{"zero interval", []string{"--interval", "0"}, nil, `--interval: want at least 1 second`},
		{"bad interval env", nil, []string{"WATCHTOWER_POLL_INTERVAL", "x"}, `"x" in WATCHTOWER_POLL_INTERVAL (--interval)`},
		{"bad stop timeout", []string{"--stop-timeout", "10 parsecs"}, nil, `for --stop-timeout`},
		{"bad concurrency", []string{"--concurrency", "0"}, nil, `"0" for --concurrency`},
		{"bad concurrency word", []string{"--concurrency", "many"}, nil, `"many" for --concurrency`},
		{"bad log level", []string{"--log-level", "loud"}, nil, `"loud" for --log-level: want one of panic`},
		{"bad log level env", nil, []string{"WATCHTOWER_LOG_LEVEL", "loud"}, `WATCHTOWER_LOG_LEVEL (--log-level)`},
		{"bad log format", []string{"-l", "xml"}, nil, `"xml" for --log-format (-l): want one of auto, logfmt, pretty, json`},
		{"bad bool env", nil, []string{"WATCHTOWER_RUN_ONCE", "maybe"}, `"maybe" in WATCHTOWER_RUN_ONCE (--run-once)`},
		{"bad api version", []string{"--api-version", "latest"}, nil, `"latest" for --api-version`},
		{"bad host", []string{"--host", "ssh://box"}, nil, `"ssh://box" for --host`},
		{"bad warn mode", []string{"--warn-on-head-failure", "sometimes"}, nil, `--warn-on-head-failure`},
		{"unknown flag", []string{"--frobnicate"}, nil, `unknown flag --frobnicate: see outpost --help`},
		{"missing value", []string{"--interval"}, nil, `--interval needs a value`},
		{"interval and schedule", []string{"--interval", "60", "--schedule", "0 0 4 * * *"}, nil, `--schedule and --interval (set by --interval) exclude each other`},
		{"interval env and schedule", []string{"--schedule", "0 0 4 * * *"}, []string{"WATCHTOWER_POLL_INTERVAL", "60"}, `set by WATCHTOWER_POLL_INTERVAL`},
		{"rolling with monitor-only", []string{"--rolling-restart", "--monitor-only"}, nil, `--rolling-restart cannot be used with --monitor-only`},
		{"update api without token", []string{"--http-api-update"}, nil, `need --http-api-token`},
		{"metrics api without token", nil, []string{"WATCHTOWER_HTTP_API_METRICS", "true"}, `need --http-api-token`},
		{"porcelain version", []string{"--porcelain", "v2"}, nil, `"v2" for --porcelain: want v1`},
		{"bad name pattern", []string{"web-["}, nil, `container "web-[" is neither a name nor a valid regular expression`},
		{"bad schedule", []string{"--schedule", "0 0 25 * * *"}, nil, `--schedule "0 0 25 * * *": hours field "25": want 0-23`},
		{"five-field schedule", nil, []string{"WATCHTOWER_SCHEDULE", "0 4 * * *"}, `seconds field`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig(tt.args, envMap(tt.env...), &bytes.Buffer{})
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("got %v, want a usage error", err)
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q, want one line containing %q", err, tt.want)
			}
		})
	}
}

func TestConfigNotificationURLsKeepCommas(t *testing.T) {
	c := mustParse(t, []string{"--notification-url", "smtp://u:p@127.0.0.1:25/?from=a@b&to=c@d,e@f generic+http://127.0.0.1:9/x"}, envMap())
	if len(c.notificationURLs) != 2 || !strings.HasSuffix(c.notificationURLs[0], "to=c@d,e@f") {
		t.Fatalf("urls %q", c.notificationURLs)
	}
}

func TestHelpListsEveryFlagWithItsVariables(t *testing.T) {
	var out bytes.Buffer
	_, err := parseConfig([]string{"--help"}, envMap(), &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	help := out.String()
	for _, o := range defaultConfig().options() {
		line := "--" + o.name
		if o.short != "" {
			line = "-" + o.short + ", --" + o.name
		}
		if !strings.Contains(help, line) {
			t.Errorf("help lacks %q", line)
		}
		for _, e := range o.envNames() {
			if !strings.Contains(help, e) {
				t.Errorf("help lacks variable %s of --%s", e, o.name)
			}
		}
	}
	for _, g := range groupOrder {
		if !strings.Contains(help, "\n"+g+":\n") {
			t.Errorf("help lacks group %q", g)
		}
	}
	for _, w := range []string{"WATCHTOWER_POLL_INTERVAL", "DOCKER_HOST", "OUTPOST_REGISTRY_CA", "WATCHTOWER_NOTIFICATION_MSTEAMS_HOOK_URL"} {
		if !strings.Contains(help, w) {
			t.Errorf("help lacks %s", w)
		}
	}
}

func TestRunVersionAndExitCodes(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--version"}, envMap(), &out, &errb); code != 0 || !strings.Contains(out.String(), "outpost "+version) {
		t.Fatalf("--version: code %d, out %q", code, out.String())
	}
	out.Reset()
	if code := run([]string{"--interval", "x"}, envMap(), &out, &errb); code != 2 || !strings.HasPrefix(errb.String(), "outpost: invalid value") {
		t.Fatalf("bad flag: code %d, stderr %q", code, errb.String())
	}
	if code := run([]string{"-h"}, envMap(), &out, &errb); code != 0 || !strings.Contains(out.String(), "Usage: outpost") {
		t.Fatalf("-h: code %d", code)
	}
}

func TestRunUnreachableEngine(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "missing.sock")
	var out, errb bytes.Buffer
	code := run([]string{"--run-once", "--monitor-only", "--host", "unix://" + sock, "--log-format", "logfmt"}, envMap(), &out, &errb)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], sock) || !strings.Contains(lines[0], "is dockerd running") {
		t.Fatalf("want one line naming the socket and the fix, got %q", errb.String())
	}
}

func TestStartupSaysWhenSessionsRun(t *testing.T) {
	for args, want := range map[string]string{
		"--run-once":                           "once",
		"--interval 300":                       "at start, then every 5m0s",
		"--schedule @daily":                    "on schedule @daily",
		"--http-api-update --http-api-token t": "on /v1/update calls",
	} {
		if got := mustParse(t, strings.Fields(args), envMap()).when(); got != want {
			t.Errorf("%s: %q, want %q", args, got, want)
		}
	}
}
