package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// statusSequence answers with the given statuses in turn, then 200.
func statusSequence(t *testing.T, hdr http.Header, statuses ...int) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		for k, v := range hdr {
			w.Header()[k] = v
		}
		if i < len(statuses) {
			w.WriteHeader(statuses[i])
			return
		}
		w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestRetryTransport(t *testing.T) {
	tests := []struct {
		name     string
		statuses []int
		header   http.Header
		calls    int32
		status   int
		waits    int
	}{
		{"5xx then success", []int{502, 503}, nil, 3, 200, 2},
		{"408 then success", []int{408}, nil, 2, 200, 1},
		{"gives up after three", []int{500, 500, 500, 500}, nil, 3, 500, 2},
		{"429 with Retry-After", []int{429}, http.Header{"Retry-After": {"1"}}, 2, 200, 1},
		{"Retry-After beyond the cap", []int{429}, http.Header{"Retry-After": {"3600"}}, 1, 429, 0},
		{"404 is final", []int{404}, nil, 1, 404, 0},
		{"501 is final", []int{501}, nil, 1, 501, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, calls := statusSequence(t, tt.header, tt.statuses...)
			var waits []time.Duration
			rt := newRetryTransport(http.DefaultTransport)
			rt.sleep = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
			resp, err := (&http.Client{Transport: rt}).Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if calls.Load() != tt.calls || resp.StatusCode != tt.status || len(waits) != tt.waits {
				t.Fatalf("calls %d status %d waits %v; want %d, %d, %d waits", calls.Load(), resp.StatusCode, waits, tt.calls, tt.status, tt.waits)
			}
			for i, w := range waits {
				if tt.header.Get("Retry-After") == "1" && w != time.Second {
					t.Errorf("wait %d = %s, want Retry-After's 1s", i, w)
				}
				if w > rt.max || w < 0 {
					t.Errorf("wait %d = %s outside [0, %s]", i, w, rt.max)
				}
			}
		})
	}
}

func TestRetryBackoffGrowsWithJitter(t *testing.T) {
	rt := newRetryTransport(http.DefaultTransport)
	resp := &http.Response{StatusCode: 503, Header: http.Header{}}
	for attempt := 1; attempt <= 6; attempt++ {
		d, again := rt.backoff(attempt, resp, nil)
		full := rt.base << (attempt - 1)
		if full > rt.max {
			full = rt.max
		}
		if !again || d < full/2 || d > full {
			t.Errorf("attempt %d: wait %s, want within [%s, %s]", attempt, d, full/2, full)
		}
	}
}

func TestRetryNetworkErrorsAndCancel(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close() // nothing listens any more: connection refused
	var waits int
	rt := newRetryTransport(http.DefaultTransport)
	rt.sleep = func(context.Context, time.Duration) error { waits++; return nil }
	_, err := (&http.Client{Transport: rt}).Get(addr)
	if err == nil || waits != 2 {
		t.Fatalf("refused connection: err %v, waits %d; want an error after 2 waits", err, waits)
	}

	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, slow.URL, nil)
	start := time.Now()
	_, err = (&http.Client{Transport: newRetryTransport(http.DefaultTransport)}).Do(req)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("a request past its timeout must fail at once and not be retried: %v after %s", err, time.Since(start))
	}
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"7": 7 * time.Second, "0": 0, now.Add(30 * time.Second).Format(http.TimeFormat): 30 * time.Second,
	} {
		if d, ok := retryAfter(v, now); !ok || d != want {
			t.Errorf("retryAfter(%q) = %s %v, want %s", v, d, ok, want)
		}
	}
	for _, v := range []string{"", "soon", "-3"} {
		if _, ok := retryAfter(v, now); ok {
			t.Errorf("retryAfter(%q) accepted", v)
		}
	}
}

func TestSlowRegistryHitsRequestTimeout(t *testing.T) {
	reg := newFakeRegistry(t)
	reg.push("app", "latest", "1")
	release := make(chan struct{})
	defer close(release)
	reg.handler = func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			return
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}
	c := testRegistryClient(t, envMap(), nil)
	c.timeout = 300 * time.Millisecond
	start := time.Now()
	_, err := c.headDigest(context.Background(), mustRef(t, reg.host()+"/app"))
	if err == nil || time.Since(start) > 3*time.Second || !strings.Contains(err.Error(), reg.host()) {
		t.Fatalf("slow registry: %v after %s", err, time.Since(start))
	}
}
