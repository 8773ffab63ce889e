// notify.go owns notifications: the services named by --notification-url and by the legacy
// --notifications flags, the message made from a session report, and its delivery in bounded
// time with one retry. A service's URL holds its secrets, so only its scheme and host are logged.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/template"
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
	tmpl       *template.Template // nil: the default body
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
		t, err := template.New("notification").Parse(c.notificationTemplate)
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

// secretOrFile is a value, or the content of the file it names.
func secretOrFile(v string) string {
	if st, err := os.Stat(v); err == nil && st.Mode().IsRegular() {
		if b, err := os.ReadFile(v); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	return v
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
		if err := n.tmpl.Execute(&b, rep); err != nil {
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
			fmt.Fprintf(&b, " [%s → %s]", shortImageID(c.OldImage), shortImageID(c.NewImage))
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

func shortImageID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
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

func notifyClient(roots *x509.CertPool, skipVerify bool) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, InsecureSkipVerify: skipVerify, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr}
}

// destinationBuilder turns URLs and legacy flags into destinations.
type destinationBuilder struct {
	ep     endpoints
	client *http.Client
}

// fromURL reads one Shoutrrr-style service URL; telegram gives one destination per chat.
func (b destinationBuilder) fromURL(raw string) ([]destination, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return nil, errors.New("a value is not a service URL") // the parser's message would show secrets
	}
	scheme := strings.ToLower(u.Scheme)
	var d destination
	switch scheme {
	case "generic", "generic+https", "generic+http":
		d, err = b.generic(u, scheme)
	case "slack":
		d, err = b.slack(u)
	case "discord":
		d, err = b.discord(u)
	case "teams", "teams+https", "teams+http":
		d, err = b.teams(u, scheme)
	case "gotify":
		d, err = b.gotify(u)
	case "ntfy":
		d, err = b.ntfy(u)
	case "telegram":
		var ds []destination
		if ds, err = b.telegram(u); err == nil {
			return ds, nil
		}
	case "smtp":
		d, err = b.smtpURL(u)
	default:
		return nil, fmt.Errorf("unsupported scheme %q: want generic, slack, discord, teams, gotify, ntfy, telegram or smtp", scheme)
	}
	if err != nil {
		return nil, fmt.Errorf("%s URL: %w", scheme, err)
	}
	return []destination{d}, nil
}

// webhook is a service reached with one HTTP POST per message.
type webhook struct {
	service string
	target  *url.URL
	client  *http.Client
	header  http.Header       // sent with every message
	title   string            // the header that carries the title, for services that take one
	payload func(message) any // JSON, or plain text for a string
}

func (w webhook) destination(secrets ...string) destination {
	secrets = append(secrets, urlSecrets(w.target)...)
	return destination{service: w.service, host: w.target.Host, secrets: secrets, send: w.send}
}

func (w webhook) send(ctx context.Context, m message) error {
	body, ctype := []byte(nil), "application/json"
	switch p := w.payload(m).(type) {
	case string:
		body, ctype = []byte(p), "text/plain; charset=utf-8"
	default:
		var err error
		if body, err = json.Marshal(p); err != nil {
			return fmt.Errorf("encode message: %w", err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.target.String(), bytes.NewReader(body))
	if err != nil {
		return errors.New("cannot build the request")
	}
	for k, v := range w.header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("User-Agent", "outpost/"+version)
	if w.title != "" && m.title != "" {
		req.Header.Set(w.title, mime.QEncoding.Encode("utf-8", oneLine(m.title)))
	}
	resp, err := w.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text holds the whole URL
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		text, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return &serviceError{code: resp.StatusCode, msg: firstLine(string(text))}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	return nil
}

// urlSecrets are the parts of a URL that may be tokens: password, long path segments and values.
func urlSecrets(u *url.URL) []string {
	var s []string
	if u.User != nil {
		if p, ok := u.User.Password(); ok {
			s = append(s, p)
		}
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if len(seg) >= 8 {
			s = append(s, seg)
		}
	}
	for _, vs := range u.Query() {
		for _, v := range vs {
			if len(v) >= 8 {
				s = append(s, v)
			}
		}
	}
	return s
}

func yes(s string) bool {
	switch strings.ToLower(s) {
	case "yes", "true", "1", "on":
		return true
	}
	return false
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func firstOf(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

func pathParts(u *url.URL) []string {
	return strings.FieldsFunc(u.Path, func(r rune) bool { return r == '/' })
}

// generic posts the title, the message and the whole report as JSON. Query keys starting with
// @ are request headers; the others stay in the URL.
func (b destinationBuilder) generic(u *url.URL, scheme string) (destination, error) {
	if u.Host == "" {
		return destination{}, errors.New("want generic://host[:port]/path")
	}
	t := *u
	q := u.Query()
	t.Scheme = "https"
	if scheme == "generic+http" || (scheme == "generic" && yes(q.Get("disabletls"))) {
		t.Scheme = "http"
	}
	header := http.Header{}
	for k, vs := range q {
		if strings.HasPrefix(k, "@") {
			header.Set(k[1:], vs[0])
			q.Del(k)
		}
	}
	q.Del("disabletls")
	t.RawQuery = q.Encode()
	w := webhook{service: "generic", target: &t, client: b.client, header: header, payload: func(m message) any {
		return map[string]any{"title": m.title, "message": m.body, "report": m.report}
	}}
	var headerSecrets []string
	for _, vs := range header {
		headerSecrets = append(headerSecrets, vs...)
	}
	return w.destination(headerSecrets...), nil
}

// slack takes slack://[botname@]token-a/token-b/token-c and slack://hook:a-b-c@channel.
func (b destinationBuilder) slack(u *url.URL) (destination, error) {
	q := u.Query()
	bot, channel := firstOf(q.Get("botname"), q.Get("username")), q.Get("channel")
	var tokens []string
	pw, hasPw := "", false
	if u.User != nil {
		pw, hasPw = u.User.Password()
	}
	switch {
	case hasPw && u.User.Username() == "hook":
		tokens = strings.FieldsFunc(pw, func(r rune) bool { return r == '-' || r == '/' })
		if channel == "" && u.Host != "webhook" {
			channel = u.Host
		}
	case hasPw:
		return destination{}, errors.New("only webhook tokens (slack://hook:…@channel) are supported, not bot API tokens")
	default:
		tokens = append([]string{u.Host}, pathParts(u)...)
		if u.User != nil && bot == "" {
			bot = u.User.Username()
		}
	}
	if len(tokens) != 3 || slices.Contains(tokens, "") {
		return destination{}, errors.New("want slack://token-a/token-b/token-c or slack://hook:token-a-token-b-token-c@channel")
	}
	target, err := url.Parse(b.ep.slack + "/services/" + strings.Join(tokens, "/"))
	if err != nil {
		return destination{}, errors.New("malformed webhook tokens")
	}
	return b.slackHook(target, bot, channel, q.Get("icon")), nil
}

func (b destinationBuilder) slackHook(target *url.URL, username, channel, icon string) destination {
	w := webhook{service: "slack", target: target, client: b.client, payload: func(m message) any {
		esc := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
		text := esc.Replace(m.body)
		if m.title != "" {
			text = "*" + esc.Replace(m.title) + "*\n" + text
		}
		p := map[string]string{"text": text}
		for k, v := range map[string]string{"username": username, "channel": channel} {
			if v != "" {
				p[k] = v
			}
		}
		switch {
		case strings.HasPrefix(icon, "http://"), strings.HasPrefix(icon, "https://"):
			p["icon_url"] = icon
		case icon != "":
			p["icon_emoji"] = icon
		}
		return p
	}}
	return w.destination()
}

// discord takes discord://token@webhookid.
func (b destinationBuilder) discord(u *url.URL) (destination, error) {
	if u.User == nil || u.User.Username() == "" || u.Host == "" {
		return destination{}, errors.New("want discord://token@webhookid")
	}
	token, q := u.User.Username(), u.Query()
	target, err := url.Parse(b.ep.discord + "/api/webhooks/" + url.PathEscape(u.Host) + "/" + url.PathEscape(token))
	if err != nil {
		return destination{}, errors.New("malformed webhook id or token")
	}
	w := webhook{service: "discord", target: target, client: b.client, payload: func(m message) any {
		p := map[string]string{"content": clip(titled(m), 2000)}
		if v := q.Get("username"); v != "" {
			p["username"] = v
		}
		if v := q.Get("avatar"); v != "" {
			p["avatar_url"] = v
		}
		return p
	}}
	return w.destination(token), nil
}

// teams takes teams+https://<the webhook URL> and teams://group@tenant/altId/groupOwner[/extraId]?host=….
func (b destinationBuilder) teams(u *url.URL, scheme string) (destination, error) {
	if scheme != "teams" {
		if u.Host == "" {
			return destination{}, errors.New("want teams+https://<the webhook URL>")
		}
		t := *u
		t.Scheme = strings.TrimPrefix(scheme, "teams+")
		return b.teamsHook(&t, false), nil
	}
	parts := pathParts(u)
	if u.User == nil || u.User.Username() == "" || u.Host == "" || len(parts) < 2 {
		return destination{}, errors.New("want teams://group@tenant/altId/groupOwner?host=<organisation>.webhook.office.com, or teams+https://<the webhook URL>")
	}
	base := b.ep.teams
	if h := u.Query().Get("host"); h != "" {
		base = "https://" + h
	}
	target, err := url.Parse(base + "/webhookb2/" + u.User.Username() + "@" + u.Host + "/IncomingWebhook/" + strings.Join(parts, "/"))
	if err != nil {
		return destination{}, errors.New("malformed webhook parts")
	}
	return b.teamsHook(target, false), nil
}

// teamsHook posts a MessageCard; withReport (--notification-msteams-data) sends the whole report.
func (b destinationBuilder) teamsHook(target *url.URL, withReport bool) destination {
	w := webhook{service: "teams", target: target, client: b.client, payload: func(m message) any {
		text := m.body
		if withReport {
			text = fullReportBody(m.report)
		}
		p := map[string]string{
			"@type": "MessageCard", "@context": "https://schema.org/extensions",
			"summary": firstOf(m.title, "outpost"),
			"text":    strings.ReplaceAll(strings.TrimRight(text, "\n"), "\n", "\n\n"), // Markdown joins single lines
		}
		if m.title != "" {
			p["title"] = m.title
		}
		return p
	}}
	return w.destination()
}

// gotify takes gotify://host[:port][/path]/token[?priority=N&disabletls=yes].
func (b destinationBuilder) gotify(u *url.URL) (destination, error) {
	parts := pathParts(u)
	if u.Host == "" || len(parts) == 0 {
		return destination{}, errors.New("want gotify://host[:port][/path]/token")
	}
	q := u.Query()
	base := &url.URL{Scheme: "https", Host: u.Host, Path: "/" + strings.Join(parts[:len(parts)-1], "/")}
	if yes(q.Get("disabletls")) {
		base.Scheme = "http"
	}
	priority := 0
	if p := q.Get("priority"); p != "" {
		var err error
		if priority, err = strconv.Atoi(p); err != nil {
			return destination{}, errors.New("priority must be a whole number")
		}
	}
	return b.gotifyDest(base, parts[len(parts)-1], priority, b.client), nil
}

func (b destinationBuilder) gotifyDest(base *url.URL, token string, priority int, client *http.Client) destination {
	target := base.JoinPath("message")
	target.RawQuery = url.Values{"token": {token}}.Encode()
	w := webhook{service: "gotify", target: target, client: client, payload: func(m message) any {
		p := map[string]any{"message": m.body, "priority": priority}
		if m.title != "" {
			p["title"] = m.title
		}
		return p
	}}
	return w.destination(token)
}

// ntfy takes ntfy://[user:pass@]host/topic and ntfy://:token@host/topic; the body is the text.
func (b destinationBuilder) ntfy(u *url.URL) (destination, error) {
	topic := strings.Trim(u.Path, "/")
	if topic == "" {
		return destination{}, errors.New("want ntfy://[user:password@]host/topic")
	}
	q := u.Query()
	scheme := firstOf(strings.ToLower(q.Get("scheme")), "https")
	if scheme != "https" && scheme != "http" {
		return destination{}, errors.New("scheme must be https or http")
	}
	target := &url.URL{Scheme: scheme, Host: firstOf(u.Host, "ntfy.sh"), Path: "/" + topic}
	header := http.Header{}
	var secrets []string
	if u.User != nil {
		pw, _ := u.User.Password()
		secrets = append(secrets, pw)
		if u.User.Username() == "" {
			header.Set("Authorization", "Bearer "+pw)
		} else {
			target.User = u.User // the client sends it as Basic authorization
		}
	}
	for _, k := range []string{"priority", "tags", "click", "icon", "email", "delay"} {
		if v := q.Get(k); v != "" {
			header.Set(k, v)
		}
	}
	w := webhook{service: "ntfy", target: target, client: b.client, header: header, title: "Title",
		payload: func(m message) any { return m.body }}
	return w.destination(secrets...), nil
}

// telegram takes telegram://token@telegram?chats=id1,id2 and sends to each chat.
func (b destinationBuilder) telegram(u *url.URL) ([]destination, error) {
	token, pw := "", ""
	if u.User != nil {
		token = u.User.Username()
		if p, ok := u.User.Password(); ok {
			token, pw = token+":"+p, p
		}
	}
	q := u.Query()
	var chats []string
	for _, c := range strings.Split(firstOf(q.Get("chats"), q.Get("channels")), ",") {
		if c = strings.TrimSpace(c); c != "" {
			chats = append(chats, c)
		}
	}
	if token == "" || len(chats) == 0 {
		return nil, errors.New("want telegram://token@telegram?chats=id1,id2")
	}
	target, err := url.Parse(b.ep.telegram + "/bot" + token + "/sendMessage")
	if err != nil {
		return nil, errors.New("malformed bot token")
	}
	var ds []destination
	for _, chat := range chats {
		w := webhook{service: "telegram", target: target, client: b.client, payload: func(m message) any {
			return map[string]string{"chat_id": chat, "text": clip(titled(m), 4096)}
		}}
		ds = append(ds, w.destination(token, pw))
	}
	return ds, nil
}

// legacySlack maps --notification-slack-* onto the Slack sender.
func (b destinationBuilder) legacySlack(legacy func(string) string) (destination, error) {
	raw := secretOrFile(legacy("notification-slack-hook-url"))
	target, err := url.Parse(raw)
	if raw == "" || err != nil || (target.Scheme != "https" && target.Scheme != "http") || target.Host == "" {
		return destination{}, usagef("--notifications slack needs --notification-slack-hook-url: the webhook's https:// URL")
	}
	return b.slackHook(target, firstOf(legacy("notification-slack-identifier"), "watchtower"),
		legacy("notification-slack-channel"),
		firstOf(legacy("notification-slack-icon-emoji"), legacy("notification-slack-icon-url"))), nil
}

// legacyTeams maps --notification-msteams-hook and -data onto the Teams sender.
func (b destinationBuilder) legacyTeams(legacy func(string) string) (destination, error) {
	raw := secretOrFile(legacy("notification-msteams-hook"))
	target, err := url.Parse(raw)
	if raw == "" || err != nil || (target.Scheme != "https" && target.Scheme != "http") || target.Host == "" {
		return destination{}, usagef("--notifications msteams needs --notification-msteams-hook: the webhook's https:// URL")
	}
	withData, err := legacyBool(legacy, "notification-msteams-data")
	if err != nil {
		return destination{}, err
	}
	return b.teamsHook(target, withData), nil
}

// legacyGotify maps --notification-gotify-* onto the Gotify sender.
func (b destinationBuilder) legacyGotify(legacy func(string) string) (destination, error) {
	base, err := url.Parse(legacy("notification-gotify-url"))
	if legacy("notification-gotify-url") == "" || err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
		return destination{}, usagef("--notifications gotify needs --notification-gotify-url: the server's https:// URL")
	}
	token := secretOrFile(legacy("notification-gotify-token"))
	if token == "" {
		return destination{}, usagef("--notifications gotify needs --notification-gotify-token")
	}
	skip, err := legacyBool(legacy, "notification-gotify-tls-skip-verify")
	if err != nil {
		return destination{}, err
	}
	client := b.client
	if skip {
		client = notifyClient(b.ep.roots, true)
	}
	base.RawQuery, base.Fragment = "", ""
	return b.gotifyDest(base, token, 0, client), nil
}

// legacyEmail maps --notification-email-* onto the SMTP sender.
func (b destinationBuilder) legacyEmail(legacy func(string) string) (destination, error) {
	server, from, to := legacy("notification-email-server"), legacy("notification-email-from"), legacy("notification-email-to")
	if server == "" || from == "" || to == "" {
		return destination{}, usagef("--notifications email needs --notification-email-server, --notification-email-from and --notification-email-to")
	}
	port := firstOf(legacy("notification-email-server-port"), "25")
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return destination{}, usagef("invalid value %q for --notification-email-server-port: want a port number", port)
	}
	skip, err := legacyBool(legacy, "notification-email-server-tls-skip-verify")
	if err != nil {
		return destination{}, err
	}
	s := &smtpSender{host: server, port: port, user: legacy("notification-email-server-user"),
		password: secretOrFile(legacy("notification-email-server-password")), encryption: "auto", skipVerify: skip, roots: b.ep.roots}
	if err := s.addresses(from, to); err != nil {
		return destination{}, usagef("--notifications email: %v", err)
	}
	return s.destination(), nil
}

func legacyBool(legacy func(string) string, name string) (bool, error) {
	v := legacy(name)
	if v == "" {
		return false, nil
	}
	on, err := strconv.ParseBool(v)
	if err != nil {
		return false, usagef("invalid value %q for --%s: want true or false", v, name)
	}
	return on, nil
}

// smtpURL takes smtp://[user:password@]host[:port]/?from=a@b&to=c@d[,e@f][&encryption=…&subject=…].
func (b destinationBuilder) smtpURL(u *url.URL) (destination, error) {
	q := u.Query()
	s := &smtpSender{host: u.Hostname(), port: firstOf(u.Port(), "25"), subject: firstOf(q.Get("subject"), q.Get("title")),
		encryption: firstOf(strings.ToLower(q.Get("encryption")), "auto"), roots: b.ep.roots}
	if u.User != nil {
		s.user = u.User.Username()
		s.password, _ = u.User.Password()
	}
	if s.encryption == "auto" && q.Get("usestarttls") != "" && !yes(q.Get("usestarttls")) {
		s.encryption = "none"
	}
	switch s.encryption {
	case "auto", "none", "explicittls", "implicittls":
	default:
		return destination{}, errors.New("encryption must be auto, none, explicittls or implicittls")
	}
	if s.host == "" {
		return destination{}, errors.New("want smtp://[user:password@]host[:port]/?from=address&to=address[,address]")
	}
	if err := s.addresses(firstOf(q.Get("from"), q.Get("fromaddress")), firstOf(q.Get("to"), q.Get("toaddresses"))); err != nil {
		return destination{}, err
	}
	return s.destination(), nil
}

// smtpSender sends one mail per message, with STARTTLS whenever the server offers it.
type smtpSender struct {
	host, port     string
	user, password string
	from           *mail.Address
	to             []*mail.Address
	subject        string // replaces the title when set
	encryption     string // auto, none, explicittls, implicittls
	skipVerify     bool
	roots          *x509.CertPool
}

func (s *smtpSender) addresses(from, to string) error {
	var err error
	if s.from, err = mail.ParseAddress(from); err != nil {
		return fmt.Errorf("sender address %q: %v", from, err)
	}
	if s.to, err = mail.ParseAddressList(to); err != nil {
		return fmt.Errorf("recipient addresses %q: %v", to, err)
	}
	return nil
}

func (s *smtpSender) destination() destination {
	if s.encryption == "auto" && s.port == "465" {
		s.encryption = "implicittls" // the submissions port speaks TLS from the start
	}
	return destination{service: "smtp", host: net.JoinHostPort(s.host, s.port), secrets: []string{s.password}, send: s.send}
}

func (s *smtpSender) send(ctx context.Context, m message) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(s.host, s.port))
	if err != nil {
		return err
	}
	defer conn.Close()
	// net/smtp knows no contexts: the deadline and a cancel both end the connection.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	err = s.converse(ctx, conn, m)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("smtp: %w", ctx.Err())
	}
	return err
}

func (s *smtpSender) converse(ctx context.Context, conn net.Conn, m message) error {
	tlsConf := &tls.Config{ServerName: s.host, RootCAs: s.roots, InsecureSkipVerify: s.skipVerify, MinVersion: tls.VersionTLS12}
	if s.encryption == "implicittls" {
		tc := tls.Client(conn, tlsConf)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("smtp tls: %w", err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		return fmt.Errorf("smtp greeting: %w", err)
	}
	defer c.Close()
	if s.encryption == "auto" || s.encryption == "explicittls" {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(tlsConf); err != nil {
				return fmt.Errorf("smtp starttls: %w", err)
			}
		} else if s.encryption == "explicittls" {
			return errors.New("smtp: the server offers no STARTTLS")
		}
	}
	if s.user != "" {
		if err := s.authenticate(c); err != nil {
			return err
		}
	}
	if err := c.Mail(s.from.Address); err != nil {
		return fmt.Errorf("smtp sender: %w", err)
	}
	for _, to := range s.to {
		if err := c.Rcpt(to.Address); err != nil {
			return fmt.Errorf("smtp recipient %s: %w", to.Address, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp data: %w", err)
	}
	if _, err := w.Write(s.mail(m, time.Now())); err != nil {
		return fmt.Errorf("smtp data: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp data: %w", err)
	}
	return c.Quit()
}

// authenticate uses PLAIN, which net/smtp sends only over TLS or to localhost, else CRAM-MD5.
func (s *smtpSender) authenticate(c *smtp.Client) error {
	ok, mechs := c.Extension("AUTH")
	var auth smtp.Auth
	switch {
	case !ok:
		return errors.New("smtp: the server offers no authentication; drop the user name")
	case slices.Contains(strings.Fields(strings.ToUpper(mechs)), "PLAIN"):
		auth = smtp.PlainAuth("", s.user, s.password, s.host)
	case slices.Contains(strings.Fields(strings.ToUpper(mechs)), "CRAM-MD5"):
		auth = smtp.CRAMMD5Auth(s.user, s.password)
	default:
		return fmt.Errorf("smtp: the server offers only %s authentication", mechs)
	}
	if err := c.Auth(auth); err != nil {
		return fmt.Errorf("smtp auth: %w", err)
	}
	return nil
}

// mail is the message in RFC 5322 form: quoted-printable UTF-8 text, an encoded subject.
func (s *smtpSender) mail(m message, date time.Time) []byte {
	var b bytes.Buffer
	header := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	header("From", s.from.String())
	to := make([]string, len(s.to))
	for i, a := range s.to {
		to[i] = a.String()
	}
	header("To", strings.Join(to, ", "))
	if subject := firstOf(s.subject, m.title); subject != "" {
		header("Subject", mime.QEncoding.Encode("utf-8", oneLine(subject)))
	}
	header("Date", date.Format(time.RFC1123Z))
	header("MIME-Version", "1.0")
	header("Content-Type", `text/plain; charset="utf-8"`)
	header("Content-Transfer-Encoding", "quoted-printable")
	header("Auto-Submitted", "auto-generated")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	_, _ = qp.Write([]byte(m.body))
	_ = qp.Close()
	return b.Bytes()
}
