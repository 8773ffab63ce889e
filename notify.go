// notify.go owns notifications: the services named by --notification-url and by the legacy
// --notifications flags, the message made from a session report, and its delivery in bounded
// time with one retry. A service's URL holds its secrets, so only its scheme and host are logged.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// Delivery bounds: two attempts and the pause between them stay under the whole budget, so a
// dead service delays the next session by at most notifyBudget.
const (
	notifyAttemptTimeout = 10 * time.Second
	notifyRetryWait      = 2 * time.Second
	notifyBudget         = 25 * time.Second
)

// notifier sends one message per session to every configured service.
type notifier struct {
	dests      []destination
	threshold  int // the least news (see newsOf) worth a message
	host       string
	tag        string
	skipTitle  bool
	fullReport bool
	tmpl       *textTemplate // nil: the default body
	delay      time.Duration
	attempt    time.Duration
	retryWait  time.Duration
	budget     time.Duration
	stdout     io.Writer // nil unless --notification-log-stdout
	log        *slog.Logger
}

// destination is one place a message goes. service and host are all of it that may be logged.
type destination struct {
	service, host string
	secrets       []string // scrubbed from errors before they are logged
	send          func(ctx context.Context, m message) error
}

// message is what every service is sent.
type message struct {
	title, body string
	report      sessionReport
}

// endpoints are the fixed addresses of hosted services and the roots their certificates are
// checked against; tests point them at loopback servers.
type endpoints struct {
	slack, discord, telegram, teams string
	roots                           *x509.CertPool // nil: the system's
}

func hostedEndpoints() endpoints {
	return endpoints{
		slack:    "https://hooks.slack.com",
		discord:  "https://discord.com",
		telegram: "https://api.telegram.org",
		teams:    "https://outlook.office.com",
	}
}

// News ranks of a session, and the --notifications-level values that ask for them.
const (
	newsNone = iota
	newsChange
	newsStale
	newsFailure
)

var notifyThresholds = map[string]int{
	"panic": newsFailure, "fatal": newsFailure, "error": newsFailure,
	"warn": newsStale, "warning": newsStale,
	"": newsChange, "info": newsChange, "debug": newsChange, "trace": newsChange,
}

func newsOf(r sessionReport) int {
	switch {
	case r.Failed+r.RolledBack > 0 || r.Error != "":
		return newsFailure
	case r.Stale > 0:
		return newsStale
	case r.Changed():
		return newsChange
	}
	return newsNone
}

// newNotifier builds the senders from --notification-url and the legacy --notifications types.
// It returns nil when nothing is to be sent anywhere.
func newNotifier(c *config, log *slog.Logger) (*notifier, error) {
	return buildNotifier(c, log, hostedEndpoints())
}

func buildNotifier(c *config, log *slog.Logger, ep endpoints) (*notifier, error) {
	legacy := func(name string) string {
		if p := c.legacy[name]; p != nil {
			return strings.TrimSpace(*p)
		}
		return ""
	}
	threshold, ok := notifyThresholds[strings.ToLower(strings.TrimSpace(c.notificationsLevel))]
	if !ok {
		return nil, usagef("invalid value %q for --notifications-level: want error, warn, info, debug or trace", c.notificationsLevel)
	}
	n := &notifier{
		threshold: threshold, host: c.notificationsHostname, tag: c.notificationTitleTag,
		skipTitle: c.notificationSkipTitle, fullReport: c.notificationReport, delay: c.notificationsDelay,
		attempt: notifyAttemptTimeout, retryWait: notifyRetryWait, budget: notifyBudget, log: log,
	}
	if n.host == "" {
		n.host, _ = os.Hostname()
	}
	if n.tag == "" {
		n.tag = legacy("notification-email-subjecttag") // Watchtower's fallback for the title tag
	}
	if n.delay == 0 && legacy("notification-email-delay") != "" {
		d, err := parseSeconds(legacy("notification-email-delay"))
		if err != nil {
			return nil, usagef("invalid value for --notification-email-delay: %v", err)
		}
		n.delay = d
	}
	if c.notificationTemplate != "" {
		t, err := parseTemplate("notification", c.notificationTemplate)
		if err != nil {
			return nil, usagef("invalid --notification-template: %v", err)
		}
		n.tmpl = t
	}
	if c.notificationLogStdout {
		n.stdout = os.Stdout
	}

	b := destinationBuilder{ep: ep, client: notifyClient(ep.roots, false)}
	for _, kind := range c.notifications {
		var d destination
		var err error
		switch strings.ToLower(kind) {
		case "shoutrrr":
			continue // its services are the --notification-url values, always used
		case "email":
			d, err = b.legacyEmail(legacy)
		case "slack":
			d, err = b.legacySlack(legacy)
		case "msteams":
			d, err = b.legacyTeams(legacy)
		case "gotify":
			d, err = b.legacyGotify(legacy)
		default:
			return nil, usagef("invalid value %q for --notifications: want email, slack, msteams, gotify or shoutrrr", kind)
		}
		if err != nil {
			return nil, err
		}
		n.dests = append(n.dests, d)
	}
	urls, err := expandNotificationURLs(c.notificationURLs)
	if err != nil {
		return nil, err
	}
	for _, raw := range urls {
		ds, err := b.fromURL(raw)
		if err != nil {
			return nil, usagef("invalid value for --notification-url: %v", err)
		}
		n.dests = append(n.dests, ds...)
	}
	if len(n.dests) == 0 && n.stdout == nil {
		return nil, nil
	}
	return n, nil
}

// expandNotificationURLs reads the values that name files (one URL per line, # comments) and
// mends URLs that the list flag split at their commas (smtp://…?to=a,b; telegram chats=1,2).
func expandNotificationURLs(values []string) ([]string, error) {
	var out []string
	for _, v := range values {
		if strings.Contains(v, "://") {
			out = append(out, v)
			continue
		}
		if st, err := os.Stat(v); err == nil && st.Mode().IsRegular() {
			b, err := os.ReadFile(v)
			if err != nil {
				return nil, usagef("--notification-url file: %v", err)
			}
			for line := range strings.Lines(string(b)) {
				if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
					out = append(out, line)
				}
			}
			continue
		}
		if len(out) == 0 {
			return nil, usagef("invalid value for --notification-url: a value is neither a service URL nor a readable file")
		}
		out[len(out)-1] += "," + v
	}
	return out, nil
}

// notify sends the session's message when its news reach --notifications-level, and returns
// when every delivery has ended: after the delay and at most the budget.
func (n *notifier) notify(ctx context.Context, rep sessionReport) {
	if n == nil {
		return
	}
	if newsOf(rep) == newsNone || newsOf(rep) < n.threshold {
		n.log.Debug("no notification: nothing at --notifications-level")
		return
	}
	m, ok := n.message(rep)
	if !ok {
		n.log.Debug("no notification: the template rendered nothing")
		return
	}
	if n.stdout != nil {
		if m.title != "" {
			fmt.Fprintln(n.stdout, m.title)
		}
		fmt.Fprintln(n.stdout, strings.TrimRight(m.body, "\n"))
	}
	if len(n.dests) == 0 {
		return
	}
	if err := sleepCtx(ctx, n.delay); err != nil {
		n.log.Warn("notifications not sent", "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, n.budget)
	defer cancel()
	var wg sync.WaitGroup
	for _, d := range n.dests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.deliver(ctx, d, m)
		}()
	}
	wg.Wait()
}

// deliver makes up to two attempts, the second only after an error that may pass.
func (n *notifier) deliver(ctx context.Context, d destination, m message) {
	defer func() {
		if r := recover(); r != nil {
			n.log.Error("notification sender failed", "service", d.service, "host", d.host, "err", d.scrub(fmt.Errorf("panic: %v", r)))
		}
	}()
	var err error
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, n.attempt)
		err = d.send(actx, m)
		cancel()
		if err == nil {
			n.log.Debug("notification sent", "service", d.service, "host", d.host)
			return
		}
		if attempt == 2 || !retryable(err) || sleepCtx(ctx, n.retryWait) != nil {
			break
		}
	}
	n.log.Warn("notification not delivered", "service", d.service, "host", d.host, "err", d.scrub(err))
}

// scrub removes the destination's secrets from an error's text.
func (d destination) scrub(err error) string {
	s := err.Error()
	for _, secret := range d.secrets {
		if len(secret) >= 4 {
			s = strings.ReplaceAll(s, secret, "***")
			s = strings.ReplaceAll(s, url.PathEscape(secret), "***")
		}
	}
	return s
}

// serviceError is a service's answer that was not a success.
type serviceError struct {
	code int
	msg  string
}

func (e *serviceError) Error() string {
	if e.msg == "" {
		return fmt.Sprintf("answered %d %s", e.code, http.StatusText(e.code))
	}
	return fmt.Sprintf("answered %d %s: %s", e.code, http.StatusText(e.code), e.msg)
}

// retryable: network trouble, timeouts, HTTP 5xx and 429 and SMTP 4xx may pass; refusals and
// untrusted certificates will not.
func retryable(err error) bool {
	var se *serviceError
	if errors.As(err, &se) {
		return se.code >= 500 || se.code == http.StatusTooManyRequests
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code >= 400 && te.Code < 500
	}
	var ce *tls.CertificateVerificationError
	return !errors.As(err, &ce)
}

// message renders the session as title and body; false when a template chose to say nothing.
func (n *notifier) message(rep sessionReport) (message, bool) {
	m := message{report: rep}
	if !n.skipTitle {
		host := rep.Host
		if host == "" {
			host = n.host
		}
		m.title = "outpost on " + host
		if n.tag != "" {
			m.title = "[" + n.tag + "] " + m.title
		}
	}
	switch {
	case n.tmpl != nil:
		var b strings.Builder
		if err := n.tmpl.execute(&b, rep); err != nil {
			n.log.Warn("--notification-template failed; sending the default message", "err", err)
			m.body = defaultBody(rep)
			break
		}
		if strings.TrimSpace(b.String()) == "" {
			return m, false
		}
		m.body = b.String()
	case n.fullReport:
		m.body = fullReportBody(rep)
	default:
		m.body = defaultBody(rep)
	}
	return m, true
}

// defaultBody is a line per container with news, then the counts.
func defaultBody(r sessionReport) string {
	var b strings.Builder
	if r.Error != "" {
		fmt.Fprintf(&b, "Session failed: %s\n", firstLine(r.Error))
	}
	for _, c := range r.Containers {
		switch c.State {
		case stateUpdated, stateRolledBack, stateFailed, stateStale:
			b.WriteString(containerLine(c) + "\n")
		}
	}
	b.WriteString(summaryLine(r) + "\n")
	return b.String()
}

// fullReportBody is the whole report: when and how long, the counts and every container.
func fullReportBody(r sessionReport) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Session of %s (%s): %s\n", r.Started.Format(time.RFC3339), r.Duration.Round(time.Millisecond), summaryLine(r))
	if r.Error != "" {
		fmt.Fprintf(&b, "Session failed: %s\n", firstLine(r.Error))
	}
	for _, c := range r.Containers {
		b.WriteString(containerLine(c))
		if c.NewImage != "" {
			fmt.Fprintf(&b, " [%s → %s]", shortID(c.OldImage), shortID(c.NewImage))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func containerLine(c containerReport) string {
	line := fmt.Sprintf("%s (%s): %s", c.Name, c.Image, c.State)
	if c.Reason != "" {
		line += ": " + firstLine(c.Reason)
	}
	return line
}

func summaryLine(r sessionReport) string {
	return fmt.Sprintf("%d scanned, %d updated, %d rolled back, %d failed, %d stale, %d fresh, %d skipped",
		r.Scanned, r.Updated, r.RolledBack, r.Failed, r.Stale, r.Fresh, r.Skipped)
}

// titled puts the title above the body for services that have no title field.
func titled(m message) string {
	if m.title == "" {
		return m.body
	}
	return m.title + "\n" + m.body
}

// clip keeps a text within a service's length limit.
func clip(s string, limit int) string {
	r := []rune(s)
	if len(r) <= limit {
		return s
	}
	return string(r[:limit-1]) + "…"
}
