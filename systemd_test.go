package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// notifySocket listens where NOTIFY_SOCKET points and returns the messages as they come.
func notifySocket(t *testing.T) (string, <-chan string) {
	path := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ch := make(chan string, 16)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := c.ReadFromUnix(buf)
			if err != nil {
				close(ch)
				return
			}
			ch <- string(buf[:n])
		}
	}()
	return path, ch
}

func next(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(3 * time.Second):
		t.Fatal("no sd_notify message")
		return ""
	}
}

func TestSDNotifyMessagesInOrder(t *testing.T) {
	path, ch := notifySocket(t)
	n := newSDNotifier(envMap("NOTIFY_SOCKET", path))
	n.ready()
	n.status("last session: 3 scanned\n1 updated")
	n.stopping()
	for _, want := range []string{"READY=1", "STATUS=last session: 3 scanned 1 updated", "STOPPING=1"} {
		if got := next(t, ch); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	if newSDNotifier(envMap()) != nil {
		t.Fatal("without NOTIFY_SOCKET there is nothing to notify")
	}
	newSDNotifier(envMap()).ready() // a nil notifier is a no-op
}

func TestSDWatchdog(t *testing.T) {
	if d := watchdogInterval(envMap("WATCHDOG_USEC", "20000000"), 42); d != 10*time.Second {
		t.Fatalf("interval %s, want half of 20 s", d)
	}
	if d := watchdogInterval(envMap("WATCHDOG_USEC", "20000000", "WATCHDOG_PID", "7"), 42); d != 0 {
		t.Fatalf("a watchdog for another PID: %s", d)
	}
	path, ch := notifySocket(t)
	n := newSDNotifier(envMap("NOTIFY_SOCKET", path))
	ctx, cancel := context.WithCancel(context.Background())
	healthy := true
	done := make(chan struct{})
	go func() { n.watchdog(ctx, 20*time.Millisecond, func() bool { return healthy }); close(done) }()
	if got := next(t, ch); got != "WATCHDOG=1" {
		t.Fatalf("got %q", got)
	}
	cancel()
	<-done
}

func TestServeForeverNotifiesSystemd(t *testing.T) {
	eng, _, _ := recordedHost(t)
	path, ch := notifySocket(t)
	env := envMap("NOTIFY_SOCKET", path, "DOCKER_CONFIG", t.TempDir())
	done := make(chan int)
	go func() {
		var out, errb strings.Builder
		done <- run([]string{"--host", eng.host(), "--monitor-only", "--interval", "1h", "--log-format", "json"}, env, &out, &errb)
	}()
	if got := next(t, ch); got != "READY=1" {
		t.Fatalf("first message %q, want READY=1", got)
	}
	if got := next(t, ch); !strings.HasPrefix(got, "STATUS=last session") || !strings.Contains(got, "6 scanned") {
		t.Fatalf("status %q", got)
	}
	// SIGTERM is what the service manager sends; the test stands in with the same signal path.
	sigterm(t)
	if got := next(t, ch); got != "STOPPING=1" {
		t.Fatalf("got %q, want STOPPING=1", got)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d after SIGTERM", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("outpost did not stop within 5 s of SIGTERM")
	}
}

// sigterm sends SIGTERM to this test process, which run's signal.NotifyContext catches.
func sigterm(t *testing.T) {
	t.Helper()
	time.Sleep(100 * time.Millisecond) // let run install its handler past the first session
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
}
