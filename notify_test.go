package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"log/slog"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorded is one request a fake service received.
type recorded struct {
	method, path, query string
	header              http.Header
	body                []byte
}

// fakeService records every request and answers with status.
type fakeService struct {
	*httptest.Server
	mu     sync.Mutex
	got    []recorded
	status int
	answer string
}

func newFakeService(t *testing.T, useTLS bool) *fakeService {
	t.Helper()
	f := &fakeService{status: http.StatusOK}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.got = append(f.got, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
		status, answer := f.status, f.answer
		f.mu.Unlock()
		w.WriteHeader(status)
		io.WriteString(w, answer)
	})
	f.Server = httptest.NewUnstartedServer(h)
	f.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the point
	if useTLS {
		f.StartTLS()
	} else {
		f.Start()
	}
	t.Cleanup(f.Close)
	return f
}

func (f *fakeService) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.got...)
}

func (f *fakeService) hostPort() string {
	return strings.TrimPrefix(strings.TrimPrefix(f.URL, "http://"), "https://")
}

func (f *fakeService) endpoints() endpoints {
	return endpoints{slack: f.URL, discord: f.URL, telegram: f.URL, teams: f.URL}
}

// notifyConfig is a default configuration with the legacy flag map in place.
func notifyConfig(urls ...string) *config {
	c := defaultConfig()
	c.options()
	c.notificationURLs = urls
	return c
}

func setLegacy(c *config, values map[string]string) {
	for k, v := range values {
		*c.legacy[k] = v
	}
}

// testNotifier builds a notifier with short delivery bounds and a log to read.
func testNotifier(t *testing.T, c *config, ep endpoints) (*notifier, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	n, err := buildNotifier(c, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})), ep)
	if err != nil {
		t.Fatalf("buildNotifier: %v", err)
	}
	if n == nil {
		t.Fatal("buildNotifier returned no notifier")
	}
	n.attempt, n.retryWait, n.budget = 2*time.Second, 10*time.Millisecond, 5*time.Second
	return n, &logs
}

// sessionWith is a report of one updated, one failed and one fresh container on host box.
func sessionWith() sessionReport {
	return sessionReport{
		Host: "box", Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Duration: 1500 * time.Millisecond,
		Scanned: 3, Updated: 1, Failed: 1, Fresh: 1,
		Containers: []containerReport{
			{Name: "web", Image: "nginx:latest", State: stateUpdated, OldImage: "sha256:0123456789abcdef", NewImage: "sha256:fedcba9876543210"},
			{Name: "db", Image: "postgres:16", State: stateFailed, Reason: "pull: access denied\nmore"},
			{Name: "cache", Image: "redis:7", State: stateFresh},
		},
	}
}

const wantDefaultBody = "web (nginx:latest): updated\ndb (postgres:16): failed: pull: access denied\n" +
	"3 scanned, 1 updated, 0 rolled back, 1 failed, 0 stale, 1 fresh, 0 skipped\n"

func decodeJSON(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("payload is not JSON: %v: %s", err, b)
	}
	return m
}

func TestNotifyServices(t *testing.T) {
	title := "outpost on box"
	cases := []struct {
		name, url string
		requests  int
		check     func(t *testing.T, r recorded)
	}{
		{"generic+http", "generic+http://HOST/hook/path?a=b&@X-Key=k3y", 1, func(t *testing.T, r recorded) {
			if r.path != "/hook/path" || r.query != "a=b" || r.header.Get("X-Key") != "k3y" {
				t.Errorf("path %s query %s X-Key %q", r.path, r.query, r.header.Get("X-Key"))
			}
			p := decodeJSON(t, r.body)
			rep, _ := p["report"].(map[string]any)
			if p["title"] != title || p["message"] != wantDefaultBody || rep["Updated"] != 1.0 || rep["Host"] != "box" {
				t.Errorf("payload %v", p)
			}
		}},
		{"generic disabletls", "generic://HOST/hook?disabletls=yes", 1, func(t *testing.T, r recorded) {
			if r.path != "/hook" || r.query != "" {
				t.Errorf("path %s query %s", r.path, r.query)
			}
		}},
		{"slack tokens", "slack://bot@T0001/B0002/XXXX3?channel=%23ops&icon=:whale:", 1, func(t *testing.T, r recorded) {
			p := decodeJSON(t, r.body)
			if r.path != "/services/T0001/B0002/XXXX3" || p["text"] != "*"+title+"*\n"+wantDefaultBody ||
				p["username"] != "bot" || p["channel"] != "#ops" || p["icon_emoji"] != ":whale:" || p["icon_url"] != nil {
				t.Errorf("path %s payload %v", r.path, p)
			}
		}},
		{"slack hook", "slack://hook:T0001-B0002-XXXX3@ops?icon=https://x/i.png", 1, func(t *testing.T, r recorded) {
			p := decodeJSON(t, r.body)
			if r.path != "/services/T0001/B0002/XXXX3" || p["channel"] != "ops" || p["icon_url"] != "https://x/i.png" || p["username"] != nil {
				t.Errorf("path %s payload %v", r.path, p)
			}
		}},
		{"discord", "discord://t0ken@12345?username=outpost", 1, func(t *testing.T, r recorded) {
			p := decodeJSON(t, r.body)
			if r.path != "/api/webhooks/12345/t0ken" || p["content"] != title+"\n"+wantDefaultBody || p["username"] != "outpost" {
				t.Errorf("path %s payload %v", r.path, p)
			}
		}},
		{"teams+http", "teams+http://HOST/webhookb2/x/IncomingWebhook/y/z", 1, func(t *testing.T, r recorded) {
			p := decodeJSON(t, r.body)
			if r.path != "/webhookb2/x/IncomingWebhook/y/z" || p["@type"] != "MessageCard" || p["title"] != title ||
				p["text"] != strings.ReplaceAll(strings.TrimSpace(wantDefaultBody), "\n", "\n\n") {
				t.Errorf("path %s payload %v", r.path, p)
			}
		}},
		{"teams parts", "teams://grp@tenant/alt/owner", 1, func(t *testing.T, r recorded) {
			if r.path != "/webhookb2/grp@tenant/IncomingWebhook/alt/owner" {
				t.Errorf("path %s", r.path)
			}
		}},
		{"gotify", "gotify://HOST/sub/Atoken123?priority=5&disabletls=yes", 1, func(t *testing.T, r recorded) {
			p := decodeJSON(t, r.body)
			if r.path != "/sub/message" || r.query != "token=Atoken123" || p["title"] != title || p["message"] != wantDefaultBody || p["priority"] != 5.0 {
				t.Errorf("path %s query %s payload %v", r.path, r.query, p)
			}
		}},
		{"ntfy basic", "ntfy://user:pa55@HOST/updates?scheme=http&priority=high", 1, func(t *testing.T, r recorded) {
			user, pass, _ := (&http.Request{Header: r.header}).BasicAuth()
			if r.path != "/updates" || string(r.body) != wantDefaultBody || r.header.Get("Title") != title ||
				r.header.Get("Priority") != "high" || user != "user" || pass != "pa55" {
				t.Errorf("path %s headers %v body %q", r.path, r.header, r.body)
			}
		}},
		{"ntfy token", "ntfy://:tk_secret@HOST/updates?scheme=http", 1, func(t *testing.T, r recorded) {
			if r.header.Get("Authorization") != "Bearer tk_secret" {
				t.Errorf("Authorization %q", r.header.Get("Authorization"))
			}
		}},
		{"telegram", "telegram://123:ABCtoken@telegram?chats=-1001,@chan", 2, func(t *testing.T, r recorded) {
			p := decodeJSON(t, r.body)
			if r.path != "/bot123:ABCtoken/sendMessage" || p["text"] != title+"\n"+wantDefaultBody || (p["chat_id"] != "-1001" && p["chat_id"] != "@chan") {
				t.Errorf("path %s payload %v", r.path, p)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeService(t, false)
			n, logs := testNotifier(t, notifyConfig(strings.ReplaceAll(tc.url, "HOST", srv.hostPort())), srv.endpoints())
			n.notify(context.Background(), sessionWith())
			got := srv.requests()
			if len(got) != tc.requests {
				t.Fatalf("%d requests, want %d; log:\n%s", len(got), tc.requests, logs)
			}
			for _, r := range got {
				if r.method != http.MethodPost {
					t.Errorf("method %s", r.method)
				}
				if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") && !strings.HasPrefix(ct, "text/plain") {
					t.Errorf("Content-Type %q", ct)
				}
				tc.check(t, r)
			}
		})
	}
}

// TestNotifyHTTPSVerified: the https forms check the certificate against the roots.
func TestNotifyHTTPSVerified(t *testing.T) {
	srv := newFakeService(t, true)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	u := "generic://" + srv.hostPort() + "/hook"

	n, _ := testNotifier(t, notifyConfig(u), endpoints{roots: roots})
	n.notify(context.Background(), sessionWith())
	if len(srv.requests()) != 1 {
		t.Fatalf("trusted server got %d requests", len(srv.requests()))
	}

	n, logs := testNotifier(t, notifyConfig(u), endpoints{roots: x509.NewCertPool()})
	n.notify(context.Background(), sessionWith())
	if len(srv.requests()) != 1 || !strings.Contains(logs.String(), "certificate") {
		t.Fatalf("untrusted server: %d requests; log:\n%s", len(srv.requests()), logs)
	}
}

func TestNotifyLevels(t *testing.T) {
	fresh := sessionReport{Host: "box", Scanned: 2, Fresh: 2}
	stale := sessionReport{Host: "box", Scanned: 2, Fresh: 1, Stale: 1}
	updated := sessionReport{Host: "box", Scanned: 1, Updated: 1}
	rolled := sessionReport{Host: "box", Scanned: 1, RolledBack: 1}
	broken := sessionReport{Host: "box", Error: "engine unreachable"}
	cases := []struct {
		level string
		rep   sessionReport
		sent  bool
	}{
		{"info", fresh, false}, {"trace", fresh, false}, {"error", fresh, false},
		{"info", updated, true}, {"debug", stale, true},
		{"warn", updated, false}, {"warn", stale, true}, {"warn", rolled, true},
		{"error", stale, false}, {"error", updated, false}, {"error", rolled, true}, {"error", broken, true},
	}
	for _, tc := range cases {
		srv := newFakeService(t, false)
		c := notifyConfig("generic+http://" + srv.hostPort() + "/hook")
		c.notificationsLevel = tc.level
		n, _ := testNotifier(t, c, endpoints{})
		n.notify(context.Background(), tc.rep)
		if got := len(srv.requests()) == 1; got != tc.sent {
			t.Errorf("level %s, report %+v: sent %v, want %v", tc.level, tc.rep, got, tc.sent)
		}
	}
}

func TestNotifyMessages(t *testing.T) {
	srv := newFakeService(t, false)
	u := "generic+http://" + srv.hostPort() + "/hook"
	send := func(c *config) (map[string]any, string) {
		t.Helper()
		before := len(srv.requests())
		n, logs := testNotifier(t, c, endpoints{})
		n.notify(context.Background(), sessionWith())
		got := srv.requests()
		if len(got) == before {
			return nil, logs.String()
		}
		return decodeJSON(t, got[len(got)-1].body), logs.String()
	}

	c := notifyConfig(u)
	c.notificationTitleTag = "prod"
	if p, _ := send(c); p["title"] != "[prod] outpost on box" {
		t.Errorf("tagged title %v", p["title"])
	}
	c = notifyConfig(u)
	setLegacy(c, map[string]string{"notification-email-subjecttag": "mail"})
	if p, _ := send(c); p["title"] != "[mail] outpost on box" {
		t.Errorf("subject tag as title tag: %v", p["title"])
	}
	c = notifyConfig(u)
	c.notificationSkipTitle = true
	if p, _ := send(c); p["title"] != "" {
		t.Errorf("skipped title %v", p["title"])
	}

	c = notifyConfig(u)
	c.notificationReport = true
	p, _ := send(c)
	body, _ := p["message"].(string)
	for _, want := range []string{"Session of 2026-01-02T03:04:05Z (1.5s): 3 scanned, 1 updated", "cache (redis:7): fresh", "web (nginx:latest): updated [0123456789ab → fedcba987654]"} {
		if !strings.Contains(body, want) {
			t.Errorf("report body lacks %q:\n%s", want, body)
		}
	}

	c = notifyConfig(u)
	c.notificationTemplate = `{{.Updated}} updated on {{.Host}}{{range .Containers}} {{.Name}}{{end}}`
	if p, _ := send(c); p["message"] != "1 updated on box web db cache" {
		t.Errorf("template body %q", p["message"])
	}
	c = notifyConfig(u)
	c.notificationTemplate = `{{if gt .Failed 5}}many failures{{end}}`
	if p, _ := send(c); p != nil {
		t.Errorf("a template rendering nothing sent %v", p)
	}
	c = notifyConfig(u)
	c.notificationTemplate = `{{.NoSuchField}}`
	p, logs := send(c)
	if p["message"] != wantDefaultBody || !strings.Contains(logs, "--notification-template failed") {
		t.Errorf("failing template: body %q, log:\n%s", p["message"], logs)
	}

	c = notifyConfig(u)
	c.notificationTemplate = `{{.Updated`
	if _, err := buildNotifier(c, discardLog(), endpoints{}); err == nil || !strings.Contains(err.Error(), "--notification-template") {
		t.Errorf("bad template: %v", err)
	}
}

func TestNotifyStdoutAndDelay(t *testing.T) {
	srv := newFakeService(t, false)
	c := notifyConfig("generic+http://" + srv.hostPort() + "/hook")
	c.notificationLogStdout = true
	c.notificationsDelay = 150 * time.Millisecond
	n, _ := testNotifier(t, c, endpoints{})
	if n.stdout != os.Stdout {
		t.Fatal("--notification-log-stdout does not write to stdout")
	}
	var out bytes.Buffer
	n.stdout = &out
	start := time.Now()
	n.notify(context.Background(), sessionWith())
	if took := time.Since(start); took < c.notificationsDelay || len(srv.requests()) != 1 {
		t.Errorf("sent %d after %v, want 1 after the delay", len(srv.requests()), took)
	}
	if out.String() != "outpost on box\n"+wantDefaultBody {
		t.Errorf("stdout %q", out.String())
	}

	// Only stdout: a notifier without services still writes, and sends nothing.
	c = notifyConfig()
	c.notificationLogStdout = true
	n, _ = testNotifier(t, c, endpoints{})
	out.Reset()
	n.stdout = &out
	n.notify(context.Background(), sessionWith())
	if !strings.Contains(out.String(), "db (postgres:16): failed") {
		t.Errorf("stdout-only %q", out.String())
	}
}

func TestNotifyRetryKeepsSecretsOutOfLog(t *testing.T) {
	const secret = "S3cretWebhookToken"
	srv := newFakeService(t, false)
	srv.status, srv.answer = http.StatusInternalServerError, "no such hook "+secret
	c := notifyConfig("slack://hook:T0001-B0002-"+secret+"@ops", "telegram://42:"+secret+"@telegram?chats=7")
	n, logs := testNotifier(t, c, srv.endpoints())
	n.notify(context.Background(), sessionWith())
	if got := len(srv.requests()); got != 4 {
		t.Errorf("%d requests, want 2 services × 2 attempts", got)
	}
	log := logs.String()
	if strings.Count(log, "notification not delivered") != 2 || !strings.Contains(log, "service=slack") ||
		!strings.Contains(log, "host="+srv.hostPort()) || !strings.Contains(log, "500") {
		t.Errorf("log:\n%s", log)
	}
	if strings.Contains(log, secret) {
		t.Errorf("the log shows the secret:\n%s", log)
	}

	// A refusal is final: no second attempt.
	srv2 := newFakeService(t, false)
	srv2.status = http.StatusNotFound
	n, _ = testNotifier(t, notifyConfig("discord://tok@1"), srv2.endpoints())
	n.notify(context.Background(), sessionWith())
	if got := len(srv2.requests()); got != 1 {
		t.Errorf("404: %d requests, want 1", got)
	}
}

func TestNotifyHangingServicesAreBounded(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer hang.Close()
	defer close(release)
	silent, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never greets
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	c := notifyConfig("generic+http://"+strings.TrimPrefix(hang.URL, "http://")+"/hook",
		"smtp://"+silent.Addr().String()+"/?from=a@example.com&to=b@example.com")
	n, logs := testNotifier(t, c, endpoints{})
	n.attempt, n.retryWait, n.budget = 200*time.Millisecond, 50*time.Millisecond, 400*time.Millisecond
	start := time.Now()
	n.notify(context.Background(), sessionWith())
	if took := time.Since(start); took > time.Second {
		t.Errorf("notify took %v with a budget of 400ms", took)
	}
	if strings.Count(logs.String(), "notification not delivered") != 2 {
		t.Errorf("log:\n%s", logs)
	}
}

// smtpReceived is what the fake mail server was told.
type smtpReceived struct {
	tls        bool
	auth, from string
	to         []string
	data       string
}

// fakeSMTP is a mail server speaking enough SMTP for net/smtp; with cert it offers STARTTLS, or
// speaks TLS from the start when implicit, and takes AUTH only over TLS.
func fakeSMTP(t *testing.T, cert *tls.Certificate, implicit bool) (addr string, received func() smtpReceived) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got smtpReceived
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		secure := false
		if implicit {
			conn = tls.Server(conn, &tls.Config{Certificates: []tls.Certificate{*cert}})
			mu.Lock()
			secure, got.tls = true, true
			mu.Unlock()
		}
		tp := textproto.NewConn(conn)
		tp.PrintfLine("220 fake ESMTP")
		for {
			line, err := tp.ReadLine()
			if err != nil {
				return
			}
			verb, arg, _ := strings.Cut(line, " ")
			mu.Lock()
			switch strings.ToUpper(verb) {
			case "EHLO":
				ext := []string{"fake"}
				if cert != nil && !secure {
					ext = append(ext, "STARTTLS")
				} else {
					ext = append(ext, "AUTH PLAIN")
				}
				for i, e := range ext {
					sep := "-"
					if i == len(ext)-1 {
						sep = " "
					}
					tp.PrintfLine("250%s%s", sep, e)
				}
			case "STARTTLS":
				tp.PrintfLine("220 go ahead")
				tc := tls.Server(conn, &tls.Config{Certificates: []tls.Certificate{*cert}})
				if err := tc.Handshake(); err != nil {
					mu.Unlock()
					return
				}
				tp, secure, got.tls = textproto.NewConn(tc), true, true
			case "AUTH":
				got.auth = arg
				tp.PrintfLine("235 ok")
			case "MAIL":
				got.from = arg
				tp.PrintfLine("250 ok")
			case "RCPT":
				got.to = append(got.to, arg)
				tp.PrintfLine("250 ok")
			case "DATA":
				tp.PrintfLine("354 go on")
				b, _ := tp.ReadDotBytes()
				got.data = string(b)
				tp.PrintfLine("250 queued")
			case "QUIT":
				tp.PrintfLine("221 bye")
				mu.Unlock()
				return
			default:
				tp.PrintfLine("502 unknown")
			}
			mu.Unlock()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String(), func() smtpReceived {
		mu.Lock()
		defer mu.Unlock()
		return got
	}
}

// checkMail asserts the envelope and the message of the session's mail.
func checkMail(t *testing.T, got smtpReceived, subject string) {
	t.Helper()
	if got.from != "FROM:<outpost@example.com>" || len(got.to) != 2 || got.to[0] != "TO:<ops@example.com>" || got.to[1] != "TO:<dev@example.com>" {
		t.Errorf("envelope from %q to %q", got.from, got.to)
	}
	msg, err := mail.ReadMessage(strings.NewReader(got.data))
	if err != nil {
		t.Fatalf("not a mail message: %v\n%s", err, got.data)
	}
	h := msg.Header
	if h.Get("From") != "<outpost@example.com>" || h.Get("To") != "<ops@example.com>, <dev@example.com>" || h.Get("Subject") != subject ||
		h.Get("MIME-Version") != "1.0" || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") || h.Get("Content-Transfer-Encoding") != "quoted-printable" {
		t.Errorf("headers %v", h)
	}
	if d, err := h.Date(); err != nil || time.Since(d) > time.Minute {
		t.Errorf("Date %q: %v", h.Get("Date"), err)
	}
	body, _ := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if strings.ReplaceAll(string(body), "\r\n", "\n") != wantDefaultBody {
		t.Errorf("body %q", body)
	}
}

func TestNotifySMTPPlain(t *testing.T) {
	addr, received := fakeSMTP(t, nil, false)
	// PLAIN goes over a plain connection only to localhost, which net/smtp checks by name.
	c := notifyConfig("smtp://mailer:pw@"+addr+"/?from=outpost@example.com&to=ops@example.com", "dev@example.com")
	n, logs := testNotifier(t, c, endpoints{})
	n.notify(context.Background(), sessionWith())
	got := received()
	if got.tls || got.auth != "PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00mailer\x00pw")) {
		t.Errorf("tls %v auth %q; log:\n%s", got.tls, got.auth, logs)
	}
	checkMail(t, got, "outpost on box")
}

func TestNotifySMTPStartTLS(t *testing.T) {
	ca := newTestCA(t)
	cert := ca.serverCertificate(t, "127.0.0.1")
	addr, received := fakeSMTP(t, &cert, false)
	host, port, _ := net.SplitHostPort(addr)
	c := notifyConfig()
	c.notifications = []string{"email"}
	c.notificationTitleTag = "prod"
	setLegacy(c, map[string]string{
		"notification-email-server": host, "notification-email-server-port": port,
		"notification-email-from": "outpost@example.com", "notification-email-to": "ops@example.com, dev@example.com",
		"notification-email-server-user": "mailer", "notification-email-server-password": writeSecret(t, "pw\n"),
	})
	n, logs := testNotifier(t, c, endpoints{roots: ca.pool})
	n.notify(context.Background(), sessionWith())
	got := received()
	if !got.tls || got.auth != "PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00mailer\x00pw")) {
		t.Errorf("tls %v auth %q; log:\n%s", got.tls, got.auth, logs)
	}
	checkMail(t, got, "[prod] outpost on box")

	// An unknown CA ends the conversation before any credential is sent.
	addr, received = fakeSMTP(t, &cert, false)
	n, logs = testNotifier(t, notifyConfig("smtp://mailer:pw@"+addr+"/?from=outpost@example.com&to=ops@example.com"), endpoints{roots: x509.NewCertPool()})
	n.notify(context.Background(), sessionWith())
	if got := received(); got.auth != "" || got.data != "" || !strings.Contains(logs.String(), "certificate") {
		t.Errorf("untrusted server got %+v; log:\n%s", got, logs)
	}
}

func TestNotifySMTPImplicitTLS(t *testing.T) {
	ca := newTestCA(t)
	cert := ca.serverCertificate(t, "127.0.0.1")
	addr, received := fakeSMTP(t, &cert, true)
	c := notifyConfig("smtp://mailer:pw@" + addr + "/?from=outpost@example.com&to=ops@example.com,dev@example.com&encryption=implicittls&subject=Updates")
	n, logs := testNotifier(t, c, endpoints{roots: ca.pool})
	n.notify(context.Background(), sessionWith())
	got := received()
	if !got.tls || got.auth == "" {
		t.Errorf("tls %v auth %q; log:\n%s", got.tls, got.auth, logs)
	}
	checkMail(t, got, "Updates")
}

func writeSecret(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestNotifyLegacyFlags(t *testing.T) {
	srv := newFakeService(t, false)
	tlsSrv := newFakeService(t, true) // its certificate is trusted only through skip-verify
	c := notifyConfig()
	c.notifications = []string{"slack", "msteams", "gotify", "shoutrrr"}
	setLegacy(c, map[string]string{
		"notification-slack-hook-url": srv.URL + "/legacy/slack", "notification-slack-channel": "#ops",
		"notification-slack-icon-emoji": ":ship:",
		"notification-msteams-hook":     writeSecret(t, srv.URL+"/legacy/teams"), "notification-msteams-data": "true",
		"notification-gotify-url": tlsSrv.URL + "/g", "notification-gotify-token": "Gtoken",
		"notification-gotify-tls-skip-verify": "true",
	})
	n, logs := testNotifier(t, c, endpoints{roots: x509.NewCertPool()})
	if len(n.dests) != 3 {
		t.Fatalf("%d destinations, want slack, teams and gotify", len(n.dests))
	}
	n.notify(context.Background(), sessionWith())
	byPath := map[string]map[string]any{}
	for _, r := range srv.requests() {
		byPath[r.path] = decodeJSON(t, r.body)
	}
	if p := byPath["/legacy/slack"]; p["username"] != "watchtower" || p["channel"] != "#ops" || p["icon_emoji"] != ":ship:" {
		t.Errorf("slack %v; log:\n%s", p, logs)
	}
	if p := byPath["/legacy/teams"]; p["@type"] != "MessageCard" || !strings.Contains(p["text"].(string), "cache (redis:7): fresh") {
		t.Errorf("teams with data %v", p)
	}
	if got := tlsSrv.requests(); len(got) != 1 || got[0].path != "/g/message" || got[0].query != "token=Gtoken" {
		t.Errorf("gotify %+v; log:\n%s", got, logs)
	}
}

func TestNotifyURLsFromFile(t *testing.T) {
	file := writeSecret(t, "# services\nslack://a/b/c\n\n  discord://t@1  \n")
	n, _ := testNotifier(t, notifyConfig(file), endpoints{})
	if len(n.dests) != 2 || n.dests[0].service != "slack" || n.dests[1].service != "discord" {
		t.Errorf("destinations %+v", n.dests)
	}
	// The list flag splits at commas; the pieces are put back together.
	n, _ = testNotifier(t, notifyConfig("telegram://1:tok@telegram?chats=5", "6"), endpoints{})
	if len(n.dests) != 2 {
		t.Errorf("%d telegram destinations, want one per chat", len(n.dests))
	}
}

func TestNotifyConfigErrors(t *testing.T) {
	cases := []struct {
		name  string
		setup func(c *config)
		want  []string
	}{
		{"scheme", func(c *config) { c.notificationURLs = []string{"pushover://user:S3cret@host"} }, []string{"--notification-url", `"pushover"`}},
		{"slack", func(c *config) { c.notificationURLs = []string{"slack://S3cret/b"} }, []string{"--notification-url", "slack URL"}},
		{"gotify", func(c *config) { c.notificationURLs = []string{"gotify://host"} }, []string{"--notification-url", "gotify URL"}},
		{"smtp", func(c *config) { c.notificationURLs = []string{"smtp://u:S3cret@host/?from=nobody"} }, []string{"--notification-url", "smtp URL", "sender address"}},
		{"not a URL", func(c *config) { c.notificationURLs = []string{"no-such-file"} }, []string{"--notification-url"}},
		{"level", func(c *config) { c.notificationsLevel = "loud" }, []string{"--notifications-level"}},
		{"type", func(c *config) { c.notifications = []string{"pager"} }, []string{"--notifications", `"pager"`}},
		{"email", func(c *config) { c.notifications = []string{"email"} }, []string{"--notification-email-server"}},
		{"gotify token", func(c *config) {
			c.notifications = []string{"gotify"}
			setLegacy(c, map[string]string{"notification-gotify-url": "https://g.example"})
		}, []string{"--notification-gotify-token"}},
		{"port", func(c *config) {
			c.notifications = []string{"email"}
			setLegacy(c, map[string]string{"notification-email-server": "m", "notification-email-from": "a@b", "notification-email-to": "c@d", "notification-email-server-port": "x"})
		}, []string{"--notification-email-server-port"}},
	}
	for _, tc := range cases {
		c := notifyConfig()
		tc.setup(c)
		_, err := newNotifier(c, discardLog())
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q lacks %q", tc.name, err, w)
			}
		}
		if strings.Contains(err.Error(), "S3cret") {
			t.Errorf("%s: the error shows the secret: %v", tc.name, err)
		}
		if _, ok := err.(*usageError); !ok {
			t.Errorf("%s: %T is not a usage error", tc.name, err)
		}
	}

	n, err := newNotifier(notifyConfig(), discardLog())
	if n != nil || err != nil {
		t.Errorf("nothing configured: %v, %v", n, err)
	}
	n.notify(context.Background(), sessionWith()) // a nil notifier sends nothing and does not panic
}
