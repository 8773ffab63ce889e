// httpapi.go owns the HTTP API of Watchtower: POST/GET /v1/update to run a session (optionally
// for some images only) and /v1/metrics in the Prometheus text format, both behind a Bearer token.
package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// metrics holds what /v1/metrics serves; it is safe for concurrent use.
type metrics struct {
	mu                       sync.Mutex
	scanned, updated, failed int // gauges of the last session
	scansTotal, scansSkipped int // counters
	rollbacksTotal           int
	lastDuration             time.Duration
	lastSession              time.Time
	quota                    map[string]int // registry -> remaining pulls, when announced
}

// record takes a finished session into the metrics.
func (m *metrics) record(r sessionReport, quotas map[string]int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.scanned, m.updated, m.failed = r.Scanned, r.Updated, r.Failed+r.RolledBack
	m.scansTotal++
	m.rollbacksTotal += r.RolledBack
	m.lastDuration = r.Duration
	m.lastSession = r.Started.Add(r.Duration)
	m.quota = quotas
}

func (m *metrics) skipped() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.scansSkipped++
}

// write renders the Prometheus text exposition format.
func (m *metrics) write(w io.Writer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	metric := func(name, kind, help string, v float64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %g\n", name, help, name, kind, name, v)
	}
	metric("watchtower_containers_scanned", "gauge", "Containers scanned in the last session.", float64(m.scanned))
	metric("watchtower_containers_updated", "gauge", "Containers updated in the last session.", float64(m.updated))
	metric("watchtower_containers_failed", "gauge", "Containers that failed or were rolled back in the last session.", float64(m.failed))
	metric("watchtower_scans_total", "counter", "Sessions run.", float64(m.scansTotal))
	metric("watchtower_scans_skipped", "counter", "Sessions skipped because another was running.", float64(m.scansSkipped))
	metric("outpost_rollbacks_total", "counter", "Updates rolled back.", float64(m.rollbacksTotal))
	metric("outpost_last_session_duration_seconds", "gauge", "Duration of the last session.", m.lastDuration.Seconds())
	var last float64
	if !m.lastSession.IsZero() {
		last = float64(m.lastSession.Unix())
	}
	metric("outpost_last_session_timestamp_seconds", "gauge", "End of the last session, Unix time.", last)
	fmt.Fprint(w, "# HELP outpost_registry_quota_remaining Pulls a registry last said remain in its rate-limit window.\n# TYPE outpost_registry_quota_remaining gauge\n")
	regs := make([]string, 0, len(m.quota))
	for r := range m.quota {
		regs = append(regs, r)
	}
	sort.Strings(regs)
	for _, r := range regs {
		fmt.Fprintf(w, "outpost_registry_quota_remaining{registry=%q} %d\n", r, m.quota[r])
	}
	fmt.Fprintf(w, "# HELP outpost_build_info The running build.\n# TYPE outpost_build_info gauge\noutpost_build_info{version=%q} 1\n", version)
}

// apiServer serves the HTTP API.
type apiServer struct {
	token   string
	update  bool
	metrics *metrics
	run     *runner
	log     *slog.Logger
}

// handler routes the enabled endpoints behind the token check.
func (a *apiServer) handler() http.Handler {
	mux := http.NewServeMux()
	if a.update {
		mux.HandleFunc("/v1/update", a.authorized(a.serveUpdate))
	}
	if a.metrics != nil {
		mux.HandleFunc("/v1/metrics", a.authorized(a.serveMetrics))
	}
	return mux
}

// authorized checks "Authorization: Bearer <token>" in constant time.
func (a *apiServer) authorized(next http.HandlerFunc) http.HandlerFunc {
	want := []byte("Bearer " + a.token)
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<10)
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="outpost"`)
			http.Error(w, "a valid Bearer token is required", http.StatusUnauthorized)
			return
		}
		next(w, r)
	}
}

// serveUpdate runs a session. With image=… it waits for a running session and updates only
// those images; without, it returns at once when a session is already running.
func (a *apiServer) serveUpdate(w http.ResponseWriter, r *http.Request) {
	var images []string
	for _, v := range r.URL.Query()["image"] {
		for _, i := range strings.Split(v, ",") {
			if i = strings.TrimSpace(i); i != "" {
				images = append(images, i)
			}
		}
	}
	if len(images) == 0 {
		if !a.run.tryRun(r.Context(), nil) {
			w.WriteHeader(http.StatusAccepted)
			io.WriteString(w, "a session is already running; this request was skipped\n")
			return
		}
		io.WriteString(w, "session done\n")
		return
	}
	if err := a.run.runNow(r.Context(), images); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	io.WriteString(w, "session done\n")
}

func (a *apiServer) serveMetrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	a.metrics.write(w)
}

// serve listens on addr until ctx ends, then shuts down gracefully.
func (a *apiServer) serve(ctx context.Context, addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--http-api-addr %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           a.handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
	}
	a.log.Info("HTTP API listening", "addr", l.Addr().String(), "update", a.update, "metrics", a.metrics != nil)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
