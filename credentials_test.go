package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeDockerConfig writes config.json into a new directory for DOCKER_CONFIG.
func writeDockerConfig(t *testing.T, content string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestCredentialLookup(t *testing.T) {
	dir := writeDockerConfig(t, `{
		"auths": {
			"https://index.docker.io/v1/": {"auth": "aHViOmh1YnBhc3M="},
			"registry.example.com:5000": {"username": "plain", "password": "pw"},
			"https://ghcr.io": {"identitytoken": "id-tok"},
			"broken.example.com": {"auth": "%%%"}
		}
	}`)
	s, err := loadCredentials(envMap("DOCKER_CONFIG", dir, "REPO_USER", "fallback", "REPO_PASS", "fbpass"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for domain, want := range map[string]credential{
		"docker.io":                 {username: "hub", password: "hubpass"},
		"registry.example.com:5000": {username: "plain", password: "pw"},
		"ghcr.io":                   {identityToken: "id-tok"},
		"other.example.com":         {username: "fallback", password: "fbpass"},
	} {
		got, err := s.lookup(ctx, domain)
		if err != nil || got != want {
			t.Errorf("lookup(%s) = %+v, %v; want %+v", domain, got, err, want)
		}
	}
	if _, err := s.lookup(ctx, "broken.example.com"); err == nil || !strings.Contains(err.Error(), "not base64") {
		t.Errorf("broken auth: %v", err)
	}
}

func TestCredentialSources(t *testing.T) {
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, ".docker"), 0o700)
	os.WriteFile(filepath.Join(home, ".docker", "config.json"), []byte(`{"auths":{"h.example":{"auth":"dTpw"}}}`), 0o600)
	s, err := loadCredentials(envMap("HOME", home))
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := s.lookup(context.Background(), "h.example"); c.username != "u" || c.password != "p" {
		t.Fatalf("$HOME/.docker/config.json not read: %+v", c)
	}
	if _, err := loadCredentials(envMap("DOCKER_CONFIG", writeDockerConfig(t, "{not json"))); err == nil || !strings.Contains(err.Error(), "config.json is not valid JSON") {
		t.Fatalf("broken config.json: %v", err)
	}
	s, err = loadCredentials(envMap("DOCKER_CONFIG", t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := s.lookup(context.Background(), "docker.io"); !c.empty() {
		t.Fatalf("no config and no REPO_USER must be anonymous, got %+v", c)
	}
}

// writeHelper puts an executable docker-credential-NAME script on PATH.
func writeHelper(t *testing.T, name, script string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "docker-credential-"+name), []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

func TestCredentialHelpers(t *testing.T) {
	writeHelper(t, "per", `read reg; [ "$1" = get ] || exit 3; echo "{\"ServerURL\":\"$reg\",\"Username\":\"per-$reg\",\"Secret\":\"s1\"}"`)
	writeHelper(t, "store", `read reg; if [ "$reg" = "https://index.docker.io/v1/" ]; then echo '{"Username":"<token>","Secret":"idt"}'; else echo "credentials not found in native keychain"; exit 1; fi`)
	writeHelper(t, "slow", `sleep 5`)
	dir := writeDockerConfig(t, `{"credHelpers":{"reg.example":"per","slow.example":"slow"},"credsStore":"store"}`)
	s, err := loadCredentials(envMap("DOCKER_CONFIG", dir))
	if err != nil {
		t.Fatal(err)
	}
	s.helperTimeout = 300 * time.Millisecond
	ctx := context.Background()
	if c, err := s.lookup(ctx, "reg.example"); err != nil || c.username != "per-reg.example" || c.password != "s1" {
		t.Errorf("credHelpers: %+v %v", c, err)
	}
	if c, err := s.lookup(ctx, "docker.io"); err != nil || c.identityToken != "idt" || c.username != "" {
		t.Errorf("credsStore with <token>: %+v %v", c, err)
	}
	if c, err := s.lookup(ctx, "none.example"); err != nil || !c.empty() {
		t.Errorf("helper without credentials: %+v %v", c, err)
	}
	start := time.Now()
	if _, err := s.lookup(ctx, "slow.example"); err == nil || !strings.Contains(err.Error(), "did not answer") || time.Since(start) > 3*time.Second {
		t.Errorf("slow helper: %v after %s", err, time.Since(start))
	}
}
