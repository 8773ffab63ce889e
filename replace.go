// replace.go owns replacing a container without ever losing it: rename the old one aside (the
// name marks it, so a later run can finish or undo the work after a crash), stop it, create and
// start the successor under the original name, verify it, and only then remove the old one. Any
// failure puts the old container back as it was. It also owns the recovery of interrupted
// replacements at the start of every session.
package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"golang.org/x/sync/errgroup"
)

// The old container's name while its successor is created: "<name>" + one of these. The suffix
// records whether it was running, so that a recovery knows whether to start it again.
const (
	asideRunning = "_outpost-old"
	asideStopped = "_outpost-old-stopped"
)

const (
	labelStopSignal    = labelPrefix + ".stop-signal"
	labelSettleTime    = "outpost.settle-time"
	labelHealthTimeout = "outpost.health-timeout"
	labelBareUpdater   = labelPrefix
	labelMonitorOnly   = labelPrefix + ".monitor-only"
	labelNoPull        = labelPrefix + ".no-pull"
	verifyPollInterval = 250 * time.Millisecond
)

// asideName is the old container's name while it waits for its successor's verdict.
func asideName(name string, running bool) string {
	if running {
		return name + asideRunning
	}
	return name + asideStopped
}

// fromAside tells whether a container name is an aside copy, and of what.
func fromAside(name string) (original string, running, ok bool) {
	name = strings.TrimPrefix(name, "/")
	if o, found := strings.CutSuffix(name, asideStopped); found && o != "" {
		return o, false, true
	}
	if o, found := strings.CutSuffix(name, asideRunning); found && o != "" {
		return o, true, true
	}
	return "", false, false
}

// stopTimeout is the container's own StopTimeout when it has one, else --stop-timeout.
func (s *session) stopTimeout(c container.InspectResponse) time.Duration {
	if c.Config != nil && c.Config.StopTimeout != nil && *c.Config.StopTimeout > 0 {
		return time.Duration(*c.Config.StopTimeout) * time.Second
	}
	return s.cfg.stopTimeout
}

// stop stops a container with the label's signal, else its own StopSignal (the engine applies
// it), else SIGTERM; after the timeout the engine kills it.
func (s *session) stop(ctx context.Context, c container.InspectResponse) error {
	timeout := s.stopTimeout(c)
	sig := ""
	if c.Config != nil {
		sig = strings.TrimSpace(c.Config.Labels[labelStopSignal])
	}
	if sig == "" {
		return s.eng.stopContainer(ctx, c.ID, timeout)
	}
	if err := s.eng.killContainer(ctx, c.ID, sig); err != nil {
		var ee *engineError
		if errors.As(err, &ee) && ee.status == 409 { // not running
			return nil
		}
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := s.eng.waitContainer(wctx, c.ID); err == nil {
		return nil
	}
	return s.eng.stopContainer(ctx, c.ID, 0)
}

// waits are the settle time and health wait for a container, from its labels or the flags.
func (s *session) waits(c container.InspectResponse) (settle, health time.Duration) {
	settle, health = s.cfg.settleTime, s.cfg.healthTimeout
	if c.Config == nil {
		return
	}
	if d, err := parseSeconds(c.Config.Labels[labelSettleTime]); err == nil && c.Config.Labels[labelSettleTime] != "" {
		settle = d
	}
	if d, err := parseSeconds(c.Config.Labels[labelHealthTimeout]); err == nil && c.Config.Labels[labelHealthTimeout] != "" {
		health = d
	}
	return
}

// verify checks that a started container keeps running for the settle time and, when it has a
// health check, becomes healthy within the health wait.
func (s *session) verify(ctx context.Context, id string, settle, health time.Duration) error {
	settleEnd := time.Now().Add(settle)
	var healthEnd time.Time
	for {
		c, err := s.eng.inspectContainer(ctx, id)
		if err != nil {
			return err
		}
		st := c.State
		switch {
		case st == nil:
			return errors.New("the engine reports no state")
		case st.Restarting:
			return fmt.Errorf("it is restarting (exit code %d)", st.ExitCode)
		case !st.Running:
			return fmt.Errorf("it exited with code %d%s", st.ExitCode, errSuffix(st.Error))
		}
		now := time.Now()
		if now.After(settleEnd) {
			if st.Health == nil || st.Health.Status == "" || st.Health.Status == container.NoHealthcheck {
				return nil
			}
			if healthEnd.IsZero() {
				healthEnd = now.Add(health)
			}
			switch st.Health.Status {
			case container.Healthy:
				return nil
			case container.Unhealthy:
				return fmt.Errorf("it is unhealthy%s", lastProbe(st.Health))
			}
			if health > 0 && now.After(healthEnd) {
				return fmt.Errorf("it did not become healthy within %s%s", health, lastProbe(st.Health))
			}
		}
		if err := sleepCtx(ctx, verifyPollInterval); err != nil {
			return err
		}
	}
}

func errSuffix(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

func lastProbe(h *container.Health) string {
	if h == nil || len(h.Log) == 0 {
		return ""
	}
	return " (last probe: " + firstLine(h.Log[len(h.Log)-1].Output) + ")"
}

// inFlight is one container being stopped and replaced or restarted.
type inFlight struct {
	t          *target
	replace    bool // recreate with newImage; otherwise only stop and start again
	newImage   string
	digest     string // the registry digest being rolled out, for the bad-digest memory
	wasRunning bool
	aside      string // the old container's aside name, once renamed
	stopped    bool
	done       bool   // finished, either way
	result     result // what happened
}

// takeDown renames a container to be replaced aside, then stops it; a container only restarted
// is just stopped. The context is one that a signal does not cancel.
func (s *session) takeDown(ctx context.Context, f *inFlight) error {
	c := f.t.insp
	f.wasRunning = c.State != nil && c.State.Running
	if f.replace {
		aside := asideName(f.t.name, f.wasRunning)
		if err := s.eng.renameContainer(ctx, c.ID, aside); err != nil {
			return err
		}
		f.aside = aside
	}
	if f.wasRunning {
		if err := s.stop(ctx, c); err != nil {
			return err
		}
	}
	f.stopped = true
	return nil
}

// bringUp creates, starts and verifies the successor, removing the old container on success and
// rolling back on failure. A container only restarted is started again.
func (s *session) bringUp(ctx context.Context, f *inFlight) {
	c := f.t.insp
	start := f.wasRunning || s.cfg.reviveStopped
	if !f.replace {
		if f.wasRunning {
			if err := s.eng.startContainer(ctx, c.ID); err != nil {
				f.result.state, f.result.reason = stateFailed, err.Error()
				return
			}
		}
		f.result.state = stateRestarted
		return
	}
	newID, err := s.createSuccessor(ctx, f)
	if err == nil && start {
		err = s.eng.startContainer(ctx, newID)
		if err == nil {
			settle, health := s.waits(c)
			if verr := s.verify(ctx, newID, settle, health); verr != nil {
				err = fmt.Errorf("the new container failed verification: %w", verr)
			}
		}
	}
	if err == nil && start {
		s.postUpdateHook(ctx, newID, f)
	}
	if err != nil {
		s.rollback(ctx, f, newID, err)
		return
	}
	if rerr := s.eng.removeContainer(ctx, c.ID, s.cfg.removeVolumes); rerr != nil {
		// The successor is verified: the next session's recovery removes the old one.
		s.log.Warn("the old container could not be removed; the next session will", "container", f.t.name, "err", rerr)
	}
	f.result.state, f.result.newID = stateUpdated, newID
}

// createSuccessor creates the new container from the old one's configuration.
func (s *session) createSuccessor(ctx context.Context, f *inFlight) (string, error) {
	rep, err := planReplacement(f.t.insp, f.t.oldImage, f.t.image, s.eng.version, s.nameOf)
	if err != nil {
		return "", fmt.Errorf("planning the new container: %w", err)
	}
	id, err := s.eng.createContainer(ctx, f.t.name, rep.body)
	if err != nil {
		return "", err
	}
	for net, ep := range rep.connect {
		if err := s.eng.connectNetwork(ctx, net, id, ep); err != nil {
			return id, err
		}
	}
	return id, nil
}

// rollback removes a failed successor and puts the old container back under its name.
func (s *session) rollback(ctx context.Context, f *inFlight, newID string, cause error) {
	f.result.state, f.result.reason = stateRolledBack, cause.Error()
	if f.digest != "" && s.state != nil {
		if err := s.state.markBad(f.t.ref.String(), f.digest, cause.Error(), time.Now()); err != nil {
			s.log.Warn("could not remember the bad image", "container", f.t.name, "err", err)
		}
	}
	var errs []error
	if newID != "" {
		if err := s.eng.removeContainer(ctx, newID, true); err != nil {
			errs = append(errs, err)
		}
	}
	if f.aside != "" {
		if err := s.eng.renameContainer(ctx, f.t.insp.ID, f.t.name); err != nil {
			errs = append(errs, err)
		}
	}
	if f.wasRunning {
		if err := s.eng.startContainer(ctx, f.t.insp.ID); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		// Whatever is left, the next session's recovery finishes it.
		f.result.state = stateFailed
		f.result.reason = cause.Error() + "; rolling back: " + errors.Join(errs...).Error()
	}
}

// undoTakeDown puts back a container that was taken down but will not be brought up (a stop
// that failed, or a signal before its turn).
func (s *session) undoTakeDown(ctx context.Context, f *inFlight, cause error) {
	if f.aside != "" {
		s.rollback(ctx, f, "", cause)
		f.result.state, f.result.reason = stateFailed, cause.Error()
		return
	}
	if f.wasRunning {
		if err := s.eng.startContainer(ctx, f.t.insp.ID); err != nil {
			cause = fmt.Errorf("%w; starting it again: %v", cause, err)
		}
	}
	f.result.state, f.result.reason = stateFailed, cause.Error()
}

// recoverInterrupted finishes or undoes every replacement a previous run left half done: an
// aside copy whose successor is running and passes verification is removed; otherwise the
// successor (if any) is removed and the aside copy renamed back and started.
func (s *session) recoverInterrupted(ctx context.Context) {
	all, err := s.eng.listContainers(ctx, nil)
	if err != nil {
		s.log.Error("could not look for interrupted updates", "err", err)
		return
	}
	byName := map[string]container.Summary{}
	for _, c := range all {
		byName[containerName(c.Names)] = c
	}
	g := new(errgroup.Group)
	g.SetLimit(s.cfg.concurrency)
	for _, c := range all {
		orig, wasRunning, ok := fromAside(containerName(c.Names))
		if !ok {
			continue
		}
		// Only this instance's containers: another instance (another --scope, say) may be in
		// the middle of its own replacement.
		if sel, _ := s.cfg.selected(orig, c.Labels); !sel {
			continue
		}
		g.Go(func() error {
			if err := s.recoverOne(ctx, c, orig, wasRunning, byName); err != nil {
				s.log.Error("could not recover an interrupted update; it will be tried again next session", "container", orig, "err", err)
			}
			return nil
		})
	}
	g.Wait()
}

func (s *session) recoverOne(ctx context.Context, aside container.Summary, orig string, wasRunning bool, byName map[string]container.Summary) error {
	if succ, ok := byName[orig]; ok {
		keep := false
		if succ.State == "running" {
			insp, err := s.eng.inspectContainer(ctx, succ.ID)
			if err != nil {
				return err
			}
			if bad := s.isBadImage(ctx, insp); !bad {
				settle, health := s.waits(insp)
				keep = s.verify(ctx, succ.ID, settle, health) == nil
			}
		}
		if keep {
			s.log.Info("finished an interrupted update", "container", orig)
			return s.eng.removeContainer(ctx, aside.ID, s.cfg.removeVolumes)
		}
		if err := s.eng.removeContainer(ctx, succ.ID, true); err != nil {
			return err
		}
	}
	if err := s.eng.renameContainer(ctx, aside.ID, orig); err != nil {
		return err
	}
	if wasRunning {
		insp, err := s.eng.inspectContainer(ctx, aside.ID)
		if err != nil {
			return err
		}
		// A stop the killed run asked for may still be under way: let it finish, then start, so
		// that a start which found the container still running is not followed by its exit.
		if insp.State != nil && insp.State.Running {
			if err := s.stop(ctx, insp); err != nil {
				return err
			}
		}
		if err := s.eng.startContainer(ctx, aside.ID); err != nil {
			return err
		}
	}
	s.log.Warn("undid an interrupted update", "container", orig)
	return nil
}

// isBadImage tells whether a container runs an image digest remembered as rolled back.
func (s *session) isBadImage(ctx context.Context, c container.InspectResponse) bool {
	if s.state == nil || c.Config == nil {
		return false
	}
	ref, err := parseReference(c.Config.Image)
	if err != nil {
		return false
	}
	img, err := s.eng.inspectImage(ctx, c.Image)
	if err != nil {
		return false
	}
	for _, rd := range img.RepoDigests {
		if _, d, ok := strings.Cut(rd, "@"); ok {
			if _, bad := s.state.isBad(ref.String(), d); bad {
				return true
			}
		}
	}
	return false
}

// nameOf resolves a container ID to its name, for container: network modes.
func (s *session) nameOf(id string) (string, bool) {
	n, ok := s.names[id]
	return n, ok
}
