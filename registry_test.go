package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeRegistry is an httptest registry speaking the distribution API for manifests.
type fakeRegistry struct {
	*httptest.Server
	t testing.TB

	mu             sync.Mutex
	manifests      map[string]fakeManifest // "path:tag" or "path@digest"
	noDigestHeader bool
	user, pass     string // Basic auth is required when user is set
	requests       []string
	accepts        []string
	auths          []string
	handler        http.HandlerFunc // replaces the default one when set
}

type fakeManifest struct {
	mediaType   string
	body        []byte
	fixedDigest string // answered instead of the body's digest, to match recorded engine data
}

func (m fakeManifest) digest() string {
	if m.fixedDigest != "" {
		return m.fixedDigest
	}
	s := sha256.Sum256(m.body)
	return "sha256:" + hex.EncodeToString(s[:])
}

func newFakeRegistry(t testing.TB) *fakeRegistry {
	r := &fakeRegistry{t: t, manifests: map[string]fakeManifest{}}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

// host is the registry's host:port, as it appears in image references.
func (r *fakeRegistry) host() string { return strings.TrimPrefix(r.URL, "http://") }

// push stores a schema2 manifest for path:tag whose content depends on build, and returns its digest.
func (r *fakeRegistry) push(path, tag, build string) string {
	m := fakeManifest{
		mediaType: "application/vnd.docker.distribution.manifest.v2+json",
		body:      []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"digest":"sha256:%x"}}`, sha256.Sum256([]byte(build)))),
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.manifests[path+":"+tag] = m
	r.manifests[path+"@"+m.digest()] = m
	return m.digest()
}

// pin makes path:tag answer with a given digest (one recorded from a real registry).
func (r *fakeRegistry) pin(path, tag, digest string) {
	r.store(path, ":"+tag, fakeManifest{mediaType: "application/vnd.docker.distribution.manifest.v2+json", body: []byte("{}"), fixedDigest: digest})
}

// store puts a manifest under path + ":tag" or path + "@digest".
func (r *fakeRegistry) store(path, key string, m fakeManifest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.manifests[path+key] = m
}

func (r *fakeRegistry) count(prefix string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return countPrefix(r.requests, prefix)
}

func (r *fakeRegistry) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.requests = append(r.requests, req.Method+" "+req.URL.Path)
	r.accepts = append(r.accepts, req.Header.Get("Accept"))
	r.auths = append(r.auths, req.Header.Get("Authorization"))
	h := r.handler
	r.mu.Unlock()
	if h != nil {
		h(w, req)
		return
	}
	if r.user != "" {
		u, p, ok := req.BasicAuth()
		if !ok || u != r.user || p != r.pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="Registry Realm"`)
			writeRegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
			return
		}
	}
	r.serveManifests(w, req)
}

// serveManifests answers an authorised request: the ping, or a manifest by tag or digest.
func (r *fakeRegistry) serveManifests(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path == "/v2/" {
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		w.Write([]byte("{}"))
		return
	}
	name, ref, ok := strings.Cut(strings.TrimPrefix(req.URL.Path, "/v2/"), "/manifests/")
	if !ok {
		writeRegistryError(w, http.StatusNotFound, "NAME_UNKNOWN", "repository name not known to registry")
		return
	}
	sep := ":"
	if strings.HasPrefix(ref, "sha256:") {
		sep = "@"
	}
	r.mu.Lock()
	m, found := r.manifests[name+sep+ref]
	noDigest := r.noDigestHeader
	r.mu.Unlock()
	if !found {
		writeRegistryError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest unknown")
		return
	}
	w.Header().Set("Content-Type", m.mediaType)
	w.Header().Set("Content-Length", fmt.Sprint(len(m.body)))
	if !noDigest {
		w.Header().Set("Docker-Content-Digest", m.digest())
	}
	if req.Method == http.MethodGet {
		w.Write(m.body)
	}
}

func writeRegistryError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"errors":[{"code":%q,"message":%q}]}`, code, msg)
}

// testRegistryClient builds the client main would build, logging into buf when it is not nil.
func testRegistryClient(t *testing.T, env func(string) (string, bool), buf *bytes.Buffer) *registryClient {
	t.Helper()
	var w io.Writer = io.Discard
	if buf != nil {
		w = buf
	}
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: levelTrace}))
	c, err := newRegistryClient(defaultConfig(), env, log)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustRef(t *testing.T, s string) reference {
	t.Helper()
	r, err := parseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestHeadDigestSendsAllManifestTypes(t *testing.T) {
	reg := newFakeRegistry(t)
	want := reg.push("app", "latest", "v1")
	c := testRegistryClient(t, envMap(), nil)
	m, err := c.headDigest(context.Background(), mustRef(t, reg.host()+"/app"))
	if err != nil {
		t.Fatal(err)
	}
	if m.digest != want || m.mediaType != "application/vnd.docker.distribution.manifest.v2+json" {
		t.Fatalf("got %+v, want digest %s", m, want)
	}
	if reg.count("HEAD /v2/app/manifests/latest") != 1 || reg.count("GET /v2/app/manifests") != 0 {
		t.Fatalf("requests %q: want one HEAD and no GET", reg.requests)
	}
	accept := reg.accepts[len(reg.accepts)-1]
	for _, mt := range []string{
		"application/vnd.docker.distribution.manifest.list.v2+json",
		"application/vnd.oci.image.index.v1+json",
		"application/vnd.docker.distribution.manifest.v2+json",
		"application/vnd.oci.image.manifest.v1+json",
	} {
		if !strings.Contains(accept, mt) {
			t.Errorf("Accept %q lacks %s", accept, mt)
		}
	}
}

func TestHeadDigestFallsBackToGetWithoutDigestHeader(t *testing.T) {
	reg := newFakeRegistry(t)
	want := reg.push("team/app", "v2", "build-2")
	reg.noDigestHeader = true
	c := testRegistryClient(t, envMap(), nil)
	m, err := c.headDigest(context.Background(), mustRef(t, reg.host()+"/team/app:v2"))
	if err != nil {
		t.Fatal(err)
	}
	if m.digest != want {
		t.Fatalf("digest %s, want the sha256 of the body %s", m.digest, want)
	}
	if reg.count("HEAD ") != 1 || reg.count("GET /v2/team/app/manifests/v2") != 1 || c.stats.gets.Load() != 1 {
		t.Fatalf("requests %q: want HEAD then GET", reg.requests)
	}
}

func TestOnePingPerRegistry(t *testing.T) {
	a, b := newFakeRegistry(t), newFakeRegistry(t)
	for i := 0; i < 5; i++ {
		a.push(fmt.Sprintf("r%d", i), "latest", "x")
		b.push(fmt.Sprintf("r%d", i), "latest", "y")
	}
	c := testRegistryClient(t, envMap(), nil)
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		for _, reg := range []*fakeRegistry{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := c.headDigest(context.Background(), mustRef(t, fmt.Sprintf("%s/r%d", reg.host(), i))); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	wg.Wait()
	for _, reg := range []*fakeRegistry{a, b} {
		if n := reg.count("GET /v2/"); n != 1 || reg.count("GET /v2/r") != 0 {
			t.Errorf("registry %s: %d pings, want 1 (requests %q)", reg.host(), n, reg.requests)
		}
		if n := reg.count("HEAD "); n != 5 {
			t.Errorf("registry %s: %d HEADs, want 5", reg.host(), n)
		}
	}
	if c.stats.pings.Load() != 2 || c.stats.heads.Load() != 10 {
		t.Errorf("stats pings %d heads %d, want 2 and 10", c.stats.pings.Load(), c.stats.heads.Load())
	}
}

func TestHeadDigestErrorsNameRegistryAndMessage(t *testing.T) {
	reg := newFakeRegistry(t)
	c := testRegistryClient(t, envMap(), nil)
	_, err := c.headDigest(context.Background(), mustRef(t, reg.host()+"/nothing:here"))
	if err == nil || !strings.Contains(err.Error(), reg.host()) || !strings.Contains(err.Error(), "no tag here of nothing") {
		t.Fatalf("missing tag: %v", err)
	}
	reg.handler = func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/v2/" {
			return
		}
		writeRegistryError(w, http.StatusInternalServerError, "UNKNOWN", "disk on fire")
	}
	_, err = c.headDigest(context.Background(), mustRef(t, reg.host()+"/app"))
	if err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("server error: %v", err)
	}
}

func TestPingRejectsNonRegistry(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	c := testRegistryClient(t, envMap(), nil)
	_, err := c.headDigest(context.Background(), mustRef(t, strings.TrimPrefix(srv.URL, "http://")+"/app"))
	if err == nil || !strings.Contains(err.Error(), "is it a registry") {
		t.Fatalf("got %v", err)
	}
}

func TestBasicAuthFromEnvironmentAndConfig(t *testing.T) {
	reg := newFakeRegistry(t)
	reg.user, reg.pass = "outpost", "hunter2-secret"
	want := reg.push("private/app", "latest", "p1")

	// No credentials: a clear error, nothing sent.
	var logs bytes.Buffer
	c := testRegistryClient(t, envMap(), &logs)
	_, err := c.headDigest(context.Background(), mustRef(t, reg.host()+"/private/app"))
	if err == nil || !strings.Contains(err.Error(), "REPO_USER") {
		t.Fatalf("no credentials: %v", err)
	}

	// REPO_USER and REPO_PASS.
	c = testRegistryClient(t, envMap("REPO_USER", "outpost", "REPO_PASS", "hunter2-secret", "DOCKER_CONFIG", t.TempDir()), &logs)
	m, err := c.headDigest(context.Background(), mustRef(t, reg.host()+"/private/app"))
	if err != nil || m.digest != want {
		t.Fatalf("REPO_USER: %+v %v", m, err)
	}

	// config.json auths.
	dir := writeDockerConfig(t, fmt.Sprintf(`{"auths":{"http://%s":{"auth":"b3V0cG9zdDpodW50ZXIyLXNlY3JldA=="}}}`, reg.host()))
	c = testRegistryClient(t, envMap("DOCKER_CONFIG", dir), &logs)
	m, err = c.headDigest(context.Background(), mustRef(t, reg.host()+"/private/app"))
	if err != nil || m.digest != want {
		t.Fatalf("config.json: %+v %v", m, err)
	}

	// Wrong password: the registry's refusal, named.
	c = testRegistryClient(t, envMap("REPO_USER", "outpost", "REPO_PASS", "wrong", "DOCKER_CONFIG", t.TempDir()), &logs)
	_, err = c.headDigest(context.Background(), mustRef(t, reg.host()+"/private/app"))
	if err == nil || !strings.Contains(err.Error(), "refused access to private/app") {
		t.Fatalf("wrong password: %v", err)
	}
	if strings.Contains(logs.String(), "hunter2-secret") || strings.Contains(logs.String(), "b3V0cG9zdDpodW50ZXIyLXNlY3JldA") {
		t.Fatal("trace logs carry the password")
	}
	if !strings.Contains(logs.String(), "registry request") {
		t.Fatal("trace logs are missing: the secrecy check above proves nothing")
	}
}

func TestRedirectToAnotherHostDropsAuthorization(t *testing.T) {
	other := newFakeRegistry(t)
	other.handler = func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Docker-Content-Digest", "sha256:"+strings.Repeat("ab", 32))
	}
	reg := newFakeRegistry(t)
	reg.user, reg.pass = "u", "p"
	reg.push("app", "latest", "1")
	reg.handler = func(w http.ResponseWriter, req *http.Request) {
		if u, p, ok := req.BasicAuth(); !ok || u != "u" || p != "p" {
			w.Header().Set("WWW-Authenticate", `Basic realm="r"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if req.URL.Path == "/v2/" {
			return
		}
		// Another host:port; Go's own client would keep Authorization for the same host name.
		http.Redirect(w, req, other.URL+req.URL.Path, http.StatusTemporaryRedirect)
	}
	c := testRegistryClient(t, envMap("REPO_USER", "u", "REPO_PASS", "p", "DOCKER_CONFIG", t.TempDir()), nil)
	if _, err := c.headDigest(context.Background(), mustRef(t, reg.host()+"/app")); err != nil {
		t.Fatal(err)
	}
	if len(other.auths) != 1 || other.auths[0] != "" {
		t.Fatalf("the other host received Authorization %q", other.auths)
	}
}

// fakeTokenService issues opaque tokens for a Bearer registry and remembers which are valid.
type fakeTokenService struct {
	*httptest.Server
	mu       sync.Mutex
	issued   int
	valid    map[string]string // token -> scope
	requests []string          // the query of each token request
	basic    []string          // "user:pass" sent with each request, or ""
	lifetime int               // expires_in; 0 leaves it out
}

func newFakeTokenService(t testing.TB) *fakeTokenService {
	s := &fakeTokenService{valid: map[string]string{}, lifetime: 300}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.requests = append(s.requests, r.URL.RawQuery)
		u, p, _ := r.BasicAuth()
		s.basic = append(s.basic, strings.TrimSuffix(u+":"+p, ":"))
		s.issued++
		tok := fmt.Sprintf("tok-%d", s.issued)
		s.valid[tok] = r.URL.Query().Get("scope")
		w.Header().Set("Content-Type", "application/json")
		if s.lifetime > 0 {
			fmt.Fprintf(w, `{"access_token":%q,"expires_in":%d}`, tok, s.lifetime)
		} else {
			fmt.Fprintf(w, `{"access_token":%q}`, tok)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *fakeTokenService) revokeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.valid = map[string]string{}
}

// bearer makes the registry demand tokens from s; the realm path has capitals on purpose, and
// the header carries a Basic challenge before the Bearer one.
func (r *fakeRegistry) bearer(s *fakeTokenService) {
	realm := s.URL + "/Token/Auth"
	challenge := `Basic realm="Registry Realm", Bearer realm="` + realm + `",service="Registry.Test"`
	r.handler = func(w http.ResponseWriter, req *http.Request) {
		tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
		s.mu.Lock()
		scope, valid := s.valid[tok]
		s.mu.Unlock()
		if req.URL.Path == "/v2/" && !ok {
			w.Header().Set("WWW-Authenticate", challenge)
			writeRegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
			return
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(req.URL.Path, "/v2/"), "/manifests/")
		if !ok || !valid || (req.URL.Path != "/v2/" && scope != "repository:"+name+":pull") {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+realm+`",service="Registry.Test",scope="repository:`+name+`:pull",error="invalid_token"`)
			writeRegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "invalid token")
			return
		}
		r.serveManifests(w, req)
	}
}

func TestBearerTokensCachedPerRepository(t *testing.T) {
	ts := newFakeTokenService(t)
	reg := newFakeRegistry(t)
	reg.bearer(ts)
	var refs []reference
	for i := 0; i < 3; i++ {
		for _, tag := range []string{"a", "b"} {
			reg.push(fmt.Sprintf("repo%d", i), tag, tag)
			refs = append(refs, mustRef(t, fmt.Sprintf("%s/repo%d:%s", reg.host(), i, tag)))
		}
	}
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	var clockMu sync.Mutex
	clock := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	c := testRegistryClient(t, envMap("DOCKER_CONFIG", t.TempDir()), nil)
	c.tokens, c.now = newTokenCache(clock), clock

	session := func() {
		t.Helper()
		var wg sync.WaitGroup
		for _, ref := range refs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := c.headDigest(context.Background(), ref); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	session()
	// 6 images in 3 repositories: 1 ping, 3 tokens, 6 HEADs, however the checks interleave.
	if p, tk, h := reg.count("GET /v2/"), len(ts.requests), reg.count("HEAD "); p != 1 || tk != 3 || h != 6 {
		t.Fatalf("first session: %d pings, %d tokens, %d HEADs; want 1, 3, 6", p, tk, h)
	}
	for _, q := range ts.requests {
		if !strings.Contains(q, "service=Registry.Test") || !strings.Contains(q, "scope=repository%3Arepo") {
			t.Errorf("token request %q", q)
		}
	}
	session()
	if p, tk, h := reg.count("GET /v2/"), len(ts.requests), reg.count("HEAD "); p != 1 || tk != 3 || h != 12 {
		t.Fatalf("second session within the token lifetime: %d pings, %d tokens, %d HEADs; want 1, 3, 12", p, tk, h)
	}
	clockMu.Lock()
	now = now.Add(290 * time.Second) // inside the margin before the 300 s expiry
	clockMu.Unlock()
	session()
	if tk := len(ts.requests); tk != 6 {
		t.Fatalf("after expiry: %d token requests, want 6", tk)
	}
}

func TestBearerRefreshesOnceOnInvalidToken(t *testing.T) {
	ts := newFakeTokenService(t)
	reg := newFakeRegistry(t)
	reg.bearer(ts)
	reg.push("app", "latest", "1")
	c := testRegistryClient(t, envMap("DOCKER_CONFIG", t.TempDir()), nil)
	ref := mustRef(t, reg.host()+"/app")
	if _, err := c.headDigest(context.Background(), ref); err != nil {
		t.Fatal(err)
	}
	ts.revokeAll() // the registry forgets the cached token
	if _, err := c.headDigest(context.Background(), ref); err != nil {
		t.Fatalf("after revocation: %v", err)
	}
	if tk, h := len(ts.requests), reg.count("HEAD "); tk != 2 || h != 3 {
		t.Fatalf("%d tokens, %d HEADs; want 2 and 3 (one refused, one retried)", tk, h)
	}
	// A token service that keeps handing out refused tokens: one retry, then the error.
	reg.handler = func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+ts.URL+`/Token/Auth",service="Registry.Test",error="invalid_token"`)
		writeRegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "invalid token")
	}
	before := reg.count("HEAD ")
	_, err := c.headDigest(context.Background(), ref)
	if err == nil || !strings.Contains(err.Error(), "refused access") || reg.count("HEAD ")-before != 2 {
		t.Fatalf("endless refusal: %v after %d HEADs", err, reg.count("HEAD ")-before)
	}
}

func TestBearerSendsCredentialsOnlyToTheTokenService(t *testing.T) {
	ts := newFakeTokenService(t)
	ts.lifetime = 0 // no expires_in: 60 s
	reg := newFakeRegistry(t)
	reg.bearer(ts)
	reg.push("app", "latest", "1")
	var logs bytes.Buffer
	c := testRegistryClient(t, envMap("REPO_USER", "robot", "REPO_PASS", "pa55-secret", "DOCKER_CONFIG", t.TempDir()), &logs)
	if _, err := c.headDigest(context.Background(), mustRef(t, reg.host()+"/app")); err != nil {
		t.Fatal(err)
	}
	if len(ts.basic) != 1 || ts.basic[0] != "robot:pa55-secret" {
		t.Fatalf("token service got %q", ts.basic)
	}
	for _, a := range reg.auths {
		if strings.HasPrefix(a, "Basic") {
			t.Fatalf("the registry itself received Basic credentials: %q", reg.auths)
		}
	}
	if strings.Contains(logs.String(), "pa55-secret") || strings.Contains(logs.String(), "tok-1") {
		t.Fatal("a secret or token reached the trace log")
	}
}

func TestParseRateLimit(t *testing.T) {
	for _, tt := range []struct {
		in     string
		n      int
		window time.Duration
		ok     bool
	}{
		{"100;w=21600", 100, 6 * time.Hour, true},
		{"20", 20, 0, true},
		{" 7 ; w=60 ", 7, time.Minute, true},
		{"", 0, 0, false},
		{"many;w=1", 0, 0, false},
		{"-1", 0, 0, false},
	} {
		n, w, ok := parseRateLimit(tt.in)
		if n != tt.n || w != tt.window || ok != tt.ok {
			t.Errorf("parseRateLimit(%q) = %d %s %v", tt.in, n, w, ok)
		}
	}
}

func TestQuotaKeptAndPullsDeferred(t *testing.T) {
	reg := newFakeRegistry(t)
	reg.push("app", "latest", "1")
	inner := reg.Config.Handler
	var limited sync.Once
	var heads atomic.Int32
	reg.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			heads.Add(1)
		}
		w.Header().Set("RateLimit-Limit", "100;w=21600")
		w.Header().Set("RateLimit-Remaining", "1;w=21600")
		if r.Method == http.MethodHead {
			retry := false
			limited.Do(func() { retry = true })
			if retry { // one 429 first: the check retries after Retry-After
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
		}
		inner.ServeHTTP(w, r)
	})
	c := testRegistryClient(t, envMap(), nil)
	if _, err := c.headDigest(context.Background(), mustRef(t, reg.host()+"/app")); err != nil {
		t.Fatal(err)
	}
	if heads.Load() != 2 || c.stats.heads.Load() != 1 {
		t.Fatalf("want the 429 retried once: %d HEADs on the wire, %d checks", heads.Load(), c.stats.heads.Load())
	}
	q := c.quotaOf(reg.host())
	if !q.known || q.limit != 100 || q.remaining != 1 || q.window != 6*time.Hour {
		t.Fatalf("quota %+v", q)
	}
	if got := c.quotas()[reg.host()]; got != 1 {
		t.Fatalf("quotas() = %v", c.quotas())
	}

	// Docker Hub announces 1 pull left and three Hub images need pulling: two wait.
	c.hosts["registry-1.docker.io"] = &registryHost{name: "registry-1.docker.io", quota: quota{limit: 100, remaining: 1, known: true}}
	s := &session{reg: c, log: c.log}
	pulls := map[string]*pullJob{}
	var order []string
	for _, n := range []string{"docker.io/library/a:1", "ghcr.io/o/b:1", "docker.io/library/c:1", "docker.io/library/d:1"} {
		pulls[n] = &pullJob{ref: mustRef(t, n)}
		order = append(order, n)
	}
	s.deferOverQuota(pulls, order)
	var deferred []string
	for _, n := range order {
		if pulls[n].deferred != "" {
			deferred = append(deferred, n)
		}
	}
	if strings.Join(deferred, " ") != "docker.io/library/c:1 docker.io/library/d:1" {
		t.Fatalf("deferred %v", deferred)
	}
}

func TestCheckOverTLSWithPrivateCA(t *testing.T) {
	ca := newTestCA(t)
	reg := &fakeRegistry{t: t, manifests: map[string]fakeManifest{}}
	reg.Server = httptest.NewUnstartedServer(http.HandlerFunc(reg.serve))
	reg.TLS = &tls.Config{Certificates: []tls.Certificate{ca.serverCertificate(t, "127.0.0.1")}}
	reg.StartTLS()
	t.Cleanup(reg.Close)
	host := strings.TrimPrefix(reg.URL, "https://")
	want := reg.push("app", "latest", "tls")
	ref := mustRef(t, host+"/app")
	client := func(ca string) *registryClient {
		cfg := defaultConfig()
		cfg.registryCA = ca
		c, err := newRegistryClient(cfg, envMap("DOCKER_CONFIG", t.TempDir()), slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if m, err := client(ca.writeBundle(t)).headDigest(context.Background(), ref); err != nil || m.digest != want {
		t.Fatalf("with --registry-ca: %+v %v", m, err)
	}
	for name, bundle := range map[string]string{"no CA": "", "an unrelated CA": newTestCA(t).writeBundle(t)} {
		_, err := client(bundle).headDigest(context.Background(), ref)
		if err == nil || !strings.Contains(err.Error(), host) || !strings.Contains(err.Error(), "--registry-ca") {
			t.Errorf("%s: %v", name, err)
		}
		// A TLS failure on loopback is not a plain-HTTP registry: no fallback to http.
		if reg.count("GET /v2/") > 1 {
			t.Errorf("%s: fell back to plain HTTP: %q", name, reg.requests)
		}
	}
}
