package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStateFileRemembersBadDigests(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "state.json")
	s, err := loadState(path)
	if err != nil || len(s.Bad) != 0 {
		t.Fatalf("a missing file is an empty state: %v %v", s.Bad, err)
	}
	at := time.Date(2026, 11, 22, 7, 0, 0, 0, time.UTC)
	if err := s.markBad("docker.io/library/nginx:latest", "sha256:bad", "exited with code 1", at); err != nil {
		t.Fatal(err)
	}
	again, err := loadState(path)
	if err != nil {
		t.Fatal(err)
	}
	if b, bad := again.isBad("docker.io/library/nginx:latest", "sha256:bad"); !bad || b.Reason != "exited with code 1" || !b.At.Equal(at) {
		t.Fatalf("not remembered across loads: %+v %v", b, bad)
	}
	if _, bad := again.isBad("docker.io/library/nginx:latest", "sha256:newer"); bad {
		t.Fatal("a new digest of the same tag must be tried")
	}
	if err := again.forget("docker.io/library/nginx:latest"); err != nil {
		t.Fatal(err)
	}
	if third, _ := loadState(path); len(third.Bad) != 0 {
		t.Fatalf("forget not saved: %v", third.Bad)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

func TestStateFileProblemsAreReportedNotFatal(t *testing.T) {
	dir := t.TempDir()
	broken := filepath.Join(dir, "state.json")
	os.WriteFile(broken, []byte("{nope"), 0o600)
	s, err := loadState(broken)
	if err == nil || !strings.Contains(err.Error(), broken) || s == nil || s.Bad == nil {
		t.Fatalf("broken file: %v", err)
	}
	// A state file that cannot be written: the error names it, and the memory still works.
	blocker := filepath.Join(dir, "file")
	os.WriteFile(blocker, nil, 0o600)
	s, _ = loadState(filepath.Join(blocker, "state.json"))
	err = s.markBad("r", "sha256:x", "why", time.Now())
	if err == nil || !strings.Contains(err.Error(), "state file") {
		t.Fatalf("unwritable: %v", err)
	}
	if _, bad := s.isBad("r", "sha256:x"); !bad {
		t.Fatal("the digest must be remembered in memory even when the file cannot be written")
	}
}

func TestAsideNames(t *testing.T) {
	for _, running := range []bool{true, false} {
		n := asideName("web", running)
		orig, wasRunning, ok := fromAside("/" + n)
		if !ok || orig != "web" || wasRunning != running {
			t.Errorf("%s: %q %v %v", n, orig, wasRunning, ok)
		}
	}
	for _, n := range []string{"web", "_outpost-old", "web_outpost-older"} {
		if _, _, ok := fromAside(n); ok {
			t.Errorf("%q taken for an aside copy", n)
		}
	}
}

func TestOwnContainerID(t *testing.T) {
	id := strings.Repeat("0123456789abcdef", 4)
	files := map[string]string{
		"/proc/self/cgroup":    "0::/\n",
		"/proc/self/mountinfo": "1 2 0:3 / / rw - overlay overlay rw\n611 600 254:1 /var/lib/docker/containers/" + id + "/hostname /etc/hostname rw - ext4 /dev/vda1 rw\n",
	}
	read := func(p string) ([]byte, error) {
		if c, ok := files[p]; ok {
			return []byte(c), nil
		}
		return nil, os.ErrNotExist
	}
	if got := ownContainerID(read); got != id {
		t.Fatalf("cgroup v2: %q", got)
	}
	files["/proc/self/cgroup"] = "12:pids:/docker/" + id + "\n"
	delete(files, "/proc/self/mountinfo")
	if got := ownContainerID(read); got != id {
		t.Fatalf("cgroup v1: %q", got)
	}
	files["/proc/self/cgroup"] = "0::/user.slice/user-0.slice/session-1.scope\n"
	if got := ownContainerID(read); got != "" {
		t.Fatalf("outside a container: %q", got)
	}
}
