// hooks.go owns the lifecycle hooks (--enable-lifecycle-hooks): the commands that container labels
// ask to run inside the container with `sh -c` before and after checks and updates.
package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
)

const (
	hookPreCheck   = "pre-check"
	hookPostCheck  = "post-check"
	hookPreUpdate  = "pre-update"
	hookPostUpdate = "post-update"

	// exitSkip from a pre-update hook means: leave this container alone this time.
	exitSkip = 75
)

// hookTimeout reads the label's minutes (default 1, 0 = no limit).
func hookTimeout(labels map[string]string, hook string) time.Duration {
	v, ok := labels[labelPrefix+".lifecycle."+hook+"-timeout"]
	if !ok {
		return time.Minute
	}
	m, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || m < 0 {
		return time.Minute
	}
	return time.Duration(m) * time.Minute
}

// runHook runs a container's hook command, if hooks are on and the label sets one. ran is false
// when there was nothing to run.
func (s *session) runHook(ctx context.Context, id string, labels map[string]string, hook string) (ran bool, res execResult, err error) {
	if !s.cfg.lifecycleHooks {
		return false, res, nil
	}
	cmd := strings.TrimSpace(labels[labelPrefix+".lifecycle."+hook])
	if cmd == "" {
		return false, res, nil
	}
	if d := hookTimeout(labels, hook); d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	res, err = s.eng.exec(ctx, id, []string{"sh", "-c", cmd})
	if ctx.Err() != nil {
		return true, res, fmt.Errorf("%s hook did not finish within %s", hook, hookTimeout(labels, hook))
	}
	return true, res, err
}

// preUpdateHook runs the pre-update hook in the old container; skip is its exit 75.
func (s *session) preUpdateHook(ctx context.Context, f *inFlight) (skip bool, err error) {
	c := f.t.insp
	if c.State == nil || !c.State.Running {
		return false, nil
	}
	ran, res, err := s.runHook(ctx, c.ID, c.Config.Labels, hookPreUpdate)
	switch {
	case !ran:
		return false, nil
	case err != nil:
		return false, err
	case res.exitCode == exitSkip:
		return true, nil
	case res.exitCode != 0:
		return false, fmt.Errorf("pre-update hook exited with %d: %s", res.exitCode, firstLine(res.output))
	}
	return false, nil
}

// postUpdateHook runs the post-update hook in the new container; its failure is reported, not
// rolled back, as Watchtower did.
func (s *session) postUpdateHook(ctx context.Context, newID string, f *inFlight) {
	ran, res, err := s.runHook(ctx, newID, f.t.insp.Config.Labels, hookPostUpdate)
	if !ran {
		return
	}
	if err == nil && res.exitCode != 0 {
		err = fmt.Errorf("exited with %d: %s", res.exitCode, firstLine(res.output))
	}
	if err != nil {
		s.log.Warn("post-update hook failed", "container", f.t.name, "err", err)
	}
}

// checkHooks runs the pre-check or post-check hook of every running selected container.
func (s *session) checkHooks(ctx context.Context, targets []target, hook string) {
	if !s.cfg.lifecycleHooks {
		return
	}
	for _, t := range targets {
		if t.insp.State == nil || !t.insp.State.Running || t.insp.Config == nil {
			continue
		}
		id := t.id
		if hook == hookPostCheck {
			// After an update the container under this name is another one.
			if c, err := s.eng.inspectContainer(ctx, t.name); err == nil {
				id = c.ID
			}
		}
		ran, res, err := s.runHook(ctx, id, t.insp.Config.Labels, hook)
		if ran && (err != nil || res.exitCode != 0) {
			s.log.Warn(hook+" hook failed", "container", t.name, "exit", res.exitCode, "output", firstLine(res.output), "err", err)
		}
	}
}

// inspects returns the inspect answers of targets.
func inspects(ts []target) []container.InspectResponse {
	out := make([]container.InspectResponse, 0, len(ts))
	for _, t := range ts {
		if t.insp.ContainerJSONBase != nil {
			out = append(out, t.insp)
		}
	}
	return out
}
