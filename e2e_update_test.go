// e2e_update_test.go owns the end-to-end tests of update mode: the real outpost binary replaces
// containers on a real Docker Engine from images on Debian's docker-registry, and every test asserts
// on what the engine holds afterwards (inspect, lists, events), not only on outpost's log. Like the
// other e2e tests they run only with OUTPOST_E2E=1.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
)

// e2euShSource is a tiny static stand-in for /bin/sh: the images are FROM scratch, and lifecycle
// hooks and health checks run `sh -c CMD`. It knows just the commands these tests use.
const e2euShSource = `package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

func main() {
	if len(os.Args) != 3 || os.Args[1] != "-c" {
		fmt.Fprintln(os.Stderr, "usage: sh -c 'true | exit N | touch PATH [&& ...]'")
		os.Exit(2)
	}
	for _, part := range strings.Split(os.Args[2], "&&") {
		f := strings.Fields(part)
		switch {
		case len(f) == 1 && f[0] == "true":
		case len(f) == 2 && f[0] == "exit":
			n, err := strconv.Atoi(f[1])
			if err != nil {
				os.Exit(2)
			}
			os.Exit(n)
		case len(f) == 2 && f[0] == "touch":
			os.MkdirAll(filepath.Dir(f[1]), 0o755)
			if err := os.WriteFile(f[1], nil, 0o644); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		default:
			fmt.Fprintln(os.Stderr, "sh: unsupported command:", part)
			os.Exit(127)
		}
	}
}
`

var e2euSh struct {
	once sync.Once
	bin  []byte
	err  error
}

// e2euShBinary builds the stand-in shell once per test run.
func e2euShBinary(t *testing.T) []byte {
	t.Helper()
	e2euSh.once.Do(func() {
		dir, err := os.MkdirTemp("", "outpost-e2eu-sh-")
		if err != nil {
			e2euSh.err = err
			return
		}
		defer os.RemoveAll(dir)
		for name, data := range map[string]string{"go.mod": "module e2esh\n\ngo 1.22\n", "main.go": e2euShSource} {
			if e2euSh.err = os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); e2euSh.err != nil {
				return
			}
		}
		cmd := exec.Command("go", "build", "-trimpath", "-o", "sh", ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH, "GOFLAGS=-buildvcs=false")
		if msg, err := cmd.CombinedOutput(); err != nil {
			e2euSh.err = fmt.Errorf("go build sh: %v\n%s", err, msg)
			return
		}
		e2euSh.bin, e2euSh.err = os.ReadFile(filepath.Join(dir, "sh"))
	})
	if e2euSh.err != nil {
		t.Fatal(e2euSh.err)
	}
	return e2euSh.bin
}

// e2euBuild builds a FROM scratch image of testdata/app plus the stand-in /bin/sh, with extra
// Dockerfile lines (ENV, LABEL, HEALTHCHECK...) that e2eBuildImage cannot take. It returns the ID.
func e2euBuild(t *testing.T, e *e2eEngine, tag, buildID, extra string) string {
	t.Helper()
	e2eBuildBinaries(t)
	sh := e2euShBinary(t)
	dockerfile := fmt.Sprintf("FROM scratch\nCOPY app /app\nCOPY sh /bin/sh\nLABEL build=%q\nENTRYPOINT [\"/app\"]\n%s\n", buildID, extra)
	return e2eBuild(t, e, tag, e2eFile{"Dockerfile", 0o644, []byte(dockerfile)}, e2eFile{"app", 0o755, e2eBinaries.app}, e2eFile{"sh", 0o755, sh})
}

// e2euRepo is one repository whose versions the test builds and pushes one after the other.
type e2euRepo struct {
	ref     string   // host/namespace/name:latest
	path    string   // namespace/name
	ids     []string // image ID of v1, v2, ...
	digests []string // registry digest of v1, v2, ...
}

func (r *e2euRepo) newest() string { return r.ids[len(r.ids)-1] }

// e2euNewRepo builds and pushes v1 and leaves it tagged locally, for containers to run.
func e2euNewRepo(t *testing.T, e *e2eEngine, reg e2eReg, path, extra string) *e2euRepo {
	t.Helper()
	r := &e2euRepo{ref: reg.Host + "/" + path + ":latest", path: path}
	r.ids = append(r.ids, e2euBuild(t, e, r.ref, path+"-v1", extra))
	r.digests = append(r.digests, e2ePush(t, e, r.ref, e2eAuth{}))
	return r
}

// push builds and pushes the next version, then removes it locally and gives the tag back to the
// image it named before: only the registry moves on, so whatever the engine holds of the new
// version afterwards was pulled by outpost.
func (r *e2euRepo) push(t *testing.T, e *e2eEngine, extra string) {
	t.Helper()
	var before struct{ ID string }
	hadTag := e.call(http.MethodGet, "/images/"+r.ref+"/json", nil, &before) == nil
	id := e2euBuild(t, e, r.ref, fmt.Sprintf("%s-v%d", r.path, len(r.ids)+1), extra)
	r.ids = append(r.ids, id)
	r.digests = append(r.digests, e2ePush(t, e, r.ref, e2eAuth{}))
	if err := e.call(http.MethodDelete, "/images/"+id+"?force=1", nil, nil); err != nil {
		t.Fatalf("removing the new version of %s locally: %v", r.ref, err)
	}
	if hadTag {
		q := url.Values{"repo": {strings.TrimSuffix(r.ref, ":latest")}, "tag": {"latest"}}
		if err := e.call(http.MethodPost, "/images/"+before.ID+"/tag?"+q.Encode(), nil, nil); err != nil {
			t.Fatalf("tagging %s again: %v", r.ref, err)
		}
	}
}

// e2euCleanImages removes, at the end of the test, every image that refers to the test's registry
// (built or pulled). Call it before creating containers: cleanups run last-in first-out.
func e2euCleanImages(t *testing.T, e *e2eEngine, reg e2eReg) {
	t.Cleanup(func() {
		var imgs []struct {
			ID                    string `json:"Id"`
			RepoTags, RepoDigests []string
		}
		if err := e.call(http.MethodGet, "/images/json?all=1", nil, &imgs); err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		for _, im := range imgs {
			if strings.Contains(strings.Join(append(im.RepoTags, im.RepoDigests...), ","), reg.Host+"/") {
				if err := e.call(http.MethodDelete, "/images/"+im.ID+"?force=1", nil, nil); err != nil && !strings.Contains(err.Error(), "404") {
					t.Errorf("cleanup: %v", err)
				}
			}
		}
	})
}

// e2euCreate creates a container from a full create body and starts it unless start is false.
// Cleanup removes whatever then has the name or an aside name, with anonymous volumes.
func e2euCreate(t *testing.T, e *e2eEngine, name string, body map[string]any, start bool) string {
	t.Helper()
	var created struct{ ID string }
	if err := e.call(http.MethodPost, "/containers/create?name="+url.QueryEscape(name), body, &created); err != nil {
		t.Fatalf("creating %s: %v", name, err)
	}
	t.Cleanup(func() {
		for _, n := range []string{name, name + "_outpost-old", name + "_outpost-old-stopped"} {
			err := e.call(http.MethodDelete, "/containers/"+url.PathEscape(n)+"?force=1&v=1", nil, nil)
			if err != nil && !strings.Contains(err.Error(), "404") {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	if start {
		e2euStart(t, e, created.ID)
	}
	return created.ID
}

func e2euStart(t *testing.T, e *e2eEngine, id string) {
	t.Helper()
	if err := e.call(http.MethodPost, "/containers/"+id+"/start", nil, nil); err != nil {
		t.Fatalf("starting %s: %v", id, err)
	}
}

func e2euInspect(t *testing.T, e *e2eEngine, name string) container.InspectResponse {
	t.Helper()
	var c container.InspectResponse
	if err := e.call(http.MethodGet, "/containers/"+url.PathEscape(name)+"/json", nil, &c); err != nil {
		t.Fatalf("inspecting %s: %v", name, err)
	}
	return c
}

// e2euListed is one container of the engine's list.
type e2euListed struct {
	Name, ID, State, ImageID string
}

// e2euList lists every container (any state) whose name starts with prefix, sorted by name.
func e2euList(t *testing.T, e *e2eEngine, prefix string) []e2euListed {
	t.Helper()
	var raw []struct {
		ID      string `json:"Id"`
		ImageID string
		State   string
		Names   []string
	}
	if err := e.call(http.MethodGet, "/containers/json?all=1", nil, &raw); err != nil {
		t.Fatal(err)
	}
	var out []e2euListed
	for _, c := range raw {
		if len(c.Names) > 0 && strings.HasPrefix(c.Names[0], "/"+prefix) {
			out = append(out, e2euListed{Name: strings.TrimPrefix(c.Names[0], "/"), ID: c.ID, State: c.State, ImageID: c.ImageID})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// e2euNoAside fails when any container of the test still has an aside name.
func e2euNoAside(t *testing.T, e *e2eEngine, prefix string) {
	t.Helper()
	for _, c := range e2euList(t, e, prefix) {
		if strings.Contains(c.Name, "_outpost-old") {
			t.Errorf("aside container left behind: %s (%s)", c.Name, c.State)
		}
	}
}

// e2euArgs are the arguments of an updating run limited to the test's containers.
func e2euArgs(t *testing.T, stateFile, prefix string, extra ...string) []string {
	args := []string{"--run-once", "--log-format", "json", "--state-file", stateFile, "--settle-time", "1"}
	return append(append(args, extra...), prefix+".*")
}

// e2euRunLock serializes this file's runs of the binary: a session recovers every aside copy on the
// engine, including one another session has just made (see TestE2EUpdateRecoveryKeepsToItsScope),
// so concurrent runs would break each other's replacements. Setup still runs in parallel.
var e2euRunLock sync.Mutex

// e2euOutpostRun is e2eOutpostRun under e2euRunLock.
func e2euOutpostRun(t *testing.T, bin string, e *e2eEngine, env []string, args ...string) e2eResult {
	t.Helper()
	e2euRunLock.Lock()
	defer e2euRunLock.Unlock()
	return e2eOutpostRun(t, bin, e, env, args...)
}

// e2euRecordState asserts one container record's state and returns it.
func e2euRecordState(t *testing.T, res e2eResult, name, state string) e2eRecord {
	t.Helper()
	rec, ok := res.containers[name]
	if !ok {
		t.Errorf("%s: no container record", name)
		return e2eRecord{}
	}
	if rec.str("state") != state {
		t.Errorf("%s: state %q, want %q (reason %q)", name, rec.str("state"), state, rec.str("reason"))
	}
	return rec
}

// e2euExit asserts the exit status and shows the log when anything failed so far.
func e2euExit(t *testing.T, res e2eResult, want int) {
	t.Helper()
	if res.exit != want {
		t.Errorf("exit %d, want %d", res.exit, want)
	}
	if t.Failed() {
		t.Logf("outpost exit %d, stderr:\n%s", res.exit, e2eTail(res.stderr, 60))
	}
}

// e2euEvent is one engine event.
type e2euEvent struct {
	Type, Action string
	Actor        struct {
		ID         string
		Attributes map[string]string
	}
	TimeNano int64 `json:"timeNano"`
}

// e2euEvents returns the engine's events between since and until that match filters.
func e2euEvents(t *testing.T, e *e2eEngine, since, until time.Time, filters map[string][]string) []e2euEvent {
	t.Helper()
	f, err := json.Marshal(filters)
	if err != nil {
		t.Fatal(err)
	}
	q := url.Values{
		"since":   {fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond())},
		"until":   {fmt.Sprintf("%d.%09d", until.Unix(), until.Nanosecond())},
		"filters": {string(f)},
	}
	resp, err := e.do(http.MethodGet, "/events?"+q.Encode(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []e2euEvent
	dec := json.NewDecoder(resp.Body)
	for {
		var ev e2euEvent
		if err := dec.Decode(&ev); err == io.EOF {
			return out
		} else if err != nil {
			t.Fatalf("reading events: %v", err)
		}
		out = append(out, ev)
	}
}

func TestE2EUpdateReplaces(t *testing.T) {
	e := e2eSetup(t)
	t.Parallel()
	bin := e2eOutpost(t)
	reg := e2eRegistry(t, e2eRegistryOpts{})
	e2euCleanImages(t, e, reg)
	prefix, ns := e2eNames(t)
	names := []string{"a", "b", "c"}
	repos := map[string]*e2euRepo{}
	before := map[string]string{}
	for _, n := range names {
		repos[n] = e2euNewRepo(t, e, reg, ns+"/"+n, "")
		before[n] = e2euCreate(t, e, prefix+n, map[string]any{"Image": repos[n].ref}, true)
	}
	repos["a"].push(t, e, "")
	repos["b"].push(t, e, "")

	res := e2euOutpostRun(t, bin, e, []string{e2eEmptyConfig(t)}, e2euArgs(t, filepath.Join(t.TempDir(), "state.json"), prefix)...)

	for _, n := range []string{"a", "b"} {
		r := repos[n]
		rec := e2euRecordState(t, res, prefix+n, "updated")
		if rec.str("old_image") != r.ids[0] || rec.str("new_image") != r.ids[1] {
			t.Errorf("%s: old_image %q new_image %q, want %s %s", n, rec.str("old_image"), rec.str("new_image"), r.ids[0], r.ids[1])
		}
		c := e2euInspect(t, e, prefix+n)
		if c.ID == before[n] {
			t.Errorf("%s: still the same container %s", n, c.ID)
		}
		if c.Image != r.ids[1] {
			t.Errorf("%s: runs image %s, want the pushed v2 %s", n, c.Image, r.ids[1])
		}
		if c.Config.Image != r.ref || c.Name != "/"+prefix+n || c.State == nil || !c.State.Running {
			t.Errorf("%s: name %q image %q state %+v, want %q %q running", n, c.Name, c.Config.Image, c.State, "/"+prefix+n, r.ref)
		}
		var img struct{ RepoDigests []string }
		if err := e.call(http.MethodGet, "/images/"+c.Image+"/json", nil, &img); err != nil {
			t.Fatal(err)
		}
		if want := strings.TrimSuffix(r.ref, ":latest") + "@" + r.digests[1]; !slices.Contains(img.RepoDigests, want) {
			t.Errorf("%s: the new image's RepoDigests %q lack the pushed %s", n, img.RepoDigests, want)
		}
	}
	e2euRecordState(t, res, prefix+"c", "fresh")
	if c := e2euInspect(t, e, prefix+"c"); c.ID != before["c"] || c.Image != repos["c"].ids[0] || !c.State.Running {
		t.Errorf("c: container %s image %s running %v, want untouched %s %s", c.ID, c.Image, c.State.Running, before["c"], repos["c"].ids[0])
	}
	if got := len(e2euList(t, e, prefix)); got != 3 {
		t.Errorf("%d containers with the test's prefix, want 3", got)
	}
	e2euNoAside(t, e, prefix)
	if res.summary.num("updated") != 2 || res.summary.num("rolled_back") != 0 {
		t.Errorf("summary updated %d rolled_back %d, want 2 0", res.summary.num("updated"), res.summary.num("rolled_back"))
	}
	e2euExit(t, res, 0)
}

// e2euFreePort finds a free loopback TCP port for a published port.
func e2euFreePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// e2euNetwork creates a user-defined bridge network with a /24 of its own and returns the subnet's
// first three octets; cleanup removes it after the containers (register it before them).
func e2euNetwork(t *testing.T, e *e2eEngine, name string) string {
	t.Helper()
	var lastErr error
	for range 10 {
		base := fmt.Sprintf("10.%d.%d", 200+rand.IntN(50), rand.IntN(256))
		body := map[string]any{"Name": name, "Driver": "bridge", "CheckDuplicate": true,
			"IPAM": map[string]any{"Config": []map[string]string{{"Subnet": base + ".0/24", "Gateway": base + ".1"}}}}
		if lastErr = e.call(http.MethodPost, "/networks/create", body, nil); lastErr == nil {
			t.Cleanup(func() {
				if err := e.call(http.MethodDelete, "/networks/"+name, nil, nil); err != nil && !strings.Contains(err.Error(), "404") {
					t.Errorf("cleanup: %v", err)
				}
			})
			return base
		}
	}
	t.Fatalf("creating network %s: %v", name, lastErr)
	return ""
}

// e2euEnvValues returns every value the environment gives key (more than one = accumulation).
func e2euEnvValues(env []string, key string) []string {
	var vs []string
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); k == key {
			vs = append(vs, v)
		}
	}
	return vs
}

// e2euFidelity renders every user-set field of the fidelity container, so that an original and its
// successors can be compared field by field. Image-owned values (the build label, the changed ENV
// default) are left out here and checked separately.
func e2euFidelity(c container.InspectResponse, nets []string) map[string]string {
	hc := c.HostConfig
	f := map[string]string{}
	var keys []string
	for _, kv := range c.Config.Env {
		k, _, _ := strings.Cut(kv, "=")
		keys = append(keys, k)
	}
	sort.Strings(keys)
	f["env keys"] = strings.Join(keys, ",")
	for _, k := range []string{"USER_VAR", "DEF_KEEP", "APP_MODE", "APP_ADDR"} {
		f["env "+k] = strings.Join(e2euEnvValues(c.Config.Env, k), "|")
	}
	f["cmd"] = strings.Join(c.Config.Cmd, " ")
	f["entrypoint"] = strings.Join(c.Config.Entrypoint, " ")
	f["user"] = c.Config.User
	f["workdir"] = c.Config.WorkingDir
	f["hostname"] = c.Config.Hostname
	f["ports"] = fmt.Sprint(hc.PortBindings)
	var mounts []string
	for _, m := range c.Mounts {
		src := m.Name
		if src == "" {
			src = m.Source
		}
		mounts = append(mounts, fmt.Sprintf("%s:%s:%s:rw=%v", m.Type, src, m.Destination, m.RW))
	}
	sort.Strings(mounts)
	f["mounts"] = strings.Join(mounts, " ")
	f["tmpfs"] = fmt.Sprint(hc.Tmpfs)
	f["restart"] = fmt.Sprintf("%s/%d", hc.RestartPolicy.Name, hc.RestartPolicy.MaximumRetryCount)
	f["network mode"] = string(hc.NetworkMode)
	var netNames []string
	for n := range c.NetworkSettings.Networks {
		netNames = append(netNames, n)
	}
	sort.Strings(netNames)
	f["networks"] = strings.Join(netNames, ",")
	for i, n := range nets {
		ep := c.NetworkSettings.Networks[n]
		if ep == nil {
			f[fmt.Sprintf("net%d aliases", i+1)] = "(not connected)"
			continue
		}
		var aliases []string
		for _, a := range ep.Aliases {
			if a != c.ID[:12] { // the engine adds the container's own short ID
				aliases = append(aliases, a)
			}
		}
		sort.Strings(aliases)
		f[fmt.Sprintf("net%d aliases", i+1)] = strings.Join(aliases, ",")
		ip := ""
		if ep.IPAMConfig != nil {
			ip = ep.IPAMConfig.IPv4Address
		}
		f[fmt.Sprintf("net%d static ip", i+1)] = ip + " (has " + ep.IPAddress + ")"
	}
	var labels []string
	for k, v := range c.Config.Labels {
		if k != "build" && k != "fid.version" {
			labels = append(labels, k+"="+v)
		}
	}
	sort.Strings(labels)
	f["labels"] = strings.Join(labels, ",")
	f["memory"] = fmt.Sprint(hc.Memory)
	f["nano cpus"] = fmt.Sprint(hc.NanoCPUs)
	f["cap add"] = strings.Join(hc.CapAdd, ",")
	f["log config"] = fmt.Sprint(hc.LogConfig.Type, hc.LogConfig.Config)
	f["extra hosts"] = strings.Join(hc.ExtraHosts, ",")
	f["dns"] = strings.Join(hc.DNS, ",")
	if h := c.Config.Healthcheck; h != nil {
		f["healthcheck"] = fmt.Sprintf("%q every %v timeout %v retries %d", h.Test, h.Interval, h.Timeout, h.Retries)
	}
	return f
}

func TestE2EUpdateFidelity(t *testing.T) {
	e := e2eSetup(t)
	t.Parallel()
	bin := e2eOutpost(t)
	reg := e2eRegistry(t, e2eRegistryOpts{})
	e2euCleanImages(t, e, reg)
	prefix, ns := e2eNames(t)
	imageLines := func(v int) string {
		return fmt.Sprintf("ENV DEF_KEEP=same DEF_CHANGE=v%d\nLABEL fid.version=v%d", v, v)
	}
	repo := e2euNewRepo(t, e, reg, ns+"/fid", imageLines(1))

	nets := []string{prefix + "n1", prefix + "n2"}
	base1 := e2euNetwork(t, e, nets[0])
	e2euNetwork(t, e, nets[1])
	vol := prefix + "vol"
	if err := e.call(http.MethodPost, "/volumes/create", map[string]any{"Name": vol}, nil); err != nil {
		t.Fatal(err)
	}
	var anonVolume string // the anonymous volume outlives the container: outpost hands it on
	t.Cleanup(func() {
		for _, v := range []string{vol, anonVolume} {
			if v == "" {
				continue
			}
			if err := e.call(http.MethodDelete, "/volumes/"+v+"?force=1", nil, nil); err != nil && !strings.Contains(err.Error(), "404") {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	bindDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(bindDir, "bound"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	port := e2euFreePort(t)
	staticIP := base1 + ".10"
	full := map[string]any{
		"Image":        repo.ref,
		"Hostname":     "fid-host",
		"Env":          []string{"DEF_KEEP=same", "USER_VAR=hello", "APP_MODE=serve", "APP_ADDR=:8080"},
		"Cmd":          []string{"user-arg-1", "user-arg-2"},
		"User":         "1000:1000",
		"WorkingDir":   "/work",
		"ExposedPorts": map[string]any{"8080/tcp": map[string]any{}},
		"Volumes":      map[string]any{"/anon": map[string]any{}},
		"Labels":       map[string]string{"fid.user": "u1", "fid.other": "u2"},
		"Healthcheck": map[string]any{"Test": []string{"CMD", "/bin/sh", "-c", "exit 0"},
			"Interval": int64(time.Second), "Timeout": int64(2 * time.Second), "Retries": 2},
		"HostConfig": map[string]any{
			"Binds":         []string{vol + ":/data", bindDir + ":/bind:ro"},
			"Tmpfs":         map[string]string{"/scratch": "size=1m"},
			"PortBindings":  map[string]any{"8080/tcp": []map[string]string{{"HostIp": "127.0.0.1", "HostPort": port}}},
			"RestartPolicy": map[string]any{"Name": "on-failure", "MaximumRetryCount": 3},
			"NetworkMode":   nets[0],
			"Memory":        64 << 20,
			"NanoCpus":      500_000_000,
			"CapAdd":        []string{"NET_ADMIN"},
			"LogConfig":     map[string]any{"Type": "json-file", "Config": map[string]string{"max-size": "1m", "max-file": "2"}},
			"ExtraHosts":    []string{"fidhost.example:10.1.2.3"},
			"Dns":           []string{"10.0.0.53"},
		},
		"NetworkingConfig": map[string]any{"EndpointsConfig": map[string]any{
			nets[0]: map[string]any{"Aliases": []string{"fid-a1", "fid-a2"}, "IPAMConfig": map[string]string{"IPv4Address": staticIP}},
		}},
	}
	fullName, genName := prefix+"full", prefix+"gen"
	fullID := e2euCreate(t, e, fullName, full, false)
	// API 1.41 takes one network at create; the second is connected before the start.
	connect := map[string]any{"Container": fullID, "EndpointConfig": map[string]any{"Aliases": []string{"fid-b"}}}
	if err := e.call(http.MethodPost, "/networks/"+nets[1]+"/connect", connect, nil); err != nil {
		t.Fatal(err)
	}
	e2euStart(t, e, fullID)
	e2euCreate(t, e, genName, map[string]any{"Image": repo.ref, "Env": []string{"USER_VAR=gen"}}, true)

	orig := e2euInspect(t, e, fullName)
	for _, m := range orig.Mounts {
		if m.Destination == "/anon" {
			anonVolume = m.Name
			if err := os.WriteFile(filepath.Join(m.Source, "marker"), []byte("kept"), 0o644); err != nil {
				t.Fatalf("writing into the anonymous volume: %v", err)
			}
		}
	}
	if anonVolume == "" {
		t.Fatalf("the container has no anonymous volume at /anon: %+v", orig.Mounts)
	}
	want := e2euFidelity(orig, nets)
	origGen := e2euInspect(t, e, genName)
	if origGen.Config.Hostname != origGen.ID[:12] {
		t.Fatalf("gen: hostname %q is not the generated one %s", origGen.Config.Hostname, origGen.ID[:12])
	}
	stateFile := filepath.Join(t.TempDir(), "state.json")

	fields := slices.Sorted(func(yield func(string) bool) {
		for k := range want {
			if !yield(k) {
				return
			}
		}
	})
	fields = append(fields, "image defaults (DEF_CHANGE, fid.version, build)", "anon volume data", "serves on the port", "gen: hostname = own short ID", "gen: env")
	matrix := map[string][]string{}
	prevFull, prevGen := orig.ID, origGen.ID
	for v := 2; v <= 4; v++ {
		repo.push(t, e, imageLines(v))
		res := e2euOutpostRun(t, bin, e, []string{e2eEmptyConfig(t)}, e2euArgs(t, stateFile, prefix, "--health-timeout", "30s")...)
		e2euRecordState(t, res, fullName, "updated")
		e2euRecordState(t, res, genName, "updated")
		e2euExit(t, res, 0)
		c := e2euInspect(t, e, fullName)
		g := e2euInspect(t, e, genName)
		if c.ID == prevFull || g.ID == prevGen || c.Image != repo.newest() || g.Image != repo.newest() {
			t.Fatalf("v%d: not replaced: full %s (was %s) image %s, gen %s (was %s) image %s, want image %s",
				v, c.ID, prevFull, c.Image, g.ID, prevGen, g.Image, repo.newest())
		}
		prevFull, prevGen = c.ID, g.ID
		got := e2euFidelity(c, nets)
		mark := func(field string, ok bool, detail string) {
			cell := "ok"
			if !ok {
				cell = "DIFF"
				t.Errorf("v%d: %s: %s", v, field, detail)
			}
			matrix[field] = append(matrix[field], cell)
		}
		for _, k := range fields[:len(want)] {
			mark(k, got[k] == want[k], fmt.Sprintf("got %q, want %q", got[k], want[k]))
		}
		defs := fmt.Sprintf("%q %q %q", e2euEnvValues(c.Config.Env, "DEF_CHANGE"), c.Config.Labels["fid.version"], c.Config.Labels["build"])
		wantDefs := fmt.Sprintf("%q %q %q", []string{fmt.Sprintf("v%d", v)}, fmt.Sprintf("v%d", v), fmt.Sprintf("%s-v%d", repo.path, v))
		mark(fields[len(want)], defs == wantDefs, fmt.Sprintf("got %s, want %s", defs, wantDefs))
		data := ""
		for _, m := range c.Mounts {
			if m.Destination == "/anon" {
				b, _ := os.ReadFile(filepath.Join(m.Source, "marker"))
				data = string(b)
			}
		}
		mark(fields[len(want)+1], data == "kept", fmt.Sprintf("the marker in /anon reads %q", data))
		body, err := e2euGet("http://127.0.0.1:" + port + "/health")
		mark(fields[len(want)+2], err == nil && body == "ok", fmt.Sprintf("GET /health: %q %v", body, err))
		mark(fields[len(want)+3], g.Config.Hostname == g.ID[:12], fmt.Sprintf("hostname %q, own short ID %s", g.Config.Hostname, g.ID[:12]))
		mark(fields[len(want)+4], slices.Equal(e2euEnvValues(g.Config.Env, "USER_VAR"), []string{"gen"}) && len(g.Config.Env) == len(origGen.Config.Env),
			fmt.Sprintf("env %q, was %q", g.Config.Env, origGen.Config.Env))
		e2euNoAside(t, e, prefix)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "fidelity matrix (original %s):\n%-48s %-5s %-5s %-5s\n", orig.ID[:12], "field", "v2", "v3", "v4")
	for _, f := range fields {
		fmt.Fprintf(&b, "%-48s %-5s\n", f, strings.Join(matrix[f], " "))
	}
	t.Log(b.String())
}

// e2euGet fetches a URL from a published port, retrying briefly while the process starts.
func e2euGet(u string) (string, error) {
	var lastErr error
	for range 20 {
		resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(u)
		if err == nil {
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(b), err
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
	return "", lastErr
}

// e2euRollback runs one safety case: the container's v2 cannot work for a reason the v2 image
// carries (its extra Dockerfile lines). Outpost must put the old container back and never pull
// that digest again.
func e2euRollback(t *testing.T, v2Extra string, extraArgs ...string) {
	e := e2eSetup(t)
	t.Parallel()
	bin := e2eOutpost(t)
	reg := e2eRegistry(t, e2eRegistryOpts{})
	e2euCleanImages(t, e, reg)
	prefix, ns := e2eNames(t)
	repo := e2euNewRepo(t, e, reg, ns+"/app", "")
	name := prefix + "app"
	id := e2euCreate(t, e, name, map[string]any{"Image": repo.ref}, true)
	repo.push(t, e, v2Extra)
	stateFile := filepath.Join(t.TempDir(), "state.json")
	args := e2euArgs(t, stateFile, prefix, extraArgs...)

	start := time.Now()
	res := e2euOutpostRun(t, bin, e, []string{e2eEmptyConfig(t)}, args...)
	rec := e2euRecordState(t, res, name, "rolled back")
	if rec.str("reason") == "" {
		t.Errorf("rolled back without a reason")
	}
	t.Logf("first run: %v, reason %q", res.wall.Round(time.Millisecond), rec.str("reason"))
	e2euExit(t, res, 1)
	e2euCheckOld := func(when string) {
		t.Helper()
		c := e2euInspect(t, e, name)
		if c.ID != id || c.Image != repo.ids[0] || c.State == nil || !c.State.Running || c.Name != "/"+name {
			t.Errorf("%s: %s is %s image %s running %v, want the old %s on %s running", when, name, c.ID, c.Image, c.State != nil && c.State.Running, id, repo.ids[0])
		}
		if got := e2euList(t, e, prefix); len(got) != 1 {
			t.Errorf("%s: containers %+v, want only the old one", when, got)
		}
	}
	e2euCheckOld("after the rollback")
	state, err := os.ReadFile(stateFile)
	if err != nil || !strings.Contains(string(state), repo.digests[1]) {
		t.Errorf("the state file does not remember %s: %q %v", repo.digests[1], state, err)
	}
	pulls := 0
	for _, ev := range e2euEvents(t, e, start, time.Now(), map[string][]string{"type": {"image"}, "event": {"pull"}}) {
		if strings.HasPrefix(ev.Actor.ID, reg.Host+"/") {
			pulls++
		}
	}
	images := e2eTakeSnapshot(t, e, prefix, reg).Images

	mid := time.Now()
	res = e2euOutpostRun(t, bin, e, []string{e2eEmptyConfig(t)}, args...)
	rec = e2euRecordState(t, res, name, "skipped")
	if !strings.Contains(rec.str("reason"), "rolled back") {
		t.Errorf("second run: reason %q does not say it was rolled back", rec.str("reason"))
	}
	e2euExit(t, res, 0)
	e2euCheckOld("after the second run")
	var again int
	for _, ev := range e2euEvents(t, e, mid, time.Now(), map[string][]string{"type": {"image"}, "event": {"pull"}}) {
		if strings.HasPrefix(ev.Actor.ID, reg.Host+"/") {
			again++
		}
	}
	if again != 0 {
		t.Errorf("the second run pulled %d times", again)
	}
	if after := e2eTakeSnapshot(t, e, prefix, reg).Images; !slices.Equal(images, after) {
		t.Errorf("the second run changed the images:\nbefore %q\nafter  %q", images, after)
	}
	t.Logf("pull events: first run %d, second run %d", pulls, again)
}

// v2 exits at once: it starts, then is not running when the settle time ends.
func TestE2EUpdateRollbackExits(t *testing.T) {
	e2euRollback(t, "ENV APP_MODE=exit")
}

// v2 runs but its health check always fails.
func TestE2EUpdateRollbackUnhealthy(t *testing.T) {
	e2euRollback(t, `HEALTHCHECK --interval=1s --timeout=1s --retries=1 CMD ["/bin/sh","-c","exit 1"]`, "--health-timeout", "10s")
}

// The successor's start fails: v2's ENTRYPOINT names a file the image lacks, so the engine refuses
// to start it ("no such file or directory") while create succeeds. Unlike a deleted bind source or
// a removed network, this breaks only the successor: the old container keeps everything it needs
// to start again. The old container's entrypoint equals v1's default, so the successor takes v2's.
func TestE2EUpdateRollbackStartFails(t *testing.T) {
	e2euRollback(t, `ENTRYPOINT ["/missing-entrypoint"]`)
}

// e2euEnv is the clean environment e2eOutpostRun gives the binary, for runs the test kills.
func e2euEnv(t *testing.T, e *e2eEngine) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DOCKER_") && !strings.HasPrefix(kv, "WATCHTOWER_") &&
			!strings.HasPrefix(kv, "OUTPOST_") && !strings.HasPrefix(kv, "REPO_") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	return append(env, "DOCKER_HOST=unix://"+e.socket, "HOME="+t.TempDir(), e2eEmptyConfig(t))
}

func TestE2EKillLoop(t *testing.T) {
	e := e2eSetup(t)
	bin := e2eOutpost(t)
	reg := e2eRegistry(t, e2eRegistryOpts{})
	e2euCleanImages(t, e, reg)
	prefix, ns := e2eNames(t)
	repos := []*e2euRepo{e2euNewRepo(t, e, reg, ns+"/k0", ""), e2euNewRepo(t, e, reg, ns+"/k1", "")}
	var names []string
	for i := range 10 {
		n := fmt.Sprintf("%sk%02d", prefix, i)
		names = append(names, n)
		e2euCreate(t, e, n, map[string]any{"Image": repos[i%2].ref}, true)
	}
	stateFile := filepath.Join(t.TempDir(), "state.json")
	args := e2euArgs(t, stateFile, prefix)
	// Spread over the phases of one run: start-up, check and pull (< 300ms), take-down of all ten,
	// create/start/settle (1s), removal of the old ones, and a finished run.
	delays := []time.Duration{0, 150 * time.Millisecond, 300 * time.Millisecond, 600 * time.Millisecond,
		time.Second, 2 * time.Second, 3 * time.Second, 6 * time.Second}
	var table strings.Builder
	fmt.Fprintf(&table, "%-8s %-10s %-8s %-6s %-10s %-5s %-8s %-7s %s\n", "delay", "killed", "updated", "aside", "final run", "lost", "stopped", "behind", "final exit")
	begin := time.Now()
	for _, d := range delays {
		for _, r := range repos {
			r.push(t, e, "")
		}
		cmd := exec.Command(bin, args...)
		cmd.Env = e2euEnv(t, e)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		outcome := "killed"
		select {
		case <-done:
			outcome = "finished"
		case <-time.After(d):
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-done
		}
		updated, aside := 0, 0
		for _, c := range e2euList(t, e, prefix) {
			if strings.Contains(c.Name, "_outpost-old") {
				aside++
			} else if c.State == "running" && (c.ImageID == repos[0].newest() || c.ImageID == repos[1].newest()) {
				updated++
			}
		}
		res := e2euOutpostRun(t, bin, e, []string{e2eEmptyConfig(t)}, args...)
		lost, stopped, behind, problems := 0, 0, 0, 0
		byName := map[string]e2euListed{}
		for _, c := range e2euList(t, e, prefix) {
			byName[c.Name] = c
			if strings.Contains(c.Name, "_outpost-old") {
				problems++
				t.Errorf("delay %v: aside container %s left after the final run", d, c.Name)
			}
		}
		for i, n := range names {
			c, ok := byName[n]
			switch {
			case !ok:
				lost++
				t.Errorf("delay %v: %s is gone", d, n)
			case c.State != "running":
				stopped++
				t.Errorf("delay %v: %s is %s after the final run", d, n, c.State)
				// Start it again so that the later iterations still measure something.
				e2euStart(t, e, c.ID)
			case c.ImageID != repos[i%2].newest():
				behind++
				t.Errorf("delay %v: %s runs %s, want the newest %s", d, n, c.ImageID, repos[i%2].newest())
			}
		}
		if res.exit != 0 {
			problems++
			t.Errorf("delay %v: final run exit %d", d, res.exit)
		}
		if lost+stopped+behind+problems > 0 {
			t.Logf("delay %v: killed run stderr:\n%s\nfinal run stderr:\n%s", d, e2eTail(stderr.String(), 40), e2eTail(res.stderr, 40))
		}
		if lost > 0 {
			t.FailNow()
		}
		if res.wall > 15*time.Second {
			t.Logf("delay %v: the final run took %v:\n%s", d, res.wall.Round(time.Millisecond), e2eTail(res.stderr, 30))
		}
		fmt.Fprintf(&table, "%-8v %-10s %-8d %-6d %-10v %-5d %-8d %-7d %d\n", d, outcome, updated, aside, res.wall.Round(time.Millisecond), lost, stopped, behind, res.exit)
	}
	t.Logf("kill loop, 10 containers, %d iterations in %v:\n%s", len(delays), time.Since(begin).Round(time.Second), table.String())
}

func TestE2EUpdateTwentyIndependent(t *testing.T) {
	e := e2eSetup(t)
	bin := e2eOutpost(t)
	reg := e2eRegistry(t, e2eRegistryOpts{})
	e2euCleanImages(t, e, reg)
	prefix, ns := e2eNames(t)
	repo := e2euNewRepo(t, e, reg, ns+"/slow", "")
	ids := map[string]string{}
	for i := range 20 {
		n := fmt.Sprintf("%ss%02d", prefix, i)
		ids[n] = e2euCreate(t, e, n, map[string]any{"Image": repo.ref, "Env": []string{"APP_MODE=ignore-term"}}, true)
	}
	repo.push(t, e, "")

	res := e2euOutpostRun(t, bin, e, []string{e2eEmptyConfig(t)},
		e2euArgs(t, filepath.Join(t.TempDir(), "state.json"), prefix, "--stop-timeout", "2s")...)

	for n, id := range ids {
		e2euRecordState(t, res, n, "updated")
		c := e2euInspect(t, e, n)
		if c.ID == id || c.Image != repo.newest() || !c.State.Running {
			t.Errorf("%s: %s image %s running %v (exit %d, OOM %v, error %q), want a new container on %s", n, c.ID, c.Image, c.State.Running, c.State.ExitCode, c.State.OOMKilled, c.State.Error, repo.newest())
		}
	}
	e2euNoAside(t, e, prefix)
	e2euExit(t, res, 0)
	t.Logf("20 independent containers ignoring SIGTERM, --stop-timeout 2s --settle-time 1: wall %v (session %v); sequential would be >= 40s (stops alone)",
		res.wall.Round(time.Millisecond), res.summary["duration"])
	if res.wall >= 30*time.Second {
		t.Errorf("wall time %v >= 30s: the updates ran (nearly) one after the other", res.wall)
	}
}

func e2euStarted(t *testing.T, c container.InspectResponse) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, c.State.StartedAt)
	if err != nil {
		t.Fatalf("%s: StartedAt %q: %v", c.Name, c.State.StartedAt, err)
	}
	return ts
}

func TestE2EUpdateDependsOn(t *testing.T) {
	e := e2eSetup(t)
	t.Parallel()
	bin := e2eOutpost(t)
	reg := e2eRegistry(t, e2eRegistryOpts{})
	e2euCleanImages(t, e, reg)
	prefix, ns := e2eNames(t)
	dbRepo := e2euNewRepo(t, e, reg, ns+"/db", "")
	webRepo := e2euNewRepo(t, e, reg, ns+"/web", "")
	db, web := prefix+"db", prefix+"web"
	dbID := e2euCreate(t, e, db, map[string]any{"Image": dbRepo.ref}, true)
	webID := e2euCreate(t, e, web, map[string]any{"Image": webRepo.ref,
		"Labels": map[string]string{"com.centurylinklabs.watchtower.depends-on": db}}, true)
	webStarted := e2euStarted(t, e2euInspect(t, e, web))
	dbRepo.push(t, e, "")
	start := time.Now()

	res := e2euOutpostRun(t, bin, e, []string{e2eEmptyConfig(t)}, e2euArgs(t, filepath.Join(t.TempDir(), "state.json"), prefix)...)

	e2euRecordState(t, res, db, "updated")
	rec := e2euRecordState(t, res, web, "fresh")
	if !strings.Contains(rec.str("reason"), "restarted") {
		t.Errorf("web: reason %q does not say it was restarted", rec.str("reason"))
	}
	e2euExit(t, res, 0)
	d, w := e2euInspect(t, e, db), e2euInspect(t, e, web)
	if d.ID == dbID || d.Image != dbRepo.newest() {
		t.Errorf("db: %s on %s, want a new container on %s", d.ID, d.Image, dbRepo.newest())
	}
	if w.ID != webID || w.Image != webRepo.ids[0] || !w.State.Running {
		t.Errorf("web: %s on %s running %v, want the same container %s on %s running", w.ID, w.Image, w.State.Running, webID, webRepo.ids[0])
	}
	dStart, wStart := e2euStarted(t, d), e2euStarted(t, w)
	if !wStart.After(webStarted) {
		t.Errorf("web was not restarted: StartedAt %v, before the run %v", wStart, webStarted)
	}
	if !dStart.Before(wStart) {
		t.Errorf("db started at %v, not before web at %v", dStart, wStart)
	}
	// The engine's events tell the same story: web stopped before db's successor started, and
	// web started after it.
	var order []string
	for _, ev := range e2euEvents(t, e, start, time.Now(), map[string][]string{"type": {"container"}, "event": {"start", "stop", "die"}}) {
		if n := ev.Actor.Attributes["name"]; n == db || n == web {
			order = append(order, strings.TrimPrefix(n, prefix)+":"+ev.Action)
		}
	}
	t.Logf("events: %v; db started %v, web started %v", order, dStart.Format(time.StampMicro), wStart.Format(time.StampMicro))
	if i, j := slices.Index(order, "db:start"), slices.Index(order, "web:start"); i < 0 || j < i {
		t.Errorf("events %v: want db:start before web:start", order)
	}
	if i, j := slices.Index(order, "web:stop"), slices.Index(order, "db:start"); i < 0 || j < i {
		t.Errorf("events %v: want web stopped before db's successor starts", order)
	}
}

func TestE2EUpdateRollingRestart(t *testing.T) {
	e := e2eSetup(t)
	t.Parallel()
	bin := e2eOutpost(t)
	reg := e2eRegistry(t, e2eRegistryOpts{})
	e2euCleanImages(t, e, reg)
	prefix, ns := e2eNames(t)
	repo := e2euNewRepo(t, e, reg, ns+"/roll", "")
	ids := map[string]string{}
	for i := range 3 {
		n := fmt.Sprintf("%sr%d", prefix, i)
		ids[n] = e2euCreate(t, e, n, map[string]any{"Image": repo.ref}, true)
	}
	repo.push(t, e, "")

	res := e2euOutpostRun(t, bin, e, []string{e2eEmptyConfig(t)},
		e2euArgs(t, filepath.Join(t.TempDir(), "state.json"), prefix, "--rolling-restart")...)

	var starts []time.Time
	for n, id := range ids {
		e2euRecordState(t, res, n, "updated")
		c := e2euInspect(t, e, n)
		if c.ID == id || c.Image != repo.newest() || !c.State.Running {
			t.Errorf("%s: %s on %s, want a new running container on %s", n, c.ID, c.Image, repo.newest())
		}
		starts = append(starts, e2euStarted(t, c))
	}
	e2euNoAside(t, e, prefix)
	e2euExit(t, res, 0)
	// One at a time: each successor starts only after the previous one settled (1s).
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	for i := 1; i < len(starts); i++ {
		if gap := starts[i].Sub(starts[i-1]); gap < 900*time.Millisecond {
			t.Errorf("successors started %v apart: not one at a time", gap)
		}
	}
	t.Logf("rolling restart of 3: wall %v, successor starts %v", res.wall.Round(time.Millisecond), starts)
}

// e2euFileExists asks the engine whether a path exists in a container's filesystem.
func e2euFileExists(t *testing.T, e *e2eEngine, id, path string) bool {
	t.Helper()
	resp, err := e.do(http.MethodHead, "/containers/"+id+"/archive?path="+url.QueryEscape(path), nil, nil)
	if err != nil {
		if strings.Contains(err.Error(), "404") {
			return false
		}
		t.Fatal(err)
	}
	resp.Body.Close()
	return true
}

func TestE2EUpdateHooks(t *testing.T) {
	e := e2eSetup(t)
	t.Parallel()
	bin := e2eOutpost(t)
	reg := e2eRegistry(t, e2eRegistryOpts{})
	e2euCleanImages(t, e, reg)
	prefix, ns := e2eNames(t)
	repo := e2euNewRepo(t, e, reg, ns+"/hooks", "")
	const pre, post = "com.centurylinklabs.watchtower.lifecycle.pre-update", "com.centurylinklabs.watchtower.lifecycle.post-update"
	cases := map[string]struct {
		labels map[string]string
		state  string
	}{
		prefix + "skip": {map[string]string{pre: "exit 75"}, "skipped"},
		prefix + "fail": {map[string]string{pre: "exit 3"}, "failed"},
		prefix + "post": {map[string]string{pre: "touch /hooks/pre-ran", post: "touch /hooks/post-ran"}, "updated"},
	}
	ids := map[string]string{}
	for n, c := range cases {
		ids[n] = e2euCreate(t, e, n, map[string]any{"Image": repo.ref, "Labels": c.labels}, true)
	}
	repo.push(t, e, "")

	res := e2euOutpostRun(t, bin, e, []string{e2eEmptyConfig(t)},
		e2euArgs(t, filepath.Join(t.TempDir(), "state.json"), prefix, "--enable-lifecycle-hooks")...)

	for n, want := range cases {
		e2euRecordState(t, res, n, want.state)
		c := e2euInspect(t, e, n)
		switch want.state {
		case "updated":
			if c.ID == ids[n] || c.Image != repo.newest() {
				t.Errorf("%s: %s on %s, want a new container on %s", n, c.ID, c.Image, repo.newest())
			}
			if !e2euFileExists(t, e, c.ID, "/hooks/post-ran") {
				t.Errorf("%s: the post-update hook did not run in the new container", n)
			}
			if e2euFileExists(t, e, c.ID, "/hooks/pre-ran") {
				t.Errorf("%s: the pre-update hook ran in the new container", n)
			}
		default:
			if c.ID != ids[n] || c.Image != repo.ids[0] || !c.State.Running {
				t.Errorf("%s: %s on %s running %v, want untouched %s on %s", n, c.ID, c.Image, c.State.Running, ids[n], repo.ids[0])
			}
		}
	}
	e2euNoAside(t, e, prefix)
	e2euExit(t, res, 1) // the failed pre-update hook is a failure
}

func TestE2EUpdateCleanup(t *testing.T) {
	e := e2eSetup(t)
	t.Parallel()
	bin := e2eOutpost(t)
	reg := e2eRegistry(t, e2eRegistryOpts{})
	e2euCleanImages(t, e, reg)
	prefix, ns := e2eNames(t)
	// One old image under two repositories: each container runs it through its own tag.
	one := e2euNewRepo(t, e, reg, ns+"/one", "")
	two := &e2euRepo{ref: reg.Host + "/" + ns + "/two:latest", path: ns + "/two", ids: []string{one.ids[0]}}
	q := url.Values{"repo": {strings.TrimSuffix(two.ref, ":latest")}, "tag": {"latest"}}
	if err := e.call(http.MethodPost, "/images/"+one.ids[0]+"/tag?"+q.Encode(), nil, nil); err != nil {
		t.Fatal(err)
	}
	two.digests = []string{e2ePush(t, e, two.ref, e2eAuth{})}
	old := one.ids[0]
	c1 := e2euCreate(t, e, prefix+"one", map[string]any{"Image": one.ref}, true)
	c2 := e2euCreate(t, e, prefix+"two", map[string]any{"Image": two.ref}, true)
	stateFile := filepath.Join(t.TempDir(), "state.json")
	imageExists := func() bool {
		err := e.call(http.MethodGet, "/images/"+old+"/json", nil, nil)
		if err != nil && !strings.Contains(err.Error(), "404") {
			t.Fatal(err)
		}
		return err == nil
	}

	one.push(t, e, "")
	res := e2euOutpostRun(t, bin, e, []string{e2eEmptyConfig(t)}, e2euArgs(t, stateFile, prefix, "--cleanup")...)
	e2euRecordState(t, res, prefix+"one", "updated")
	e2euRecordState(t, res, prefix+"two", "fresh")
	e2euExit(t, res, 0)
	if c := e2euInspect(t, e, prefix+"one"); c.ID == c1 || c.Image != one.newest() {
		t.Errorf("one: %s on %s, want a new container on %s", c.ID, c.Image, one.newest())
	}
	if c := e2euInspect(t, e, prefix+"two"); c.ID != c2 || c.Image != old {
		t.Errorf("two: %s on %s, want untouched %s on %s", c.ID, c.Image, c2, old)
	}
	if !imageExists() {
		t.Fatalf("--cleanup removed the old image %s that %stwo still runs", old, prefix)
	}

	two.push(t, e, "")
	res = e2euOutpostRun(t, bin, e, []string{e2eEmptyConfig(t)}, e2euArgs(t, stateFile, prefix, "--cleanup", "--log-level", "debug")...)
	e2euRecordState(t, res, prefix+"two", "updated")
	e2euRecordState(t, res, prefix+"one", "fresh")
	e2euExit(t, res, 0)
	if c := e2euInspect(t, e, prefix+"two"); c.ID == c2 || c.Image != two.newest() {
		t.Errorf("two: %s on %s, want a new container on %s", c.ID, c.Image, two.newest())
	}
	if imageExists() {
		var why []string
		for _, line := range strings.Split(res.stderr, "\n") {
			if strings.Contains(line, old) {
				why = append(why, line)
			}
		}
		t.Errorf("--cleanup kept the old image %s that no container uses any more; log lines naming it:\n%s", old, strings.Join(why, "\n"))
	}
}

func TestE2EUpdateNoRestart(t *testing.T) {
	e := e2eSetup(t)
	t.Parallel()
	bin := e2eOutpost(t)
	reg := e2eRegistry(t, e2eRegistryOpts{})
	e2euCleanImages(t, e, reg)
	prefix, ns := e2eNames(t)
	repo := e2euNewRepo(t, e, reg, ns+"/nr", "")
	name := prefix + "nr"
	id := e2euCreate(t, e, name, map[string]any{"Image": repo.ref}, true)
	started := e2euInspect(t, e, name).State.StartedAt
	repo.push(t, e, "")

	res := e2euOutpostRun(t, bin, e, []string{e2eEmptyConfig(t)},
		e2euArgs(t, filepath.Join(t.TempDir(), "state.json"), prefix, "--no-restart")...)

	rec := e2euRecordState(t, res, name, "stale")
	if !strings.Contains(rec.str("reason"), "--no-restart") {
		t.Errorf("reason %q does not name --no-restart", rec.str("reason"))
	}
	e2euExit(t, res, 0)
	c := e2euInspect(t, e, name)
	if c.ID != id || c.Image != repo.ids[0] || !c.State.Running || c.State.StartedAt != started {
		t.Errorf("%s: %s on %s running %v started %s, want untouched %s on %s started %s", name, c.ID, c.Image, c.State.Running, c.State.StartedAt, id, repo.ids[0], started)
	}
	var img struct{ ID string }
	if err := e.call(http.MethodGet, "/images/"+repo.ref+"/json", nil, &img); err != nil || img.ID != repo.newest() {
		t.Errorf("the tag names %q (%v), want the pulled v2 %s", img.ID, err, repo.newest())
	}
}

// An aside copy belongs to the outpost instance that made it. Several instances share one engine
// when they watch different scopes (Watchtower's --scope), and a session of one must not "recover"
// a replacement another instance is in the middle of: that renames the old container back under
// the other instance's feet, and its create then fails on the name. Here the other scope's aside
// copy stands for such a replacement in flight.
func TestE2EUpdateRecoveryKeepsToItsScope(t *testing.T) {
	e := e2eSetup(t)
	t.Parallel()
	bin := e2eOutpost(t)
	reg := e2eRegistry(t, e2eRegistryOpts{})
	e2euCleanImages(t, e, reg)
	prefix, ns := e2eNames(t)
	repo := e2euNewRepo(t, e, reg, ns+"/scoped", "")
	const scope = "com.centurylinklabs.watchtower.scope"
	mine := e2euCreate(t, e, prefix+"mine", map[string]any{"Image": repo.ref, "Labels": map[string]string{scope: "mine"}}, true)
	other := prefix + "theirs_outpost-old"
	otherID := e2euCreate(t, e, other, map[string]any{"Image": repo.ref, "Labels": map[string]string{scope: "theirs"}}, true)
	t.Cleanup(func() { // where a wrong recovery puts it
		if err := e.call(http.MethodDelete, "/containers/"+prefix+"theirs?force=1&v=1", nil, nil); err != nil && !strings.Contains(err.Error(), "404") {
			t.Errorf("cleanup: %v", err)
		}
	})

	res := e2euOutpostRun(t, bin, e, []string{e2eEmptyConfig(t)},
		e2euArgs(t, filepath.Join(t.TempDir(), "state.json"), prefix, "--scope", "mine")...)

	e2euRecordState(t, res, prefix+"mine", "fresh")
	e2euExit(t, res, 0)
	if c := e2euInspect(t, e, prefix+"mine"); c.ID != mine {
		t.Errorf("mine: %s, want untouched %s", c.ID, mine)
	}
	var got []string
	for _, c := range e2euList(t, e, prefix) {
		got = append(got, c.Name+" "+c.ID[:12]+" "+c.State)
	}
	want := []string{prefix + "mine " + mine[:12] + " running", other + " " + otherID[:12] + " running"}
	if !slices.Equal(got, want) {
		t.Errorf("a session of scope mine touched scope theirs' aside copy:\ncontainers %q\nwant       %q", got, want)
		for _, line := range strings.Split(res.stderr, "\n") {
			if strings.Contains(line, "interrupted") {
				t.Log(line)
			}
		}
	}
}
