// auth.go owns registry authentication: reading WWW-Authenticate challenges, fetching Bearer
// tokens from a challenge's realm, caching them until shortly before they expire, and telling
// when a refused token should be fetched again. Where credentials come from is credentials.go's.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// challenge is one RFC 7235 challenge of a WWW-Authenticate header.
type challenge struct {
	scheme string            // as sent; compare with strings.EqualFold
	params map[string]string // parameter names lower-cased; values exactly as sent (case kept)
}

// is tells whether the challenge uses scheme; scheme names are case-insensitive.
func (c challenge) is(scheme string) bool { return strings.EqualFold(c.scheme, scheme) }

// parseChallenges reads the challenges of WWW-Authenticate header lines (resp.Header.Values).
// It never fails: what it cannot read it skips, so an odd header costs only the odd part. A
// token68 (as in "Negotiate abc==") is kept under the empty parameter name.
func parseChallenges(values ...string) []challenge {
	var out []challenge
	for _, v := range values {
		// Each line on its own, as the docker client does: an unterminated quote in one line
		// cannot swallow the next.
		out = append(out, parseChallengeLine(v)...)
	}
	return out
}

func parseChallengeLine(s string) []challenge {
	var out []challenge
	for i := 0; i < len(s); {
		if s[i] == ',' || isSpace(s[i]) {
			i++ // separators and empty list elements
			continue
		}
		tok := scanToken(s, i)
		if tok == "" {
			i++ // a byte that can start nothing
			continue
		}
		j := skipSpace(s, i+len(tok))
		if j < len(s) && s[j] == '=' {
			val, next := scanValue(s, skipSpace(s, j+1))
			i = next
			if len(out) == 0 {
				continue // a parameter before any scheme belongs to nothing
			}
			name := strings.ToLower(tok)
			if _, dup := out[len(out)-1].params[name]; !dup { // RFC 7235: a name occurs once
				out[len(out)-1].params[name] = val
			}
			continue
		}
		c := challenge{scheme: tok, params: map[string]string{}}
		i += len(tok)
		if j > i { // the scheme is followed by whitespace: a token68 may come next
			if t, next, ok := scanToken68(s, j); ok {
				c.params[""] = t
				i = next
			}
		}
		out = append(out, c)
	}
	return out
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' }

func skipSpace(s string, i int) int {
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return i
}

// isTchar tells whether b may appear in an RFC 7230 token.
func isTchar(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' ||
		strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0
}

func scanToken(s string, i int) string {
	j := i
	for j < len(s) && isTchar(s[j]) {
		j++
	}
	return s[i:j]
}

// scanToken68 reads a token68 at i; it is one only if the list element ends right after it.
func scanToken68(s string, i int) (string, int, bool) {
	j := i
	for j < len(s) && (isAlnum(s[j]) || strings.IndexByte("-._~+/", s[j]) >= 0) {
		j++
	}
	if j == i {
		return "", i, false
	}
	for j < len(s) && s[j] == '=' {
		j++
	}
	if e := skipSpace(s, j); e < len(s) && s[e] != ',' {
		return "", i, false
	}
	return s[i:j], j, true
}

func isAlnum(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
}

// scanValue reads a parameter value at i: a quoted-string (backslash escapes the next byte; an
// unterminated one runs to the end), else everything up to a comma or whitespace, which also
// takes the unquoted URLs some servers send although ':' and '/' are not token characters.
func scanValue(s string, i int) (string, int) {
	if i < len(s) && s[i] == '"' {
		var b strings.Builder
		for j := i + 1; j < len(s); j++ {
			switch {
			case s[j] == '\\' && j+1 < len(s):
				j++
				b.WriteByte(s[j])
			case s[j] == '"':
				return b.String(), j + 1
			default:
				b.WriteByte(s[j])
			}
		}
		return b.String(), len(s)
	}
	j := i
	for j < len(s) && s[j] != ',' && !isSpace(s[j]) {
		j++
	}
	return s[i:j], j
}

// credential is what a user gave for one registry; the zero value means anonymous.
type credential struct{ username, password, identityToken string }

func (c credential) empty() bool { return c == credential{} }

// tokenKey is what a token is good for. scope is the space-joined sorted scopes.
type tokenKey struct{ realm, service, scope string }

// tokenMargin is how long before its expiry a cached token stops being handed out. A token must
// outlive the request that carries it (a manifest request with its timeout and retries) and the
// clocks of the token service and the registry may differ by a few seconds: 30 s covers both.
// A token that lives less than twice that keeps half its life instead, so that the shortest one
// a registry may grant (60 s) is still reused rather than fetched for every request.
const tokenMargin = 30 * time.Second

// tokenCache holds Bearer tokens until shortly before they expire. It is safe for concurrent use.
type tokenCache struct {
	mu      sync.Mutex
	entries map[tokenKey]cachedToken
	now     func() time.Time
}

type cachedToken struct {
	token   string
	staleAt time.Time // expiry minus the margin
}

// newTokenCache returns an empty cache reading the clock from now (nil means time.Now).
func newTokenCache(now func() time.Time) *tokenCache {
	if now == nil {
		now = time.Now
	}
	return &tokenCache{entries: map[tokenKey]cachedToken{}, now: now}
}

// get returns the token for k unless it is absent or within its margin of expiry.
func (c *tokenCache) get(k tokenKey) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok || !c.now().Before(e.staleAt) {
		return "", false
	}
	return e.token, true
}

// put stores a token that expires at expiry, and forgets the stale ones so the map stays small.
func (c *tokenCache) put(k tokenKey, token string, expiry time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for key, e := range c.entries {
		if !now.Before(e.staleAt) {
			delete(c.entries, key)
		}
	}
	margin := min(tokenMargin, max(expiry.Sub(now), 0)/2)
	c.entries[k] = cachedToken{token: token, staleAt: expiry.Add(-margin)}
}

// drop forgets the token for k, which the registry refused.
func (c *tokenCache) drop(k tokenKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, k)
}

const (
	minTokenLife   = 60        // seconds; what the token spec says to assume when none is given
	maxTokenLife   = 24 * 3600 // seconds; bounds absurd answers before they overflow a Duration
	maxTokenAnswer = 1 << 20   // bytes read from a token service
	maxRedirects   = 10        // as net/http's default policy
	oauthClientID  = "outpost" // client_id of the OAuth2 refresh-token grant
	excerptLength  = 200       // bytes of an unrecognised error body shown to the user
)

// fetchToken asks a Bearer challenge's realm for a pull token. With an identity token it makes
// the OAuth2 refresh-token POST, as the docker client does; otherwise a GET with Basic
// credentials when there are any. Credentials only travel over HTTPS or to a loopback realm.
func fetchToken(ctx context.Context, hc *http.Client, ch challenge, scopes []string, cred credential, now func() time.Time) (token string, expiry time.Time, err error) {
	if now == nil {
		now = time.Now
	}
	realm := ch.params["realm"]
	u, err := url.Parse(realm)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", time.Time{}, fmt.Errorf("bearer challenge realm %q is not an http(s) URL", realm)
	}
	if !cred.empty() && !safeForCredentials(u) {
		return "", time.Time{}, fmt.Errorf("token service %s: refusing to send credentials over plain HTTP to a host that is not loopback", u.Host)
	}
	req, err := tokenRequest(ctx, u, ch.params["service"], scopes, cred)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("token service %s: %w", u.Host, err)
	}
	client := *hc
	if !cred.empty() {
		client.CheckRedirect = guardRedirects(hc.CheckRedirect)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("token service %s: %w", u.Host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenAnswer))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("token service %s: reading the answer: %w", u.Host, err)
	}
	if resp.StatusCode/100 != 2 {
		if msg := serverMessage(body); msg != "" {
			return "", time.Time{}, fmt.Errorf("token service %s answered %s: %s", u.Host, resp.Status, msg)
		}
		return "", time.Time{}, fmt.Errorf("token service %s answered %s", u.Host, resp.Status)
	}
	var ans struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
		IssuedAt    string `json:"issued_at"`
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		return "", time.Time{}, fmt.Errorf("token service %s: answer is not a token: %w", u.Host, err)
	}
	token = ans.Token
	if ans.AccessToken != "" {
		token = ans.AccessToken
	}
	if token == "" {
		return "", time.Time{}, fmt.Errorf("token service %s answered without a token", u.Host)
	}
	issued := now()
	if t, err := time.Parse(time.RFC3339, ans.IssuedAt); err == nil {
		issued = t
	}
	life := time.Duration(min(max(ans.ExpiresIn, minTokenLife), maxTokenLife)) * time.Second
	return token, issued.Add(life), nil
}

// tokenRequest builds the token request for realm u.
func tokenRequest(ctx context.Context, u *url.URL, service string, scopes []string, cred credential) (*http.Request, error) {
	if cred.identityToken != "" {
		form := url.Values{}
		form.Set("grant_type", "refresh_token")
		form.Set("refresh_token", cred.identityToken)
		form.Set("client_id", oauthClientID)
		if service != "" {
			form.Set("service", service)
		}
		if len(scopes) > 0 {
			form.Set("scope", strings.Join(scopes, " "))
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form.Encode()))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req, nil
	}
	q := u.Query()
	if service != "" {
		q.Set("service", service)
	}
	for _, s := range scopes {
		q.Add("scope", s)
	}
	withQuery := *u
	withQuery.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, withQuery.String(), nil)
	if err != nil {
		return nil, err
	}
	if cred.username != "" || cred.password != "" {
		req.SetBasicAuth(cred.username, cred.password)
	}
	return req, nil
}

// safeForCredentials tells whether credentials may be sent to u: over TLS, or to this machine.
func safeForCredentials(u *url.URL) bool {
	return u.Scheme == "https" || isLoopbackHost(u.Host)
}

// guardRedirects wraps a redirect policy so that credentials never follow a redirect to plain
// HTTP elsewhere: a 307/308 resends the refresh-token form, and net/http keeps Authorization on
// a redirect to the same host even when it drops from HTTPS to HTTP.
func guardRedirects(next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if !safeForCredentials(req.URL) {
			return fmt.Errorf("refusing to follow a redirect to %s over plain HTTP with credentials", req.URL.Host)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		return nil
	}
}

// serverMessage finds the server's own words in an error body: a registry error list, Docker
// Hub's {"details"}, an OAuth2 error, or else the first line of the body.
func serverMessage(body []byte) string {
	var e struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
		Details     string `json:"details"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(body, &e) == nil {
		var msgs []string
		for _, x := range e.Errors {
			msgs = append(msgs, joinNonEmpty(": ", x.Code, x.Message))
		}
		msgs = append(msgs, e.Details, joinNonEmpty(": ", e.Error, e.Description))
		if m := joinNonEmpty("; ", msgs...); m != "" {
			return m
		}
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
	if len(line) > excerptLength {
		line = line[:excerptLength] + "…"
	}
	return strings.ToValidUTF8(strings.TrimSpace(line), "")
}

func joinNonEmpty(sep string, parts ...string) string {
	var kept []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, sep)
}

// tokenRefresh tells whether a 401 answer to a request that carried a token asks for a new one:
// a Bearer challenge saying the token is invalid (expired, revoked) or lacks the scope.
func tokenRefresh(resp *http.Response) bool {
	if resp.StatusCode != http.StatusUnauthorized {
		return false
	}
	for _, c := range parseChallenges(resp.Header.Values("Www-Authenticate")...) {
		if e := c.params["error"]; c.is("bearer") && (e == "invalid_token" || e == "insufficient_scope") {
			return true
		}
	}
	return false
}
