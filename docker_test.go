package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
)

// recordedRegistry is the registry address in the recorded engine JSON; tests substitute theirs.
const recordedRegistry = "127.0.0.1:5000"

// fakeEngine is an httptest Docker engine answering from JSON recorded on a real Engine 20.10. It
// refuses API versions outside [minAPI, maxAPI] with the engine's own words.
type fakeEngine struct {
	*httptest.Server
	t              testing.TB
	minAPI, maxAPI string

	mu         sync.Mutex
	containers []container.InspectResponse
	images     map[string]image.InspectResponse
	requests   []string
	creates    []container.CreateRequest // bodies of POST /containers/create
	pullable   map[string]string         // "repo:tag" -> the image ID a pull makes it name
	nextID     int
}

func newFakeEngine(t testing.TB, minAPI, maxAPI string) *fakeEngine {
	e := &fakeEngine{t: t, minAPI: minAPI, maxAPI: maxAPI, images: map[string]image.InspectResponse{}, pullable: map[string]string{}}
	e.Server = httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(e.Close)
	return e
}

// host is the engine's address for --host.
func (e *fakeEngine) host() string { return "tcp://" + strings.TrimPrefix(e.URL, "http://") }

// readRecorded reads testdata/engine/<name>, putting registry where the recording had its own.
func readRecorded(t testing.TB, name, registry string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "engine", name))
	if err != nil {
		t.Fatal(err)
	}
	if registry != "" {
		b = []byte(strings.ReplaceAll(string(b), recordedRegistry, registry))
	}
	return b
}

// addRecorded adds a recorded container (testdata/engine/inspect/<name>.json) and its image.
func (e *fakeEngine) addRecorded(name, registry string) container.InspectResponse {
	var c container.InspectResponse
	if err := json.Unmarshal(readRecorded(e.t, "inspect/"+name+".json", registry), &c); err != nil {
		e.t.Fatal(err)
	}
	e.add(c)
	return c
}

// addRecordedImage adds a recorded image (testdata/engine/images/<name>.json).
func (e *fakeEngine) addRecordedImage(name, registry string) image.InspectResponse {
	var img image.InspectResponse
	if err := json.Unmarshal(readRecorded(e.t, "images/"+name+".json", registry), &img); err != nil {
		e.t.Fatal(err)
	}
	e.mu.Lock()
	e.images[img.ID] = img
	e.mu.Unlock()
	return img
}

func (e *fakeEngine) add(c container.InspectResponse) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.containers = append(e.containers, c)
}

func (e *fakeEngine) count(prefix string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return countPrefix(e.requests, prefix)
}

// countPrefix counts the recorded requests ("METHOD /path") that start with prefix.
func countPrefix(requests []string, prefix string) int {
	n := 0
	for _, r := range requests {
		if strings.HasPrefix(r, prefix) {
			n++
		}
	}
	return n
}

func engineJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func engineMessage(w http.ResponseWriter, status int, format string, a ...any) {
	engineJSON(w, status, map[string]string{"message": fmt.Sprintf(format, a...)})
}

func (e *fakeEngine) serve(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.requests = append(e.requests, r.Method+" "+r.URL.Path)
	e.mu.Unlock()
	w.Header().Set("Api-Version", e.maxAPI)
	w.Header().Set("Server", "Docker/test (linux)")
	if r.URL.Path == "/_ping" {
		w.Write([]byte("OK"))
		return
	}
	ver, path, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v"), "/")
	if !ok {
		engineMessage(w, http.StatusNotFound, "page not found")
		return
	}
	if versionLess(ver, e.minAPI) {
		engineMessage(w, http.StatusBadRequest, "client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", ver, e.minAPI)
		return
	}
	if versionLess(e.maxAPI, ver) {
		engineMessage(w, http.StatusBadRequest, "client version %s is too new. Maximum supported API version is %s", ver, e.maxAPI)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch parts := strings.Split(path, "/"); {
	case r.Method == http.MethodGet && path == "version":
		engineJSON(w, http.StatusOK, map[string]string{"Version": "test", "ApiVersion": e.maxAPI, "MinAPIVersion": e.minAPI, "Os": "linux", "Arch": "amd64"})
	case r.Method == http.MethodGet && path == "containers/json":
		e.list(w, r)
	case r.Method == http.MethodGet && len(parts) == 3 && parts[0] == "containers" && parts[2] == "json":
		for _, c := range e.containers {
			if c.ID == parts[1] || c.Name == "/"+parts[1] {
				engineJSON(w, http.StatusOK, c)
				return
			}
		}
		engineMessage(w, http.StatusNotFound, "No such container: %s", parts[1])
	case r.Method == http.MethodGet && len(parts) >= 3 && parts[0] == "images" && parts[len(parts)-1] == "json":
		name, _ := url.PathUnescape(strings.Join(parts[1:len(parts)-1], "/"))
		if img, ok := e.imageByRef(name); ok {
			engineJSON(w, http.StatusOK, img)
			return
		}
		engineMessage(w, http.StatusNotFound, "No such image: %s", name)
	default:
		if !e.mutate(w, r, ver, parts) {
			engineMessage(w, http.StatusNotImplemented, "the fake engine does not serve %s %s", r.Method, path)
		}
	}
}

// find returns the index of a container by ID or name, or -1.
func (e *fakeEngine) find(ref string) int {
	for i, c := range e.containers {
		if c.ID == ref || c.Name == "/"+ref {
			return i
		}
	}
	return -1
}

// mutate serves the calls that change containers and images, as the engine answers them.
func (e *fakeEngine) mutate(w http.ResponseWriter, r *http.Request, ver string, parts []string) bool {
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodPost && len(parts) == 2 && parts[0] == "containers" && parts[1] == "create":
		var body container.CreateRequest
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			engineMessage(w, http.StatusBadRequest, "invalid JSON: %v", err)
			return true
		}
		e.creates = append(e.creates, body)
		name := q.Get("name")
		if e.find(name) >= 0 {
			engineMessage(w, http.StatusConflict, "Conflict. The container name \"/%s\" is already in use", name)
			return true
		}
		if body.NetworkingConfig != nil && len(body.NetworkingConfig.EndpointsConfig) > 1 && versionLess(ver, "1.44") {
			engineMessage(w, http.StatusBadRequest, "Container cannot be connected to network endpoints: %d", len(body.NetworkingConfig.EndpointsConfig))
			return true
		}
		img, ok := e.imageByRef(body.Config.Image)
		if !ok {
			engineMessage(w, http.StatusNotFound, "No such image: %s", body.Config.Image)
			return true
		}
		e.nextID++
		c := container.InspectResponse{
			ContainerJSONBase: &container.ContainerJSONBase{ID: fmt.Sprintf("%064x", 0xfeed0000+e.nextID), Name: "/" + name, Image: img.ID, HostConfig: body.HostConfig, State: &container.State{Status: "created"}},
			Config:            body.Config,
			NetworkSettings:   &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{}},
		}
		if body.NetworkingConfig != nil {
			for n, ep := range body.NetworkingConfig.EndpointsConfig {
				c.NetworkSettings.Networks[n] = ep
			}
		}
		e.containers = append(e.containers, c)
		engineJSON(w, http.StatusCreated, container.CreateResponse{ID: c.ID})
	case r.Method == http.MethodPost && len(parts) == 3 && parts[0] == "networks" && parts[2] == "connect":
		var body network.ConnectOptions
		json.NewDecoder(r.Body).Decode(&body)
		i := e.find(body.Container)
		if i < 0 {
			engineMessage(w, http.StatusNotFound, "No such container: %s", body.Container)
			return true
		}
		e.containers[i].NetworkSettings.Networks[parts[1]] = body.EndpointConfig
		w.WriteHeader(http.StatusOK)
	case r.Method == http.MethodPost && len(parts) == 3 && parts[0] == "containers":
		i := e.find(parts[1])
		if i < 0 {
			engineMessage(w, http.StatusNotFound, "No such container: %s", parts[1])
			return true
		}
		c := &e.containers[i]
		switch parts[2] {
		case "start":
			if c.State.Running {
				w.WriteHeader(http.StatusNotModified)
				return true
			}
			c.State = &container.State{Status: "running", Running: true}
		case "stop", "kill":
			if !c.State.Running {
				w.WriteHeader(http.StatusNotModified)
				return true
			}
			c.State = &container.State{Status: "exited"}
		case "wait":
			engineJSON(w, http.StatusOK, map[string]int{"StatusCode": 0})
			return true
		case "rename":
			if e.find(q.Get("name")) >= 0 {
				engineMessage(w, http.StatusConflict, "Conflict. The container name \"/%s\" is already in use", q.Get("name"))
				return true
			}
			c.Name = "/" + q.Get("name")
		default:
			return false
		}
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodDelete && len(parts) == 2 && parts[0] == "containers":
		i := e.find(parts[1])
		if i < 0 {
			engineMessage(w, http.StatusNotFound, "No such container: %s", parts[1])
			return true
		}
		e.containers = append(e.containers[:i], e.containers[i+1:]...)
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodPost && len(parts) == 2 && parts[0] == "images" && parts[1] == "create":
		ref := q.Get("fromImage") + ":" + q.Get("tag")
		w.Header().Set("Content-Type", "application/json")
		id, ok := e.pullable[ref]
		if !ok {
			fmt.Fprintf(w, `{"status":"Pulling from %s"}`+"\n"+`{"errorDetail":{"message":"manifest for %s not found"},"error":"manifest for %s not found"}`+"\n", ref, ref, ref)
			return true
		}
		img := e.images[id]
		img.RepoTags = append(img.RepoTags, ref)
		e.images[id] = img
		for oid, o := range e.images { // the tag leaves the image it named before
			if oid != id {
				o.RepoTags = slices.DeleteFunc(o.RepoTags, func(t string) bool { return t == ref })
				e.images[oid] = o
			}
		}
		fmt.Fprintf(w, `{"status":"Pulling from %s"}`+"\n"+`{"status":"Status: Downloaded newer image for %s"}`+"\n", ref, ref)
	default:
		return false
	}
	return true
}

// imageByRef finds an image by ID or by one of its tags, as the engine resolves names.
func (e *fakeEngine) imageByRef(ref string) (image.InspectResponse, bool) {
	if img, ok := e.images[ref]; ok {
		return img, true
	}
	want, err := parseReference(ref)
	if err != nil {
		return image.InspectResponse{}, false
	}
	for _, img := range e.images {
		for _, t := range img.RepoTags {
			if r, err := parseReference(t); err == nil && r.String() == want.String() {
				return img, true
			}
		}
	}
	return image.InspectResponse{}, false
}

// list answers GET /containers/json with the status filter applied, as the engine does.
func (e *fakeEngine) list(w http.ResponseWriter, r *http.Request) {
	var filters map[string][]string
	if f := r.URL.Query().Get("filters"); f != "" {
		if err := json.Unmarshal([]byte(f), &filters); err != nil {
			engineMessage(w, http.StatusBadRequest, "invalid filter: %v", err)
			return
		}
	}
	out := []container.Summary{}
	for _, c := range e.containers {
		if st := filters["status"]; len(st) > 0 && !slices.Contains(st, string(c.State.Status)) {
			continue
		}
		if r.URL.Query().Get("all") != "1" && c.State.Status != "running" {
			continue
		}
		out = append(out, container.Summary{
			ID: c.ID, Names: []string{c.Name}, Image: c.Config.Image, ImageID: c.Image,
			Labels: c.Config.Labels, State: string(c.State.Status),
		})
	}
	engineJSON(w, http.StatusOK, out)
}

func TestNegotiateVersion(t *testing.T) {
	for _, tt := range []struct{ engine, pinned, want string }{
		{"1.41", "", "1.41"},
		{"1.52", "", maxAPIVersion},
		{maxAPIVersion, "", maxAPIVersion},
		{"", "", "1.24"},
		{"1.52", "1.44", "1.44"},
	} {
		if got := negotiate(tt.engine, tt.pinned); got != tt.want {
			t.Errorf("negotiate(%q, %q) = %s, want %s", tt.engine, tt.pinned, got, tt.want)
		}
	}
}

func TestEngineVersions(t *testing.T) {
	ctx := context.Background()
	t.Run("engine 20.10 speaks 1.41", func(t *testing.T) {
		e := newFakeEngine(t, "1.12", "1.41")
		eng, err := dialEngine(ctx, engineOptions{host: e.host()})
		if err != nil {
			t.Fatal(err)
		}
		if eng.version != "1.41" {
			t.Fatalf("version %s, want the engine's 1.41", eng.version)
		}
		if _, err := eng.listContainers(ctx, []string{"running"}); err != nil {
			t.Fatal(err)
		}
		if e.count("GET /v1.41/containers/json") != 1 || e.count("GET /_ping") != 1 {
			t.Fatalf("requests %q", e.requests)
		}
	})
	t.Run("engine 29 refuses below 1.44; negotiation works", func(t *testing.T) {
		e := newFakeEngine(t, "1.44", "1.52")
		eng, err := dialEngine(ctx, engineOptions{host: e.host()})
		if err != nil {
			t.Fatal(err)
		}
		if eng.version != maxAPIVersion {
			t.Fatalf("version %s, want ours %s", eng.version, maxAPIVersion)
		}
		if _, err := eng.listContainers(ctx, []string{"running"}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("pinned too old for engine 29 shows the engine's message", func(t *testing.T) {
		e := newFakeEngine(t, "1.44", "1.52")
		_, err := dialEngine(ctx, engineOptions{host: e.host(), apiVersion: "1.41"})
		if err == nil || !strings.Contains(err.Error(), "client version 1.41 is too old. Minimum supported API version is 1.44") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("pinned version is used", func(t *testing.T) {
		e := newFakeEngine(t, "1.12", "1.41")
		eng, err := dialEngine(ctx, engineOptions{host: e.host(), apiVersion: "1.30"})
		if err != nil || eng.version != "1.30" || e.count("GET /v1.30/version") != 1 {
			t.Fatalf("pinned: %v %+v %q", err, eng, e.requests)
		}
	})
	t.Run("pinned too new", func(t *testing.T) {
		e := newFakeEngine(t, "1.12", "1.41")
		_, err := dialEngine(ctx, engineOptions{host: e.host(), apiVersion: "1.99"})
		if err == nil || !strings.Contains(err.Error(), "client version 1.99 is too new") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestEngineErrorsCarryEngineMessage(t *testing.T) {
	e := newFakeEngine(t, "1.12", "1.41")
	eng, err := dialEngine(context.Background(), engineOptions{host: e.host()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = eng.inspectContainer(context.Background(), "nosuch")
	if err == nil || err.Error() != "inspect container nosuch: No such container: nosuch" {
		t.Fatalf("got %v", err)
	}
}

func TestEngineUnreachable(t *testing.T) {
	dir := t.TempDir()
	notSocket := filepath.Join(dir, "regular-file")
	os.WriteFile(notSocket, nil, 0o600)
	for _, tt := range []struct {
		host, want string
	}{
		{"unix://" + filepath.Join(dir, "none.sock"), "no socket at that path"},
		{"tcp://127.0.0.1:1", "connection refused"},
		{"unix://" + notSocket, "is not a socket"},
	} {
		_, err := dialEngine(context.Background(), engineOptions{host: tt.host})
		if err == nil || !strings.Contains(err.Error(), tt.host) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v", tt.host, err)
		}
	}
	if os.Geteuid() == 0 {
		t.Log("running as root, which any socket admits: the permission case is not exercised")
		return
	}
	sock := filepath.Join(dir, "locked.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	os.Chmod(sock, 0)
	_, err = dialEngine(context.Background(), engineOptions{host: "unix://" + sock})
	if err == nil || !strings.Contains(err.Error(), "docker group") {
		t.Errorf("permission: %v", err)
	}
}

func TestEngineTLSNeedsCertificates(t *testing.T) {
	_, err := dialEngine(context.Background(), engineOptions{host: "tcp://127.0.0.1:1", tlsVerify: true, certPath: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "DOCKER_CERT_PATH") {
		t.Fatalf("got %v", err)
	}
}
