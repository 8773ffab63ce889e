package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
)

// The recorded containers (testdata/engine/fidelity, see its README.md) and the values their
// docker run options gave them.
const (
	recWideID  = "8bd58b303f6059a6c35b7b65fe8177a80375e367915dfb5a624284f7e318207d"
	recAnonCac = "269d48b9e8c10e84991fc9fae8d563a005431bcb530b0bbdc8ccafcd20c99c01" // -v /cache
	recAnonDat = "554cb3bdde1911c1b4bcbab03fa8f032b61908a037db159b423ee5fa3c3a1008" // image VOLUME /data
	recNewRef  = "example.test/app:2"
)

func recLoadContainer(t testing.TB, name string) container.InspectResponse {
	t.Helper()
	var c container.InspectResponse
	recLoadJSON(t, name+".json", &c)
	return c
}

func recLoadImage(t testing.TB) image.InspectResponse {
	t.Helper()
	var img image.InspectResponse
	recLoadJSON(t, "image.json", &img)
	if img.Config == nil {
		t.Fatal("image.json has no Config")
	}
	return img
}

func recLoadJSON(t testing.TB, file string, out any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "engine", "fidelity", file))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// recNameOf resolves the recorded container IDs the way the engine would.
func recNameOf(id string) (string, bool) {
	if id == recWideID {
		return "rec-wide", true
	}
	return "", false
}

func recEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Errorf("%s = %s, want %s", what, g, w)
	}
}

func recKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func TestPlanReplacement(t *testing.T) {
	img := recLoadImage(t)
	tests := []struct {
		name      string
		container string
		api       string
		mutate    func(c *container.InspectResponse)
		check     func(t *testing.T, r replacement, old container.InspectResponse)
	}{
		{"image is the reference, never an ID", "rec-wide", "1.41", nil, func(t *testing.T, r replacement, _ container.InspectResponse) {
			recEqual(t, "Image", r.body.Image, recNewRef)
			recEqual(t, "name", r.name, "rec-wide")
		}},
		{"env keeps user entries and drops the image's", "rec-wide", "1.41", nil, func(t *testing.T, r replacement, _ container.InspectResponse) {
			// APP_MODE=prod and PATH equal the image's; APP_LEVEL overrides it; EXTRA is new.
			recEqual(t, "Env", r.body.Env, []string{"APP_LEVEL=debug", "EXTRA=1"})
		}},
		{"labels drop the image's and outpost's own", "rec-wide", "1.41", nil, func(t *testing.T, r replacement, _ container.InspectResponse) {
			recEqual(t, "Labels", r.body.Labels, map[string]string{"org.example.tier": "frontend", "rec.custom": "yes"})
		}},
		{"volumes drop the image's", "rec-wide", "1.41", nil, func(t *testing.T, r replacement, _ container.InspectResponse) {
			recEqual(t, "Volumes", recKeys(r.body.Volumes), []string{"/cache"})
		}},
		{"exposed ports drop the image's unless published", "rec-wide", "1.41", nil, func(t *testing.T, r replacement, _ container.InspectResponse) {
			var got []string
			for p := range r.body.ExposedPorts {
				got = append(got, string(p))
			}
			slices.Sort(got)
			// 8080 is the image's but published; 9090/udp is only the image's.
			recEqual(t, "ExposedPorts", got, []string{"6060/tcp", "7070/tcp", "8080/tcp"})
		}},
		{"user cmd under the image entrypoint is kept", "rec-wide", "1.41", nil, func(t *testing.T, r replacement, _ container.InspectResponse) {
			recEqual(t, "Entrypoint", []string(r.body.Entrypoint), []string(nil))
			recEqual(t, "Cmd", []string(r.body.Cmd), []string{"--port", "9999"})
		}},
		{"user entrypoint keeps entrypoint and cmd", "rec-entry", "1.41", nil, func(t *testing.T, r replacement, _ container.InspectResponse) {
			recEqual(t, "Entrypoint", []string(r.body.Entrypoint), []string{"/app"})
			recEqual(t, "Cmd", []string(r.body.Cmd), []string{"serve"})
		}},
		{"image entrypoint and cmd are both cleared", "rec-host", "1.41", nil, func(t *testing.T, r replacement, _ container.InspectResponse) {
			recEqual(t, "Entrypoint", []string(r.body.Entrypoint), []string(nil))
			recEqual(t, "Cmd", []string(r.body.Cmd), []string(nil))
		}},
		{"user workdir and user are kept", "rec-wide", "1.41", nil, func(t *testing.T, r replacement, _ container.InspectResponse) {
			recEqual(t, "WorkingDir", r.body.WorkingDir, "/work")
			recEqual(t, "User", r.body.User, "1001")
		}},
		{"image workdir, user and stop signal are cleared", "rec-host", "1.41", nil, func(t *testing.T, r replacement, _ container.InspectResponse) {
			recEqual(t, "WorkingDir", r.body.WorkingDir, "")
			recEqual(t, "User", r.body.User, "")
			recEqual(t, "StopSignal", r.body.StopSignal, "")
		}},
		{"healthcheck keeps only the overridden fields", "rec-wide", "1.41", nil, func(t *testing.T, r replacement, _ container.InspectResponse) {
			recEqual(t, "Healthcheck", r.body.Healthcheck, &container.HealthConfig{Interval: 5 * time.Second, Retries: 7})
		}},
		{"image healthcheck is left to the new image", "rec-host", "1.41", nil, func(t *testing.T, r replacement, _ container.InspectResponse) {
			recEqual(t, "Healthcheck", r.body.Healthcheck, (*container.HealthConfig)(nil))
		}},
		{"stop timeout is the user's", "rec-wide", "1.41", nil, func(t *testing.T, r replacement, _ container.InspectResponse) {
			if r.body.StopTimeout == nil || *r.body.StopTimeout != 20 {
				t.Errorf("StopTimeout = %v, want 20", r.body.StopTimeout)
			}
		}},
		{"generated hostname is cleared", "rec-wide", "1.41", nil, func(t *testing.T, r replacement, _ container.InspectResponse) {
			recEqual(t, "Hostname", r.body.Hostname, "")
		}},
		{"user hostname and domainname are kept", "rec-host", "1.41", nil, func(t *testing.T, r replacement, _ container.InspectResponse) {
			recEqual(t, "Hostname", r.body.Hostname, "custom-host")
			recEqual(t, "Domainname", r.body.Domainname, "example.test")
		}},
		{"hostname is cleared with a UTS mode", "rec-entry", "1.41", func(c *container.InspectResponse) {
			c.Config.Hostname, c.Config.Domainname = "set-by-user", "example.test"
		}, func(t *testing.T, r replacement, _ container.InspectResponse) {
			recEqual(t, "Hostname", r.body.Hostname, "")
			recEqual(t, "Domainname", r.body.Domainname, "")
		}},
		{"container network mode: by name, no hostname, no ports, no endpoints", "rec-side", "1.41", nil, func(t *testing.T, r replacement, _ container.InspectResponse) {
			recEqual(t, "NetworkMode", r.body.HostConfig.NetworkMode, container.NetworkMode("container:rec-wide"))
			recEqual(t, "Hostname", r.body.Hostname, "") // the recording shows rec-wide's
			recEqual(t, "ExposedPorts", len(r.body.ExposedPorts), 0)
			recEqual(t, "NetworkingConfig", r.body.NetworkingConfig, (*network.NetworkingConfig)(nil))
			recEqual(t, "connect", len(r.connect), 0)
		}},
		{"links are in create's form", "rec-linked", "1.41", nil, func(t *testing.T, r replacement, _ container.InspectResponse) {
			recEqual(t, "Links", r.body.HostConfig.Links, []string{"rec-wide:db"})
		}},
		{"engine MACs are dropped", "rec-wide", "1.41", nil, func(t *testing.T, r replacement, _ container.InspectResponse) {
			recEqual(t, "MacAddress", r.body.MacAddress, "")
			for name, ep := range r.body.NetworkingConfig.EndpointsConfig {
				recEqual(t, name+" MacAddress", ep.MacAddress, "")
			}
			for name, ep := range r.connect {
				recEqual(t, name+" MacAddress", ep.MacAddress, "")
			}
		}},
		{"a MAC generated for the address is dropped from Config", "rec-host", "1.41", func(c *container.InspectResponse) {
			c.Config.MacAddress = "02:42:ac:11:00:04" // rec-host's bridge address is 172.17.0.4
		}, func(t *testing.T, r replacement, _ container.InspectResponse) {
			recEqual(t, "MacAddress", r.body.MacAddress, "")
		}},
		{"user MAC is kept in Config below 1.44", "rec-host", "1.41", func(c *container.InspectResponse) {
			c.Config.MacAddress = "02:42:ac:11:00:99"
			c.NetworkSettings.Networks["bridge"].MacAddress = "02:42:ac:11:00:99"
		}, func(t *testing.T, r replacement, _ container.InspectResponse) {
			recEqual(t, "MacAddress", r.body.MacAddress, "02:42:ac:11:00:99")
		}},
		{"user MAC moves to the endpoint from 1.44", "rec-host", "1.44", func(c *container.InspectResponse) {
			c.Config.MacAddress = "92:d0:c6:0a:29:33"
		}, func(t *testing.T, r replacement, _ container.InspectResponse) {
			recEqual(t, "MacAddress", r.body.MacAddress, "")
			recEqual(t, "bridge MacAddress", r.body.NetworkingConfig.EndpointsConfig["bridge"].MacAddress, "92:d0:c6:0a:29:33")
		}},
		{"user MAC set only on the endpoint is kept from 1.44", "rec-wide", "1.44", func(c *container.InspectResponse) {
			c.NetworkSettings.Networks["rec-net2"].MacAddress = "92:d0:c6:0a:29:34"
		}, func(t *testing.T, r replacement, _ container.InspectResponse) {
			recEqual(t, "rec-net2 MacAddress", r.body.NetworkingConfig.EndpointsConfig["rec-net2"].MacAddress, "92:d0:c6:0a:29:34")
			recEqual(t, "rec-net1 MacAddress", r.body.NetworkingConfig.EndpointsConfig["rec-net1"].MacAddress, "")
		}},
		{"user MAC known only on the endpoint goes to Config below 1.44", "rec-host", "1.41", func(c *container.InspectResponse) {
			c.NetworkSettings.Networks["bridge"].MacAddress = "92:d0:c6:0a:29:35"
		}, func(t *testing.T, r replacement, _ container.InspectResponse) {
			recEqual(t, "MacAddress", r.body.MacAddress, "92:d0:c6:0a:29:35")
		}},
		{"user MAC for a network not attached now goes to its endpoint from 1.44", "rec-wide", "1.44", func(c *container.InspectResponse) {
			c.HostConfig.NetworkMode = "rec-net3"
			c.Config.MacAddress = "92:d0:c6:0a:29:36"
		}, func(t *testing.T, r replacement, _ container.InspectResponse) {
			recEqual(t, "MacAddress", r.body.MacAddress, "")
			recEqual(t, "rec-net3", r.body.NetworkingConfig.EndpointsConfig["rec-net3"], &network.EndpointSettings{MacAddress: "92:d0:c6:0a:29:36"})
			recEqual(t, "create endpoints", recKeys(r.body.NetworkingConfig.EndpointsConfig), []string{"bridge", "rec-net1", "rec-net2", "rec-net3"})
		}},
		{"below 1.44: the network mode's endpoint at create, the rest connected", "rec-wide", "1.41", nil, func(t *testing.T, r replacement, _ container.InspectResponse) {
			recEqual(t, "NetworkMode", r.body.HostConfig.NetworkMode, container.NetworkMode("rec-net1"))
			recEqual(t, "create endpoints", recKeys(r.body.NetworkingConfig.EndpointsConfig), []string{"rec-net1"})
			recEqual(t, "connect", recKeys(r.connect), []string{"bridge", "rec-net2"})
			recEqual(t, "rec-net1", r.body.NetworkingConfig.EndpointsConfig["rec-net1"], &network.EndpointSettings{
				IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: "10.213.71.10"},
				Aliases:    []string{"web", "api"},
			})
			recEqual(t, "rec-net2", r.connect["rec-net2"], &network.EndpointSettings{
				IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: "10.213.72.10"},
				Aliases:    []string{"second"},
			})
			recEqual(t, "bridge", r.connect["bridge"], &network.EndpointSettings{})
		}},
		{"from 1.44: every endpoint at create", "rec-wide", "1.44", nil, func(t *testing.T, r replacement, _ container.InspectResponse) {
			recEqual(t, "create endpoints", recKeys(r.body.NetworkingConfig.EndpointsConfig), []string{"bridge", "rec-net1", "rec-net2"})
			recEqual(t, "connect", len(r.connect), 0)
			recEqual(t, "rec-net2 aliases", r.body.NetworkingConfig.EndpointsConfig["rec-net2"].Aliases, []string{"second"})
		}},
		{"default network mode creates on the bridge", "rec-linked", "1.41", nil, func(t *testing.T, r replacement, _ container.InspectResponse) {
			recEqual(t, "create endpoints", recKeys(r.body.NetworkingConfig.EndpointsConfig), []string{"bridge"})
			recEqual(t, "connect", len(r.connect), 0)
		}},
		{"network mode given as a network ID", "rec-wide", "1.41", func(c *container.InspectResponse) {
			c.HostConfig.NetworkMode = container.NetworkMode(c.NetworkSettings.Networks["rec-net1"].NetworkID[:12])
		}, func(t *testing.T, r replacement, _ container.InspectResponse) {
			recEqual(t, "create endpoints", recKeys(r.body.NetworkingConfig.EndpointsConfig), []string{"rec-net1"})
		}},
		{"no aliases on bridge, host or none", "rec-wide", "1.44", func(c *container.InspectResponse) {
			c.NetworkSettings.Networks["bridge"].Aliases = []string{"x", "8bd58b303f60"}
		}, func(t *testing.T, r replacement, _ container.InspectResponse) {
			recEqual(t, "bridge aliases", r.body.NetworkingConfig.EndpointsConfig["bridge"].Aliases, []string(nil))
		}},
		{"host network carries no endpoint", "rec-host", "1.44", func(c *container.InspectResponse) {
			c.HostConfig.NetworkMode = "host"
			c.Config.MacAddress = "92:d0:c6:0a:29:33"
			c.NetworkSettings.Networks = map[string]*network.EndpointSettings{"host": {Aliases: []string{"a"}}}
		}, func(t *testing.T, r replacement, _ container.InspectResponse) {
			recEqual(t, "NetworkingConfig", r.body.NetworkingConfig, (*network.NetworkingConfig)(nil))
			recEqual(t, "connect", len(r.connect), 0)
			recEqual(t, "MacAddress", r.body.MacAddress, "")
		}},
		{"none network carries no endpoint", "rec-host", "1.41", func(c *container.InspectResponse) {
			c.HostConfig.NetworkMode = "none"
			c.NetworkSettings.Networks = map[string]*network.EndpointSettings{"none": {Aliases: []string{"a"}}}
		}, func(t *testing.T, r replacement, _ container.InspectResponse) {
			recEqual(t, "NetworkingConfig", r.body.NetworkingConfig, (*network.NetworkingConfig)(nil))
			recEqual(t, "connect", len(r.connect), 0)
		}},
		{"endpoint links and driver options are kept", "rec-wide", "1.41", func(c *container.InspectResponse) {
			ep := c.NetworkSettings.Networks["rec-net2"]
			ep.Links = []string{"/rec-host:/rec-wide/h"}
			ep.DriverOpts = map[string]string{"com.example.opt": "1"}
		}, func(t *testing.T, r replacement, _ container.InspectResponse) {
			recEqual(t, "Links", r.connect["rec-net2"].Links, []string{"rec-host:h"})
			recEqual(t, "DriverOpts", r.connect["rec-net2"].DriverOpts, map[string]string{"com.example.opt": "1"})
		}},
		{"host config is kept as it was", "rec-wide", "1.41", nil, func(t *testing.T, r replacement, old container.InspectResponse) {
			got, want := *r.body.HostConfig, *old.HostConfig
			got.Binds, want.Binds = nil, nil // checked below
			recEqual(t, "HostConfig", got, want)
		}},
		{"anonymous volumes are carried by name", "rec-wide", "1.41", nil, func(t *testing.T, r replacement, _ container.InspectResponse) {
			recEqual(t, "Binds", r.body.HostConfig.Binds, []string{"rec-data:/var/lib/rec", recAnonCac + ":/cache", recAnonDat + ":/data"})
		}},
		{"read-only anonymous volume stays read-only", "rec-wide", "1.41", func(c *container.InspectResponse) {
			for i := range c.Mounts {
				c.Mounts[i].RW = false
			}
		}, func(t *testing.T, r replacement, _ container.InspectResponse) {
			recEqual(t, "Binds", r.body.HostConfig.Binds, []string{"rec-data:/var/lib/rec", recAnonCac + ":/cache:ro", recAnonDat + ":/data:ro"})
		}},
		{"anonymous volume already bound or mounted is not added again", "rec-wide", "1.41", func(c *container.InspectResponse) {
			c.HostConfig.Binds = append(c.HostConfig.Binds, recAnonDat+":/data")
			c.HostConfig.Mounts = append(c.HostConfig.Mounts, mount.Mount{Type: mount.TypeVolume, Source: recAnonCac, Target: "/cache/"})
		}, func(t *testing.T, r replacement, _ container.InspectResponse) {
			recEqual(t, "Binds", r.body.HostConfig.Binds, []string{"rec-data:/var/lib/rec", recAnonDat + ":/data"})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := recLoadContainer(t, tc.container)
			if tc.mutate != nil {
				tc.mutate(&old)
			}
			r, err := planReplacement(old, img, recNewRef, tc.api, recNameOf)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, r, old)
		})
	}
}

// TestPlanReplacementLeavesInputAlone: the plan is computed on copies.
func TestPlanReplacementLeavesInputAlone(t *testing.T) {
	img := recLoadImage(t)
	for _, name := range []string{"rec-wide", "rec-entry", "rec-host", "rec-side", "rec-linked"} {
		old := recLoadContainer(t, name)
		before, _ := json.Marshal(old)
		imgBefore, _ := json.Marshal(img)
		r, err := planReplacement(old, img, recNewRef, "1.44", recNameOf)
		if err != nil {
			t.Fatal(err)
		}
		r.body.Env = append(r.body.Env, "X=1")
		after, _ := json.Marshal(old)
		imgAfter, _ := json.Marshal(img)
		if string(before) != string(after) || string(imgBefore) != string(imgAfter) {
			t.Errorf("%s: planReplacement changed its input", name)
		}
	}
}

func TestPlanReplacementErrors(t *testing.T) {
	img := recLoadImage(t)
	side := recLoadContainer(t, "rec-side")
	if _, err := planReplacement(side, img, recNewRef, "1.41", func(string) (string, bool) { return "", false }); err == nil || !strings.Contains(err.Error(), "container:"+recWideID) {
		t.Errorf("unresolvable container network: err = %v", err)
	}
	if _, err := planReplacement(side, img, "", "1.41", recNameOf); err == nil {
		t.Error("empty image reference accepted")
	}
	wide := recLoadContainer(t, "rec-wide")
	wide.Config = nil
	if _, err := planReplacement(wide, img, recNewRef, "1.41", recNameOf); err == nil {
		t.Error("inspect answer without Config accepted")
	}
}

// TestPlanReplacementUnknownImage: without the old image's config nothing can be told apart from
// the user's settings, so everything is carried (the engine-generated values still go).
func TestPlanReplacementUnknownImage(t *testing.T) {
	old := recLoadContainer(t, "rec-wide")
	r, err := planReplacement(old, image.InspectResponse{}, recNewRef, "1.41", recNameOf)
	if err != nil {
		t.Fatal(err)
	}
	recEqual(t, "Env", r.body.Env, old.Config.Env)
	recEqual(t, "Entrypoint", r.body.Entrypoint, old.Config.Entrypoint)
	recEqual(t, "Hostname", r.body.Hostname, "")
	recEqual(t, "Labels", r.body.Labels, map[string]string{"org.example.team": "core", "org.example.tier": "frontend", "rec.custom": "yes"})
}

// TestPlanReplacementIdempotent runs each recorded container through three simulated
// replacements: a plan applied to the engine's view of the previous plan's successor must not
// change, so nothing accumulates from one update to the next.
func TestPlanReplacementIdempotent(t *testing.T) {
	img := recLoadImage(t)
	for _, api := range []string{"1.41", "1.44"} {
		for _, name := range []string{"rec-wide", "rec-entry", "rec-host", "rec-side", "rec-linked"} {
			old := recLoadContainer(t, name)
			first, err := planReplacement(old, img, recNewRef, api, recNameOf)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := json.Marshal(first.body)
			r := first
			for round := 1; round <= 3; round++ {
				id := strings.Repeat(string(rune('a'+round)), 64)
				next := recSimulateCreate(r, img, id, old)
				r, err = planReplacement(next, img, recNewRef, api, recNameOf)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := json.Marshal(r.body)
				if string(got) != string(want) {
					t.Fatalf("%s API %s round %d:\n got %s\nwant %s", name, api, round, got, want)
				}
				recEqual(t, name+" connect", r.connect, first.connect)
			}
		}
	}
}

// recSimulateCreate is what the engine's inspect reports for a container created from r: the
// image's defaults merged into the config as the engine merges them, a generated hostname, a
// short-ID alias on user networks, addresses and engine MACs on every endpoint, and mount points
// for the binds (old supplies the addresses and mounts the engine would give again).
func recSimulateCreate(r replacement, img image.InspectResponse, id string, old container.InspectResponse) container.InspectResponse {
	var cfg container.Config
	var hc container.HostConfig
	if err := deepCopy(r.body.Config, &cfg); err != nil {
		panic(err)
	}
	if err := deepCopy(r.body.HostConfig, &hc); err != nil {
		panic(err)
	}
	for _, kv := range img.Config.Env {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.ContainsFunc(cfg.Env, func(u string) bool { return strings.HasPrefix(u, k+"=") }) {
			cfg.Env = append(cfg.Env, kv)
		}
	}
	for k, v := range img.Config.Labels {
		if _, ok := cfg.Labels[k]; !ok {
			if cfg.Labels == nil {
				cfg.Labels = map[string]string{}
			}
			cfg.Labels[k] = v
		}
	}
	for k := range img.Config.Volumes {
		cfg.Volumes = recAddKey(cfg.Volumes, k)
	}
	for k := range img.Config.ExposedPorts {
		if !hc.NetworkMode.IsContainer() {
			cfg.ExposedPorts = recAddKey(cfg.ExposedPorts, k)
		}
	}
	if len(cfg.Entrypoint) == 0 {
		if len(cfg.Cmd) == 0 {
			cfg.Cmd = img.Config.Cmd
		}
		cfg.Entrypoint = img.Config.Entrypoint
	}
	if cfg.WorkingDir == "" {
		cfg.WorkingDir = img.Config.WorkingDir
	}
	if cfg.User == "" {
		cfg.User = img.Config.User
	}
	if cfg.StopSignal == "" {
		cfg.StopSignal = img.Config.StopSignal
	}
	if ih := img.Config.Healthcheck; ih != nil {
		h := container.HealthConfig{}
		if cfg.Healthcheck != nil {
			h = *cfg.Healthcheck
		}
		if len(h.Test) == 0 {
			h.Test = ih.Test
		}
		if h.Interval == 0 {
			h.Interval = ih.Interval
		}
		if h.Timeout == 0 {
			h.Timeout = ih.Timeout
		}
		if h.StartPeriod == 0 {
			h.StartPeriod = ih.StartPeriod
		}
		if h.Retries == 0 {
			h.Retries = ih.Retries
		}
		cfg.Healthcheck = &h
	}
	if cfg.Hostname == "" {
		cfg.Hostname = id[:12]
	}
	cfg.Image = r.body.Image

	nets := map[string]*network.EndpointSettings{}
	add := func(name string, es *network.EndpointSettings) {
		ep := *es
		was := old.NetworkSettings.Networks[name]
		ep.IPAddress, ep.NetworkID = was.IPAddress, was.NetworkID
		if ep.MacAddress == "" {
			ep.MacAddress = was.MacAddress
		}
		if name != "bridge" {
			ep.Aliases = append(slices.Clone(ep.Aliases), id[:12])
		}
		nets[name] = &ep
	}
	if r.body.NetworkingConfig != nil {
		for name, es := range r.body.NetworkingConfig.EndpointsConfig {
			add(name, es)
		}
	}
	for name, es := range r.connect {
		add(name, es)
	}
	var mounts []container.MountPoint
	for _, b := range hc.Binds {
		parts := strings.Split(b, ":")
		mounts = append(mounts, container.MountPoint{Type: mount.TypeVolume, Name: parts[0], Destination: parts[1], RW: len(parts) < 3})
	}
	return container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{ID: id, Name: "/" + r.name, HostConfig: &hc},
		Config:            &cfg,
		Mounts:            mounts,
		NetworkSettings:   &container.NetworkSettings{Networks: nets},
	}
}

// recAddKey adds k to a set keyed by a string type (nat.Port included), making the set if needed.
func recAddKey[K ~string](m map[K]struct{}, k string) map[K]struct{} {
	if m == nil {
		m = map[K]struct{}{}
	}
	m[K(k)] = struct{}{}
	return m
}

// The real-engine test's names; everything it creates starts with "rec-e2e-".
const (
	recE2EImage = "rec-e2e:1"
	recE2EWide  = "rec-e2e-wide"
	recE2ESide  = "rec-e2e-side"
	recE2ELink  = "rec-e2e-linked"
	recE2EMAC   = "02:42:0a:d5:51:63" // user-set; rec-e2e-wide's address would give 02:42:0a:d5:51:0a
)

// recE2EWideBody is rec-wide of the recording as a create body: every option a user sets.
const recE2EWideBody = `{
  "Image": "rec-e2e:1",
  "Env": ["APP_MODE=prod", "APP_LEVEL=debug", "EXTRA=1"],
  "Cmd": ["--port", "9999"],
  "User": "1001",
  "WorkingDir": "/work",
  "ExposedPorts": {"6060/tcp": {}, "7070/tcp": {}, "8080/tcp": {}},
  "Volumes": {"/cache": {}},
  "Labels": {"org.example.team": "core", "org.example.tier": "frontend", "rec.custom": "yes", "outpost.internal.replacing": "x"},
  "Healthcheck": {"Interval": 5000000000, "Retries": 7},
  "StopTimeout": 20,
  "MacAddress": "02:42:0a:d5:51:63",
  "HostConfig": {
    "NetworkMode": "rec-e2e-net1",
    "Binds": ["rec-e2e-data:/var/lib/rec"],
    "Mounts": [{"Type": "bind", "Source": "/etc/os-release", "Target": "/etc/host-os-release", "ReadOnly": true}],
    "Tmpfs": {"/run/rec": "size=1m"},
    "PortBindings": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "38490"}], "7070/tcp": [{"HostPort": "38491"}]},
    "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
    "Memory": 67108864, "MemoryReservation": 33554432, "NanoCpus": 500000000, "CpuShares": 512,
    "CapAdd": ["NET_ADMIN"], "CapDrop": ["MKNOD"],
    "LogConfig": {"Type": "json-file", "Config": {"max-size": "1m", "max-file": "2"}},
    "ExtraHosts": ["db.example:10.9.8.7"],
    "Dns": ["10.9.8.53"], "DnsSearch": ["example.test"], "DnsOptions": ["ndots:2"]
  },
  "NetworkingConfig": {"EndpointsConfig": {"rec-e2e-net1": {"IPAMConfig": {"IPv4Address": "10.213.81.10"}, "Aliases": ["web", "api"]}}}
}`

// recEngine is a minimal Engine API 1.41 client on the unix socket, for TestRecreateOnEngine.
type recEngine struct {
	t       *testing.T
	hc      *http.Client
	volumes []string // engine-generated volumes of the containers seen, for the cleanup
}

func recDial(t *testing.T, sock string) *recEngine {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &recEngine{t: t, hc: &http.Client{Transport: tr, Timeout: 2 * time.Minute}}
}

// call sends one API call; body is JSON (a string is sent as it is) and out receives the answer.
func (e *recEngine) call(method, p string, q url.Values, body, out any) error {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(j)
	}
	u := "http://docker/v1.41" + p
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 {
		return fmt.Errorf("%s %s: %s: %s", method, p, resp.Status, bytes.TrimSpace(msg))
	}
	if out != nil && resp.StatusCode != http.StatusNoContent {
		return json.Unmarshal(msg, out)
	}
	return nil
}

func (e *recEngine) must(method, p string, q url.Values, body, out any) {
	e.t.Helper()
	if err := e.call(method, p, q, body, out); err != nil {
		e.t.Fatal(err)
	}
}

func (e *recEngine) inspect(name string) container.InspectResponse {
	e.t.Helper()
	var c container.InspectResponse
	e.must(http.MethodGet, "/containers/"+name+"/json", nil, nil, &c)
	for _, v := range recAnonymous(c) {
		if !slices.Contains(e.volumes, v) {
			e.volumes = append(e.volumes, v)
		}
	}
	return c
}

// nameOf resolves a container ID through the engine, as outpost does before renaming anything.
func (e *recEngine) nameOf(id string) (string, bool) {
	var c container.InspectResponse
	if err := e.call(http.MethodGet, "/containers/"+id+"/json", nil, nil, &c); err != nil {
		return "", false
	}
	return strings.TrimPrefix(c.Name, "/"), true
}

// build builds the fidelity image with the legacy builder from the Dockerfile in testdata and a
// static build of its app.
func (e *recEngine) build(tag string) {
	e.t.Helper()
	dir := e.t.TempDir()
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "app"), "./testdata/engine/fidelity/app")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		e.t.Fatalf("build the test app: %v\n%s", err, out)
	}
	var ctx bytes.Buffer
	tw := tar.NewWriter(&ctx)
	for _, f := range []struct{ src, name string }{{"testdata/engine/fidelity/Dockerfile", "Dockerfile"}, {filepath.Join(dir, "app"), "app"}} {
		b, err := os.ReadFile(f.src)
		if err != nil {
			e.t.Fatal(err)
		}
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o755, Size: int64(len(b))}); err != nil {
			e.t.Fatal(err)
		}
		tw.Write(b)
	}
	if err := tw.Close(); err != nil {
		e.t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://docker/v1.41/build?"+url.Values{"t": {tag}, "rm": {"1"}, "forcerm": {"1"}, "nocache": {"1"}}.Encode(), &ctx)
	req.Header.Set("Content-Type", "application/x-tar")
	resp, err := e.hc.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		e.t.Fatalf("build: %s: %s", resp.Status, b)
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var line struct{ Error string }
		if err := dec.Decode(&line); err == io.EOF {
			return
		} else if err != nil {
			e.t.Fatalf("build: %v", err)
		}
		if line.Error != "" {
			e.t.Fatalf("build: %s", line.Error)
		}
	}
}

// replace runs the replacement the way outpost does: stop, rename aside, create the successor
// under the name, connect its other networks, start it. It returns the aside copy's ID.
func (e *recEngine) replace(r replacement) string {
	e.t.Helper()
	old := e.inspect(r.name)
	e.must(http.MethodPost, "/containers/"+old.ID+"/stop", url.Values{"t": {"10"}}, nil, nil)
	e.must(http.MethodPost, "/containers/"+old.ID+"/rename", url.Values{"name": {r.name + "-old"}}, nil, nil)
	var created container.CreateResponse
	e.must(http.MethodPost, "/containers/create", url.Values{"name": {r.name}}, r.body, &created)
	for net, es := range r.connect {
		e.must(http.MethodPost, "/networks/"+net+"/connect", nil, network.ConnectOptions{Container: created.ID, EndpointConfig: es}, nil)
	}
	e.must(http.MethodPost, "/containers/"+created.ID+"/start", nil, nil, nil)
	return old.ID
}

// TestRecreateOnEngine replaces a container carrying every kind of user setting three times on a
// real engine and checks after each round that every setting survived and nothing piled up.
func TestRecreateOnEngine(t *testing.T) {
	if os.Getenv("OUTPOST_E2E") != "1" {
		t.Skip("set OUTPOST_E2E=1 to run against the engine at /var/run/docker.sock")
	}
	const sock = "/var/run/docker.sock"
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("OUTPOST_E2E=1 but no engine: %v", err)
	}
	e := recDial(t, sock)
	t.Cleanup(func() {
		for _, c := range []string{recE2ELink, recE2ELink + "-old", recE2ESide, recE2ESide + "-old", recE2EWide, recE2EWide + "-old"} {
			e.call(http.MethodDelete, "/containers/"+c, url.Values{"force": {"1"}, "v": {"1"}}, nil, nil)
		}
		for _, v := range append(e.volumes, "rec-e2e-data") {
			e.call(http.MethodDelete, "/volumes/"+v, nil, nil, nil)
		}
		for _, n := range []string{"rec-e2e-net1", "rec-e2e-net2"} {
			e.call(http.MethodDelete, "/networks/"+n, nil, nil, nil)
		}
		e.call(http.MethodDelete, "/images/"+recE2EImage, nil, nil, nil)
	})

	e.build(recE2EImage)
	for i, n := range []string{"rec-e2e-net1", "rec-e2e-net2"} {
		body := fmt.Sprintf(`{"Name": %q, "CheckDuplicate": true, "IPAM": {"Config": [{"Subnet": "10.213.%d.0/24"}]}}`, n, 81+i)
		e.must(http.MethodPost, "/networks/create", nil, body, nil)
	}
	e.must(http.MethodPost, "/volumes/create", nil, `{"Name": "rec-e2e-data"}`, nil)
	e.must(http.MethodPost, "/containers/create", url.Values{"name": {recE2EWide}}, recE2EWideBody, nil)
	e.must(http.MethodPost, "/networks/rec-e2e-net2/connect", nil, `{"Container": "rec-e2e-wide", "EndpointConfig": {"IPAMConfig": {"IPv4Address": "10.213.82.10"}, "Aliases": ["second"]}}`, nil)
	e.must(http.MethodPost, "/networks/bridge/connect", nil, `{"Container": "rec-e2e-wide"}`, nil)
	e.must(http.MethodPost, "/containers/"+recE2EWide+"/start", nil, nil, nil)
	e.must(http.MethodPost, "/containers/create", url.Values{"name": {recE2ESide}}, `{"Image": "rec-e2e:1", "HostConfig": {"NetworkMode": "container:rec-e2e-wide"}}`, nil)
	e.must(http.MethodPost, "/containers/"+recE2ESide+"/start", nil, nil, nil)

	orig := e.inspect(recE2EWide)
	if n := len(recAnonymous(orig)); n != 2 {
		t.Fatalf("want anonymous volumes for /cache and /data, got mounts %+v", orig.Mounts)
	}
	var img image.InspectResponse
	e.must(http.MethodGet, "/images/"+orig.Image+"/json", nil, nil, &img)

	var firstWide, firstSide []byte
	for round := 1; round <= 3; round++ {
		cur := e.inspect(recE2EWide)
		wide, err := planReplacement(cur, img, recE2EImage, "1.41", e.nameOf)
		if err != nil {
			t.Fatal(err)
		}
		// The side container names its network container by ID: resolve it before renaming.
		side, err := planReplacement(e.inspect(recE2ESide), img, recE2EImage, "1.41", e.nameOf)
		if err != nil {
			t.Fatal(err)
		}
		w, _ := json.Marshal(wide)
		s, _ := json.Marshal(side)
		wb, _ := json.Marshal(wide.body)
		sb, _ := json.Marshal(side.body)
		if round == 1 {
			firstWide, firstSide = wb, sb
		} else if !bytes.Equal(wb, firstWide) || !bytes.Equal(sb, firstSide) {
			t.Errorf("round %d: the plan changed:\nwide %s\nwas  %s\nside %s\nwas  %s", round, w, firstWide, s, firstSide)
		}

		e.must(http.MethodPost, "/containers/"+recE2ESide+"/stop", url.Values{"t": {"10"}}, nil, nil)
		oldWide := e.replace(wide)
		oldSide := e.replace(side)
		for _, id := range []string{oldSide, oldWide} {
			e.must(http.MethodDelete, "/containers/"+id, url.Values{"force": {"1"}}, nil, nil)
		}

		now := e.inspect(recE2EWide)
		recCompareUserSettings(t, round, orig, now, img)
		sideNow := e.inspect(recE2ESide)
		if want := container.NetworkMode("container:" + now.ID); sideNow.HostConfig.NetworkMode != want {
			t.Errorf("round %d: side network mode %s, want %s", round, sideNow.HostConfig.NetworkMode, want)
		}
		if !sideNow.State.Running {
			t.Errorf("round %d: side container not running: %+v", round, sideNow.State)
		}
	}

	// A legacy link: create wants "name:alias" where inspect says "/name:/self/alias".
	e.must(http.MethodPost, "/containers/create", url.Values{"name": {recE2ELink}}, `{"Image": "rec-e2e:1", "HostConfig": {"Links": ["rec-e2e-wide:db"]}}`, nil)
	e.must(http.MethodPost, "/containers/"+recE2ELink+"/start", nil, nil, nil)
	linked, err := planReplacement(e.inspect(recE2ELink), img, recE2EImage, "1.41", e.nameOf)
	if err != nil {
		t.Fatal(err)
	}
	e.must(http.MethodDelete, "/containers/"+e.replace(linked), url.Values{"force": {"1"}}, nil, nil)
	if got := e.inspect(recE2ELink).HostConfig.Links; !slices.Equal(got, []string{"/rec-e2e-wide:/rec-e2e-linked/db"}) {
		t.Errorf("links after replacement: %q", got)
	}
}

// recAnonymous names the engine-generated volumes mounted in c. The test removes them itself:
// removing a container does not remove a volume that it mounts by name, as successors do.
func recAnonymous(c container.InspectResponse) []string {
	var names []string
	for _, m := range c.Mounts {
		if m.Type == mount.TypeVolume && len(m.Name) == 64 && isHex(m.Name) {
			names = append(names, m.Name)
		}
	}
	return names
}

// recCompareUserSettings checks that now carries every setting the user gave orig, with nothing
// accumulated, and that engine-generated values are now's own.
func recCompareUserSettings(t *testing.T, round int, orig, now container.InspectResponse, img image.InspectResponse) {
	t.Helper()
	at := func(what string) string { return fmt.Sprintf("round %d: %s", round, what) }
	if !now.State.Running {
		t.Errorf("%s: %+v", at("not running"), now.State)
	}
	oc, nc, oh, nh := orig.Config, now.Config, orig.HostConfig, now.HostConfig
	recEqual(t, at("Image"), nc.Image, recE2EImage)
	userEnv := func(env []string) []string {
		return slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return slices.Contains(img.Config.Env, kv) })
	}
	recEqual(t, at("user Env"), userEnv(nc.Env), userEnv(oc.Env))
	recEqual(t, at("Env length"), len(nc.Env), len(oc.Env))
	recEqual(t, at("Cmd"), nc.Cmd, oc.Cmd)
	recEqual(t, at("Entrypoint"), nc.Entrypoint, oc.Entrypoint)
	recEqual(t, at("User"), nc.User, oc.User)
	recEqual(t, at("WorkingDir"), nc.WorkingDir, oc.WorkingDir)
	recEqual(t, at("ExposedPorts"), nc.ExposedPorts, oc.ExposedPorts)
	recEqual(t, at("Volumes"), nc.Volumes, oc.Volumes)
	recEqual(t, at("Healthcheck"), nc.Healthcheck, oc.Healthcheck)
	recEqual(t, at("StopSignal"), nc.StopSignal, oc.StopSignal)
	recEqual(t, at("StopTimeout"), nc.StopTimeout, oc.StopTimeout)
	wantLabels := maps.Clone(oc.Labels)
	delete(wantLabels, internalLabelPrefix+"replacing")
	recEqual(t, at("Labels"), nc.Labels, wantLabels)
	recEqual(t, at("Hostname"), nc.Hostname, now.ID[:12])
	recEqual(t, at("MacAddress"), nc.MacAddress, recE2EMAC)

	recEqual(t, at("PortBindings"), nh.PortBindings, oh.PortBindings)
	recEqual(t, at("Mounts"), nh.Mounts, oh.Mounts)
	recEqual(t, at("Tmpfs"), nh.Tmpfs, oh.Tmpfs)
	recEqual(t, at("RestartPolicy"), nh.RestartPolicy, oh.RestartPolicy)
	recEqual(t, at("Memory"), []int64{nh.Memory, nh.MemoryReservation}, []int64{oh.Memory, oh.MemoryReservation})
	recEqual(t, at("CPU"), []int64{nh.NanoCPUs, nh.CPUShares}, []int64{oh.NanoCPUs, oh.CPUShares})
	recEqual(t, at("CapAdd"), nh.CapAdd, oh.CapAdd)
	recEqual(t, at("CapDrop"), nh.CapDrop, oh.CapDrop)
	recEqual(t, at("LogConfig"), nh.LogConfig, oh.LogConfig)
	recEqual(t, at("ExtraHosts"), nh.ExtraHosts, oh.ExtraHosts)
	recEqual(t, at("DNS"), [][]string{nh.DNS, nh.DNSSearch, nh.DNSOptions}, [][]string{oh.DNS, oh.DNSSearch, oh.DNSOptions})
	if !slices.Contains(nh.Binds, oh.Binds[0]) || len(nh.Binds) != len(oh.Binds)+2 {
		t.Errorf("%s = %q; want %q plus the two anonymous volumes", at("Binds"), nh.Binds, oh.Binds)
	}
	type mp struct {
		typ        mount.Type
		name, dest string
		rw         bool
	}
	mounts := func(ms []container.MountPoint) []mp {
		var out []mp
		for _, m := range ms {
			out = append(out, mp{m.Type, m.Name, m.Destination, m.RW})
		}
		slices.SortFunc(out, func(a, b mp) int { return strings.Compare(a.dest, b.dest) })
		return out
	}
	recEqual(t, at("mount points (volumes by name)"), fmt.Sprint(mounts(now.Mounts)), fmt.Sprint(mounts(orig.Mounts)))

	on, nn := orig.NetworkSettings.Networks, now.NetworkSettings.Networks
	recEqual(t, at("networks"), recKeys(nn), recKeys(on))
	for name, o := range on {
		n := nn[name]
		if n == nil {
			continue
		}
		recEqual(t, at(name+" IPAMConfig"), recStaticIP(n), recStaticIP(o))
		var want []string
		if name != "bridge" {
			want = append(slices.DeleteFunc(slices.Clone(o.Aliases), func(a string) bool { return a == orig.ID[:12] }), now.ID[:12])
		}
		got := slices.Clone(n.Aliases)
		slices.Sort(got)
		slices.Sort(want)
		if len(got) == 0 {
			got = nil
		}
		recEqual(t, at(name+" Aliases"), got, want)
	}
	recEqual(t, at("rec-e2e-net1 MacAddress"), nn["rec-e2e-net1"].MacAddress, recE2EMAC)
	for _, name := range []string{"rec-e2e-net2", "bridge"} {
		if ep := nn[name]; ep != nil && !generatedMAC(ep.MacAddress, ep.IPAddress) {
			t.Errorf("%s: %s for %s", at(name+" MacAddress not the engine's"), ep.MacAddress, ep.IPAddress)
		}
	}
}

func recStaticIP(ep *network.EndpointSettings) string {
	if ep.IPAMConfig == nil {
		return ""
	}
	return ep.IPAMConfig.IPv4Address
}
