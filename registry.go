// registry.go owns the conversation with registries: the /v2/ ping (once per registry per
// process), authorising a request (Basic, or Bearer through auth.go's token cache) and the manifest
// digest HEAD that tells whether a tag moved.
package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// manifestTypes are sent as Accept on every manifest request. Without the schema2 type registry 2.8
// rewrites to schema1 (another digest, a false update forever); without the OCI types OCI images 404.
var manifestTypes = []string{
	"application/vnd.docker.distribution.manifest.list.v2+json",
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.oci.image.manifest.v1+json",
}

// requestStats counts what the registries were asked, for the session summary and the benchmark.
type requestStats struct {
	pings, heads, gets, tokens atomic.Int64
}

type statsSnapshot struct{ pings, heads, gets, tokens int64 }

func (c *registryClient) snapshot() statsSnapshot {
	return statsSnapshot{c.stats.pings.Load(), c.stats.heads.Load(), c.stats.gets.Load(), c.stats.tokens.Load()}
}

// since is the requests made between an earlier snapshot and this one.
func (a statsSnapshot) since(b statsSnapshot) statsSnapshot {
	return statsSnapshot{a.pings - b.pings, a.heads - b.heads, a.gets - b.gets, a.tokens - b.tokens}
}

// registryClient checks tags on any number of registries; it is safe for concurrent use.
type registryClient struct {
	log        *slog.Logger
	transports *registryTransports
	creds      *credentialStore
	tokens     *tokenCache
	now        func() time.Time
	timeout    time.Duration // for one request
	perHost    int           // checks at once against one registry

	mu       sync.Mutex
	hosts    map[string]*registryHost
	inflight map[tokenKey]*tokenCall

	stats requestStats
}

// registryHost is what outpost learnt about one registry from its ping.
type registryHost struct {
	name  string        // API host[:port]
	slots chan struct{} // the per-registry cap

	mu         sync.Mutex
	pinged     bool
	scheme     string
	challenges []challenge
	client     *http.Client
	err        error // a failed ping, reused for a short while so one dead registry costs one ping
	errAt      time.Time

	quotaMu sync.Mutex
	quota   quota
}

// quota is the pull allowance a registry last announced (Docker Hub's RateLimit headers).
type quota struct {
	limit, remaining int
	window           time.Duration
	known            bool
}

func newRegistryClient(cfg *config, lookup func(string) (string, bool), log *slog.Logger) (*registryClient, error) {
	tr, err := newRegistryTransports(tlsSettings{
		caFile:   cfg.registryCA,
		validate: cfg.registryCAValidate,
		insecure: cfg.insecureRegistry,
		certsDir: "/etc/docker/certs.d",
	}, log)
	if err != nil {
		return nil, err
	}
	creds, err := loadCredentials(lookup)
	if err != nil {
		log.Error("credentials not loaded; registries will be asked anonymously", "err", err)
	}
	// One slow registry may hold three quarters of the checks, never all of them.
	per := max(1, cfg.concurrency*3/4)
	return &registryClient{
		log:        log,
		transports: tr,
		creds:      creds,
		tokens:     newTokenCache(nil),
		now:        time.Now,
		timeout:    30 * time.Second,
		perHost:    per,
		hosts:      map[string]*registryHost{},
		inflight:   map[tokenKey]*tokenCall{},
	}, nil
}

// remoteManifest is what a registry says a tag points at.
type remoteManifest struct {
	digest    string
	mediaType string
}

// headDigest asks the registry which manifest ref's tag points at, with one HEAD (plus a GET only
// when the registry leaves out Docker-Content-Digest).
func (c *registryClient) headDigest(ctx context.Context, ref reference) (remoteManifest, error) {
	h, err := c.host(ctx, ref.apiHost())
	if err != nil {
		return remoteManifest{}, err
	}
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	case <-ctx.Done():
		return remoteManifest{}, ctx.Err()
	}
	u := h.scheme + "://" + h.name + "/v2/" + ref.path + "/manifests/" + ref.tag
	resp, err := c.send(ctx, h, ref, http.MethodHead, u, &c.stats.heads)
	if err != nil {
		return remoteManifest{}, err
	}
	resp.Body.Close()
	m := remoteManifest{digest: resp.Header.Get("Docker-Content-Digest"), mediaType: mediaType(resp)}
	if m.digest != "" {
		return m, nil
	}
	resp, err = c.send(ctx, h, ref, http.MethodGet, u, &c.stats.gets)
	if err != nil {
		return remoteManifest{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return remoteManifest{}, fmt.Errorf("registry %s: reading manifest of %s: %w", h.name, ref, err)
	}
	sum := sha256.Sum256(body)
	return remoteManifest{digest: "sha256:" + hex.EncodeToString(sum[:]), mediaType: mediaType(resp)}, nil
}

func mediaType(resp *http.Response) string {
	t, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
	return strings.TrimSpace(t)
}

// send makes one authorised manifest request and returns a 2xx answer; a 401 that asks for a new
// token is retried once with a fresh one.
func (c *registryClient) send(ctx context.Context, h *registryHost, ref reference, method, u string, counter *atomic.Int64) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, c.timeout)
		req, err := http.NewRequestWithContext(rctx, method, u, nil)
		if err != nil {
			cancel()
			return nil, err
		}
		req.Header.Set("Accept", strings.Join(manifestTypes, ", "))
		key, err := c.authorize(ctx, h, ref, req)
		if err != nil {
			cancel()
			return nil, err
		}
		counter.Add(1)
		c.log.Log(ctx, levelTrace, "registry request", "method", method, "url", u)
		resp, err := h.client.Do(req)
		if err != nil {
			cancel()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, certificateHelp(h.name, fmt.Errorf("registry %s: %w", h.name, err))
		}
		c.log.Log(ctx, levelTrace, "registry answer", "method", method, "url", u, "status", resp.StatusCode)
		c.noteQuota(ctx, h, resp)
		if resp.StatusCode == http.StatusUnauthorized && key != nil && attempt == 0 && tokenRefresh(resp) {
			drain(resp)
			cancel()
			c.tokens.drop(*key)
			continue
		}
		if resp.StatusCode/100 != 2 {
			defer cancel()
			defer resp.Body.Close()
			return nil, registryError(h.name, ref, resp)
		}
		resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
		return resp, nil
	}
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// authorize adds the credentials the registry's challenge asks for; it returns the token cache
// key when a token was used, so that a refused token can be dropped.
func (c *registryClient) authorize(ctx context.Context, h *registryHost, ref reference, req *http.Request) (*tokenKey, error) {
	var basic, bearer *challenge
	for i := range h.challenges {
		switch {
		case h.challenges[i].is("bearer") && bearer == nil:
			bearer = &h.challenges[i]
		case h.challenges[i].is("basic") && basic == nil:
			basic = &h.challenges[i]
		}
	}
	if bearer == nil && basic == nil {
		return nil, nil // an open registry
	}
	if bearer != nil {
		scope := "repository:" + ref.path + ":pull"
		key := tokenKey{realm: bearer.params["realm"], service: bearer.params["service"], scope: scope}
		if tok, ok := c.tokens.get(key); ok {
			req.Header.Set("Authorization", "Bearer "+tok)
			return &key, nil
		}
		// Credentials are looked up only for a token request: a cached token needs none.
		cred, err := c.creds.lookup(ctx, ref.domain)
		if err != nil {
			return nil, fmt.Errorf("registry %s: credentials: %w", h.name, err)
		}
		tok, err := c.token(ctx, h, *bearer, key, cred)
		if err != nil {
			return nil, certificateHelp(h.name, fmt.Errorf("registry %s: token for %s: %w", h.name, ref.path, err))
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		return &key, nil
	}
	cred, err := c.creds.lookup(ctx, ref.domain)
	if err != nil {
		return nil, fmt.Errorf("registry %s: credentials: %w", h.name, err)
	}
	if cred.username == "" {
		return nil, fmt.Errorf("registry %s asks for a user name and password and none is configured: run docker login, set DOCKER_CONFIG, or REPO_USER and REPO_PASS", h.name)
	}
	if h.scheme != "https" && !isLoopbackHost(h.name) {
		return nil, fmt.Errorf("registry %s: refusing to send credentials over plain HTTP", h.name)
	}
	req.SetBasicAuth(cred.username, cred.password)
	return nil, nil
}

// tokenCall is one token request that concurrent checks of the same repository wait for.
type tokenCall struct {
	done  chan struct{}
	token string
	err   error
}

// token fetches a token for key once, however many checks need it at the same moment.
func (c *registryClient) token(ctx context.Context, h *registryHost, ch challenge, key tokenKey, cred credential) (string, error) {
	c.mu.Lock()
	call := c.inflight[key]
	if call == nil {
		if tok, ok := c.tokens.get(key); ok {
			c.mu.Unlock()
			return tok, nil
		}
		call = &tokenCall{done: make(chan struct{})}
		c.inflight[key] = call
		c.mu.Unlock()

		c.stats.tokens.Add(1)
		tctx, cancel := context.WithTimeout(ctx, c.timeout)
		tok, exp, err := fetchToken(tctx, h.client, ch, []string{key.scope}, cred, c.now)
		cancel()
		if err == nil {
			c.tokens.put(key, tok, exp)
		}
		call.token, call.err = tok, err
		c.mu.Lock()
		delete(c.inflight, key)
		c.mu.Unlock()
		close(call.done)
		return tok, err
	}
	c.mu.Unlock()
	select {
	case <-call.done:
		return call.token, call.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// host returns the registry's ping result, pinging it the first time it is needed.
func (c *registryClient) host(ctx context.Context, name string) (*registryHost, error) {
	c.mu.Lock()
	h := c.hosts[name]
	if h == nil {
		h = &registryHost{name: name, slots: make(chan struct{}, c.perHost)}
		c.hosts[name] = h
	}
	c.mu.Unlock()

	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pinged {
		return h, nil
	}
	if h.err != nil && c.now().Sub(h.errAt) < time.Minute {
		return nil, h.err
	}
	if err := c.ping(ctx, h); err != nil {
		if ctx.Err() == nil {
			h.err, h.errAt = err, c.now()
		}
		return nil, err
	}
	h.pinged, h.err = true, nil
	return h, nil
}

// ping asks GET /v2/ how the registry wants to be spoken to. Loopback registries may speak plain
// HTTP, as the engine allows; every other registry is HTTPS only.
func (c *registryClient) ping(ctx context.Context, h *registryHost) error {
	rt, err := c.transports.forHost(h.name)
	if err != nil {
		return fmt.Errorf("registry %s: %w", h.name, err)
	}
	h.client = &http.Client{Transport: newRetryTransport(rt), CheckRedirect: sameHostAuth}
	resp, err := c.get(ctx, h.client, "https://"+h.name+"/v2/")
	if err != nil && isLoopbackHost(h.name) && speaksPlainHTTP(err) {
		resp, err = c.get(ctx, h.client, "http://"+h.name+"/v2/")
		h.scheme = "http"
	} else {
		h.scheme = "https"
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return certificateHelp(h.name, fmt.Errorf("registry %s: %w", h.name, err))
	}
	defer drain(resp)
	c.stats.pings.Add(1)
	c.noteQuota(ctx, h, resp)
	switch resp.StatusCode {
	case http.StatusOK:
		h.challenges = nil
	case http.StatusUnauthorized:
		h.challenges = parseChallenges(resp.Header.Values("Www-Authenticate")...)
		if len(h.challenges) == 0 {
			return fmt.Errorf("registry %s: /v2/ answered 401 without a WWW-Authenticate challenge", h.name)
		}
	default:
		return fmt.Errorf("registry %s: /v2/ answered %s; is it a registry (API v2)?", h.name, resp.Status)
	}
	c.log.Debug("registry pinged", "registry", h.name, "scheme", h.scheme, "auth", challengeSchemes(h.challenges))
	return nil
}

func (c *registryClient) get(ctx context.Context, hc *http.Client, u string) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

func challengeSchemes(cs []challenge) string {
	if len(cs) == 0 {
		return "none"
	}
	var s []string
	for _, c := range cs {
		s = append(s, strings.ToLower(c.scheme))
	}
	return strings.Join(s, ",")
}

// speaksPlainHTTP tells whether a TLS handshake failed because the server answered in plain HTTP.
func speaksPlainHTTP(err error) bool {
	var rh tls.RecordHeaderError
	return errors.As(err, &rh) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}

// sameHostAuth follows redirects but never carries Authorization to another host.
func sameHostAuth(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if req.URL.Host != via[0].URL.Host {
		req.Header.Del("Authorization")
	}
	return nil
}

// registryError turns an error answer into an error with the registry's own message.
func registryError(host string, ref reference, resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	var body struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	var msgs []string
	if json.Unmarshal(b, &body) == nil {
		for _, e := range body.Errors {
			msgs = append(msgs, strings.TrimSpace(e.Code+": "+e.Message))
		}
	}
	detail := resp.Status
	if len(msgs) > 0 {
		detail += " (" + strings.Join(msgs, "; ") + ")"
	}
	switch resp.StatusCode {
	case http.StatusNotFound:
		return fmt.Errorf("registry %s has no tag %s of %s: %s", host, ref.tag, ref.path, detail)
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("registry %s refused access to %s: %s; check the credentials for %s", host, ref.path, detail, ref.domain)
	}
	return fmt.Errorf("registry %s: %s of %s: %s", host, resp.Request.Method, ref.path, detail)
}

// noteQuota keeps the RateLimit-Limit/Remaining a registry announces ("100;w=21600").
func (c *registryClient) noteQuota(ctx context.Context, h *registryHost, resp *http.Response) {
	limit, window, ok1 := parseRateLimit(resp.Header.Get("RateLimit-Limit"))
	remaining, _, ok2 := parseRateLimit(resp.Header.Get("RateLimit-Remaining"))
	if !ok1 || !ok2 {
		return
	}
	h.quotaMu.Lock()
	h.quota = quota{limit: limit, remaining: remaining, window: window, known: true}
	h.quotaMu.Unlock()
	c.log.Debug("registry quota", "registry", h.name, "limit", limit, "remaining", remaining, "window", window.String())
}

// quotas returns the remaining pulls every registry last announced.
func (c *registryClient) quotas() map[string]int {
	c.mu.Lock()
	hosts := make([]*registryHost, 0, len(c.hosts))
	for _, h := range c.hosts {
		hosts = append(hosts, h)
	}
	c.mu.Unlock()
	out := map[string]int{}
	for _, h := range hosts {
		h.quotaMu.Lock()
		if h.quota.known {
			out[h.name] = h.quota.remaining
		}
		h.quotaMu.Unlock()
	}
	return out
}

// quotaOf returns what a registry last said of its pull allowance.
func (c *registryClient) quotaOf(apiHost string) quota {
	c.mu.Lock()
	h := c.hosts[apiHost]
	c.mu.Unlock()
	if h == nil {
		return quota{}
	}
	h.quotaMu.Lock()
	defer h.quotaMu.Unlock()
	return h.quota
}

// parseRateLimit reads "N" or "N;w=SECONDS".
func parseRateLimit(v string) (int, time.Duration, bool) {
	if v == "" {
		return 0, 0, false
	}
	num, params, _ := strings.Cut(v, ";")
	n, err := strconv.Atoi(strings.TrimSpace(num))
	if err != nil || n < 0 {
		return 0, 0, false
	}
	var window time.Duration
	for _, p := range strings.Split(params, ";") {
		if k, val, ok := strings.Cut(strings.TrimSpace(p), "="); ok && k == "w" {
			if sec, err := strconv.Atoi(val); err == nil && sec > 0 {
				window = time.Duration(sec) * time.Second
			}
		}
	}
	return n, window, true
}

// platformUnchanged compares two image indexes of ref for the engine's OS and architecture: when
// every manifest for that platform is the same in both, a rebuild of other platforms moved the tag
// and this host has nothing new to pull.
func (c *registryClient) platformUnchanged(ctx context.Context, ref reference, oldDigest, newDigest, os, arch string) (bool, error) {
	h, err := c.host(ctx, ref.apiHost())
	if err != nil {
		return false, err
	}
	children := func(digest string) (map[string]string, error) {
		u := h.scheme + "://" + h.name + "/v2/" + ref.path + "/manifests/" + digest
		resp, err := c.send(ctx, h, ref, http.MethodGet, u, &c.stats.gets)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var idx struct {
			Manifests []struct {
				Digest   string `json:"digest"`
				Platform struct {
					OS           string `json:"os"`
					Architecture string `json:"architecture"`
					Variant      string `json:"variant"`
				} `json:"platform"`
			} `json:"manifests"`
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&idx); err != nil {
			return nil, fmt.Errorf("registry %s: index %s of %s: %w", h.name, digest, ref.path, err)
		}
		m := map[string]string{}
		for _, d := range idx.Manifests {
			if d.Platform.OS == os && d.Platform.Architecture == arch {
				m[d.Platform.Variant] = d.Digest
			}
		}
		return m, nil
	}
	oldM, err := children(oldDigest)
	if err != nil {
		return false, err
	}
	newM, err := children(newDigest)
	if err != nil {
		return false, err
	}
	if len(newM) == 0 || len(oldM) != len(newM) {
		return false, nil
	}
	for v, d := range newM {
		if oldM[v] != d {
			return false, nil
		}
	}
	return true, nil
}

// isIndex tells whether a media type is a multi-platform index.
func isIndex(mediaType string) bool {
	return mediaType == manifestTypes[0] || mediaType == manifestTypes[1]
}
