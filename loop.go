// loop.go owns when sessions run: at start, then on the interval or the cron schedule, or when the
// HTTP API asks; never two at once. After each session it feeds the metrics, the notifications,
// the systemd status and --porcelain.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"
)

// runner runs one session at a time and reports each.
type runner struct {
	s         *session
	sem       chan struct{} // held while a session runs
	metrics   *metrics
	notifier  *notifier   // nil without notifications
	sd        *sdNotifier // nil outside systemd
	porcelain io.Writer   // nil without --porcelain
	host      string
	log       *slog.Logger
	healthy   atomic.Bool // the last session reached the engine
	lastExit  int         // the exit status the last session asks for
}

func newRunner(s *session, host string) *runner {
	r := &runner{s: s, sem: make(chan struct{}, 1), metrics: &metrics{}, host: host, log: s.log}
	r.healthy.Store(true)
	return r
}

// tryRun runs a session unless one is running, in which case it counts a skipped scan.
func (r *runner) tryRun(ctx context.Context, images []string) bool {
	select {
	case r.sem <- struct{}{}:
	default:
		r.metrics.skipped()
		r.log.Info("a session is already running; skipped this one")
		return false
	}
	defer func() { <-r.sem }()
	r.session(ctx, images)
	return true
}

// runNow waits for a running session to end, then runs one.
func (r *runner) runNow(ctx context.Context, images []string) error {
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-r.sem }()
	r.session(ctx, images)
	return nil
}

// session runs one and reports it everywhere it goes.
func (r *runner) session(ctx context.Context, images []string) {
	start := time.Now()
	rep := r.s.run(ctx, images)
	r.healthy.Store(rep.err == nil)
	r.lastExit = rep.exitCode()
	out := rep.export(r.host, start)
	r.metrics.record(out, r.s.reg.quotas())
	if r.sd != nil {
		r.sd.status(fmt.Sprintf("last session %s: %d scanned, %d updated, %d failed, %d rolled back",
			start.Format("2006-01-02 15:04:05"), out.Scanned, out.Updated, out.Failed, out.RolledBack))
	}
	if r.porcelain != nil {
		writePorcelain(r.porcelain, out)
	}
	if r.notifier != nil {
		r.notifier.notify(context.WithoutCancel(ctx), out)
	}
}

// writePorcelain prints Watchtower's porcelain v1 summary: one line per container.
func writePorcelain(w io.Writer, r sessionReport) {
	if len(r.Containers) == 0 {
		fmt.Fprintln(w, "no containers matched filter")
		return
	}
	for _, c := range r.Containers {
		state := strings.ToUpper(c.State[:1]) + c.State[1:]
		line := fmt.Sprintf("%s (%s): %s", c.Name, c.Image, state)
		if c.Reason != "" && (c.State == stateFailed || c.State == stateRolledBack) {
			line += " Error: " + firstLine(c.Reason)
		}
		fmt.Fprintln(w, line)
	}
}

// loop runs sessions at the times next gives until ctx ends. A time that comes while a session
// is running (one asked for through the API) is skipped and counted.
func (r *runner) loop(ctx context.Context, next func(time.Time) time.Time) {
	for {
		at := next(time.Now())
		if at.IsZero() {
			r.log.Warn("the schedule has no further activation; waiting for a signal")
			<-ctx.Done()
			return
		}
		r.log.Debug("next session", "at", at.Format(time.RFC3339))
		t := time.NewTimer(time.Until(at))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
			r.tryRun(ctx, nil)
		}
	}
}
