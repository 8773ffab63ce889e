// flags.go owns the command line: the flag table (every Watchtower flag plus outpost's own), the
// environment variables each flag reads, the flag value types and the grouped --help text.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// option describes one flag: its names, where it reads the environment, how --help shows it and
// whether its behaviour exists yet.
type option struct {
	name  string
	short string
	env   []string // extra variables; OUTPOST_<NAME> is added unless ownEnv is set
	group string
	usage string
	value flag.Value
	// ownEnv: outpost's own flags read only OUTPOST_ variables, which env already lists.
	ownEnv bool
}

// envNames returns the variables the option reads, in increasing precedence.
func (o *option) envNames() []string {
	if o.ownEnv {
		return o.env
	}
	return append(append([]string(nil), o.env...), "OUTPOST_"+strings.ToUpper(strings.ReplaceAll(o.name, "-", "_")))
}

const (
	groupEngine    = "Engine"
	groupSelection = "Selection"
	groupUpdate    = "Update"
	groupRegistry  = "Registry"
	groupAPI       = "HTTP API"
	groupNotify    = "Notifications"
	groupLogging   = "Logging and output"
)

var groupOrder = []string{groupEngine, groupSelection, groupUpdate, groupRegistry, groupAPI, groupNotify, groupLogging}

// options returns the flag table, bound to the fields of c.
func (c *config) options() []*option {
	w := func(s string) []string { return []string{"WATCHTOWER_" + s} }
	o := []*option{
		{name: "host", short: "H", env: []string{"DOCKER_HOST"}, group: groupEngine, usage: "engine address, unix:///path or tcp://host:port", value: (*stringValue)(&c.host)},
		{name: "tlsverify", short: "v", env: []string{"DOCKER_TLS_VERIFY"}, group: groupEngine, usage: "use TLS to a tcp:// engine and verify it (certificates from DOCKER_CERT_PATH)", value: (*boolValue)(&c.tlsVerify)},
		{name: "api-version", short: "a", env: []string{"DOCKER_API_VERSION"}, group: groupEngine, usage: "pin the Engine API version, e.g. 1.41 (default: negotiated)", value: (*apiVersionValue)(&c.apiVersion)},

		{name: "label-enable", short: "e", env: w("LABEL_ENABLE"), group: groupSelection, usage: "watch only containers labelled com.centurylinklabs.watchtower.enable=true", value: (*boolValue)(&c.labelEnable)},
		{name: "disable-containers", short: "x", env: w("DISABLE_CONTAINERS"), group: groupSelection, usage: "container names never to touch (comma or space separated)", value: (*listValue)(&c.disableContainers)},
		{name: "scope", env: w("SCOPE"), group: groupSelection, usage: `watch only containers whose scope label equals this ("none": label absent or empty)`, value: (*stringValue)(&c.scope)},
		{name: "include-stopped", short: "S", env: w("INCLUDE_STOPPED"), group: groupSelection, usage: "also watch created and exited containers", value: (*boolValue)(&c.includeStopped)},
		{name: "include-restarting", env: w("INCLUDE_RESTARTING"), group: groupSelection, usage: "also watch restarting containers", value: (*boolValue)(&c.includeRestarting)},

		{name: "interval", short: "i", env: w("POLL_INTERVAL"), group: groupUpdate, usage: "seconds (or a duration like 6h) between sessions", value: (*secondsValue)(&c.interval)},
		{name: "schedule", short: "s", env: w("SCHEDULE"), group: groupUpdate, usage: "6-field cron spec with seconds; exclusive with --interval", value: (*stringValue)(&c.schedule)},
		{name: "run-once", short: "R", env: w("RUN_ONCE"), group: groupUpdate, usage: "run one session, then exit", value: (*boolValue)(&c.runOnce)},
		{name: "monitor-only", short: "m", env: w("MONITOR_ONLY"), group: groupUpdate, usage: "check and report; pull, stop and recreate nothing", value: (*boolValue)(&c.monitorOnly)},
		{name: "stop-timeout", short: "t", env: w("TIMEOUT"), group: groupUpdate, usage: "time allowed for a graceful stop", value: (*secondsValue)(&c.stopTimeout)},
		{name: "no-pull", env: w("NO_PULL"), group: groupUpdate, usage: "never pull; only restart on images already present", value: (*boolValue)(&c.noPull)},
		{name: "no-restart", env: w("NO_RESTART"), group: groupUpdate, usage: "pull only; never stop or recreate", value: (*boolValue)(&c.noRestart)},
		{name: "cleanup", short: "c", env: w("CLEANUP"), group: groupUpdate, usage: "remove the old image after a successful update", value: (*boolValue)(&c.cleanup)},
		{name: "remove-volumes", env: w("REMOVE_VOLUMES"), group: groupUpdate, usage: "remove anonymous volumes of replaced containers", value: (*boolValue)(&c.removeVolumes)},
		{name: "revive-stopped", env: w("REVIVE_STOPPED"), group: groupUpdate, usage: "start stopped containers after updating them", value: (*boolValue)(&c.reviveStopped)},
		{name: "enable-lifecycle-hooks", env: w("LIFECYCLE_HOOKS"), group: groupUpdate, usage: "run the lifecycle labels' commands", value: (*boolValue)(&c.lifecycleHooks)},
		{name: "rolling-restart", env: w("ROLLING_RESTART"), group: groupUpdate, usage: "update one container at a time", value: (*boolValue)(&c.rollingRestart)},
		{name: "label-take-precedence", env: w("LABEL_TAKE_PRECEDENCE"), group: groupUpdate, usage: "monitor-only and no-pull labels override the flags", value: (*boolValue)(&c.labelTakePrecedence)},

		{name: "concurrency", env: []string{"OUTPOST_CONCURRENCY"}, ownEnv: true, group: groupRegistry, usage: "registry checks run at once", value: (*positiveInt)(&c.concurrency)},
		{name: "warn-on-head-failure", env: w("WARN_ON_HEAD_FAILURE"), group: groupRegistry, usage: "log level of a failed check: always (warn), auto (warn for Docker Hub and GHCR), never (debug)", value: &choiceValue{p: &c.warnOnHeadFailure, choices: []string{"always", "auto", "never"}}},

		{name: "http-api-update", env: w("HTTP_API_UPDATE"), group: groupAPI, usage: "serve /v1/update (needs --http-api-token)", value: (*boolValue)(&c.httpAPIUpdate)},
		{name: "http-api-metrics", env: w("HTTP_API_METRICS"), group: groupAPI, usage: "serve /v1/metrics (needs --http-api-token)", value: (*boolValue)(&c.httpAPIMetrics)},
		{name: "http-api-token", env: w("HTTP_API_TOKEN"), group: groupAPI, usage: "Bearer token for the API (a value or a file holding it)", value: (*secretValue)(&c.httpAPIToken)},
		{name: "http-api-addr", env: []string{"OUTPOST_HTTP_API_ADDR"}, ownEnv: true, group: groupAPI, usage: "address the HTTP API listens on", value: (*stringValue)(&c.httpAPIAddr)},
		{name: "http-api-periodic-polls", env: w("HTTP_API_PERIODIC_POLLS"), group: groupAPI, usage: "keep scheduled sessions when the update API is on", value: (*boolValue)(&c.httpAPIPeriodicPolls)},

		{name: "notifications", short: "n", env: w("NOTIFICATIONS"), group: groupNotify, usage: "legacy notification types: email, slack, msteams, gotify, shoutrrr", value: (*listValue)(&c.notifications)},
		{name: "notification-url", env: w("NOTIFICATION_URL"), group: groupNotify, usage: "notification service URLs (a value or a file, one URL per line)", value: (*spaceListValue)(&c.notificationURLs)},
		{name: "notifications-level", env: w("NOTIFICATIONS_LEVEL"), group: groupNotify, usage: "lowest level sent", value: (*stringValue)(&c.notificationsLevel)},
		{name: "notifications-delay", env: w("NOTIFICATIONS_DELAY"), group: groupNotify, usage: "seconds before the first notification", value: (*secondsValue)(&c.notificationsDelay)},
		{name: "notifications-hostname", env: w("NOTIFICATIONS_HOSTNAME"), group: groupNotify, usage: "host name shown in notifications", value: (*stringValue)(&c.notificationsHostname)},
		{name: "notification-template", env: w("NOTIFICATION_TEMPLATE"), group: groupNotify, usage: "template for messages, in Go text/template syntax (fields, range, if, with, printf…)", value: (*stringValue)(&c.notificationTemplate)},
		{name: "notification-report", env: w("NOTIFICATION_REPORT"), group: groupNotify, usage: "send the session report, not log lines", value: (*boolValue)(&c.notificationReport)},
		{name: "notification-title-tag", env: w("NOTIFICATION_TITLE_TAG"), group: groupNotify, usage: "tag prefixed to titles", value: (*stringValue)(&c.notificationTitleTag)},
		{name: "notification-skip-title", env: w("NOTIFICATION_SKIP_TITLE"), group: groupNotify, usage: "send no title", value: (*boolValue)(&c.notificationSkipTitle)},
		{name: "notification-log-stdout", env: w("NOTIFICATION_LOG_STDOUT"), group: groupNotify, usage: "also write notifications to stdout", value: (*boolValue)(&c.notificationLogStdout)},

		{name: "log-format", short: "l", env: w("LOG_FORMAT"), group: groupLogging, usage: "auto, logfmt, pretty or json", value: &choiceValue{p: &c.logFormat, choices: []string{"auto", "logfmt", "pretty", "json"}}},
		{name: "log-level", env: w("LOG_LEVEL"), group: groupLogging, usage: "panic, fatal, error, warn, info, debug or trace", value: &choiceValue{p: &c.logLevel, choices: []string{"panic", "fatal", "error", "warn", "info", "debug", "trace"}}},
		{name: "debug", short: "d", env: w("DEBUG"), group: groupLogging, usage: "same as --log-level debug", value: (*boolValue)(&c.debug)},
		{name: "trace", env: w("TRACE"), group: groupLogging, usage: "same as --log-level trace", value: (*boolValue)(&c.trace)},
		{name: "no-color", env: []string{"NO_COLOR"}, group: groupLogging, usage: "no colours in pretty logs (NO_COLOR set at all means true)", value: (*boolValue)(&c.noColor)},
		{name: "no-startup-message", env: w("NO_STARTUP_MESSAGE"), group: groupLogging, usage: "do not log the start-up message", value: (*boolValue)(&c.noStartupMessage)},
		{name: "porcelain", short: "P", env: w("PORCELAIN"), group: groupLogging, usage: `"v1": machine-readable session summary on stdout`, value: (*stringValue)(&c.porcelain)},
		{name: "health-check", group: groupLogging, usage: "exit 0 at once (for a container HEALTHCHECK)", value: (*boolValue)(&c.healthCheck)},
	}
	o = append(o, c.registryOptions()...)
	return append(o, c.legacyNotifyOptions()...)
}

// legacyNotifyOptions are the per-service notification flags of Watchtower.
func (c *config) legacyNotifyOptions() []*option {
	type spec struct{ name, env, usage string }
	specs := []spec{
		{"notification-email-from", "EMAIL_FROM", "sender address"},
		{"notification-email-to", "EMAIL_TO", "recipient address"},
		{"notification-email-server", "EMAIL_SERVER", "SMTP server"},
		{"notification-email-server-port", "EMAIL_SERVER_PORT", "SMTP port (25)"},
		{"notification-email-server-user", "EMAIL_SERVER_USER", "SMTP user"},
		{"notification-email-server-password", "EMAIL_SERVER_PASSWORD", "SMTP password (a value or a file)"},
		{"notification-email-server-tls-skip-verify", "EMAIL_SERVER_TLS_SKIP_VERIFY", "do not verify the SMTP server's certificate"},
		{"notification-email-delay", "EMAIL_DELAY", "seconds before sending"},
		{"notification-email-subjecttag", "EMAIL_SUBJECTTAG", "subject prefix"},
		{"notification-slack-hook-url", "SLACK_HOOK_URL", "Slack webhook URL"},
		{"notification-slack-identifier", "SLACK_IDENTIFIER", "Slack user name (watchtower)"},
		{"notification-slack-channel", "SLACK_CHANNEL", "Slack channel"},
		{"notification-slack-icon-emoji", "SLACK_ICON_EMOJI", "Slack icon emoji"},
		{"notification-slack-icon-url", "SLACK_ICON_URL", "Slack icon URL"},
		{"notification-msteams-hook", "MSTEAMS_HOOK_URL", "Teams webhook URL"},
		{"notification-msteams-data", "MSTEAMS_USE_LOG_DATA", "include log data in Teams messages"},
		{"notification-gotify-url", "GOTIFY_URL", "Gotify server URL"},
		{"notification-gotify-token", "GOTIFY_TOKEN", "Gotify application token"},
		{"notification-gotify-tls-skip-verify", "GOTIFY_TLS_SKIP_VERIFY", "do not verify Gotify's certificate"},
	}
	if c.legacy == nil {
		c.legacy = map[string]*string{}
	}
	var o []*option
	for _, s := range specs {
		p := new(string)
		c.legacy[s.name] = p
		o = append(o, &option{name: s.name, env: []string{"WATCHTOWER_NOTIFICATION_" + s.env}, group: groupNotify, usage: s.usage, value: (*stringValue)(p)})
	}
	return o
}

// registryOptions are outpost's own registry flags.
func (c *config) registryOptions() []*option {
	return []*option{
		{name: "registry-ca", env: []string{"OUTPOST_REGISTRY_CA"}, ownEnv: true, group: groupRegistry, usage: "PEM bundle of CAs trusted for registries, added to the system roots", value: (*stringValue)(&c.registryCA)},
		{name: "registry-ca-validate", env: []string{"OUTPOST_REGISTRY_CA_VALIDATE"}, ownEnv: true, group: groupRegistry, usage: "exit at start-up when the --registry-ca bundle is missing, broken or expired", value: (*boolValue)(&c.registryCAValidate)},
		{name: "state-file", env: []string{"OUTPOST_STATE_FILE"}, ownEnv: true, group: groupUpdate, usage: "where rolled-back image digests are remembered (default /var/lib/outpost/state.json as root)", value: (*stringValue)(&c.stateFile)},
		{name: "settle-time", env: []string{"OUTPOST_SETTLE_TIME"}, ownEnv: true, group: groupUpdate, usage: "how long a new container must keep running before it counts as started (label outpost.settle-time)", value: (*secondsValue)(&c.settleTime)},
		{name: "health-timeout", env: []string{"OUTPOST_HEALTH_TIMEOUT"}, ownEnv: true, group: groupUpdate, usage: "how long to wait for a new container with a health check to become healthy (label outpost.health-timeout)", value: (*secondsValue)(&c.healthTimeout)},
		{name: "insecure-registry", env: []string{"OUTPOST_INSECURE_REGISTRY"}, ownEnv: true, group: groupRegistry, usage: "do not verify registry certificates (unsafe)", value: (*boolValue)(&c.insecureRegistry)},
	}
}

// writeUsage prints the grouped flag list with each flag's environment variables.
func writeUsage(w io.Writer, opts []*option) {
	fmt.Fprint(w, usageHeader)
	byGroup := map[string][]*option{}
	for _, o := range opts {
		byGroup[o.group] = append(byGroup[o.group], o)
	}
	for _, g := range groupOrder {
		fmt.Fprintf(w, "\n%s:\n", g)
		for _, o := range byGroup[g] {
			names := "    --" + o.name
			if o.short != "" {
				names = "-" + o.short + ", --" + o.name
			}
			if _, ok := o.value.(*boolValue); !ok {
				names += " VALUE"
			}
			fmt.Fprintf(w, "  %s\n        %s", names, o.usage)
			if d := o.value.String(); d != "" && d != "false" && d != "0" {
				fmt.Fprintf(w, " (default %s)", d)
			}
			if env := o.envNames(); len(env) > 0 {
				fmt.Fprintf(w, "\n        env: %s", strings.Join(env, ", "))
			}
			fmt.Fprintln(w)
		}
	}
}

const usageHeader = `outpost keeps the containers of a Docker host on the newest image of their tag.

Usage: outpost [flags] [CONTAINER|REGEX ...]

Containers may be named (web or /web) or matched by regular expressions covering the whole name.
Every flag also reads the environment variables listed with it; an explicit flag wins.
--version prints the version.
`

type stringValue string

func (v *stringValue) Set(s string) error { *v = stringValue(s); return nil }
func (v *stringValue) String() string     { return string(*v) }

// secretValue takes a value, or the content of the file the value names.
type secretValue string

func (v *secretValue) Set(s string) error {
	*v = secretValue(secretOrFile(s))
	return nil
}
func (v *secretValue) String() string { return "" }

// secretOrFile is a value, or the content of the regular file it names (Watchtower's convention
// for tokens, passwords and URLs kept out of the environment).
func secretOrFile(v string) string {
	if st, err := os.Stat(v); err == nil && st.Mode().IsRegular() {
		if b, err := os.ReadFile(v); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	return v
}

type boolValue bool

func (v *boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("want true or false")
	}
	*v = boolValue(b)
	return nil
}
func (v *boolValue) String() string   { return strconv.FormatBool(bool(*v)) }
func (v *boolValue) IsBoolFlag() bool { return true }

// secondsValue is Watchtower's integer seconds, or a Go duration such as 90s or 6h.
type secondsValue time.Duration

func (v *secondsValue) Set(s string) error {
	d, err := parseSeconds(s)
	if err != nil {
		return err
	}
	*v = secondsValue(d)
	return nil
}
func (v *secondsValue) String() string {
	if *v == 0 {
		return ""
	}
	return time.Duration(*v).String()
}

func parseSeconds(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 || n > 1<<31 {
			return 0, fmt.Errorf("want a positive number of seconds or a duration like 90s, 5m, 6h")
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("want a number of seconds or a duration like 90s, 5m, 6h")
	}
	return d, nil
}

type positiveInt int

func (v *positiveInt) Set(s string) error {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 1 || n > 1024 {
		return fmt.Errorf("want a whole number from 1 to 1024")
	}
	*v = positiveInt(n)
	return nil
}
func (v *positiveInt) String() string { return strconv.Itoa(int(*v)) }

// listValue splits on commas and white space; repeating the flag appends.
type listValue []string

func (v *listValue) Set(s string) error {
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		*v = append(*v, f)
	}
	return nil
}
func (v *listValue) String() string { return strings.Join(*v, ",") }

// spaceListValue splits on white space only: URLs may hold commas (to=a,b).
type spaceListValue []string

func (v *spaceListValue) Set(s string) error {
	*v = append(*v, strings.Fields(s)...)
	return nil
}
func (v *spaceListValue) String() string { return strings.Join(*v, " ") }

type choiceValue struct {
	p       *string
	choices []string
}

func (v *choiceValue) Set(s string) error {
	s = strings.ToLower(strings.TrimSpace(s))
	for _, c := range v.choices {
		if s == c {
			*v.p = s
			return nil
		}
	}
	return fmt.Errorf("want one of %s", strings.Join(v.choices, ", "))
}
func (v *choiceValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

// apiVersionValue is an Engine API version such as 1.41.
type apiVersionValue string

func (v *apiVersionValue) Set(s string) error {
	s = strings.TrimPrefix(strings.TrimSpace(s), "v")
	if _, _, ok := splitVersion(s); !ok {
		return fmt.Errorf("want an API version like 1.41")
	}
	*v = apiVersionValue(s)
	return nil
}
func (v *apiVersionValue) String() string { return string(*v) }
