// credentials.go owns where registry credentials come from: the Docker config.json (auths,
// credHelpers, credsStore) and REPO_USER/REPO_PASS, resolved per registry.
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// dockerConfig is the part of config.json that holds credentials.
type dockerConfig struct {
	Auths map[string]struct {
		Auth          string `json:"auth"`
		Username      string `json:"username"`
		Password      string `json:"password"`
		IdentityToken string `json:"identitytoken"`
	} `json:"auths"`
	CredHelpers map[string]string `json:"credHelpers"`
	CredsStore  string            `json:"credsStore"`
}

// credentialStore resolves the credential for a registry; the zero value knows none.
type credentialStore struct {
	path               string // the config.json read, for messages
	cfg                dockerConfig
	repoUser, repoPass string
	helperTimeout      time.Duration

	mu      sync.Mutex
	helpers map[string]helperAnswer // "helper\x00registry" -> what it said, so a Basic registry does not cost a process per request
}

// helperAnswer is a credential helper's answer and when it was given.
type helperAnswer struct {
	cred credential
	at   time.Time
}

// helperMemory is how long a helper's answer is reused; helpers that rotate credentials are asked
// again after it.
const helperMemory = 10 * time.Minute

// loadCredentials reads config.json from DOCKER_CONFIG, else $HOME/.docker, else /config.json
// (where Watchtower's image kept it). A missing file is not an error.
func loadCredentials(lookup func(string) (string, bool)) (*credentialStore, error) {
	s := &credentialStore{helperTimeout: 10 * time.Second}
	s.repoUser, _ = lookup("REPO_USER")
	pass, _ := lookup("REPO_PASS")
	s.repoPass = secretOrFile(pass)

	var candidates []string
	if d, ok := lookup("DOCKER_CONFIG"); ok && d != "" {
		candidates = append(candidates, filepath.Join(d, "config.json"))
	} else {
		if home, ok := lookup("HOME"); ok && home != "" {
			candidates = append(candidates, filepath.Join(home, ".docker", "config.json"))
		}
		candidates = append(candidates, "/config.json")
	}
	for _, p := range candidates {
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return s, fmt.Errorf("reading %s: %w", p, err)
		}
		if err := json.Unmarshal(b, &s.cfg); err != nil {
			return s, fmt.Errorf("%s is not valid JSON: %w", p, err)
		}
		s.path = p
		break
	}
	return s, nil
}

// hubKeys are the names under which config.json may hold Docker Hub's credentials.
var hubKeys = []string{"https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io", "https://registry-1.docker.io"}

// lookup returns the credential for a registry domain (docker.io for Docker Hub); the zero
// credential means anonymous.
func (s *credentialStore) lookup(ctx context.Context, domain string) (credential, error) {
	if s == nil {
		return credential{}, nil
	}
	keys := []string{domain}
	helperKey := domain
	if domain == dockerHub {
		keys, helperKey = hubKeys, hubKeys[0]
	}
	if h := s.helperFor(keys); h != "" {
		return s.runHelper(ctx, h, helperKey)
	}
	for key, a := range s.cfg.Auths {
		if !matchesRegistry(key, keys) {
			continue
		}
		c := credential{username: a.Username, password: a.Password, identityToken: a.IdentityToken}
		if a.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				return credential{}, fmt.Errorf("%s: auths[%q].auth is not base64", s.path, key)
			}
			u, p, ok := strings.Cut(string(raw), ":")
			if !ok {
				return credential{}, fmt.Errorf("%s: auths[%q].auth is not user:password", s.path, key)
			}
			c.username, c.password = u, p
		}
		if !c.empty() {
			return c, nil
		}
	}
	if s.cfg.CredsStore != "" {
		c, err := s.runHelper(ctx, s.cfg.CredsStore, helperKey)
		if err != nil || !c.empty() {
			return c, err
		}
	}
	if s.repoUser != "" {
		return credential{username: s.repoUser, password: s.repoPass}, nil
	}
	return credential{}, nil
}

func (s *credentialStore) helperFor(keys []string) string {
	for key, h := range s.cfg.CredHelpers {
		if matchesRegistry(key, keys) {
			return h
		}
	}
	return ""
}

// matchesRegistry compares a config.json key, which may be a URL, with registry names.
func matchesRegistry(key string, names []string) bool {
	k := strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://")
	k, _, _ = strings.Cut(k, "/")
	for _, n := range names {
		if key == n || k == n {
			return true
		}
	}
	return false
}

// runHelper asks docker-credential-<name> for the registry's credential, or reuses its recent
// answer. Failures are not remembered.
func (s *credentialStore) runHelper(ctx context.Context, name, registry string) (credential, error) {
	key := name + "\x00" + registry
	s.mu.Lock()
	a, ok := s.helpers[key]
	s.mu.Unlock()
	if ok && time.Since(a.at) < helperMemory {
		return a.cred, nil
	}
	c, err := s.askHelper(ctx, name, registry)
	if err == nil {
		s.mu.Lock()
		if s.helpers == nil {
			s.helpers = map[string]helperAnswer{}
		}
		s.helpers[key] = helperAnswer{cred: c, at: time.Now()}
		s.mu.Unlock()
	}
	return c, err
}

// askHelper runs docker-credential-<name> get with the registry on its standard input.
func (s *credentialStore) askHelper(ctx context.Context, name, registry string) (credential, error) {
	ctx, cancel := context.WithTimeout(ctx, s.helperTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker-credential-"+name, "get")
	cmd.Stdin = strings.NewReader(registry)
	// A helper's own children may hold its output open after it is killed.
	cmd.WaitDelay = time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String() + " " + errb.String())
		// Helpers say "credentials not found in native keychain" when they hold nothing.
		if strings.Contains(strings.ToLower(msg), "credentials not found") {
			return credential{}, nil
		}
		if ctx.Err() != nil {
			return credential{}, fmt.Errorf("docker-credential-%s did not answer within %s", name, s.helperTimeout)
		}
		return credential{}, fmt.Errorf("docker-credential-%s get: %v %s", name, err, firstLine(msg))
	}
	var r struct{ Username, Secret string }
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return credential{}, fmt.Errorf("docker-credential-%s get: answer is not JSON", name)
	}
	if r.Username == "<token>" {
		return credential{identityToken: r.Secret}, nil
	}
	return credential{username: r.Username, password: r.Secret}, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
