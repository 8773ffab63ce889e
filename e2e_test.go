// e2e_test.go owns the end-to-end tests: the real outpost binary against a real Docker Engine and
// Debian's docker-registry, with images built FROM scratch from testdata/app. They run only when
// OUTPOST_E2E=1 is set; with it, a missing engine or registry binary is a failure, not a skip.
package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The user and password in testdata/htpasswd (a fixed bcrypt file: the registry accepts no other hash).
const (
	e2eUser     = "outpost"
	e2ePassword = "e2e-pw-Hq7Zr2Lx"
)

// e2eManifestTypes is what registry.md says a digest check must accept; the test checks the
// registry with the same list so that both sides see the same digest.
var e2eManifestTypes = []string{
	"application/vnd.docker.distribution.manifest.list.v2+json",
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.oci.image.manifest.v1+json",
}

// e2eEngine is a minimal Engine API client over the unix socket, independent of outpost's own.
type e2eEngine struct {
	socket  string
	version string
	hc      *http.Client
}

// e2eSocket is the engine socket: DOCKER_HOST when it is unix://, else the default path.
func e2eSocket() string {
	if h, ok := strings.CutPrefix(os.Getenv("DOCKER_HOST"), "unix://"); ok && h != "" {
		return h
	}
	return "/var/run/docker.sock"
}

// e2eSetup gates every e2e test and returns a client for the engine.
func e2eSetup(t *testing.T) *e2eEngine {
	t.Helper()
	var missing []string
	eng, err := e2eDial(e2eSocket())
	if err != nil {
		missing = append(missing, fmt.Sprintf("engine socket %s (%v)", e2eSocket(), err))
	}
	if _, err := exec.LookPath("docker-registry"); err != nil {
		missing = append(missing, "docker-registry binary (Debian package docker-registry)")
	}
	enabled := os.Getenv("OUTPOST_E2E") == "1"
	switch {
	case enabled && len(missing) > 0:
		t.Fatalf("OUTPOST_E2E=1 but missing: %s", strings.Join(missing, "; "))
	case len(missing) > 0:
		t.Skipf("e2e test skipped: missing %s; install or start them and set OUTPOST_E2E=1 to run", strings.Join(missing, "; "))
	case !enabled:
		t.Skip("e2e test skipped: engine and docker-registry are present, but e2e tests run only with OUTPOST_E2E=1")
	}
	return eng
}

// e2eDial pings the engine and takes its API version as the prefix for every later call.
func e2eDial(socket string) (*e2eEngine, error) {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}
	e := &e2eEngine{socket: socket, hc: &http.Client{Transport: tr, Timeout: 2 * time.Minute}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://engine/_ping", nil)
	if err != nil {
		return nil, err
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Api-Version") == "" {
		return nil, fmt.Errorf("ping answered %s without Api-Version", resp.Status)
	}
	e.version = resp.Header.Get("Api-Version")
	return e, nil
}

// do sends one versioned request; an error status becomes an error carrying the engine's message.
func (e *e2eEngine) do(method, path string, hdr http.Header, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequest(method, "http://engine/v"+e.version+path, body)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		msg, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(msg))
	}
	return resp, nil
}

// call sends JSON (when in is not nil) and decodes the answer into out (when not nil).
func (e *e2eEngine) call(method, path string, in, out any) error {
	var body io.Reader
	hdr := http.Header{}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
		hdr.Set("Content-Type", "application/json")
	}
	resp, err := e.do(method, path, hdr, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// e2eStream reads a JSON-lines progress stream, fails on an error line, and returns the aux objects.
func e2eStream(r io.Reader) ([]json.RawMessage, error) {
	var aux []json.RawMessage
	dec := json.NewDecoder(r)
	for {
		var m struct {
			Error       string                    `json:"error"`
			ErrorDetail *struct{ Message string } `json:"errorDetail"`
			Aux         json.RawMessage           `json:"aux"`
		}
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return aux, nil
		} else if err != nil {
			return aux, fmt.Errorf("reading progress stream: %w", err)
		}
		if m.ErrorDetail != nil {
			return aux, fmt.Errorf("engine: %s", m.ErrorDetail.Message)
		}
		if m.Error != "" {
			return aux, fmt.Errorf("engine: %s", m.Error)
		}
		if m.Aux != nil {
			aux = append(aux, m.Aux)
		}
	}
}

// e2eBinaries holds the app and outpost executables, built once per test run.
var e2eBinaries struct {
	once    sync.Once
	app     []byte
	outpost []byte
	err     error
}

func e2eBuildBinaries(t *testing.T) {
	t.Helper()
	e2eBinaries.once.Do(func() {
		dir, err := os.MkdirTemp("", "outpost-e2e-bin-")
		if err != nil {
			e2eBinaries.err = err
			return
		}
		defer os.RemoveAll(dir)
		build := func(out string, env []string, args ...string) ([]byte, error) {
			cmd := exec.Command("go", append([]string{"build", "-o", filepath.Join(dir, out)}, args...)...)
			cmd.Env = append(os.Environ(), env...)
			if msg, err := cmd.CombinedOutput(); err != nil {
				return nil, fmt.Errorf("go build %s: %v\n%s", out, err, msg)
			}
			return os.ReadFile(filepath.Join(dir, out))
		}
		appEnv := []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + runtime.GOARCH}
		if e2eBinaries.app, e2eBinaries.err = build("app", appEnv, "-trimpath", "-ldflags", "-X main.version=e2e", "./testdata/app"); e2eBinaries.err != nil {
			return
		}
		e2eBinaries.outpost, e2eBinaries.err = build("outpost", []string{"CGO_ENABLED=0"}, "-ldflags", "-X main.version=e2e", ".")
	})
	if e2eBinaries.err != nil {
		t.Fatal(e2eBinaries.err)
	}
}

// e2eOutpost writes the outpost binary into the test's temp dir and returns its path.
func e2eOutpost(t *testing.T) string {
	t.Helper()
	e2eBuildBinaries(t)
	p := filepath.Join(t.TempDir(), "outpost")
	if err := os.WriteFile(p, e2eBinaries.outpost, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// e2eBuildImage builds a FROM scratch image of testdata/app tagged tag. The build ID goes into a
// LABEL so that every build has its own image ID and registry digest. It returns the image ID.
func e2eBuildImage(t *testing.T, e *e2eEngine, tag, buildID string) string {
	t.Helper()
	e2eBuildBinaries(t)
	dockerfile := fmt.Sprintf("FROM scratch\nCOPY app /app\nLABEL build=%q\nENTRYPOINT [\"/app\"]\n", buildID)
	id := e2eBuild(t, e, tag, e2eFile{"Dockerfile", 0o644, []byte(dockerfile)}, e2eFile{"app", 0o755, e2eBinaries.app})
	t.Cleanup(func() {
		if err := e.call(http.MethodDelete, "/images/"+id+"?force=1", nil, nil); err != nil && !strings.Contains(err.Error(), "404") {
			t.Errorf("cleanup: %v", err)
		}
	})
	return id
}

// e2eFile is one file of a build context.
type e2eFile struct {
	name string
	mode int64
	data []byte
}

// e2eBuild sends a build context (a Dockerfile among the files) to the engine's legacy builder
// and returns the image ID it reports.
func e2eBuild(t *testing.T, e *e2eEngine, tag string, files ...e2eFile) string {
	t.Helper()
	var ctx bytes.Buffer
	tw := tar.NewWriter(&ctx)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	// nocache: concurrent tests remove their images, and a cached parent another test removes
	// mid-build fails this build ("unknown parent image ID").
	q := url.Values{"t": {tag}, "rm": {"1"}, "forcerm": {"1"}, "nocache": {"1"}}
	resp, err := e.do(http.MethodPost, "/build?"+q.Encode(), http.Header{"Content-Type": {"application/x-tar"}}, &ctx)
	if err != nil {
		t.Fatalf("building %s: %v", tag, err)
	}
	defer resp.Body.Close()
	aux, err := e2eStream(resp.Body)
	if err != nil {
		t.Fatalf("building %s: %v", tag, err)
	}
	var id string
	for _, a := range aux {
		var v struct{ ID string }
		if json.Unmarshal(a, &v) == nil && v.ID != "" {
			id = v.ID
		}
	}
	if id == "" {
		t.Fatalf("building %s: the stream named no image ID", tag)
	}
	return id
}

// e2eAuth is X-Registry-Auth: URL-safe base64 of the JSON credentials (empty ones for open registries).
type e2eAuth struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	ServerAddress string `json:"serveraddress,omitempty"`
}

// e2ePush pushes ref (repo:tag) and returns the digest the engine reports for it.
func e2ePush(t *testing.T, e *e2eEngine, ref string, auth e2eAuth) string {
	t.Helper()
	i := strings.LastIndex(ref, ":")
	repo, tag := ref[:i], ref[i+1:]
	js, err := json.Marshal(auth)
	if err != nil {
		t.Fatal(err)
	}
	hdr := http.Header{"X-Registry-Auth": {base64.URLEncoding.EncodeToString(js)}}
	resp, err := e.do(http.MethodPost, "/images/"+repo+"/push?tag="+url.QueryEscape(tag), hdr, nil)
	if err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	defer resp.Body.Close()
	aux, err := e2eStream(resp.Body)
	if err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	for _, a := range aux {
		var v struct{ Digest string }
		if json.Unmarshal(a, &v) == nil && v.Digest != "" {
			return v.Digest
		}
	}
	t.Fatalf("pushing %s: the stream named no digest", ref)
	return ""
}

// e2eRun creates and starts a container. Cleanup removes whatever container then has the name,
// with its anonymous volumes, so that a container outpost replaced is removed too.
func e2eRun(t *testing.T, e *e2eEngine, name, image string, labels map[string]string) string {
	t.Helper()
	var created struct{ ID string }
	body := map[string]any{"Image": image, "Labels": labels}
	if err := e.call(http.MethodPost, "/containers/create?name="+url.QueryEscape(name), body, &created); err != nil {
		t.Fatalf("creating %s: %v", name, err)
	}
	t.Cleanup(func() {
		err := e.call(http.MethodDelete, "/containers/"+url.PathEscape(name)+"?force=1&v=1", nil, nil)
		if err != nil && !strings.Contains(err.Error(), "404") {
			t.Errorf("cleanup: %v", err)
		}
	})
	if err := e.call(http.MethodPost, "/containers/"+created.ID+"/start", nil, nil); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	return created.ID
}

// e2eRegistryOpts configures a test registry. Zero value: plain HTTP, no authentication.
// TLS and token fields go straight into the registry's config for tests that need them.
type e2eRegistryOpts struct {
	Htpasswd bool // basic auth with testdata/htpasswd (user e2eUser, password e2ePassword)

	TLSCert, TLSKey string // PEM files; the certificate needs an IP SAN for 127.0.0.1

	TokenRealm, TokenService, TokenIssuer, TokenRootCertBundle string // auth.token settings
}

// e2eReg is a running docker-registry.
type e2eReg struct {
	Host string // 127.0.0.1:PORT, as it appears in image references
	URL  string // scheme://Host
	// Client is the test's own view of the registry, to learn what is up and what digests it
	// holds. It skips TLS verification: checking certificates is outpost's job under test.
	Client *http.Client
}

// e2eRegistry starts `docker-registry serve` on a free loopback port and waits until /v2/ answers.
func e2eRegistry(t *testing.T, opts e2eRegistryOpts) e2eReg {
	t.Helper()
	dir := t.TempDir()
	var lastErr error
	for range 3 { // the free port can be taken between finding and binding it: try another
		reg, err := e2eStartRegistry(t, dir, opts)
		if err == nil {
			return reg
		}
		lastErr = err
	}
	t.Fatalf("starting docker-registry: %v", lastErr)
	return e2eReg{}
}

func e2eStartRegistry(t *testing.T, dir string, opts e2eRegistryOpts) (e2eReg, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return e2eReg{}, err
	}
	host := l.Addr().String()
	l.Close()
	storage, err := os.MkdirTemp(dir, "storage-")
	if err != nil {
		return e2eReg{}, err
	}
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", storage, host)
	scheme := "http"
	if opts.TLSCert != "" {
		scheme = "https"
		cfg += fmt.Sprintf("  tls:\n    certificate: %s\n    key: %s\n", opts.TLSCert, opts.TLSKey)
	}
	switch {
	case opts.Htpasswd:
		htpasswd, err := filepath.Abs(filepath.Join("testdata", "htpasswd"))
		if err != nil {
			return e2eReg{}, err
		}
		cfg += fmt.Sprintf("auth:\n  htpasswd:\n    realm: outpost-e2e\n    path: %s\n", htpasswd)
	case opts.TokenRealm != "":
		cfg += fmt.Sprintf("auth:\n  token:\n    realm: %s\n    service: %s\n    issuer: %s\n    rootcertbundle: %s\n",
			opts.TokenRealm, opts.TokenService, opts.TokenIssuer, opts.TokenRootCertBundle)
	}
	cfgPath := storage + ".yml"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return e2eReg{}, err
	}
	logPath := storage + ".log"
	logFile, err := os.Create(logPath)
	if err != nil {
		return e2eReg{}, err
	}
	defer logFile.Close()
	cmd := exec.Command("docker-registry", "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return e2eReg{}, err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop := func() {
		cmd.Process.Kill()
		<-exited
		os.RemoveAll(storage)
	}
	reg := e2eReg{Host: host, URL: scheme + "://" + host, Client: &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
	}}
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case <-exited:
			msg, _ := os.ReadFile(logPath)
			os.RemoveAll(storage)
			return e2eReg{}, fmt.Errorf("docker-registry on %s exited:\n%s", host, msg)
		default:
		}
		resp, err := reg.Client.Get(reg.URL + "/v2/")
		if err != nil {
			continue
		}
		resp.Body.Close()
		t.Cleanup(func() {
			if t.Failed() {
				msg, _ := os.ReadFile(logPath)
				t.Logf("docker-registry log (%s):\n%s", host, e2eTail(string(msg), 40))
			}
			stop()
		})
		return reg, nil
	}
	stop()
	return e2eReg{}, fmt.Errorf("docker-registry on %s did not answer /v2/ within 15s", host)
}

// e2eTail keeps the last n lines of s.
func e2eTail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// e2eRemoteDigest asks the registry itself what digest repo:tag has, with the Accept list of registry.md.
func e2eRemoteDigest(t *testing.T, reg e2eReg, repo, tag string, auth e2eAuth) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodHead, reg.URL+"/v2/"+repo+"/manifests/"+tag, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", strings.Join(e2eManifestTypes, ", "))
	if auth.Username != "" {
		req.SetBasicAuth(auth.Username, auth.Password)
	}
	resp, err := reg.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	dg := resp.Header.Get("Docker-Content-Digest")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(dg, "sha256:") {
		t.Fatalf("HEAD %s:%s: %s, digest %q", repo, tag, resp.Status, dg)
	}
	return dg
}

// e2eNames gives a test its unique container prefix and repository namespace.
func e2eNames(t *testing.T) (prefix, namespace string) {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	id := hex.EncodeToString(b)
	return "e2e-" + id + "-", "e2e" + id
}

// e2eRepo is one repository of a test registry with its versions built and pushed.
type e2eRepo struct {
	ref   string // host/namespace/name:latest
	path  string // namespace/name, as in /v2/ URLs
	v1ID  string // image ID of v1, which the containers run
	v1    string // registry digest of v1
	v2    string // registry digest of v2, when pushed
	stale bool
}

// e2ePushV1 builds and pushes v1 of namespace/name.
func e2ePushV1(t *testing.T, e *e2eEngine, reg e2eReg, path string, auth e2eAuth) *e2eRepo {
	t.Helper()
	r := &e2eRepo{ref: reg.Host + "/" + path + ":latest", path: path}
	r.v1ID = e2eBuildImage(t, e, r.ref, path+"-v1")
	r.v1 = e2ePush(t, e, r.ref, auth)
	return r
}

// e2ePushV2 builds and pushes v2 of the repository, then removes it locally and gives the tag back
// to v1, so that the engine holds exactly what it held before: only the registry has moved on.
func e2ePushV2(t *testing.T, e *e2eEngine, r *e2eRepo, auth e2eAuth) {
	t.Helper()
	id := e2eBuildImage(t, e, r.ref, r.path+"-v2")
	r.v2 = e2ePush(t, e, r.ref, auth)
	r.stale = true
	if err := e.call(http.MethodDelete, "/images/"+id+"?force=1", nil, nil); err != nil {
		t.Fatalf("removing v2 of %s: %v", r.ref, err)
	}
	repo, tag := r.ref[:strings.LastIndex(r.ref, ":")], "latest"
	q := url.Values{"repo": {repo}, "tag": {tag}}
	if err := e.call(http.MethodPost, "/images/"+r.v1ID+"/tag?"+q.Encode(), nil, nil); err != nil {
		t.Fatalf("tagging v1 of %s again: %v", r.ref, err)
	}
}

// e2eSnapshot is what monitor-only must leave untouched: containers and the images of the registry.
type e2eSnapshot struct {
	Containers []string // "name id state image imageID", sorted
	Images     []string // "id tags digests" of images referring to the registry, sorted
}

func e2eTakeSnapshot(t *testing.T, e *e2eEngine, prefix string, reg e2eReg) e2eSnapshot {
	t.Helper()
	var cs []struct {
		ID, Image, ImageID, State string
		Names                     []string
	}
	if err := e.call(http.MethodGet, "/containers/json?all=1", nil, &cs); err != nil {
		t.Fatal(err)
	}
	var snap e2eSnapshot
	for _, c := range cs {
		if len(c.Names) > 0 && strings.HasPrefix(c.Names[0], "/"+prefix) {
			snap.Containers = append(snap.Containers, strings.Join([]string{c.Names[0], c.ID, c.State, c.Image, c.ImageID}, " "))
		}
	}
	var imgs []struct {
		ID                    string `json:"Id"`
		RepoTags, RepoDigests []string
	}
	if err := e.call(http.MethodGet, "/images/json?all=1", nil, &imgs); err != nil {
		t.Fatal(err)
	}
	for _, im := range imgs {
		refs := strings.Join(append(slices.Sorted(slices.Values(im.RepoTags)), slices.Sorted(slices.Values(im.RepoDigests))...), ",")
		if strings.Contains(refs, reg.Host+"/") {
			snap.Images = append(snap.Images, im.ID+" "+refs)
		}
	}
	slices.Sort(snap.Containers)
	slices.Sort(snap.Images)
	return snap
}

// e2eRecord is one JSON log line of outpost.
type e2eRecord map[string]any

func (r e2eRecord) str(k string) string { s, _ := r[k].(string); return s }

func (r e2eRecord) num(k string) int {
	f, ok := r[k].(float64)
	if !ok {
		return -1
	}
	return int(f)
}

// e2eResult is one run of the binary.
type e2eResult struct {
	exit       int
	stdout     string
	stderr     string
	containers map[string]e2eRecord // "container" records by container name
	summary    e2eRecord            // the "session done" record
	wall       time.Duration
}

// e2eOutpostRun runs the binary with a clean environment plus env, and parses its JSON log.
func e2eOutpostRun(t *testing.T, bin string, e *e2eEngine, env []string, args ...string) e2eResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	for _, kv := range os.Environ() {
		// Settings of the person running the tests must not leak into the binary's configuration.
		if !strings.HasPrefix(kv, "DOCKER_") && !strings.HasPrefix(kv, "WATCHTOWER_") &&
			!strings.HasPrefix(kv, "OUTPOST_") && !strings.HasPrefix(kv, "REPO_") && !strings.HasPrefix(kv, "HOME=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "DOCKER_HOST=unix://"+e.socket, "HOME="+t.TempDir())
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	res := e2eResult{stdout: stdout.String(), stderr: stderr.String(), wall: time.Since(start), containers: map[string]e2eRecord{}}
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		res.exit = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("running outpost: %v", err)
	}
	sc := bufio.NewScanner(strings.NewReader(res.stderr))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec e2eRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("stderr line is not JSON: %q", sc.Text())
		}
		switch rec.str("msg") {
		case "container":
			name := rec.str("container")
			if _, dup := res.containers[name]; dup {
				t.Errorf("two container records for %s", name)
			}
			res.containers[name] = rec
		case "session done":
			if res.summary != nil {
				t.Errorf("two session summaries")
			}
			res.summary = rec
		}
	}
	if res.summary == nil {
		t.Fatalf("no session summary; exit %d; stderr:\n%s", res.exit, res.stderr)
	}
	return res
}

// e2eWant is the expected record of one container.
type e2eWant struct {
	image, state    string
	current, remote string // checked when not empty
}

// e2eCheck asserts exactly the wanted container records, and summary counts that agree with them.
func e2eCheck(t *testing.T, res e2eResult, want map[string]e2eWant) {
	t.Helper()
	for name, w := range want {
		rec, ok := res.containers[name]
		if !ok {
			t.Errorf("%s: no container record", name)
			continue
		}
		if rec.str("state") != w.state || rec.str("image") != w.image {
			t.Errorf("%s: state %q image %q, want %q %q (reason %q)", name, rec.str("state"), rec.str("image"), w.state, w.image, rec.str("reason"))
		}
		if w.current != "" && rec.str("current") != w.current {
			t.Errorf("%s: current %q, want %q", name, rec.str("current"), w.current)
		}
		if w.remote != "" && rec.str("remote") != w.remote {
			t.Errorf("%s: remote %q, want %q", name, rec.str("remote"), w.remote)
		}
		if (w.state == "skipped" || w.state == "failed") && rec.str("reason") == "" {
			t.Errorf("%s: %s without a reason", name, w.state)
		}
	}
	for name := range res.containers {
		if _, ok := want[name]; !ok {
			t.Errorf("unexpected container record for %s", name)
		}
	}
	counts := map[string]int{}
	for _, w := range want {
		counts[w.state]++
	}
	for k, n := range map[string]int{"scanned": len(want), "stale": counts["stale"], "skipped": counts["skipped"], "failed": counts["failed"]} {
		if got := res.summary.num(k); got != n {
			t.Errorf("summary %s = %d, want %d", k, got, n)
		}
	}
	if t.Failed() {
		t.Logf("outpost exit %d, stderr:\n%s", res.exit, e2eTail(res.stderr, 60))
	}
}

// e2eCheckCounters asserts one ping per registry and one HEAD per distinct reference.
func e2eCheckCounters(t *testing.T, res e2eResult, heads int) {
	t.Helper()
	if got := res.summary.num("registry_pings"); got != 1 {
		t.Errorf("registry_pings = %d, want 1", got)
	}
	if got := res.summary.num("registry_heads"); got != heads {
		t.Errorf("registry_heads = %d, want %d", got, heads)
	}
}

// e2eEmptyConfig is a DOCKER_CONFIG directory without credentials.
func e2eEmptyConfig(t *testing.T) string {
	return "DOCKER_CONFIG=" + t.TempDir()
}

func TestE2EMonitorOnlyPlain(t *testing.T) {
	e := e2eSetup(t)
	t.Parallel()
	bin := e2eOutpost(t)
	reg := e2eRegistry(t, e2eRegistryOpts{})
	prefix, ns := e2eNames(t)
	repos := map[string]*e2eRepo{}
	for _, n := range []string{"a", "b", "c"} {
		repos[n] = e2ePushV1(t, e, reg, ns+"/"+n, e2eAuth{})
	}
	a := repos["a"]
	pinned := strings.TrimSuffix(a.ref, ":latest") + "@" + a.v1
	runs := []struct{ name, image string }{
		{"a1", a.ref}, {"a2", a.ref}, {"b1", repos["b"].ref}, {"c1", repos["c"].ref},
		{"byid", a.v1ID}, {"pinned", pinned},
	}
	for _, r := range runs {
		e2eRun(t, e, prefix+r.name, r.image, nil)
	}
	e2eRun(t, e, prefix+"optout", a.ref, map[string]string{"com.centurylinklabs.watchtower.enable": "false"})
	e2ePushV2(t, e, repos["b"], e2eAuth{})
	before := e2eTakeSnapshot(t, e, prefix, reg)
	if len(before.Containers) != 7 || len(before.Images) != 3 {
		t.Fatalf("the engine does not hold what the test set up: %q", before)
	}

	res := e2eOutpostRun(t, bin, e, []string{e2eEmptyConfig(t)},
		"--run-once", "--monitor-only", "--log-format", "json", prefix+".*")

	if res.exit != 0 {
		t.Errorf("exit %d, want 0", res.exit)
	}
	want := map[string]e2eWant{
		prefix + "byid":   {image: a.v1ID, state: "skipped"},
		prefix + "pinned": {image: pinned, state: "skipped"},
	}
	for _, r := range runs[:4] {
		repo := repos[r.name[:1]]
		remote := e2eRemoteDigest(t, reg, repo.path, "latest", e2eAuth{})
		w := e2eWant{image: repo.ref, state: "fresh", current: repo.v1, remote: remote}
		if repo.stale {
			w.state = "stale"
			if remote != repo.v2 {
				t.Fatalf("registry has %s for %s, pushed %s", remote, repo.ref, repo.v2)
			}
		}
		want[prefix+r.name] = w
	}
	e2eCheck(t, res, want)
	e2eCheckCounters(t, res, 3)
	if after := e2eTakeSnapshot(t, e, prefix, reg); !slices.Equal(before.Containers, after.Containers) || !slices.Equal(before.Images, after.Images) {
		t.Errorf("monitor-only changed the engine:\nbefore %q\nafter  %q", before, after)
	}
}

// e2eTwoRepos pushes v1 of two repositories, runs a container on each and moves the second to
// v2: the records to expect are x fresh and y stale.
func e2eTwoRepos(t *testing.T, e *e2eEngine, reg e2eReg, auth e2eAuth) (string, map[string]e2eWant) {
	t.Helper()
	prefix, ns := e2eNames(t)
	x := e2ePushV1(t, e, reg, ns+"/x", auth)
	y := e2ePushV1(t, e, reg, ns+"/y", auth)
	e2eRun(t, e, prefix+"x", x.ref, nil)
	e2eRun(t, e, prefix+"y", y.ref, nil)
	e2ePushV2(t, e, y, auth)
	return prefix, map[string]e2eWant{
		prefix + "x": {image: x.ref, state: "fresh", current: x.v1, remote: e2eRemoteDigest(t, reg, x.path, "latest", auth)},
		prefix + "y": {image: y.ref, state: "stale", current: y.v1, remote: y.v2},
	}
}

func TestE2EMonitorOnlyBasicAuth(t *testing.T) {
	e := e2eSetup(t)
	t.Parallel()
	bin := e2eOutpost(t)
	reg := e2eRegistry(t, e2eRegistryOpts{Htpasswd: true})
	auth := e2eAuth{Username: e2eUser, Password: e2ePassword, ServerAddress: reg.Host}
	prefix, want := e2eTwoRepos(t, e, reg, auth)
	args := []string{"--run-once", "--monitor-only", "--log-format", "json", prefix + ".*"}

	cfgDir := t.TempDir()
	basic := base64.StdEncoding.EncodeToString([]byte(e2eUser + ":" + e2ePassword))
	cfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, reg.Host, basic)
	if err := os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Run("config.json", func(t *testing.T) {
		res := e2eOutpostRun(t, bin, e, []string{"DOCKER_CONFIG=" + cfgDir}, args...)
		if res.exit != 0 {
			t.Errorf("exit %d, want 0", res.exit)
		}
		e2eCheck(t, res, want)
		e2eCheckCounters(t, res, 2)
	})
	t.Run("REPO_USER", func(t *testing.T) {
		res := e2eOutpostRun(t, bin, e, []string{e2eEmptyConfig(t), "REPO_USER=" + e2eUser, "REPO_PASS=" + e2ePassword}, args...)
		if res.exit != 0 {
			t.Errorf("exit %d, want 0", res.exit)
		}
		e2eCheck(t, res, want)
		e2eCheckCounters(t, res, 2)
	})
	t.Run("wrong password", func(t *testing.T) {
		wrong := "wrong-" + e2ePassword
		res := e2eOutpostRun(t, bin, e, []string{e2eEmptyConfig(t), "REPO_USER=" + e2eUser, "REPO_PASS=" + wrong},
			append([]string{"--log-level", "trace"}, args...)...)
		if res.exit != 1 {
			t.Errorf("exit %d, want 1", res.exit)
		}
		e2eCheck(t, res, map[string]e2eWant{
			prefix + "x": {image: want[prefix+"x"].image, state: "failed"},
			prefix + "y": {image: want[prefix+"y"].image, state: "failed"},
		})
		out := res.stdout + res.stderr
		for _, secret := range []string{wrong, e2ePassword, base64.StdEncoding.EncodeToString([]byte(e2eUser + ":" + wrong))} {
			if strings.Contains(out, secret) {
				t.Errorf("the output contains the secret %q", secret)
			}
		}
	})
}

func TestE2EManyContainers(t *testing.T) {
	e := e2eSetup(t)
	t.Parallel()
	bin := e2eOutpost(t)
	reg := e2eRegistry(t, e2eRegistryOpts{})
	prefix, ns := e2eNames(t)
	want := map[string]e2eWant{}
	var repos []*e2eRepo
	for i := range 6 {
		repos = append(repos, e2ePushV1(t, e, reg, fmt.Sprintf("%s/r%d", ns, i), e2eAuth{}))
	}
	for i := range 24 {
		r := repos[i%6]
		name := fmt.Sprintf("%sc%02d", prefix, i)
		e2eRun(t, e, name, r.ref, nil)
		want[name] = e2eWant{image: r.ref, state: "fresh", current: r.v1, remote: r.v1}
	}
	for _, r := range repos[:2] {
		e2ePushV2(t, e, r, e2eAuth{})
	}
	for name, w := range want {
		for _, r := range repos[:2] {
			if w.image == r.ref {
				w.state, w.remote = "stale", r.v2
			}
		}
		want[name] = w
	}

	res := e2eOutpostRun(t, bin, e, []string{e2eEmptyConfig(t)}, "--run-once", "--monitor-only", "--log-format", "json", prefix+".*")

	if res.exit != 0 {
		t.Errorf("exit %d, want 0", res.exit)
	}
	e2eCheck(t, res, want)
	e2eCheckCounters(t, res, 6)
	t.Logf("24 containers, 6 repositories: outpost --run-once --monitor-only took %v (session %v); registry pings %d, heads %d, gets %d, tokens %d",
		res.wall.Round(time.Millisecond), res.summary.str("duration"), res.summary.num("registry_pings"),
		res.summary.num("registry_heads"), res.summary.num("registry_gets"), res.summary.num("registry_tokens"))
}
