package main

import (
	"strings"
	"testing"
)

func TestParseReference(t *testing.T) {
	const dg = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		in                       string
		domain, path, tag, digst string
		api                      string
	}{
		{in: "nginx", domain: "docker.io", path: "library/nginx", tag: "latest", api: "registry-1.docker.io"},
		{in: "nginx:1.27", domain: "docker.io", path: "library/nginx", tag: "1.27", api: "registry-1.docker.io"},
		{in: "library/nginx", domain: "docker.io", path: "library/nginx", tag: "latest", api: "registry-1.docker.io"},
		{in: "docker.io/nginx", domain: "docker.io", path: "library/nginx", tag: "latest", api: "registry-1.docker.io"},
		{in: "index.docker.io/nginx", domain: "docker.io", path: "library/nginx", tag: "latest", api: "registry-1.docker.io"},
		{in: "containrrr/watchtower:1.7.1", domain: "docker.io", path: "containrrr/watchtower", tag: "1.7.1", api: "registry-1.docker.io"},
		{in: "host:5000/app", domain: "host:5000", path: "app", tag: "latest", api: "host:5000"},
		{in: "host:5000/app:v2", domain: "host:5000", path: "app", tag: "v2", api: "host:5000"},
		{in: "localhost/app", domain: "localhost", path: "app", tag: "latest", api: "localhost"},
		{in: "ghcr.io/owner/tool/sub:edge", domain: "ghcr.io", path: "owner/tool/sub", tag: "edge", api: "ghcr.io"},
		{in: "127.0.0.1:5000/a/b", domain: "127.0.0.1:5000", path: "a/b", tag: "latest", api: "127.0.0.1:5000"},
		{in: "[::1]:5000/app:1", domain: "[::1]:5000", path: "app", tag: "1", api: "[::1]:5000"},
		{in: "nginx@" + dg, domain: "docker.io", path: "library/nginx", digst: dg, api: "registry-1.docker.io"},
		{in: "nginx:1.27@" + dg, domain: "docker.io", path: "library/nginx", tag: "1.27", digst: dg, api: "registry-1.docker.io"},
		{in: "a_b/c__d/e-f.g", domain: "docker.io", path: "a_b/c__d/e-f.g", tag: "latest", api: "registry-1.docker.io"},
	}
	for _, tt := range tests {
		r, err := parseReference(tt.in)
		if err != nil {
			t.Errorf("parseReference(%q): %v", tt.in, err)
			continue
		}
		if r.domain != tt.domain || r.path != tt.path || r.tag != tt.tag || r.digest != tt.digst || r.apiHost() != tt.api {
			t.Errorf("parseReference(%q) = %+v api %s; want %s %s %s %s api %s", tt.in, r, r.apiHost(), tt.domain, tt.path, tt.tag, tt.digst, tt.api)
		}
	}
}

func TestParseReferenceString(t *testing.T) {
	for in, want := range map[string]string{
		"nginx":            "docker.io/library/nginx:latest",
		"host:5000/app":    "host:5000/app:latest",
		"ghcr.io/o/t:v1.0": "ghcr.io/o/t:v1.0",
	} {
		r, err := parseReference(in)
		if err != nil || r.String() != want {
			t.Errorf("parseReference(%q).String() = %q, %v; want %q", in, r.String(), err, want)
		}
	}
}

func TestParseReferenceInvalid(t *testing.T) {
	for in, want := range map[string]string{
		"Nginx":                             "lowercase",
		"host:5000/App":                     "lowercase",
		"nginx:bad tag":                     "invalid tag",
		"nginx@sha256:short":                "invalid digest",
		"host:5000/":                        "no repository",
		"bad//double":                       "invalid repository",
		"nginx:" + strings.Repeat("x", 200): "invalid tag",
	} {
		_, err := parseReference(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseReference(%q) error = %v; want it to say %q", in, err, want)
		}
	}
}

func TestIsLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1": true, "127.0.0.1:5000": true, "127.9.9.9:1": true, "localhost:5000": true,
		"[::1]:5000": true, "::1": true, "registry-1.docker.io": false, "10.0.0.1:5000": false,
		"localhost.example.com": false, "[2001:db8::1]:443": false,
	} {
		if got := isLoopbackHost(host); got != want {
			t.Errorf("isLoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}
