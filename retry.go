// retry.go owns retrying registry requests: bounded attempts with capped exponential backoff and
// jitter on 408, 429, 5xx and temporary network errors, honouring Retry-After within a cap.
package main

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"
)

// retryTransport retries a request that failed in a way worth trying again.
type retryTransport struct {
	next          http.RoundTripper
	attempts      int           // in all, the first included
	base, max     time.Duration // backoff before the 2nd attempt, and its cap
	maxRetryAfter time.Duration // a longer Retry-After is not waited for
	sleep         func(context.Context, time.Duration) error
}

func newRetryTransport(next http.RoundTripper) *retryTransport {
	return &retryTransport{next: next, attempts: 3, base: 250 * time.Millisecond, max: 4 * time.Second, maxRetryAfter: 20 * time.Second, sleep: sleepCtx}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	for attempt := 1; ; attempt++ {
		if attempt > 1 && req.Body != nil {
			if req.GetBody == nil {
				return nil, errors.New("cannot retry a request whose body cannot be replayed")
			}
			b, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			req.Body = b
		}
		resp, err := t.next.RoundTrip(req)
		wait, again := t.backoff(attempt, resp, err)
		if !again || attempt >= t.attempts {
			return resp, err
		}
		if resp != nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		if err := t.sleep(req.Context(), wait); err != nil {
			return nil, err
		}
	}
}

// backoff says whether to try again and after how long.
func (t *retryTransport) backoff(attempt int, resp *http.Response, err error) (time.Duration, bool) {
	if err != nil {
		if !temporary(err) {
			return 0, false
		}
	} else {
		switch s := resp.StatusCode; {
		case s == http.StatusRequestTimeout, s == http.StatusTooManyRequests, s >= 500 && s != http.StatusNotImplemented:
		default:
			return 0, false
		}
		if ra, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			if ra > t.maxRetryAfter {
				return 0, false // the registry asks for longer than a session should wait
			}
			return ra, true
		}
	}
	d := t.base << (attempt - 1)
	if d > t.max || d <= 0 {
		d = t.max
	}
	// Full jitter on the upper half keeps many clients from retrying in step.
	return d/2 + rand.N(d/2+1), true
}

// retryAfter reads Retry-After as seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if at, err := http.ParseTime(v); err == nil {
		if d := at.Sub(now); d > 0 {
			return d, true
		}
		return 0, true
	}
	return 0, false
}

// temporary tells whether a network error may go away by itself.
func temporary(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}
