// update.go owns a session: discover the containers to watch, check their tags against the
// registries, and report one record per container and a summary.
package main

import (
	"context"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"golang.org/x/sync/errgroup"
)

const (
	labelPrefix   = "com.centurylinklabs.watchtower"
	labelEnable   = labelPrefix + ".enable"
	labelScope    = labelPrefix + ".scope"
	labelOriginal = "com.centurylinklabs.zodiac.original-image"
)

// Container states in the report.
const (
	stateFresh   = "fresh"
	stateStale   = "stale"
	stateSkipped = "skipped"
	stateFailed  = "failed"
)

// engineConcurrency is how many inspect calls discovery makes at once.
const engineConcurrency = 4

// checkDeadline bounds the discovery and check of one session.
const checkDeadline = 5 * time.Minute

// session runs update sessions; it holds no state between them beyond the clients' caches.
type session struct {
	cfg    *config
	eng    *engine
	reg    *registryClient
	log    *slog.Logger
	state  *stateFile        // rolled-back digests; nil in monitor-only use
	selfID string            // outpost's own container, when it runs in one
	names  map[string]string // container ID -> name, for the last discovery
}

// target is one selected container as discovery found it.
type target struct {
	name        string
	id          string
	image       string    // the reference the container was run with
	ref         reference // image, normalised
	imageID     string
	repoDigests []string
	skip        string // why it is not checked, when it is not
	insp        container.InspectResponse
	oldImage    image.InspectResponse
}

// result is the outcome for one container.
type result struct {
	target
	state    string
	current  string // the digest the running image has for ref's repository
	remote   string // the digest the registry has for ref's tag
	reason   string
	newImage string // the image ID it was updated to
	newID    string // the successor container
}

// report is a session's outcome.
type report struct {
	results  []result
	duration time.Duration
	err      error // the session could not run at all
}

func (r report) count(state string) int {
	n := 0
	for _, x := range r.results {
		if x.state == state {
			n++
		}
	}
	return n
}

// exitCode is 0 when every selected container was checked and everything stale was updated, 1
// when anything failed or was rolled back.
func (r report) exitCode() int {
	if r.err != nil || r.count(stateFailed) > 0 || r.count(stateRolledBack) > 0 {
		return 1
	}
	return 0
}

// run performs one session over the selected containers (of the given images only, when any
// are given) and logs its report.
func (s *session) run(ctx context.Context, images []string) report {
	start := time.Now()
	before := s.reg.snapshot()
	var rep report
	if !s.cfg.monitorOnly {
		// Whatever a killed run left half done is finished or undone before anything else.
		s.recoverInterrupted(context.WithoutCancel(ctx))
	}
	// However registries misbehave, a check ends; retries and timeouts sit well inside this.
	cctx, cancel := context.WithTimeout(ctx, checkDeadline)
	targets, err := s.discover(cctx, images)
	if err != nil {
		cancel()
		rep.err = err
		s.log.Error("session failed", "err", err)
	} else {
		s.checkHooks(ctx, targets, hookPreCheck)
		rep.results = s.check(cctx, targets)
		cancel()
		if ctx.Err() == nil {
			rep.results = s.apply(ctx, targets, rep.results)
		}
		s.checkHooks(context.WithoutCancel(ctx), targets, hookPostCheck)
	}
	rep.duration = time.Since(start)
	s.logReport(rep, s.reg.snapshot().since(before))
	return rep
}

// statuses are the container states the user asked to watch.
func (c *config) statuses() []string {
	st := []string{"running"}
	if c.includeRestarting {
		st = append(st, "restarting")
	}
	if c.includeStopped {
		st = append(st, "created", "exited")
	}
	return st
}

// selected applies the user's selection to a listed container; the reason says why not.
func (c *config) selected(name string, labels map[string]string) (bool, string) {
	for _, d := range c.disableContainers {
		if strings.TrimPrefix(d, "/") == name {
			return false, "listed in --disable-containers"
		}
	}
	if len(c.patterns) > 0 && !matchesAny(c.patterns, name) {
		return false, "not named on the command line"
	}
	enable, hasEnable := labels[labelEnable]
	if hasEnable && strings.EqualFold(strings.TrimSpace(enable), "false") {
		return false, labelEnable + "=false"
	}
	if c.labelEnable && !(hasEnable && strings.EqualFold(strings.TrimSpace(enable), "true")) {
		return false, "--label-enable is set and " + labelEnable + " is not true"
	}
	switch scope := labels[labelScope]; {
	case c.scope == "":
	case c.scope == "none" && strings.TrimSpace(scope) != "":
		return false, "--scope none and the container has scope " + scope
	case c.scope != "none" && scope != c.scope:
		return false, "scope " + scope + " is not --scope " + c.scope
	}
	return true, ""
}

func matchesAny(res []*regexp.Regexp, name string) bool {
	for _, re := range res {
		if re.MatchString(name) {
			return true
		}
	}
	return false
}

// discover lists the containers, applies the selection and inspects the selected ones.
func (s *session) discover(ctx context.Context, only []string) ([]target, error) {
	list, err := s.eng.listContainers(ctx, s.cfg.statuses())
	if err != nil {
		return nil, err
	}
	var picked []container.Summary
	s.names = map[string]string{}
	for _, c := range list {
		name := containerName(c.Names)
		s.names[c.ID] = name
		if _, _, aside := fromAside(name); aside {
			continue // an interrupted update's old copy, which recovery owns
		}
		if ok, why := s.cfg.selected(name, c.Labels); !ok {
			s.log.Debug("not selected", "container", name, "reason", why)
			continue
		}
		picked = append(picked, c)
	}

	targets := make([]target, len(picked))
	images := map[string]*imageDigests{}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	// The engine answers a local socket in microseconds: a few inspects at once keep it busy
	// without a connection (and its buffers) per check.
	g.SetLimit(min(s.cfg.concurrency, engineConcurrency))
	for i, c := range picked {
		mu.Lock()
		if images[c.ImageID] == nil {
			images[c.ImageID] = &imageDigests{}
		}
		img := images[c.ImageID]
		mu.Unlock()
		g.Go(func() error {
			insp, err := s.eng.inspectContainer(gctx, c.ID)
			if err != nil {
				return err
			}
			t := target{name: strings.TrimPrefix(insp.Name, "/"), id: insp.ID, imageID: insp.Image}
			if insp.Config != nil {
				t.image = insp.Config.Image
				if o := insp.Config.Labels[labelOriginal]; o != "" {
					t.image = o
				}
			}
			im, err := img.load(gctx, s.eng, insp.Image)
			if err != nil {
				return err
			}
			t.insp, t.oldImage, t.repoDigests = insp, im, im.RepoDigests
			t.ref, t.skip = classify(t.image, t.imageID)
			if t.skip == "" && len(t.repoDigests) == 0 {
				t.skip = "the image has no registry digest (built or loaded locally); nothing to compare"
			}
			targets[i] = t
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if len(only) > 0 {
		targets = slices.DeleteFunc(targets, func(t target) bool { return !imageWanted(t.image, only) })
	}
	sort.Slice(targets, func(i, j int) bool { return targets[i].name < targets[j].name })
	return targets, nil
}

// imageWanted tells whether a container's image is one of images: a name without a tag matches
// every tag of that repository, a name with one only that tag.
func imageWanted(image string, images []string) bool {
	ref, err := parseReference(image)
	if err != nil {
		return false
	}
	for _, want := range images {
		w, err := parseReference(want)
		if err != nil {
			continue
		}
		tagged := strings.LastIndex(want, ":") > strings.LastIndex(want, "/")
		if w.repository() == ref.repository() && (!tagged || w.tag == ref.tag) {
			return true
		}
	}
	return false
}

// imageDigests inspects an image once however many containers run it.
type imageDigests struct {
	once sync.Once
	img  image.InspectResponse
	err  error
}

func (d *imageDigests) load(ctx context.Context, eng *engine, id string) (image.InspectResponse, error) {
	d.once.Do(func() {
		d.img, d.err = eng.inspectImage(ctx, id)
	})
	return d.img, d.err
}

func containerName(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return strings.TrimPrefix(names[0], "/")
}

// classify parses the image a container runs and says why it cannot be followed, if it cannot.
func classify(image, imageID string) (reference, string) {
	if isImageID(image, imageID) {
		return reference{}, "runs an image ID, not a tag: there is nothing to follow"
	}
	ref, err := parseReference(image)
	if err != nil {
		return ref, err.Error()
	}
	if ref.digest != "" {
		return ref, "pinned by digest: there is nothing newer to find"
	}
	return ref, ""
}

// isImageID tells whether image names an image by its ID (full, or a hex prefix of it).
func isImageID(image, imageID string) bool {
	if strings.HasPrefix(image, "sha256:") {
		return true
	}
	if len(image) < 12 || len(image) > 64 {
		return false
	}
	for _, r := range image {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return false
		}
	}
	return strings.HasPrefix(strings.TrimPrefix(imageID, "sha256:"), image)
}

// check asks the registries about every distinct reference once, concurrently, and decides each
// container's state.
func (s *session) check(ctx context.Context, targets []target) []result {
	remote := map[string]*checked{}
	for _, t := range targets {
		if t.skip == "" && remote[t.ref.String()] == nil {
			remote[t.ref.String()] = &checked{ref: t.ref}
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.cfg.concurrency)
	for _, c := range remote {
		g.Go(func() error {
			c.manifest, c.err = s.reg.headDigest(gctx, c.ref)
			if c.err == nil && isIndex(c.manifest.mediaType) {
				c.comparePlatform(gctx, s, targets)
			}
			return nil // one registry's failure fails only its containers
		})
	}
	g.Wait()

	results := make([]result, 0, len(targets))
	for _, t := range targets {
		r := result{target: t}
		switch c := remote[t.ref.String()]; {
		case t.skip != "":
			r.state, r.reason = stateSkipped, t.skip
		case c.err != nil:
			r.state, r.reason = stateFailed, c.err.Error()
			r.current = currentDigest(t)
		default:
			r.current, r.remote = currentDigest(t), c.manifest.digest
			r.state = stateStale
			switch {
			case hasDigest(t.repoDigests, r.remote):
				r.state = stateFresh
			case c.samePlatform[r.current]:
				r.state = stateFresh
				r.reason = "the tag moved, but not for " + s.eng.info.Os + "/" + s.eng.info.Arch
			}
		}
		results = append(results, r)
	}
	return results
}

type checked struct {
	ref          reference
	manifest     remoteManifest
	err          error
	samePlatform map[string]bool // by current index digest: the index moved, this platform did not
}

// comparePlatform looks inside a moved index, so that a rebuild of another architecture does not
// count as an update; once for each index the containers on ref run.
func (c *checked) comparePlatform(ctx context.Context, s *session, targets []target) {
	c.samePlatform = map[string]bool{}
	for _, t := range targets {
		cur := currentDigest(t)
		if t.skip != "" || t.ref.String() != c.ref.String() || cur == "" || s.eng.info.Os == "" {
			continue
		}
		if _, done := c.samePlatform[cur]; done || hasDigest(t.repoDigests, c.manifest.digest) {
			continue
		}
		same, err := s.reg.platformUnchanged(ctx, c.ref, cur, c.manifest.digest, s.eng.info.Os, s.eng.info.Arch)
		if err != nil {
			s.log.Debug("platform comparison failed; counting the moved index as an update", "image", c.ref.String(), "err", err)
		}
		c.samePlatform[cur] = same
	}
}

// currentDigest is the digest the container's image has in ref's repository, or any digest the
// image has when it was pulled under another name.
func currentDigest(t target) string {
	for _, rd := range t.repoDigests {
		name, dg, ok := strings.Cut(rd, "@")
		if !ok {
			continue
		}
		if r, err := parseReference(name); err == nil && r.repository() == t.ref.repository() {
			return dg
		}
	}
	return ""
}

func hasDigest(repoDigests []string, digest string) bool {
	for _, rd := range repoDigests {
		if _, dg, ok := strings.Cut(rd, "@"); ok && dg == digest {
			return true
		}
	}
	return false
}

// logReport writes one record per container and the summary.
func (s *session) logReport(rep report, st statsSnapshot) {
	ctx := context.Background()
	for _, r := range rep.results {
		attrs := []slog.Attr{slog.String("container", r.name), slog.String("image", r.image), slog.String("state", r.state)}
		if r.current != "" {
			attrs = append(attrs, slog.String("current", r.current))
		}
		if r.remote != "" {
			attrs = append(attrs, slog.String("remote", r.remote))
		}
		if r.reason != "" {
			attrs = append(attrs, slog.String("reason", r.reason))
		}
		if r.newImage != "" {
			attrs = append(attrs, slog.String("old_image", r.imageID), slog.String("new_image", r.newImage))
		}
		level := slog.LevelInfo
		switch r.state {
		case stateFailed:
			level = s.failureLevel(r.ref)
		case stateRolledBack:
			level = slog.LevelWarn
		}
		s.log.LogAttrs(ctx, level, "container", attrs...)
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "session done",
		slog.Int("scanned", len(rep.results)),
		slog.Int("stale", rep.count(stateStale)),
		slog.Int("skipped", rep.count(stateSkipped)),
		slog.Int("failed", rep.count(stateFailed)),
		slog.Int("updated", rep.count(stateUpdated)),
		slog.Int("rolled_back", rep.count(stateRolledBack)),
		slog.String("duration", rep.duration.Round(time.Millisecond).String()),
		slog.Int64("registry_pings", st.pings),
		slog.Int64("registry_heads", st.heads),
		slog.Int64("registry_gets", st.gets),
		slog.Int64("registry_tokens", st.tokens),
	)
}

// failureLevel is --warn-on-head-failure: auto warns for registries known to answer HEAD well.
func (s *session) failureLevel(ref reference) slog.Level {
	switch s.cfg.warnOnHeadFailure {
	case "always":
		return slog.LevelWarn
	case "never":
		return slog.LevelDebug
	}
	if ref.domain == dockerHub || ref.domain == "ghcr.io" {
		return slog.LevelWarn
	}
	return slog.LevelInfo
}
