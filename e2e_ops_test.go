package main

import (
	"bytes"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestE2ESigtermDuringUpdate stops outpost with SIGTERM while it updates containers one at a
// time: the container in hand is finished or rolled back, no other one is begun, the process
// exits 0, and every container is running under its name.
func TestE2ESigtermDuringUpdate(t *testing.T) {
	e := e2eSetup(t)
	bin := e2eOutpost(t)
	reg := e2eRegistry(t, e2eRegistryOpts{})
	prefix, ns := e2eNames(t)
	repo := e2ePushV1(t, e, reg, ns+"/slow", e2eAuth{})
	// v2 first: cleanups run last-in first-out, and the containers (which end on v2) must go
	// before the images do.
	e2ePushV2(t, e, repo, e2eAuth{})
	names := []string{prefix + "a", prefix + "b", prefix + "c", prefix + "d"}
	for _, n := range names {
		// The app ignores SIGTERM, so each stop takes the whole --stop-timeout.
		var created struct{ ID string }
		body := map[string]any{"Image": repo.ref, "Env": []string{"APP_MODE=ignore-term"}}
		if err := e.call(http.MethodPost, "/containers/create?name="+url.QueryEscape(n), body, &created); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.call(http.MethodDelete, "/containers/"+url.PathEscape(n)+"?force=1&v=1", nil, nil) })
		if err := e.call(http.MethodPost, "/containers/"+created.ID+"/start", nil, nil); err != nil {
			t.Fatal(err)
		}
	}

	cmd := exec.Command(bin, "--run-once", "--rolling-restart", "--stop-timeout", "2s", "--settle-time", "1",
		"--log-format", "json", "--state-file", t.TempDir()+"/state.json", prefix+".*")
	cmd.Env = []string{"DOCKER_HOST=unix://" + e.socket, "HOME=" + t.TempDir(), "DOCKER_CONFIG=" + t.TempDir()}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The first container's stop takes 2 s; SIGTERM lands while it is in hand.
	time.Sleep(2500 * time.Millisecond)
	sent := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	waited := time.Since(sent)
	if err != nil {
		t.Fatalf("outpost exited with %v after SIGTERM; stderr:\n%s", err, e2eTail(stderr.String(), 30))
	}
	// Within the stop timeout plus settle time and engine calls for the container in hand.
	if waited > 10*time.Second {
		t.Fatalf("outpost took %s to stop after SIGTERM", waited)
	}
	updated := strings.Count(stderr.String(), `"state":"updated"`)
	begun := strings.Count(stderr.String(), `"state":"skipped"`)
	if updated < 1 || updated+begun != len(names) {
		t.Fatalf("%d updated, %d skipped after SIGTERM; stderr:\n%s", updated, begun, e2eTail(stderr.String(), 30))
	}
	var cs []struct {
		Names []string
		State string
	}
	if err := e.call(http.MethodGet, "/containers/json?all=1", nil, &cs); err != nil {
		t.Fatal(err)
	}
	running := map[string]bool{}
	for _, c := range cs {
		n := strings.TrimPrefix(c.Names[0], "/")
		if strings.HasPrefix(n, prefix) {
			if strings.Contains(n, "_outpost-old") {
				t.Errorf("aside copy %s left behind", n)
			}
			running[n] = c.State == "running"
		}
	}
	for _, n := range names {
		if !running[n] {
			t.Errorf("%s is not running after SIGTERM (containers: %v)", n, running)
		}
	}
	t.Logf("SIGTERM after 2.5 s: outpost exited 0 in %s; %d updated, %d left for the next session", waited.Round(time.Millisecond), updated, begun)
}

// TestE2EStoppedContainers updates stopped containers with --include-stopped, leaving them
// stopped, and starts them with --revive-stopped.
func TestE2EStoppedContainers(t *testing.T) {
	e := e2eSetup(t)
	bin := e2eOutpost(t)
	reg := e2eRegistry(t, e2eRegistryOpts{})
	prefix, ns := e2eNames(t)
	repo := e2ePushV1(t, e, reg, ns+"/idle", e2eAuth{})
	e2ePushV2(t, e, repo, e2eAuth{})
	for _, n := range []string{"kept", "revived"} {
		id := e2eRun(t, e, prefix+n, repo.ref, nil)
		if err := e.call(http.MethodPost, "/containers/"+id+"/stop?t=1", nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	state := func(name string) (string, string) {
		var c struct {
			Image string
			State struct{ Status string }
		}
		if err := e.call(http.MethodGet, "/containers/"+url.PathEscape(name)+"/json", nil, &c); err != nil {
			t.Fatal(err)
		}
		return c.State.Status, c.Image
	}
	env := []string{"DOCKER_CONFIG=" + t.TempDir()}
	common := []string{"--run-once", "--include-stopped", "--settle-time", "1", "--log-format", "json", "--state-file", t.TempDir() + "/s.json"}

	// Without --include-stopped a stopped container is not even looked at.
	res := e2eOutpostRun(t, bin, e, env, "--run-once", "--log-format", "json", "--state-file", t.TempDir()+"/s.json", prefix+".*")
	if len(res.containers) != 0 {
		t.Fatalf("stopped containers selected without --include-stopped: %v", res.containers)
	}
	res = e2eOutpostRun(t, bin, e, env, append(common, prefix+"kept")...)
	if res.exit != 0 || res.containers[prefix+"kept"].str("state") != "updated" {
		t.Fatalf("kept: exit %d, %v", res.exit, res.containers)
	}
	if st, img := state(prefix + "kept"); st == "running" || img == repo.v1ID {
		t.Fatalf("kept after the update: state %s image %s; want stopped on the new image", st, img)
	}
	res = e2eOutpostRun(t, bin, e, env, append(common, "--revive-stopped", prefix+"revived")...)
	if res.exit != 0 || res.containers[prefix+"revived"].str("state") != "updated" {
		t.Fatalf("revived: exit %d, %v", res.exit, res.containers)
	}
	if st, img := state(prefix + "revived"); st != "running" || img == repo.v1ID {
		t.Fatalf("revived after the update: state %s image %s; want running on the new image", st, img)
	}
}
