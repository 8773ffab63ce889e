package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// apiHost is a runner over the recorded containers, with its log in buf.
func apiHost(t *testing.T) (*runner, *bytes.Buffer, string) {
	eng, reg, _ := recordedHost(t)
	cfg := mustParse(t, []string{"--monitor-only", "--host", eng.host()}, envMap())
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	rc, err := newRegistryClient(cfg, envMap("DOCKER_CONFIG", t.TempDir()), log)
	if err != nil {
		t.Fatal(err)
	}
	e, err := dialEngine(context.Background(), engineOptions{host: eng.host()})
	if err != nil {
		t.Fatal(err)
	}
	return newRunner(&session{cfg: cfg, eng: e, reg: rc, log: log}, "testhost"), &buf, reg.host()
}

func apiServerFor(t *testing.T, r *runner) *httptest.Server {
	api := &apiServer{token: "s3cret-token", update: true, metrics: r.metrics, run: r, log: r.log}
	srv := httptest.NewServer(api.handler())
	t.Cleanup(srv.Close)
	return srv
}

func call(t *testing.T, method, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAPIAuth(t *testing.T) {
	r, _, _ := apiHost(t)
	srv := apiServerFor(t, r)
	for _, tt := range []struct {
		token string
		want  int
	}{{"", 401}, {"wrong", 401}, {"s3cret-tokenX", 401}, {"s3cret-token", 200}} {
		for _, path := range []string{"/v1/metrics", "/v1/update"} {
			if code, _ := call(t, http.MethodGet, srv.URL+path, tt.token); code != tt.want {
				t.Errorf("%s with token %q: %d, want %d", path, tt.token, code, tt.want)
			}
		}
	}
	if code, _ := call(t, http.MethodGet, srv.URL+"/v1/other", "s3cret-token"); code != 404 {
		t.Errorf("unknown path: %d", code)
	}
}

func TestAPIUpdateImageFilter(t *testing.T) {
	r, logs, regHost := apiHost(t)
	srv := apiServerFor(t, r)
	code, body := call(t, http.MethodPost, srv.URL+"/v1/update?image=nothing/here,&image=", "s3cret-token")
	if code != 200 || !strings.Contains(body, "session done") || strings.Contains(logs.String(), `"msg":"container"`) {
		t.Fatalf("%d %q %s", code, body, logs.String())
	}
	logs.Reset()
	app := regHost + "/app"
	code, _ = call(t, http.MethodPost, srv.URL+"/v1/update?image="+app, "s3cret-token")
	if code != 200 {
		t.Fatalf("update with image: %d", code)
	}
	var names []string
	sc := bufio.NewScanner(logs)
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"msg":"container"`) {
			i := strings.Index(sc.Text(), `"container":"`)
			names = append(names, strings.SplitN(sc.Text()[i+13:], `"`, 2)[0])
		}
	}
	if strings.Join(names, " ") != "pinned scoped web" {
		t.Fatalf("image=%s selected %v, want the app containers only", app, names)
	}
	logs.Reset()
	call(t, http.MethodPost, srv.URL+"/v1/update?image="+app+":latest", "s3cret-token")
	if strings.Contains(logs.String(), `"container":"pinned"`) || !strings.Contains(logs.String(), `"container":"web"`) {
		t.Fatalf("image=%s:latest must select the latest tag only: %s", app, logs.String())
	}
}

func TestAPINoOverlap(t *testing.T) {
	r, _, _ := apiHost(t)
	srv := apiServerFor(t, r)
	r.sem <- struct{}{} // a session is running
	code, _ := call(t, http.MethodGet, srv.URL+"/v1/update", "s3cret-token")
	if code != http.StatusAccepted {
		t.Fatalf("update during a session: %d, want 202", code)
	}
	if !r.tryRun(context.Background(), nil) == false {
		t.Fatal("a scheduled tick during a session must be skipped")
	}
	done := make(chan int)
	go func() {
		c, _ := call(t, http.MethodGet, srv.URL+"/v1/update?image=x/y", "s3cret-token")
		done <- c
	}()
	select {
	case c := <-done:
		t.Fatalf("an update with images must wait for the running session, answered %d", c)
	case <-time.After(300 * time.Millisecond):
	}
	<-r.sem // the session ends
	if c := <-done; c != 200 {
		t.Fatalf("after the session: %d", c)
	}
	_, page := call(t, http.MethodGet, srv.URL+"/v1/metrics", "s3cret-token")
	m := parseMetrics(t, page)
	if m["watchtower_scans_skipped"] != 2 || m["watchtower_scans_total"] != 1 {
		t.Fatalf("skipped %v total %v, want 2 and 1", m["watchtower_scans_skipped"], m["watchtower_scans_total"])
	}
}

// parseMetrics reads the Prometheus text format line by line, checking each line's shape.
func parseMetrics(t *testing.T, page string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	typed := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(page), "\n") {
		switch {
		case strings.HasPrefix(line, "# HELP "):
		case strings.HasPrefix(line, "# TYPE "):
			f := strings.Fields(line)
			if len(f) != 4 || (f[3] != "gauge" && f[3] != "counter") {
				t.Fatalf("bad TYPE line %q", line)
			}
			typed[f[2]] = true
		default:
			i := strings.LastIndexByte(line, ' ')
			name, val := line[:i], line[i+1:]
			v, err := strconv.ParseFloat(val, 64)
			if err != nil {
				t.Fatalf("bad sample %q", line)
			}
			base, _, _ := strings.Cut(name, "{")
			if !typed[base] {
				t.Fatalf("sample %q before its TYPE", line)
			}
			out[name] = v
		}
	}
	return out
}

func TestMetricsPage(t *testing.T) {
	r, _, _ := apiHost(t)
	r.session(context.Background(), nil)
	var buf bytes.Buffer
	r.metrics.write(&buf)
	m := parseMetrics(t, buf.String())
	want := map[string]float64{
		"watchtower_containers_scanned": 6, "watchtower_containers_updated": 0, "watchtower_containers_failed": 0,
		"watchtower_scans_total": 1, "watchtower_scans_skipped": 0, "outpost_rollbacks_total": 0,
		`outpost_build_info{version="` + version + `"}`: 1,
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if m["outpost_last_session_duration_seconds"] <= 0 || m["outpost_last_session_timestamp_seconds"] < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("session time metrics: %v", m)
	}
}

func TestMetricsQuota(t *testing.T) {
	var m metrics
	m.record(sessionReport{Scanned: 3, Updated: 1, Failed: 1, RolledBack: 1, Started: time.Now(), Duration: time.Second}, map[string]int{"registry-1.docker.io": 42})
	var buf bytes.Buffer
	m.write(&buf)
	p := parseMetrics(t, buf.String())
	if p[`outpost_registry_quota_remaining{registry="registry-1.docker.io"}`] != 42 || p["watchtower_containers_failed"] != 2 || p["outpost_rollbacks_total"] != 1 {
		t.Fatalf("%v", p)
	}
}

func TestPorcelain(t *testing.T) {
	var buf bytes.Buffer
	writePorcelain(&buf, sessionReport{Containers: []containerReport{
		{Name: "web", Image: "nginx:1", State: "updated"},
		{Name: "db", Image: "postgres:16", State: "rolled back", Reason: "it exited with code 1\nmore"},
	}})
	want := "web (nginx:1): Updated\ndb (postgres:16): Rolled back Error: it exited with code 1\n"
	if buf.String() != want {
		t.Fatalf("%q", buf.String())
	}
	buf.Reset()
	writePorcelain(&buf, sessionReport{})
	if buf.String() != "no containers matched filter\n" {
		t.Fatalf("%q", buf.String())
	}
}

func TestHealthCheckExitsAtOnce(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--health-check"}, envMap(), &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
}

func TestAPIServerOnTheWire(t *testing.T) {
	r, _, _ := apiHost(t)
	api := &apiServer{token: "s3cret-token", update: true, metrics: r.metrics, run: r, log: r.log}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- api.serveListener(ctx, l) }()
	base := "http://" + l.Addr().String()

	if code, body := call(t, http.MethodGet, base+"/v1/metrics", "s3cret-token"); code != 200 || !strings.Contains(body, "watchtower_scans_total 0") {
		t.Fatalf("metrics: %d %q", code, body)
	}
	if code, _ := call(t, http.MethodGet, base+"/v1/metrics", "nope"); code != 401 {
		t.Fatalf("wrong token: %d", code)
	}
	if code, body := call(t, http.MethodPost, base+"/v1/update", "s3cret-token"); code != 200 || body != "session done\n" {
		t.Fatalf("update: %d %q", code, body)
	}
	// Headers past the bound are refused, not buffered.
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/metrics", nil)
	req.Header.Set("Authorization", "Bearer s3cret-token")
	req.Header.Set("X-Padding", strings.Repeat("x", apiMaxHeader+apiMaxBody))
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("oversized header: %d", resp.StatusCode)
		}
	}
	// A body past the bound.
	req, _ = http.NewRequest(http.MethodPost, base+"/v1/update", strings.NewReader(strings.Repeat("x", 4096)))
	req.Header.Set("Authorization", "Bearer s3cret-token")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body: %v %v", resp, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the API server did not stop with its context")
	}
}
