// httpapi.go owns the HTTP API of Watchtower: POST/GET /v1/update to run a session (optionally
// for some images only) and /v1/metrics in the Prometheus text format, both behind a Bearer token.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
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
	routes := map[string]http.HandlerFunc{}
	if a.update {
		routes["/v1/update"] = a.authorized(a.serveUpdate)
	}
	if a.metrics != nil {
		routes["/v1/metrics"] = a.authorized(a.serveMetrics)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := routes[r.URL.Path]; h != nil {
			h(w, r)
			return
		}
		http.Error(w, "not found", http.StatusNotFound)
	})
}

// authorized checks "Authorization: Bearer <token>" in constant time.
func (a *apiServer) authorized(next http.HandlerFunc) http.HandlerFunc {
	want := []byte("Bearer " + a.token)
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = io.NopCloser(io.LimitReader(r.Body, apiMaxBody))
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

// API server limits: requests are tiny (a path, a query, a token), answers are small.
const (
	apiMaxHeader   = 8 << 10
	apiMaxBody     = 1 << 10
	apiReadTimeout = 10 * time.Second
	apiMaxConns    = 16
)

// serve listens on addr until ctx ends. It speaks just enough HTTP/1.1 for scrapers and update
// calls — one request per connection, answered whole — instead of linking net/http's server,
// which would add a third to the binary for two endpoints.
func (a *apiServer) serve(ctx context.Context, addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--http-api-addr %s: %w", addr, err)
	}
	a.log.Info("HTTP API listening", "addr", l.Addr().String(), "update", a.update, "metrics", a.metrics != nil)
	return a.serveListener(ctx, l)
}

func (a *apiServer) serveListener(ctx context.Context, l net.Listener) error {
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	h := a.handler()
	var wg sync.WaitGroup
	defer wg.Wait() // graceful: requests in hand are answered
	slots := make(chan struct{}, apiMaxConns)
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			return fmt.Errorf("HTTP API: %w", err)
		}
		select {
		case slots <- struct{}{}:
		default:
			c.Close() // too many at once: a scraper retries
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			a.serveConn(ctx, c, h)
		}()
	}
}

// serveConn answers one request on c and closes it.
func (a *apiServer) serveConn(ctx context.Context, c net.Conn, h http.Handler) {
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(apiReadTimeout))
	br := bufio.NewReaderSize(io.LimitReader(c, apiMaxHeader+apiMaxBody), 4<<10)
	req, err := http.ReadRequest(br)
	if err != nil {
		writeResponse(c, http.StatusBadRequest, http.Header{}, []byte("bad request\n"))
		return
	}
	if req.ContentLength > apiMaxBody {
		writeResponse(c, http.StatusRequestEntityTooLarge, http.Header{}, []byte("request body too large\n"))
		return
	}
	req.RemoteAddr = c.RemoteAddr().String()
	rw := &bufferedResponse{header: http.Header{}}
	h.ServeHTTP(rw, req.WithContext(ctx))
	c.SetWriteDeadline(time.Now().Add(apiReadTimeout))
	writeResponse(c, rw.code(), rw.header, rw.body.Bytes())
}

// bufferedResponse collects a handler's answer so it can be sent with its length.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header         { return b.header }
func (b *bufferedResponse) Write(p []byte) (int, error) { return b.body.Write(p) }
func (b *bufferedResponse) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferedResponse) code() int {
	if b.status == 0 {
		return http.StatusOK
	}
	return b.status
}

func writeResponse(w io.Writer, status int, h http.Header, body []byte) {
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "text/plain; charset=utf-8")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Connection", "close")
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", status, http.StatusText(status))
	h.Write(&b)
	b.WriteString("\r\n")
	b.Write(body)
	w.Write(b.Bytes())
}
