package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// record is one JSON log line.
type record map[string]any

func (r record) str(k string) string { s, _ := r[k].(string); return s }
func (r record) num(k string) int    { f, _ := r[k].(float64); return int(f) }

// runOutpost runs the whole program against a fake engine with JSON logs and returns the
// per-container records by name, the summary and the exit status.
func runOutpost(t *testing.T, eng *fakeEngine, env []string, args ...string) (map[string]record, record, int) {
	t.Helper()
	args = append([]string{"--host", eng.host(), "--log-format", "json", "--run-once", "--monitor-only", "--no-startup-message"}, args...)
	if len(env) == 0 {
		env = []string{"DOCKER_CONFIG", t.TempDir()}
	}
	var stdout, stderr bytes.Buffer
	code := run(args, envMap(env...), &stdout, &stderr)
	byName := map[string]record{}
	var summary record
	sc := bufio.NewScanner(&stderr)
	for sc.Scan() {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("log line is not JSON: %q", sc.Text())
		}
		switch r.str("msg") {
		case "container":
			name := r.str("container")
			if _, dup := byName[name]; dup {
				t.Fatalf("two records for %s", name)
			}
			byName[name] = r
		case "session done":
			if summary != nil {
				t.Fatal("two summaries for one session")
			}
			summary = r
		}
	}
	if summary == nil {
		t.Fatalf("no summary; stderr:\n%s", stderr.String())
	}
	return byName, summary, code
}

// recordedHost is an engine and a registry loaded with the recorded containers: app:latest is
// current in the registry, tools/worker:1.0 has moved on.
func recordedHost(t *testing.T) (*fakeEngine, *fakeRegistry, string) {
	eng := newFakeEngine(t, "1.12", "1.41")
	reg := newFakeRegistry(t)
	for _, n := range []string{"web", "worker", "local", "byid", "pinned", "stopped", "optout", "scoped"} {
		eng.addRecorded(n, reg.host())
	}
	app := eng.addRecordedImage("app", reg.host())
	eng.addRecordedImage("worker", reg.host())
	eng.addRecordedImage("localonly", reg.host())
	_, appDigest, _ := strings.Cut(app.RepoDigests[0], "@")
	reg.pin("app", "latest", appDigest)
	newWorker := reg.push("tools/worker", "1.0", "worker v2")
	return eng, reg, newWorker
}

func TestSessionStatesOnRecordedContainers(t *testing.T) {
	eng, reg, newWorker := recordedHost(t)
	recs, sum, code := runOutpost(t, eng, nil)
	if code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
	want := map[string]string{"web": "fresh", "scoped": "fresh", "worker": "stale", "local": "skipped", "byid": "skipped", "pinned": "skipped"}
	if len(recs) != len(want) {
		t.Fatalf("records for %v, want exactly %v", keys(recs), want)
	}
	for name, state := range want {
		r := recs[name]
		if r.str("state") != state {
			t.Errorf("%s: state %q, want %q (%v)", name, r.str("state"), state, r)
		}
		if state == "skipped" && r.str("reason") == "" {
			t.Errorf("%s: skipped without a reason", name)
		}
	}
	if !strings.Contains(recs["byid"].str("reason"), "image ID") || !strings.Contains(recs["pinned"].str("reason"), "digest") {
		t.Errorf("skip reasons: %q / %q", recs["byid"].str("reason"), recs["pinned"].str("reason"))
	}
	if w := recs["worker"]; w.str("remote") != newWorker || w.str("current") == "" || w.str("current") == newWorker {
		t.Errorf("worker digests: current %q remote %q, want remote %s", w.str("current"), w.str("remote"), newWorker)
	}
	if w := recs["web"]; w.str("current") != w.str("remote") || w.str("image") != reg.host()+"/app:latest" {
		t.Errorf("web: %v", w)
	}
	if sum.num("scanned") != 6 || sum.num("stale") != 1 || sum.num("skipped") != 3 || sum.num("failed") != 0 {
		t.Errorf("summary %v", sum)
	}
	// app:latest is run by web and scoped: still one HEAD for it.
	if reg.count("GET /v2/") != 1 || reg.count("HEAD /v2/app/manifests/latest") != 1 || reg.count("HEAD /v2/tools/worker/manifests/1.0") != 1 || reg.count("GET /v2/app") != 0 {
		t.Errorf("registry requests %q", reg.requests)
	}
	if sum.num("registry_pings") != 1 || sum.num("registry_heads") != 2 || sum.num("registry_gets") != 0 {
		t.Errorf("summary counters %v", sum)
	}
	// Monitor-only touched nothing: only reads reached the engine.
	for _, r := range eng.requests {
		if !strings.HasPrefix(r, "GET ") {
			t.Errorf("engine received %s", r)
		}
	}
}

func keys(m map[string]record) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	return k
}

func TestSessionSelection(t *testing.T) {
	tests := []struct {
		args []string
		env  []string
		want string // the selected names, sorted, space-separated
	}{
		{nil, nil, "byid local pinned scoped web worker"},
		{[]string{"--include-stopped"}, nil, "byid local pinned scoped stopped web worker"},
		{[]string{"--scope", "prod"}, nil, "scoped"},
		{[]string{"--scope", "none"}, nil, "byid local pinned web worker"},
		{[]string{"--label-enable"}, nil, ""},
		{[]string{"--disable-containers", "web,worker"}, nil, "byid local pinned scoped"},
		{nil, []string{"WATCHTOWER_DISABLE_CONTAINERS", "web worker"}, "byid local pinned scoped"},
		{[]string{"web", "/worker"}, nil, "web worker"},
		{[]string{"w.*"}, nil, "web worker"},
		{[]string{"w"}, nil, ""},
		{[]string{"optout"}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(append(tt.args, tt.env...), " "), func(t *testing.T) {
			eng, _, _ := recordedHost(t)
			env := append([]string{"DOCKER_CONFIG", t.TempDir()}, tt.env...)
			recs, _, _ := runOutpost(t, eng, env, tt.args...)
			var got []string
			for _, n := range strings.Fields("byid local optout pinned scoped stopped web worker") {
				if _, ok := recs[n]; ok {
					got = append(got, n)
				}
			}
			if strings.Join(got, " ") != tt.want {
				t.Fatalf("selected %q, want %q", strings.Join(got, " "), tt.want)
			}
		})
	}
}

func TestSessionFailedCheckExitsOne(t *testing.T) {
	eng, reg, _ := recordedHost(t)
	reg.mu.Lock()
	delete(reg.manifests, "tools/worker:1.0")
	reg.mu.Unlock()
	recs, sum, code := runOutpost(t, eng, nil, "web", "worker")
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	w := recs["worker"]
	if w.str("state") != "failed" || !strings.Contains(w.str("reason"), "no tag 1.0 of tools/worker") {
		t.Fatalf("worker: %v", w)
	}
	if recs["web"].str("state") != "fresh" || sum.num("failed") != 1 {
		t.Fatalf("one registry failure must fail only its containers: %v %v", recs["web"], sum)
	}
}

func TestSessionOnEngine29(t *testing.T) {
	eng, _, _ := recordedHost(t)
	eng.minAPI, eng.maxAPI = "1.44", "1.52"
	recs, _, code := runOutpost(t, eng, nil)
	if code != 0 || recs["web"].str("state") != "fresh" || recs["worker"].str("state") != "stale" {
		t.Fatalf("on an engine refusing < 1.44: exit %d, %v", code, recs)
	}
	if eng.count("GET /v"+maxAPIVersion+"/containers/json") != 1 {
		t.Fatalf("requests %q", eng.requests)
	}
	_, _, code = runOutpostRaw(t, eng, "--api-version", "1.41")
	if code != 1 {
		t.Fatalf("pinned 1.41 on engine 29: exit %d, want 1", code)
	}
}

// runOutpostRaw runs the program and returns its raw output and status.
func runOutpostRaw(t *testing.T, eng *fakeEngine, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(append([]string{"--host", eng.host(), "--run-once", "--monitor-only", "--log-format", "logfmt"}, args...), envMap("DOCKER_CONFIG", t.TempDir()), &stdout, &stderr)
	return stdout.String(), stderr.String(), code
}

func TestSessionEngineMessageReachesUser(t *testing.T) {
	eng, _, _ := recordedHost(t)
	eng.minAPI, eng.maxAPI = "1.44", "1.52"
	_, stderr, _ := runOutpostRaw(t, eng, "--api-version", "1.41")
	if !strings.Contains(stderr, "client version 1.41 is too old. Minimum supported API version is 1.44") {
		t.Fatalf("stderr %q", stderr)
	}
}

func TestClassify(t *testing.T) {
	id := "sha256:" + strings.Repeat("0123456789abcdef", 4)
	other := "sha256:" + strings.Repeat("f", 64)
	for _, tt := range []struct {
		image, imageID, want string
	}{
		{id, id, "image ID"},
		{"0123456789ab", id, "image ID"},
		{"nginx@sha256:" + strings.Repeat("ab", 32), id, "pinned by digest"},
		{"Bad/Name", id, "lowercase"},
		{"nginx", id, ""},
		{"0123456789ab", other, ""}, // hex-looking, but not this image's ID: a name
	} {
		_, why := classify(tt.image, tt.imageID)
		if (tt.want == "") != (why == "") || !strings.Contains(why, tt.want) {
			t.Errorf("classify(%q) = %q, want %q", tt.image, why, tt.want)
		}
	}
}

func TestManyContainersShareOneHead(t *testing.T) {
	eng := newFakeEngine(t, "1.12", "1.41")
	reg := newFakeRegistry(t)
	web := eng.addRecorded("web", reg.host())
	img := eng.addRecordedImage("app", reg.host())
	_, d, _ := strings.Cut(img.RepoDigests[0], "@")
	reg.pin("app", "latest", d)
	for i := 0; i < 30; i++ {
		c := web
		base := *web.ContainerJSONBase
		c.ContainerJSONBase = &base
		c.ID = fmt.Sprintf("%064d", i)
		c.Name = fmt.Sprintf("/web-%02d", i)
		eng.add(c)
	}
	recs, sum, code := runOutpost(t, eng, nil)
	if code != 0 || len(recs) != 31 || sum.num("stale") != 0 {
		t.Fatalf("exit %d, %d records, summary %v", code, len(recs), sum)
	}
	if reg.count("HEAD ") != 1 || reg.count("GET /v2/") != 1 || eng.count("GET /v1.41/images/") != 1 {
		t.Fatalf("31 containers of one image: registry %q, image inspects %d", reg.requests, eng.count("GET /v1.41/images/"))
	}
}

func TestPlatformComparisonOfMovedIndex(t *testing.T) {
	eng := newFakeEngine(t, "1.12", "1.41")
	reg := newFakeRegistry(t)
	web := eng.addRecorded("web", reg.host())
	img := eng.addRecordedImage("app", reg.host())
	_, oldIndex, _ := strings.Cut(img.RepoDigests[0], "@")
	amd := "sha256:" + strings.Repeat("a", 64)
	index := func(arm string) []byte {
		return []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
			{"digest":%q,"platform":{"os":"linux","architecture":"amd64"}},
			{"digest":%q,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}}]}`, amd, arm))
	}
	// The running index, stored under its recorded digest, and a new one where only arm64 moved.
	reg.store("app", "@"+oldIndex, fakeManifest{mediaType: manifestTypes[1], body: index("sha256:" + strings.Repeat("1", 64)), fixedDigest: oldIndex})
	moved := fakeManifest{mediaType: manifestTypes[1], body: index("sha256:" + strings.Repeat("2", 64))}
	reg.store("app", ":latest", moved)
	reg.store("app", "@"+moved.digest(), moved)

	recs, _, _ := runOutpost(t, eng, nil)
	w := recs[strings.TrimPrefix(web.Name, "/")]
	if w.str("state") != "fresh" || !strings.Contains(w.str("reason"), "not for linux/amd64") || w.str("remote") != moved.digest() {
		t.Fatalf("an arm64-only rebuild must not be an update on amd64: %v", w)
	}
	if reg.count("GET /v2/app/manifests/sha256:") != 2 {
		t.Fatalf("want both indexes fetched once: %q", reg.requests)
	}

	// Now amd64 moves too: stale.
	both := fakeManifest{mediaType: manifestTypes[1], body: []byte(strings.Replace(string(index("sha256:"+strings.Repeat("2", 64))), amd, "sha256:"+strings.Repeat("b", 64), 1))}
	reg.store("app", ":latest", both)
	reg.store("app", "@"+both.digest(), both)
	recs, _, _ = runOutpost(t, eng, nil)
	if w := recs[strings.TrimPrefix(web.Name, "/")]; w.str("state") != "stale" {
		t.Fatalf("an amd64 rebuild is an update: %v", w)
	}
}
