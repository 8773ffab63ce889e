// self.go owns recognising outpost's own container, which it must never stop or recreate: the
// container whose ID shows in this process's cgroup or mounts, and any updater instance marked with
// the bare com.centurylinklabs.watchtower=true label.
package main

import (
	"os"
	"regexp"
	"strings"
)

var containerIDPattern = regexp.MustCompile(`[0-9a-f]{64}`)

// ownContainerID finds the ID of the container this process runs in, or "" outside one. cgroup v1
// names it in /proc/self/cgroup; under cgroup v2 the engine's bind mounts of hostname, hosts and
// resolv.conf name it in /proc/self/mountinfo.
func ownContainerID(read func(string) ([]byte, error)) string {
	for _, f := range []string{"/proc/self/cgroup", "/proc/self/mountinfo"} {
		b, err := read(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.Contains(line, "docker") && !strings.Contains(line, "/containers/") {
				continue
			}
			if id := containerIDPattern.FindString(line); id != "" {
				return id
			}
		}
	}
	return ""
}

// selfContainer is outpost's own container ID, found once at start: from cgroup or mounts, else
// the hostname when it is the 12-hex short ID the engine gives a container; "" outside one.
func selfContainer() string {
	if id := ownContainerID(os.ReadFile); id != "" {
		return id
	}
	if host, _ := os.Hostname(); len(host) == 12 && isHex(host) {
		return host
	}
	return ""
}

// selfReason says why a container must not be touched as outpost itself, or "".
func (s *session) selfReason(t target) string {
	if s.selfID != "" && strings.HasPrefix(t.id, s.selfID) {
		return "this is outpost's own container"
	}
	if t.insp.Config != nil {
		if v, _ := labelTrue(t.insp.Config.Labels, labelBareUpdater); v {
			return "an updater instance (" + labelBareUpdater + "=true)"
		}
	}
	return ""
}
