// apply.go owns the apply stage of a session: decide who is updated, pull every new image before
// anything is stopped, then replace stale containers and restart their dependents group by group
// (independent groups concurrently, each group in dependency order), and clean up old images.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"golang.org/x/sync/errgroup"
)

// Container states that only an updating session reports.
const (
	stateUpdated    = "updated"
	stateRolledBack = "rolled back"
	stateRestarted  = "restarted"
)

// labelTrue reads a boolean label; absent or unparsable is (false, false).
func labelTrue(labels map[string]string, key string) (value, set bool) {
	v, ok := labels[key]
	if !ok {
		return false, false
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "1", "yes":
		return true, true
	case "false", "0", "no":
		return false, true
	}
	return false, false
}

// effective combines a flag with a container's label: OR by default; with
// --label-take-precedence a set label wins over the flag.
func (c *config) effective(flag bool, labels map[string]string, key string) bool {
	v, set := labelTrue(labels, key)
	if c.labelTakePrecedence && set {
		return v
	}
	return flag || v
}

// apply updates what check found stale and returns the final results.
func (s *session) apply(ctx context.Context, targets []target, results []result) []result {
	byName := map[string]int{}
	for i := range results {
		byName[results[i].name] = i
	}
	// Who wants a new image, and whether it is to be pulled.
	type want struct {
		idx  int
		pull bool
	}
	var wants []want
	for i := range results {
		r := &results[i]
		labels := r.insp.Config.Labels
		if r.skip != "" || r.state == stateFailed {
			continue
		}
		if why := s.selfReason(r.target); why != "" {
			if r.state == stateStale {
				r.state, r.reason = stateSkipped, why
			}
			continue
		}
		if s.cfg.effective(s.cfg.monitorOnly, labels, labelMonitorOnly) {
			if v, set := labelTrue(labels, labelMonitorOnly); r.state == stateStale && set && v {
				r.reason = "monitor-only (" + labelMonitorOnly + "=true)"
			}
			continue
		}
		noPull := s.cfg.effective(s.cfg.noPull, labels, labelNoPull)
		if r.state == stateStale && !noPull {
			if bad, isBad := s.state.isBad(r.ref.String(), r.remote); isBad {
				r.state, r.reason = stateSkipped, "digest "+shortID(r.remote)+" was rolled back on "+bad.At.Format("2006-01-02 15:04")+" ("+firstLine(bad.Reason)+"); waiting for a new one"
				continue
			}
			wants = append(wants, want{i, true})
		} else if r.state == stateFresh || noPull {
			// The tag may have moved locally (pulled by hand, or --no-pull).
			wants = append(wants, want{i, false})
		}
	}

	// Pull every new image first: a failed pull leaves its containers untouched.
	pulls := map[string]*pullJob{}
	var order []string
	for _, w := range wants {
		if w.pull {
			key := results[w.idx].ref.String()
			if pulls[key] == nil {
				pulls[key] = &pullJob{ref: results[w.idx].ref, digest: results[w.idx].remote}
				order = append(order, key)
			}
		}
	}
	s.deferOverQuota(pulls, order)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.cfg.concurrency)
	for _, key := range order {
		p := pulls[key]
		if p.deferred != "" {
			continue
		}
		g.Go(func() error {
			p.err = s.eng.pullImage(gctx, p.ref, s.registryAuth(gctx, p.ref))
			return nil
		})
	}
	g.Wait()

	// A container is stale when its tag now names another image than the one it runs.
	localIDs := map[string]string{}
	var todo []*inFlight
	for _, w := range wants {
		r := &results[w.idx]
		if p := pulls[r.ref.String()]; w.pull && p != nil {
			if p.deferred != "" {
				r.state, r.reason = stateSkipped, p.deferred
				continue
			}
			if p.err != nil {
				r.state, r.reason = stateFailed, p.err.Error()
				continue
			}
		}
		id, ok := localIDs[r.image]
		if !ok {
			img, err := s.eng.inspectImage(ctx, r.image)
			if err != nil {
				if w.pull {
					r.state, r.reason = stateFailed, err.Error()
				}
				continue
			}
			id = img.ID
			localIDs[r.image] = id
		}
		if id == r.imageID {
			if r.state == stateStale {
				r.state, r.reason = stateFresh, "the pulled image is the one it runs"
			}
			continue
		}
		if s.cfg.noRestart {
			r.state, r.reason = stateStale, "new image pulled; not restarted (--no-restart)"
			r.newImage = id
			continue
		}
		digest := ""
		if w.pull {
			digest = r.remote
		}
		todo = append(todo, &inFlight{t: &r.target, replace: true, newImage: id, digest: digest, result: *r})
	}
	if len(todo) == 0 {
		return results
	}
	done := s.update(ctx, targets, todo)
	for _, f := range done {
		i, ok := byName[f.t.name]
		if !ok {
			continue
		}
		old := results[i]
		res := f.result
		res.target = old.target
		res.current, res.remote = old.current, old.remote
		if f.replace {
			res.newImage = f.newImage
		}
		if res.state == stateRestarted {
			res.state = old.state
			if res.reason == "" {
				res.reason = "restarted: a container it depends on was updated"
			}
		}
		results[i] = res
	}
	if s.cfg.cleanup {
		s.cleanup(ctx, done)
	}
	return results
}

// pullJob is one image pulled for a session.
type pullJob struct {
	ref      reference
	digest   string
	err      error
	deferred string // why it waits for a later session
}

// deferOverQuota keeps Docker Hub pulls within the announced remaining quota; the rest wait.
func (s *session) deferOverQuota(pulls map[string]*pullJob, order []string) {
	q := s.reg.quotaOf(reference{domain: dockerHub}.apiHost())
	if !q.known {
		return
	}
	left := q.remaining
	for _, key := range order {
		p := pulls[key]
		if p.ref.domain != dockerHub {
			continue
		}
		if left <= 0 {
			p.deferred = fmt.Sprintf("deferred: Docker Hub allows %d more pulls in this window", q.remaining)
			s.log.Warn("pull deferred to stay within Docker Hub's rate limit", "image", p.ref.String(), "remaining", q.remaining)
			continue
		}
		left--
	}
}

// registryAuth is the X-Registry-Auth value for a pull of ref, or "" for anonymous.
func (s *session) registryAuth(ctx context.Context, ref reference) string {
	cred, err := s.reg.creds.lookup(ctx, ref.domain)
	if err != nil || cred.empty() {
		return ""
	}
	server := ref.domain
	if server == dockerHub {
		server = hubKeys[0]
	}
	v := map[string]string{"serveraddress": server}
	if cred.identityToken != "" {
		v["identitytoken"] = cred.identityToken
	} else {
		v["username"], v["password"] = cred.username, cred.password
	}
	b, _ := json.Marshal(v)
	return base64.URLEncoding.EncodeToString(b)
}

// update replaces the containers in todo and restarts their dependents, in dependency order.
func (s *session) update(ctx context.Context, targets []target, todo []*inFlight) []*inFlight {
	byName := map[string]*target{}
	var all []target
	for i := range targets {
		byName[targets[i].name] = &targets[i]
		all = append(all, targets[i])
	}
	graph := buildGraph(inspects(all))
	flights := map[string]*inFlight{}
	var names []string
	for _, f := range todo {
		flights[f.t.name] = f
		names = append(names, f.t.name)
	}
	for _, d := range graph.dependents(names) {
		t := byName[d]
		if t == nil || flights[d] != nil || t.insp.State == nil || !t.insp.State.Running || s.selfReason(*t) != "" {
			continue
		}
		f := &inFlight{t: t, result: result{target: *t}}
		// A container sharing another's network namespace must be recreated to join the new one.
		f.replace = strings.HasPrefix(string(t.insp.HostConfig.NetworkMode), "container:")
		f.newImage = t.imageID
		flights[d] = f
	}
	var nodes []string
	for n := range flights {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	groups, cycles := graph.orderGroups(nodes)
	for n, cyc := range cycles {
		f := flights[n]
		f.result.state, f.result.reason = stateFailed, "dependency cycle between "+strings.Join(cyc, ", ")+": break it with the depends-on label"
	}

	// Work in hand is finished even after a signal; no new work starts after one.
	work := context.WithoutCancel(ctx)
	g := new(errgroup.Group)
	limit := s.cfg.concurrency
	if s.cfg.rollingRestart {
		limit = 1
	}
	g.SetLimit(limit)
	for _, group := range groups {
		g.Go(func() error {
			s.updateGroup(ctx, work, group, flights)
			return nil
		})
	}
	g.Wait()
	var out []*inFlight
	for _, n := range nodes {
		out = append(out, flights[n])
	}
	return out
}

// updateGroup takes a dependency-ordered group down in reverse order and brings it up in order;
// with --rolling-restart one container at a time.
func (s *session) updateGroup(ctx, work context.Context, group []string, flights map[string]*inFlight) {
	var up []*inFlight
	down := func(f *inFlight) bool {
		if ctx.Err() != nil {
			f.result.state, f.result.reason = stateSkipped, "outpost was asked to stop before its turn"
			return false
		}
		if f.replace && f.t.ref.path != "" {
			if skip, err := s.preUpdateHook(work, f); skip || err != nil {
				if err != nil {
					f.result.state, f.result.reason = stateFailed, err.Error()
				} else {
					f.result.state, f.result.reason = stateSkipped, "the pre-update hook asked to skip this container (exit 75)"
				}
				return false
			}
		}
		if err := s.takeDown(work, f); err != nil {
			s.undoTakeDown(work, f, err)
			return false
		}
		return true
	}
	if s.cfg.rollingRestart {
		for _, n := range group {
			if f := flights[n]; down(f) {
				s.bringUp(work, f)
			}
		}
		return
	}
	for i := len(group) - 1; i >= 0; i-- {
		if f := flights[group[i]]; down(f) {
			up = append(up, f)
		}
	}
	for i := len(up) - 1; i >= 0; i-- {
		s.bringUp(work, up[i])
	}
}

// cleanup removes the images that updated containers left behind, and those rolled back, when
// nothing uses them.
func (s *session) cleanup(ctx context.Context, done []*inFlight) {
	old := map[string]bool{}
	for _, f := range done {
		switch {
		case f.result.state == stateUpdated && f.t.imageID != f.newImage:
			old[f.t.imageID] = true
		case f.result.state == stateRolledBack && f.newImage != "":
			old[f.newImage] = true // the broken image pulled for nothing
		}
	}
	if len(old) == 0 {
		return
	}
	all, err := s.eng.listContainers(ctx, nil)
	if err != nil {
		s.log.Warn("cleanup skipped", "err", err)
		return
	}
	for _, c := range all {
		delete(old, c.ImageID)
	}
	for id := range old {
		if err := s.eng.removeImage(ctx, id); err != nil {
			s.log.Debug("old image kept", "image", id, "err", err)
			continue
		}
		s.log.Info("removed old image", "image", id)
	}
}
