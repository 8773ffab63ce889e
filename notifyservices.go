// notifyservices.go owns the notification services reached over HTTP: parsing their URLs (and the
// legacy per-service flags) into destinations, and the webhook, Slack, Discord, Teams, Gotify,
// ntfy and Telegram requests.
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
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// notifyClient is the HTTP client of one service: its own roots or skip-verify when asked.
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
