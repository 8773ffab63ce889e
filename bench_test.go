package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
)

// rtt is the round trip the benchmark registry adds to every request.
const rtt = 50 * time.Millisecond

// slowHost is an engine with n running containers, each on its own repository of a registry that
// answers every request after rtt; bearer puts a token service (also rtt away) in front.
func slowHost(tb testing.TB, n int, bearer bool) (*fakeEngine, *fakeRegistry, *fakeTokenService) {
	eng := newFakeEngine(tb, "1.12", "1.41")
	reg := newFakeRegistry(tb)
	var ts *fakeTokenService
	if bearer {
		ts = newFakeTokenService(tb)
		reg.bearer(ts)
		inner := ts.Config.Handler
		ts.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { time.Sleep(rtt); inner.ServeHTTP(w, r) })
	}
	inner := reg.Config.Handler
	reg.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { time.Sleep(rtt); inner.ServeHTTP(w, r) })
	for i := 0; i < n; i++ {
		path := fmt.Sprintf("svc/app%02d", i)
		digest := reg.push(path, "latest", path)
		id := fmt.Sprintf("sha256:%064x", i+1)
		eng.mu.Lock()
		eng.images[id] = image.InspectResponse{ID: id, RepoTags: []string{reg.host() + "/" + path + ":latest"}, RepoDigests: []string{reg.host() + "/" + path + "@" + digest}}
		eng.mu.Unlock()
		eng.add(container.InspectResponse{
			ContainerJSONBase: &container.ContainerJSONBase{ID: fmt.Sprintf("%064x", 1000+i), Name: fmt.Sprintf("/app%02d", i), Image: id, State: &container.State{Status: "running", Running: true}},
			Config:            &container.Config{Image: reg.host() + "/" + path + ":latest", Labels: map[string]string{}},
		})
	}
	return eng, reg, ts
}

// BenchmarkCheck50 runs a monitor-only session over 50 up-to-date containers of 50 repositories
// behind a registry 50 ms away, with a fresh process's caches each time (ping and tokens included).
func BenchmarkCheck50(b *testing.B) {
	for _, bearer := range []bool{false, true} {
		name := "open"
		if bearer {
			name = "bearer"
		}
		b.Run(name, func(b *testing.B) {
			const n = 50
			eng, reg, ts := slowHost(b, n, bearer)
			cfg := defaultConfig()
			cfg.monitorOnly, cfg.runOnce = true, true
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			ctx := context.Background()
			var last statsSnapshot
			var wall time.Duration
			for b.Loop() {
				rc, err := newRegistryClient(cfg, envMap("DOCKER_CONFIG", b.TempDir()), log)
				if err != nil {
					b.Fatal(err)
				}
				e, err := dialEngine(ctx, engineOptions{host: eng.host()})
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				rep := (&session{cfg: cfg, eng: e, reg: rc, log: log}).run(ctx, nil)
				wall += time.Since(start)
				if rep.count(stateFresh) != n {
					b.Fatalf("fresh %d of %d: %+v", rep.count(stateFresh), n, rep.results[0])
				}
				last = rc.snapshot()
			}
			if last.pings != 1 || last.heads != n || last.gets != 0 {
				b.Fatalf("requests: %+v", last)
			}
			if got := reg.count("HEAD ") / b.N; got != n {
				b.Fatalf("registry saw %d HEADs per session", got)
			}
			per := rcPerHost(cfg)
			rounds := 1 + math.Ceil(float64(n)/float64(per)) // ping, then HEADs per-host wide
			if bearer {
				rounds += math.Ceil(float64(n) / float64(per)) // a token per repository
				if got := len(ts.requests) / b.N; got != n {
					b.Fatalf("token requests per session %d, want %d", got, n)
				}
			}
			bound := time.Duration(rounds) * rtt
			avg := wall / time.Duration(b.N)
			b.ReportMetric(float64(avg.Milliseconds()), "ms/session")
			b.ReportMetric(float64(last.pings), "pings")
			b.ReportMetric(float64(last.tokens), "tokens")
			b.ReportMetric(float64(last.heads), "heads")
			b.ReportMetric(float64(last.gets), "gets")
			b.ReportMetric(float64(bound.Milliseconds()), "bound-ms")
			b.ReportMetric(float64(avg)/float64(bound), "x-bound")
		})
	}
}

func rcPerHost(cfg *config) int { return max(1, cfg.concurrency*3/4) }

// Keep the benchmark's host honest: it must produce exactly the fresh states it claims.
func TestSlowHostIsFresh(t *testing.T) {
	eng, _, _ := slowHost(t, 5, true)
	recs, sum, code := runOutpost(t, eng, nil)
	if code != 0 || len(recs) != 5 || sum.num("stale") != 0 || !strings.HasPrefix(recs["app00"].str("remote"), "sha256:") {
		t.Fatalf("exit %d, %v, %v", code, recs, sum)
	}
}

// BenchmarkBinaryCheck50 runs the real binary, as a user would, over the same 50 containers and
// reports its wall time and peak resident memory.
func BenchmarkBinaryCheck50(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "outpost")
	build := exec.Command("go", "build", "-trimpath", "-gcflags=all=-l", "-ldflags", "-s -w", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	eng, reg, _ := slowHost(b, 50, false)
	var maxRSS int64 // kB
	var wall time.Duration
	for b.Loop() {
		cmd := exec.Command(bin, "--host", eng.host(), "--run-once", "--monitor-only", "--log-format", "json")
		cmd.Env = []string{"DOCKER_CONFIG=" + b.TempDir(), "HOME=" + b.TempDir()}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		start := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		// The kernel's high-water mark of the process's own memory, read until it exits: a child's
		// rusage would count what it shared with this large test process before exec.
		done := make(chan struct{})
		polled := make(chan int64)
		go func() {
			var peak int64
			for {
				peak = max(peak, vmHWM(cmd.Process.Pid))
				select {
				case <-done:
					polled <- peak
					return
				case <-time.After(2 * time.Millisecond):
				}
			}
		}()
		err := cmd.Wait()
		close(done)
		maxRSS = max(maxRSS, <-polled)
		wall += time.Since(start)
		if err != nil {
			b.Fatalf("outpost: %v\n%s", err, stderr.String())
		}
		if !strings.Contains(stderr.String(), `"scanned":50,"stale":0,"skipped":0,"failed":0`) {
			b.Fatalf("unexpected summary:\n%s", stderr.String())
		}
	}
	b.ReportMetric(float64((wall / time.Duration(b.N)).Milliseconds()), "ms/run")
	b.ReportMetric(float64(maxRSS)/1024, "peak-RSS-MB")
	b.ReportMetric(float64(reg.count("HEAD "))/float64(b.N), "heads/run")
	b.ReportMetric(float64(reg.count("GET "))/float64(b.N), "gets+pings/run")
}

// vmHWM reads a process's peak resident size in kB from /proc, or 0 once it is gone.
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb
		}
	}
	return 0
}
