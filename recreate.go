// recreate.go owns the plan for a container's successor: from the old container's inspect answer
// and the old image's defaults it computes the create body (and the networks to connect after
// create) that keeps everything the user set and leaves everything else to the new image. It is
// pure: no engine calls, so the plan can be printed and tested on recorded inspect answers.
package main

import (
	"encoding/json"
	"fmt"
	"net"
	"path"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
)

// internalLabelPrefix marks outpost's own bookkeeping labels (an aside copy, a replacement in
// progress); they describe the old container and must not pass to its successor.
const internalLabelPrefix = "outpost.internal."

// multiNetworkCreateAPI is the first Engine API version that takes more than one endpoint at create.
const multiNetworkCreateAPI = "1.44"

// replacement is how to create a container's successor: the create body, and the networks to
// connect after create when the API version allows only one at create time.
type replacement struct {
	name    string                               // the container's name without "/"
	body    container.CreateRequest              // POST /containers/create body
	connect map[string]*network.EndpointSettings // network name -> settings, connected after create (API < 1.44)
}

// zeroOf returns a pointer to a new zero value of what p points at.
func zeroOf[T any](_ *T) *T { return new(T) }

// planReplacement builds the successor of old (its inspect answer) running imageRef, given the
// OLD image's config (image inspect .Config; nil when unknown, and then nothing is taken for an
// image default) and the Engine API version in use. nameOf resolves a container ID to its name
// without "/", for a network mode that joins another container.
func planReplacement(old container.InspectResponse, oldImage image.InspectResponse, imageRef, apiVersion string, nameOf func(id string) (string, bool)) (replacement, error) {
	if old.ContainerJSONBase == nil || old.Config == nil || old.HostConfig == nil {
		return replacement{}, fmt.Errorf("plan successor of %q: inspect answer lacks Config or HostConfig", old.ID)
	}
	if imageRef == "" {
		return replacement{}, fmt.Errorf("plan successor of %s: no image reference", old.Name)
	}
	// Deep copies: the caller's inspect answer stays untouched.
	var cfg container.Config
	var hc container.HostConfig
	if err := deepCopy(old.Config, &cfg); err != nil {
		return replacement{}, fmt.Errorf("plan successor of %s: %w", old.Name, err)
	}
	if err := deepCopy(old.HostConfig, &hc); err != nil {
		return replacement{}, fmt.Errorf("plan successor of %s: %w", old.Name, err)
	}

	mode, err := netMode(hc.NetworkMode, nameOf)
	if err != nil {
		return replacement{}, fmt.Errorf("plan successor of %s: %w", old.Name, err)
	}
	hc.NetworkMode = mode

	cfg.Image = imageRef
	stripImageDefaults(&cfg, oldImage, hc)
	stripGeneratedHostname(&cfg, old.ID, hc)
	hc.Links = createLinks(hc.Links)
	hc.Binds = append(hc.Binds, anonymousVolumeBinds(old.Mounts, hc.Binds, hc.Mounts)...)

	endpoints, connect, mac := planNetworks(old, mode, apiVersion)
	cfg.MacAddress = mac

	r := replacement{
		name:    strings.TrimPrefix(old.Name, "/"),
		body:    container.CreateRequest{Config: &cfg, HostConfig: &hc},
		connect: connect,
	}
	if len(endpoints) > 0 {
		r.body.NetworkingConfig = &network.NetworkingConfig{EndpointsConfig: endpoints}
	}
	return r, nil
}

func deepCopy(in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("copy inspect answer: %w", err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("copy inspect answer: %w", err)
	}
	return nil
}

// netMode rewrites container:<id> to container:<name>, so the successor joins whatever container
// holds that name then, surviving the other container's own recreation.
func netMode(mode container.NetworkMode, nameOf func(string) (string, bool)) (container.NetworkMode, error) {
	if !mode.IsContainer() {
		return mode, nil
	}
	ref := mode.ConnectedContainer()
	if nameOf != nil {
		if name, ok := nameOf(ref); ok {
			return container.NetworkMode("container:" + strings.TrimPrefix(name, "/")), nil
		}
	}
	if isHex(ref) && len(ref) >= 12 {
		return "", fmt.Errorf("network mode container:%s: no name known for that container", ref)
	}
	return mode, nil // already a name
}

// stripImageDefaults clears every Config value the old image supplied, so that the new image's
// defaults apply instead; what remains is what the user set.
func stripImageDefaults(cfg *container.Config, oldImage image.InspectResponse, hc container.HostConfig) {
	img := oldImage.Config
	if img == nil {
		img = zeroOf(img) // an unknown image: every value counts as the user's
	}
	cfg.Env = slices.DeleteFunc(cfg.Env, func(kv string) bool { return slices.Contains(img.Env, kv) })
	if len(cfg.Env) == 0 {
		cfg.Env = nil
	}
	for k, v := range cfg.Labels {
		if iv, ok := img.Labels[k]; (ok && iv == v) || strings.HasPrefix(k, internalLabelPrefix) {
			delete(cfg.Labels, k)
		}
	}
	if len(cfg.Labels) == 0 {
		cfg.Labels = nil
	}
	for k := range cfg.Volumes {
		if _, ok := img.Volumes[k]; ok {
			delete(cfg.Volumes, k)
		}
	}
	if len(cfg.Volumes) == 0 {
		cfg.Volumes = nil
	}
	for p := range cfg.ExposedPorts {
		_, fromImage := img.ExposedPorts[string(p)]
		_, bound := hc.PortBindings[p]
		if fromImage && !bound {
			delete(cfg.ExposedPorts, p)
		}
	}
	if len(cfg.ExposedPorts) == 0 {
		cfg.ExposedPorts = nil
	}
	// A user Cmd under the image's Entrypoint is the user's; a user Entrypoint makes the engine
	// ignore the image's Cmd, so then the Cmd is the user's too.
	if slices.Equal(cfg.Entrypoint, img.Entrypoint) {
		if slices.Equal(cfg.Cmd, img.Cmd) {
			cfg.Cmd = nil
		}
		cfg.Entrypoint = nil
	}
	if cfg.WorkingDir == img.WorkingDir {
		cfg.WorkingDir = ""
	}
	if cfg.User == img.User {
		cfg.User = ""
	}
	if cfg.StopSignal == img.StopSignal {
		cfg.StopSignal = ""
	}
	cfg.Healthcheck = userHealthcheck(cfg.Healthcheck, img.Healthcheck)
}

// userHealthcheck keeps the fields of hc that differ from the image's; zero fields inherit.
func userHealthcheck(hc, img *container.HealthConfig) *container.HealthConfig {
	if hc == nil || img == nil {
		return hc
	}
	out := *hc
	if slices.Equal(out.Test, img.Test) {
		out.Test = nil
	}
	if out.Interval == img.Interval {
		out.Interval = 0
	}
	if out.Timeout == img.Timeout {
		out.Timeout = 0
	}
	if out.StartPeriod == img.StartPeriod {
		out.StartPeriod = 0
	}
	if out.StartInterval == img.StartInterval {
		out.StartInterval = 0
	}
	if out.Retries == img.Retries {
		out.Retries = 0
	}
	if out.Test == nil && out.Interval == 0 && out.Timeout == 0 && out.StartPeriod == 0 && out.StartInterval == 0 && out.Retries == 0 {
		return nil
	}
	return &out
}

// stripGeneratedHostname drops the engine's hostname (the old short ID), which would otherwise
// pin the successor to its predecessor's ID, and any hostname where the engine refuses one: a
// container that shares another's network or the host's UTS namespace.
func stripGeneratedHostname(cfg *container.Config, id string, hc container.HostConfig) {
	if hc.NetworkMode.IsContainer() || hc.UTSMode != "" {
		cfg.Hostname, cfg.Domainname = "", ""
		return
	}
	if cfg.Hostname == shortID(id) {
		cfg.Hostname = ""
	}
}

func isHex(s string) bool {
	return s != "" && strings.Trim(s, "0123456789abcdef") == ""
}

// createLinks turns inspect's "/db:/web/db" into create's "db:db" (container name:alias).
func createLinks(links []string) []string {
	if links == nil {
		return nil
	}
	out := make([]string, 0, len(links))
	for _, l := range links {
		child, parent, ok := strings.Cut(l, ":")
		if ok && strings.HasPrefix(child, "/") && strings.HasPrefix(parent, "/") {
			l = strings.TrimPrefix(child, "/") + ":" + path.Base(parent)
		}
		out = append(out, l)
	}
	return out
}

// anonymousVolumeBinds names the engine-generated volumes that Binds and Mounts do not already
// cover, so the successor mounts the same data instead of a fresh empty volume.
func anonymousVolumeBinds(mounts []container.MountPoint, binds []string, specs []mount.Mount) []string {
	covered := map[string]bool{}
	for _, b := range binds {
		parts := strings.Split(b, ":")
		dst := parts[0] // "/path" alone is an anonymous volume spec
		if len(parts) > 1 {
			dst = parts[1]
		}
		covered[path.Clean(dst)] = true
	}
	for _, m := range specs {
		covered[path.Clean(m.Target)] = true
	}
	var out []string
	for _, m := range mounts {
		if m.Type != mount.TypeVolume || len(m.Name) != 64 || !isHex(m.Name) || covered[path.Clean(m.Destination)] {
			continue
		}
		b := m.Name + ":" + m.Destination
		if !m.RW {
			b += ":ro"
		}
		out = append(out, b)
	}
	return out
}

// planNetworks carries each endpoint's user settings. Below API 1.44 the endpoint of the network
// mode goes to create and the rest to connect; from 1.44 all go to create. configMAC is the value
// for Config.MacAddress: the user-set MAC below 1.44; from 1.44 that MAC is on the endpoint instead.
func planNetworks(old container.InspectResponse, mode container.NetworkMode, apiVersion string) (create, connect map[string]*network.EndpointSettings, configMAC string) {
	if mode.IsHost() || mode.IsNone() || mode.IsContainer() {
		// The engine makes no endpoint of its own there, and refuses a MAC.
		return nil, nil, ""
	}
	var nets map[string]*network.EndpointSettings
	if old.NetworkSettings != nil {
		nets = old.NetworkSettings.Networks
	}
	primary := primaryNetwork(mode, nets)
	mac := userMAC(old.Config.MacAddress, nets, primary)
	multi := !versionLess(apiVersion, multiNetworkCreateAPI)
	for name, ep := range nets {
		if ep == nil {
			continue
		}
		es := userEndpoint(name, ep, shortID(old.ID))
		if multi && name == primary && mac != "" {
			es.MacAddress = mac
		}
		if multi || name == primary {
			if create == nil {
				create = map[string]*network.EndpointSettings{}
			}
			create[name] = es
			continue
		}
		if connect == nil {
			connect = map[string]*network.EndpointSettings{}
		}
		connect[name] = es
	}
	if !multi {
		return create, connect, mac
	}
	if primary == "" && mac != "" && mode != "" && mode.IsUserDefined() {
		// The MAC's network is not attached at the moment; it will be at create.
		if create == nil {
			create = map[string]*network.EndpointSettings{}
		}
		create[mode.NetworkName()] = &network.EndpointSettings{MacAddress: mac}
	}
	return create, connect, ""
}

// userMAC is the MAC the user set for the container, "" when the engine generated it: the
// container-wide one unless it derives from an endpoint's address, else the primary endpoint's.
func userMAC(mac string, nets map[string]*network.EndpointSettings, primary string) string {
	if mac == "" {
		if ep := nets[primary]; ep != nil && !generatedMAC(ep.MacAddress, ep.IPAddress) {
			return ep.MacAddress
		}
		return ""
	}
	for _, ep := range nets {
		if ep != nil && generatedMAC(mac, ep.IPAddress) {
			return ""
		}
	}
	return mac
}

// primaryNetwork is the endpoint name that the network mode names ("default" is the bridge),
// matching a network ID too; "" when the container has no such endpoint.
func primaryNetwork(mode container.NetworkMode, nets map[string]*network.EndpointSettings) string {
	want := string(mode)
	if mode.IsDefault() || mode == "" {
		want = network.NetworkBridge
	}
	if _, ok := nets[want]; ok {
		return want
	}
	for name, ep := range nets {
		if ep != nil && ep.NetworkID != "" && strings.HasPrefix(ep.NetworkID, want) {
			return name
		}
	}
	return ""
}

// userEndpoint keeps what a user can set on an endpoint and drops what the engine assigned.
func userEndpoint(name string, ep *network.EndpointSettings, short string) *network.EndpointSettings {
	es := &network.EndpointSettings{
		Links:      createLinks(ep.Links),
		GwPriority: ep.GwPriority,
	}
	if c := ep.IPAMConfig; c != nil && (c.IPv4Address != "" || c.IPv6Address != "" || len(c.LinkLocalIPs) > 0) {
		es.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: c.IPv4Address, IPv6Address: c.IPv6Address, LinkLocalIPs: slices.Clone(c.LinkLocalIPs)}
	}
	if len(ep.DriverOpts) > 0 {
		es.DriverOpts = map[string]string{}
		for k, v := range ep.DriverOpts {
			es.DriverOpts[k] = v
		}
	}
	// The default bridge, host and none take no aliases (Engine 25+ refuses them); elsewhere the
	// engine adds the short ID of the new container itself.
	if name != network.NetworkBridge && name != network.NetworkHost && name != network.NetworkNone {
		for _, a := range ep.Aliases {
			if a != short && !slices.Contains(es.Aliases, a) {
				es.Aliases = append(es.Aliases, a)
			}
		}
	}
	if !generatedMAC(ep.MacAddress, ep.IPAddress) {
		es.MacAddress = ep.MacAddress
	}
	return es
}

// generatedMAC reports whether mac is the engine's address derived from ip: 02:42 followed by the
// four bytes of the IPv4 address. Copying one collides when addresses move.
func generatedMAC(mac, ip string) bool {
	v4 := net.ParseIP(ip).To4()
	if mac == "" || v4 == nil {
		return mac == ""
	}
	return strings.EqualFold(mac, fmt.Sprintf("02:42:%02x:%02x:%02x:%02x", v4[0], v4[1], v4[2], v4[3]))
}
