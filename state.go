// state.go owns the small state file: the image digests that were rolled back, so that later
// sessions do not pull and try the same broken image again until the registry's digest changes.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// badDigest is an image digest that failed verification for a reference.
type badDigest struct {
	Digest string    `json:"digest"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// stateFile is the persisted memory of rolled-back digests, keyed by normalised reference.
type stateFile struct {
	path string
	mu   sync.Mutex
	Bad  map[string]badDigest `json:"bad"`
}

// defaultStatePath is under /var/lib for root, else under the user's state directory.
func defaultStatePath(lookup func(string) (string, bool)) string {
	if os.Geteuid() == 0 {
		return "/var/lib/outpost/state.json"
	}
	if d, ok := lookup("XDG_STATE_HOME"); ok && d != "" {
		return filepath.Join(d, "outpost", "state.json")
	}
	if h, ok := lookup("HOME"); ok && h != "" {
		return filepath.Join(h, ".local", "state", "outpost", "state.json")
	}
	return filepath.Join(os.TempDir(), "outpost-state.json")
}

// loadState reads the state file; a missing file is an empty state, a broken one is reported
// and replaced by an empty state so that updating goes on.
func loadState(path string) (*stateFile, error) {
	s := &stateFile{path: path, Bad: map[string]badDigest{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("state file %s: %w (set --state-file to a writable path)", path, err)
	}
	if err := json.Unmarshal(b, s); err != nil {
		s.Bad = map[string]badDigest{}
		return s, fmt.Errorf("state file %s is not valid JSON and is ignored: %w", path, err)
	}
	if s.Bad == nil {
		s.Bad = map[string]badDigest{}
	}
	return s, nil
}

// isBad returns why digest was rolled back for ref, if it was.
func (s *stateFile) isBad(ref, digest string) (badDigest, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.Bad[ref]
	return b, ok && digest != "" && b.Digest == digest
}

// markBad remembers a rolled-back digest and writes the file atomically.
func (s *stateFile) markBad(ref, digest, reason string, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Bad[ref] = badDigest{Digest: digest, Reason: reason, At: now.UTC()}
	return s.save()
}

// forget drops what is remembered for ref, once its tag points at another digest.
func (s *stateFile) forget(ref string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.Bad[ref]; !ok {
		return nil
	}
	delete(s.Bad, ref)
	return s.save()
}

// save writes to a temporary file in the same directory and renames it over the old one, so a
// crash leaves either the old or the new file, never half of one.
func (s *stateFile) save() error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("state file %s: %w", s.path, err)
	}
	f, err := os.CreateTemp(dir, ".state-*.json")
	if err != nil {
		return fmt.Errorf("state file %s: %w", s.path, err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("state file %s: %w", s.path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("state file %s: %w", s.path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("state file %s: %w", s.path, err)
	}
	if err := os.Rename(f.Name(), s.path); err != nil {
		return fmt.Errorf("state file %s: %w", s.path, err)
	}
	return nil
}
