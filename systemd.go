// systemd.go owns the sd_notify protocol, without a library: READY=1, STATUS= lines, WATCHDOG=1
// keep-alives and STOPPING=1, sent as datagrams to $NOTIFY_SOCKET.
package main

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// sdNotifier talks to the service manager; nil when outpost is not a Type=notify service.
type sdNotifier struct {
	mu   sync.Mutex
	addr *net.UnixAddr
}

// newSDNotifier reads NOTIFY_SOCKET; an "@" starts an abstract socket name.
func newSDNotifier(lookup func(string) (string, bool)) *sdNotifier {
	path, ok := lookup("NOTIFY_SOCKET")
	if !ok || path == "" {
		return nil
	}
	if strings.HasPrefix(path, "@") {
		path = "\x00" + path[1:]
	}
	return &sdNotifier{addr: &net.UnixAddr{Name: path, Net: "unixgram"}}
}

// send writes one message; systemd's protocol is fire and forget, so failures are ignored.
func (n *sdNotifier) send(msg string) {
	if n == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return
	}
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(time.Second))
	c.Write([]byte(msg))
}

func (n *sdNotifier) ready()          { n.send("READY=1") }
func (n *sdNotifier) stopping()       { n.send("STOPPING=1") }
func (n *sdNotifier) status(s string) { n.send("STATUS=" + strings.ReplaceAll(s, "\n", " ")) }

// watchdogInterval is half of WATCHDOG_USEC, when the service manager asks for keep-alives (and
// WATCHDOG_PID, if set, is this process).
func watchdogInterval(lookup func(string) (string, bool), pid int) time.Duration {
	v, ok := lookup("WATCHDOG_USEC")
	if !ok {
		return 0
	}
	usec, err := strconv.ParseInt(v, 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	if p, ok := lookup("WATCHDOG_PID"); ok && p != strconv.Itoa(pid) {
		return 0
	}
	return time.Duration(usec) * time.Microsecond / 2
}

// watchdog sends WATCHDOG=1 every interval while healthy() says so, until ctx ends.
func (n *sdNotifier) watchdog(ctx context.Context, every time.Duration, healthy func() bool) {
	if n == nil || every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if healthy() {
				n.send("WATCHDOG=1")
			}
		}
	}
}
