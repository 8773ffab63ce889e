package main

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
)

// staleWeb is a fake engine whose recorded web container sits on two networks and whose
// registry has moved app:latest to a new image that a pull brings in.
func staleWeb(t *testing.T, minAPI, maxAPI string) (*fakeEngine, string) {
	eng := newFakeEngine(t, minAPI, maxAPI)
	reg := newFakeRegistry(t)
	web := eng.addRecorded("web", reg.host())
	web.NetworkSettings.Networks["backend"] = &network.EndpointSettings{
		Aliases:    []string{"api", web.ID[:12]},
		IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: "172.30.0.10"},
		IPAddress:  "172.30.0.10", NetworkID: "n2", EndpointID: "e2",
	}
	eng.addRecordedImage("app", reg.host())
	newDigest := reg.push("app", "latest", "app v2")
	newID := "sha256:" + strings.Repeat("9", 64)
	eng.mu.Lock()
	eng.images[newID] = image.InspectResponse{ID: newID, RepoDigests: []string{reg.host() + "/app@" + newDigest}, Config: eng.images[web.Image].Config}
	eng.pullable[reg.host()+"/app:latest"] = newID
	eng.mu.Unlock()
	return eng, newID
}

func TestUpdateNetworksByAPIVersion(t *testing.T) {
	for _, tt := range []struct {
		name             string
		minAPI, maxAPI   string
		atCreate, joined int
	}{
		{"API 1.41: one network at create, the other connected", "1.12", "1.41", 1, 1},
		{"API 1.44+: every network at create", "1.44", "1.52", 2, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			eng, newID := staleWeb(t, tt.minAPI, tt.maxAPI)
			recs, sum, code := runOutpost(t, eng, []string{"DOCKER_CONFIG", t.TempDir()}, "--monitor-only=false", "--settle-time", "0", "--state-file", t.TempDir()+"/state.json", "web")
			if code != 0 || recs["web"].str("state") != "updated" || sum.num("updated") != 1 {
				t.Fatalf("exit %d, web %v", code, recs["web"])
			}
			if recs["web"].str("new_image") != newID {
				t.Fatalf("new image %q, want %s", recs["web"].str("new_image"), newID)
			}
			if len(eng.creates) != 1 || eng.creates[0].NetworkingConfig == nil || len(eng.creates[0].NetworkingConfig.EndpointsConfig) != tt.atCreate {
				t.Fatalf("create bodies %+v", eng.creates)
			}
			if n := eng.count("POST /v" + negotiate(tt.maxAPI, "") + "/networks/"); n != tt.joined {
				t.Fatalf("%d network connects, want %d", n, tt.joined)
			}
			eng.mu.Lock()
			defer eng.mu.Unlock()
			i := eng.find("web")
			if i < 0 || eng.containers[i].Image != newID || !eng.containers[i].State.Running || len(eng.containers[i].NetworkSettings.Networks) != 2 {
				t.Fatalf("web after the update: %+v", eng.containers[i])
			}
			for _, c := range eng.containers {
				if strings.Contains(c.Name, "_outpost-old") {
					t.Fatalf("aside copy left: %s", c.Name)
				}
			}
			if ep := eng.containers[i].NetworkSettings.Networks["backend"]; ep == nil || ep.IPAMConfig == nil || ep.IPAMConfig.IPv4Address != "172.30.0.10" || len(ep.Aliases) != 1 || ep.Aliases[0] != "api" {
				t.Fatalf("backend endpoint %+v: want the static address and the user alias only", ep)
			}
		})
	}
}

func TestFailedPullLeavesContainerUntouched(t *testing.T) {
	eng, _ := staleWeb(t, "1.12", "1.41")
	eng.mu.Lock()
	eng.pullable = map[string]string{}
	eng.mu.Unlock()
	recs, _, code := runOutpost(t, eng, nil, "--monitor-only=false", "--settle-time", "0", "--state-file", t.TempDir()+"/state.json", "web")
	if code != 1 || recs["web"].str("state") != "failed" || !strings.Contains(recs["web"].str("reason"), "not found") {
		t.Fatalf("exit %d, web %v", code, recs["web"])
	}
	for _, r := range eng.requests {
		if strings.Contains(r, "/stop") || strings.Contains(r, "/rename") || strings.Contains(r, "/create?") || strings.HasPrefix(r, "DELETE") {
			t.Fatalf("a failed pull must touch nothing, engine got %s", r)
		}
	}
}

func TestLabelsAndFlagsCombine(t *testing.T) {
	on := map[string]string{labelMonitorOnly: "true"}
	off := map[string]string{labelMonitorOnly: "false"}
	none := map[string]string{}
	for _, tt := range []struct {
		flag, precedence bool
		labels           map[string]string
		want             bool
	}{
		{false, false, none, false},
		{true, false, none, true},
		{false, false, on, true},
		{true, false, off, true}, // OR: the flag still holds
		{true, true, off, false}, // the label wins
		{false, true, on, true},
		{true, true, none, true},
	} {
		c := defaultConfig()
		c.labelTakePrecedence = tt.precedence
		if got := c.effective(tt.flag, tt.labels, labelMonitorOnly); got != tt.want {
			t.Errorf("flag %v precedence %v labels %v: %v, want %v", tt.flag, tt.precedence, tt.labels, got, tt.want)
		}
	}
}

func TestWarnOnHeadFailureLevels(t *testing.T) {
	hub, ghcr, own := mustRef(t, "nginx"), mustRef(t, "ghcr.io/o/a"), mustRef(t, "registry.example.com/a")
	for _, tt := range []struct {
		mode string
		ref  reference
		want slog.Level
	}{
		{"always", own, slog.LevelWarn},
		{"never", hub, slog.LevelDebug},
		{"auto", hub, slog.LevelWarn},
		{"auto", ghcr, slog.LevelWarn},
		{"auto", own, slog.LevelInfo},
	} {
		s := &session{cfg: defaultConfig()}
		s.cfg.warnOnHeadFailure = tt.mode
		if got := s.failureLevel(tt.ref); got != tt.want {
			t.Errorf("%s for %s: %v, want %v", tt.mode, tt.ref, got, tt.want)
		}
	}
}
