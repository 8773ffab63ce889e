// main.go owns the process: the configuration (flags over environment), its validation, the wiring
// of engine and registry clients, the run-once / interval loop and the signals that end it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// config is everything the user asked for, after flags and environment are merged.
type config struct {
	host, apiVersion, certPath string
	tlsVerify                  bool

	labelEnable, includeStopped, includeRestarting bool
	disableContainers                              []string
	scope                                          string
	names                                          []string
	patterns                                       []*regexp.Regexp

	interval, stopTimeout                                time.Duration
	schedule                                             string
	runOnce, monitorOnly, noPull, noRestart, cleanup     bool
	removeVolumes, reviveStopped, lifecycleHooks         bool
	rollingRestart, labelTakePrecedence                  bool
	concurrency                                          int
	warnOnHeadFailure                                    string
	registryCA, stateFile, httpAPIAddr                   string
	settleTime, healthTimeout                            time.Duration
	registryCAValidate, insecureRegistry                 bool
	httpAPIUpdate, httpAPIMetrics, httpAPIPeriodicPolls  bool
	httpAPIToken                                         string
	notifications, notificationURLs                      []string
	notificationsLevel, notificationsHostname            string
	notificationTemplate, notificationTitleTag           string
	notificationsDelay                                   time.Duration
	notificationReport, notificationSkipTitle            bool
	notificationLogStdout                                bool
	legacy                                               map[string]*string
	logFormat, logLevel, porcelain                       string
	debug, trace, noColor, noStartupMessage, healthCheck bool
	showVersion                                          bool
	setBy                                                map[string]string // flag name -> "--flag" or the variable that set it
}

// usageError is invalid input: the process exits 2 with its one-line message.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

func defaultConfig() *config {
	return &config{
		host:              "unix:///var/run/docker.sock",
		interval:          24 * time.Hour,
		stopTimeout:       10 * time.Second,
		settleTime:        3 * time.Second,
		healthTimeout:     time.Minute,
		concurrency:       16,
		warnOnHeadFailure: "auto",
		logFormat:         "auto",
		logLevel:          "info",
		httpAPIAddr:       ":8080",
	}
}

// parseConfig merges the environment and the command line; lookup reads the environment.
func parseConfig(args []string, lookup func(string) (string, bool), help io.Writer) (*config, error) {
	c := defaultConfig()
	c.setBy = map[string]string{}
	opts := c.options()

	fs := flag.NewFlagSet("outpost", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	byName := map[string]*option{}
	for _, o := range opts {
		fs.Var(o.value, o.name, o.usage)
		byName[o.name] = o
		if o.short != "" {
			fs.Var(o.value, o.short, o.usage)
			byName[o.short] = o
		}
	}
	fs.BoolVar(&c.showVersion, "version", false, "print the version")

	// The environment first, so that explicit flags overwrite it.
	for _, o := range opts {
		for _, name := range o.envNames() {
			v, ok := lookup(name)
			if !ok {
				continue
			}
			if name == "NO_COLOR" {
				v = "true" // set at all means true, per no-color.org
			}
			if v == "" {
				continue
			}
			if err := o.value.Set(v); err != nil {
				return nil, usagef("invalid value %q in %s (--%s): %v", v, name, o.name, err)
			}
			c.setBy[o.name] = name
		}
	}
	if v, ok := lookup("DOCKER_CERT_PATH"); ok {
		c.certPath = v
	}

	// Positional arguments may stand between flags, as they could with Watchtower.
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				writeUsage(help, opts)
				return nil, err
			}
			return nil, flagError(err, byName)
		}
		if fs.NArg() == 0 {
			break
		}
		c.names = append(c.names, fs.Arg(0))
		args = fs.Args()[1:]
	}
	fs.Visit(func(f *flag.Flag) {
		if o := byName[f.Name]; o != nil {
			c.setBy[o.name] = "--" + o.name
		}
	})
	if c.showVersion {
		return c, nil
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// flagParseError matches the flag package's messages so they can name flags as users write them.
var flagParseError = regexp.MustCompile(`^(invalid (?:boolean )?value "(.*)" for (?:flag )?-([^:]+): (.*)|flag provided but not defined: -(.*)|flag needs an argument: -(.*))$`)

// flagError rewrites the flag package's error to name the long flag.
func flagError(err error, byName map[string]*option) error {
	m := flagParseError.FindStringSubmatch(err.Error())
	long := func(n string) string {
		if o := byName[n]; o != nil && o.name != n {
			return "--" + o.name + " (-" + n + ")"
		}
		return "--" + n
	}
	switch {
	case m == nil:
		return usagef("%v", err)
	case m[3] != "":
		return usagef("invalid value %q for %s: %s", m[2], long(m[3]), m[4])
	case m[5] != "":
		dash := "--"
		if len(m[5]) == 1 {
			dash = "-"
		}
		return usagef("unknown flag %s%s: see outpost --help", dash, m[5])
	default:
		return usagef("%s needs a value", long(m[6]))
	}
}

// validate rejects combinations that cannot work.
func (c *config) validate() error {
	if _, ok := c.setBy["schedule"]; ok && c.schedule != "" {
		if src, ok := c.setBy["interval"]; ok {
			return usagef("--schedule and --interval (set by %s) exclude each other: keep one", src)
		}
	}
	if c.schedule != "" {
		if _, err := parseSchedule(c.schedule, time.Local); err != nil {
			return usagef("%v", err)
		}
	}
	if c.interval <= 0 {
		return usagef("invalid value %s for --interval: want at least 1 second", c.interval)
	}
	if c.stopTimeout <= 0 {
		return usagef("invalid value %s for --stop-timeout: want at least 1 second", c.stopTimeout)
	}
	if c.rollingRestart && c.monitorOnly {
		return usagef("--rolling-restart cannot be used with --monitor-only: monitor-only restarts nothing")
	}
	if (c.httpAPIUpdate || c.httpAPIMetrics) && c.httpAPIToken == "" {
		return usagef("--http-api-update and --http-api-metrics need --http-api-token (or WATCHTOWER_HTTP_API_TOKEN)")
	}
	if c.porcelain != "" && c.porcelain != "v1" {
		return usagef("invalid value %q for --porcelain: want v1", c.porcelain)
	}
	switch {
	case strings.HasPrefix(c.host, "unix://"), strings.HasPrefix(c.host, "tcp://"):
	default:
		return usagef("invalid value %q for --host: want unix:///path/to/docker.sock or tcp://host:port", c.host)
	}
	for _, n := range c.names {
		name := strings.TrimPrefix(n, "/")
		re, err := regexp.Compile("^(?:" + name + ")$")
		if err != nil {
			return usagef("container %q is neither a name nor a valid regular expression: %v", n, err)
		}
		c.patterns = append(c.patterns, re)
	}
	return nil
}

func main() {
	os.Exit(run(os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr))
}

// run is the whole program; it returns the exit status.
func run(args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	cfg, err := parseConfig(args, lookup, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "outpost: %v\n", err)
		return 2
	}
	if cfg.showVersion {
		fmt.Fprintf(stdout, "outpost %s\n", version)
		return 0
	}
	if cfg.healthCheck {
		// For a container HEALTHCHECK: as PID 1 it would be the container itself, not a probe.
		if os.Getpid() == 1 {
			fmt.Fprintln(stderr, "outpost: --health-check is for a HEALTHCHECK command, not for the container's main process")
			return 1
		}
		return 0
	}
	log := newLogger(cfg, stderr, lookup)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	reg, err := newRegistryClient(cfg, lookup, log)
	if err != nil {
		fmt.Fprintf(stderr, "outpost: %v\n", err)
		return 2
	}
	eng, err := dialEngine(ctx, engineOptions{host: cfg.host, tlsVerify: cfg.tlsVerify, certPath: cfg.certPath, apiVersion: cfg.apiVersion})
	if err != nil {
		log.Error("cannot use the Docker engine", "err", err)
		return 1
	}
	if !cfg.noStartupMessage {
		log.Info("outpost started", "version", version, "engine", cfg.host, "api", eng.version, "sessions", cfg.when())
	}
	s := &session{cfg: cfg, eng: eng, reg: reg, log: log, selfID: selfContainer()}
	if !cfg.monitorOnly {
		path := cfg.stateFile
		if path == "" {
			path = defaultStatePath(lookup)
		}
		st, err := loadState(path)
		if err != nil {
			log.Warn("state file not usable; rolled-back images are remembered only while outpost runs", "err", err)
		}
		s.state = st
	}

	host := cfg.notificationsHostname
	if host == "" {
		host, _ = os.Hostname()
	}
	r := newRunner(s, host)
	if cfg.porcelain == "v1" {
		r.porcelain = stdout
	}
	if r.notifier, err = newNotifier(cfg, log); err != nil {
		fmt.Fprintf(stderr, "outpost: %v\n", err)
		return 2
	}
	if cfg.runOnce {
		r.session(ctx, nil)
		return r.lastExit
	}
	return r.serveForever(ctx, cfg, lookup)
}

// serveForever runs sessions on the schedule and serves the HTTP API until a signal.
func (r *runner) serveForever(ctx context.Context, cfg *config, lookup func(string) (string, bool)) int {
	r.sd = newSDNotifier(lookup)
	var wg sync.WaitGroup
	defer wg.Wait()
	apiErr := make(chan error, 1)
	if cfg.httpAPIUpdate || cfg.httpAPIMetrics {
		api := &apiServer{token: cfg.httpAPIToken, update: cfg.httpAPIUpdate, run: r, log: r.log}
		if cfg.httpAPIMetrics {
			api.metrics = r.metrics
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			apiErr <- api.serve(ctx, cfg.httpAPIAddr)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.sd.watchdog(ctx, watchdogInterval(lookup, os.Getpid()), r.healthy.Load)
	}()
	next, err := cfg.nextSession()
	if err != nil {
		r.log.Error("cannot schedule sessions", "err", err)
		return 2
	}
	r.sd.ready()
	scheduled := !cfg.httpAPIUpdate || cfg.httpAPIPeriodicPolls
	if scheduled {
		// With --interval a session runs at start; a --schedule waits for its first time, as
		// Watchtower did, so that a 4 AM schedule does not restart containers at deploy time.
		if cfg.schedule == "" {
			r.tryRun(ctx, nil)
		}
		loopDone := make(chan struct{})
		go func() { r.loop(ctx, next); close(loopDone) }()
		select {
		case err := <-apiErr:
			if err != nil {
				r.log.Error("HTTP API stopped", "err", err)
				return 1
			}
		case <-loopDone:
		}
	} else {
		r.log.Info("the update API is on: sessions run when it is called (--http-api-periodic-polls keeps the schedule)")
		if err := <-apiErr; err != nil && ctx.Err() == nil {
			r.log.Error("HTTP API stopped", "err", err)
			return 1
		}
	}
	<-ctx.Done()
	r.sd.stopping()
	r.log.Info("stopping on signal")
	// A session in hand finishes (or rolls back) before the process ends.
	r.sem <- struct{}{}
	return 0
}

// when says in words when sessions run, for the start-up message.
func (c *config) when() string {
	switch {
	case c.runOnce:
		return "once"
	case c.httpAPIUpdate && !c.httpAPIPeriodicPolls:
		return "on /v1/update calls"
	case c.schedule != "":
		return "on schedule " + c.schedule
	}
	return "at start, then every " + c.interval.String()
}

// nextSession is the schedule: --schedule's cron, else every --interval.
func (c *config) nextSession() (func(time.Time) time.Time, error) {
	if c.schedule != "" {
		sch, err := parseSchedule(c.schedule, time.Local)
		if err != nil {
			return nil, err
		}
		return sch.next, nil
	}
	return func(t time.Time) time.Time { return t.Add(c.interval) }, nil
}
