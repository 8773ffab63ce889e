// reference.go owns image references: parsing and normalising them exactly as the engine does.
package main

import (
	"fmt"
	"net"
	"regexp"
	"strings"
)

// reference is a normalised image reference: docker.io/library/nginx:latest.
type reference struct {
	domain string // registry host[:port]; "docker.io" for Docker Hub
	path   string // repository path inside the registry, e.g. library/nginx
	tag    string // "" when pinned by digest only
	digest string // sha256:… when pinned
}

const dockerHub = "docker.io"

var (
	pathComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	tagPattern    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	digestPattern = regexp.MustCompile(`^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$`)
)

// parseReference normalises s: no host means docker.io, Docker Hub single names get library/,
// and no tag means latest (also for host:5000/app, whose colon belongs to the port).
func parseReference(s string) (reference, error) {
	var r reference
	name := s
	if i := strings.IndexByte(name, '@'); i >= 0 {
		name, r.digest = name[:i], name[i+1:]
		if !digestPattern.MatchString(r.digest) {
			return r, fmt.Errorf("image reference %q: invalid digest", s)
		}
	}
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name, r.tag = name[:i], name[i+1:]
		if !tagPattern.MatchString(r.tag) {
			return r, fmt.Errorf("image reference %q: invalid tag %q", s, r.tag)
		}
	}
	if first, rest, ok := strings.Cut(name, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		r.domain, r.path = first, rest
	} else {
		r.domain, r.path = dockerHub, name
	}
	if r.domain == "index.docker.io" {
		r.domain = dockerHub
	}
	if r.domain == dockerHub && !strings.Contains(r.path, "/") {
		r.path = "library/" + r.path
	}
	if r.path == "" {
		return r, fmt.Errorf("image reference %q: no repository name", s)
	}
	for _, c := range strings.Split(r.path, "/") {
		if !pathComponent.MatchString(c) {
			if strings.ToLower(c) != c {
				return r, fmt.Errorf("image reference %q: repository names must be lowercase", s)
			}
			return r, fmt.Errorf("image reference %q: invalid repository name", s)
		}
	}
	if r.tag == "" && r.digest == "" {
		r.tag = "latest"
	}
	return r, nil
}

// repository is the registry-qualified name without tag or digest.
func (r reference) repository() string { return r.domain + "/" + r.path }

func (r reference) String() string {
	s := r.repository()
	if r.tag != "" {
		s += ":" + r.tag
	}
	if r.digest != "" {
		s += "@" + r.digest
	}
	return s
}

// apiHost is where the registry API is served; Docker Hub's lives apart from its name.
func (r reference) apiHost() string {
	if r.domain == dockerHub {
		return "registry-1.docker.io"
	}
	return r.domain
}

// shortID is the 12-character form of a container ID, image ID or digest, as docker prints them.
func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	return id[:min(len(id), 12)]
}

// isLoopbackHost tells whether host ("host", "host:port" or "[::1]:port") is this machine.
func isLoopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
