package main

import (
	"context"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseChallenges(t *testing.T) {
	type p = map[string]string
	tests := []struct {
		name   string
		values []string
		want   []challenge
	}{
		{"basic", []string{`Basic realm="Registry Realm"`},
			[]challenge{{"Basic", p{"realm": "Registry Realm"}}}},
		{"bearer with realm service scope",
			[]string{`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"`},
			[]challenge{{"Bearer", p{"realm": "https://auth.docker.io/token", "service": "registry.docker.io", "scope": "repository:library/alpine:pull"}}}},
		{"case of values kept, of names folded", []string{`BEARER Realm="https://Auth.Example.com/Token/V2",SERVICE="Registry.Example"`},
			[]challenge{{"BEARER", p{"realm": "https://Auth.Example.com/Token/V2", "service": "Registry.Example"}}}},
		{"quoted commas spaces and escapes",
			[]string{`Bearer realm="https://a.example/t", error_description="a, b  c \"quoted\" back\\slash \x"`},
			[]challenge{{"Bearer", p{"realm": "https://a.example/t", "error_description": `a, b  c "quoted" back\slash x`}}}},
		{"pull,push scope", []string{`Bearer realm="https://a.example/t",service="reg",scope="repository:app:pull,push"`},
			[]challenge{{"Bearer", p{"realm": "https://a.example/t", "service": "reg", "scope": "repository:app:pull,push"}}}},
		{"several challenges in one header", []string{`Basic realm="x", Bearer realm="y",service="z"`},
			[]challenge{{"Basic", p{"realm": "x"}}, {"Bearer", p{"realm": "y", "service": "z"}}}},
		{"several header values", []string{`Basic realm="x"`, `Bearer realm="y", error="invalid_token"`},
			[]challenge{{"Basic", p{"realm": "x"}}, {"Bearer", p{"realm": "y", "error": "invalid_token"}}}},
		{"missing service", []string{`Bearer realm="https://a.example/token"`},
			[]challenge{{"Bearer", p{"realm": "https://a.example/token"}}}},
		{"unquoted values, URL included", []string{`Bearer realm=https://a.example/token?x=1,service=reg`},
			[]challenge{{"Bearer", p{"realm": "https://a.example/token?x=1", "service": "reg"}}}},
		{"extra spaces, tabs and empty elements", []string{" ,, Bearer \t realm = \"x\" ,,\tservice=\"y\" , ,"},
			[]challenge{{"Bearer", p{"realm": "x", "service": "y"}}}},
		{"missing comma between parameters", []string{`Bearer realm="x" service="y"`},
			[]challenge{{"Bearer", p{"realm": "x", "service": "y"}}}},
		{"scheme without parameters", []string{`Basic, Bearer realm="y"`},
			[]challenge{{"Basic", p{}}, {"Bearer", p{"realm": "y"}}}},
		{"token68", []string{`Basic abc==`}, []challenge{{"Basic", p{"": "abc=="}}}},
		{"token68 then another challenge", []string{`Negotiate a+b/c=, Basic realm="r"`},
			[]challenge{{"Negotiate", p{"": "a+b/c="}}, {"Basic", p{"realm": "r"}}}},
		{"duplicate parameter keeps the first", []string{`Bearer realm="first", REALM="second"`},
			[]challenge{{"Bearer", p{"realm": "first"}}}},
		{"empty quoted value", []string{`Bearer realm="", service=`},
			[]challenge{{"Bearer", p{"realm": "", "service": ""}}}},
		{"unterminated quote runs to the end", []string{`Bearer realm="https://a.example, service=y`},
			[]challenge{{"Bearer", p{"realm": "https://a.example, service=y"}}}},
		{"unterminated quote stays in its line", []string{`Bearer realm="x`, `Basic realm="y"`},
			[]challenge{{"Bearer", p{"realm": "x"}}, {"Basic", p{"realm": "y"}}}},
		{"parameters before any scheme are dropped", []string{`realm="x", service=y`}, nil},
		{"no values", nil, nil},
		{"empty", []string{""}, nil},
		{"only separators", []string{" ,\t, ,,"}, nil},
		{"stray bytes only", []string{`@@@ ()<>;"`}, nil},
		{"lone equals and quotes", []string{`= "=" ==`}, nil},
		{"stray bytes around a challenge", []string{`@ Bearer realm="x" ;`},
			[]challenge{{"Bearer", p{"realm": "x"}}}},
		{"trailing backslash in a quote", []string{`Bearer realm="x\`},
			[]challenge{{"Bearer", p{"realm": `x\`}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseChallenges(tt.values...)
			if len(got) != len(tt.want) || (len(got) > 0 && !reflect.DeepEqual(got, tt.want)) {
				t.Errorf("parseChallenges(%q)\n got %#v\nwant %#v", tt.values, got, tt.want)
			}
		})
	}
}

func TestChallengeIs(t *testing.T) {
	c := challenge{scheme: "BeArEr"}
	for scheme, want := range map[string]bool{"bearer": true, "BEARER": true, "Bearer": true, "basic": false, "": false, "bearer ": false} {
		if got := c.is(scheme); got != want {
			t.Errorf("challenge %q is(%q) = %v, want %v", c.scheme, scheme, got, want)
		}
	}
}

// renderChallenge writes c back as a header value with every parameter value quoted.
func renderChallenge(c challenge) string {
	var b strings.Builder
	b.WriteString(c.scheme)
	sep := " "
	if t, ok := c.params[""]; ok {
		b.WriteString(" " + t)
		sep = ", "
	}
	names := make([]string, 0, len(c.params))
	for n := range c.params {
		if n != "" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	quote := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	for _, n := range names {
		b.WriteString(sep + n + `="` + quote.Replace(c.params[n]) + `"`)
		sep = ", "
	}
	return b.String()
}

func FuzzParseChallenges(f *testing.F) {
	for _, s := range []string{
		`Basic realm="Registry Realm"`,
		`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"`,
		`Basic realm="x", Bearer realm="y",service="z"`,
		`Bearer realm="a, b \"c\" \\ d", scope="repository:app:pull,push"`,
		`Negotiate abc==, Basic realm=r`,
		` ,, Bearer  realm = "x" ,, service=y ,`,
		`Bearer realm="unterminated`,
		`Bearer error="invalid_token", error_description="The access token expired"`,
		`realm="orphan" = , ""`,
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, c := range parseChallenges(s) {
			if c.scheme == "" || c.params == nil {
				t.Fatalf("parseChallenges(%q): challenge without scheme or params: %#v", s, c)
			}
			for n := range c.params {
				if n != strings.ToLower(n) {
					t.Fatalf("parseChallenges(%q): parameter name %q is not lower-case", s, n)
				}
			}
			r := renderChallenge(c)
			again := parseChallenges(r)
			if len(again) != 1 || again[0].scheme != c.scheme || !reflect.DeepEqual(again[0].params, c.params) {
				t.Fatalf("parseChallenges(%q) = %#v; re-rendered as %q it parses to %#v", s, c, r, again)
			}
		}
	})
}

// tokenRequestSeen is what a test token service received.
type tokenRequestSeen struct {
	method, auth, contentType string
	query, form               url.Values
}

// tokenServer answers every request with status and body, and records the last request.
func tokenServer(t *testing.T, status int, body string) (*httptest.Server, *tokenRequestSeen) {
	t.Helper()
	seen := &tokenRequestSeen{}
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Errorf("token service: %v", err)
		}
		mu.Lock()
		*seen = tokenRequestSeen{r.Method, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), r.URL.Query(), r.PostForm}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv, seen
}

func basicHeader(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestFetchToken(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { return now }
	pull := []string{"repository:app:pull"}
	tests := []struct {
		name       string
		service    string // of the challenge; "" leaves it out
		realmPath  string
		scopes     []string
		cred       credential
		status     int
		body       string
		wantMethod string
		wantAuth   string
		wantQuery  url.Values
		wantForm   url.Values
		wantToken  string
		wantExpiry time.Time
	}{
		{name: "anonymous", service: "reg", scopes: pull, status: 200, body: `{"token":"t-anon","expires_in":300}`,
			wantMethod: "GET", wantQuery: url.Values{"service": {"reg"}, "scope": pull},
			wantToken: "t-anon", wantExpiry: now.Add(300 * time.Second)},
		{name: "basic credentials", service: "reg", scopes: pull, cred: credential{username: "alice", password: "s3cret"},
			status: 200, body: `{"token":"t-basic","expires_in":300}`,
			wantMethod: "GET", wantAuth: basicHeader("alice", "s3cret"), wantQuery: url.Values{"service": {"reg"}, "scope": pull},
			wantToken: "t-basic", wantExpiry: now.Add(300 * time.Second)},
		{name: "access_token only", service: "reg", scopes: pull, status: 200, body: `{"access_token":"a-only","expires_in":120}`,
			wantMethod: "GET", wantQuery: url.Values{"service": {"reg"}, "scope": pull},
			wantToken: "a-only", wantExpiry: now.Add(120 * time.Second)},
		{name: "both: access_token wins", service: "reg", scopes: pull, status: 200, body: `{"token":"t-both","access_token":"a-both","expires_in":120}`,
			wantMethod: "GET", wantQuery: url.Values{"service": {"reg"}, "scope": pull},
			wantToken: "a-both", wantExpiry: now.Add(120 * time.Second)},
		{name: "empty access_token: token used", service: "reg", scopes: pull, status: 200, body: `{"token":"t-kept","access_token":"","expires_in":120}`,
			wantMethod: "GET", wantQuery: url.Values{"service": {"reg"}, "scope": pull},
			wantToken: "t-kept", wantExpiry: now.Add(120 * time.Second)},
		{name: "expires_in absent: 60 s", service: "reg", scopes: pull, status: 200, body: `{"token":"t"}`,
			wantMethod: "GET", wantQuery: url.Values{"service": {"reg"}, "scope": pull},
			wantToken: "t", wantExpiry: now.Add(60 * time.Second)},
		{name: "expires_in below 60: 60 s", service: "reg", scopes: pull, status: 200, body: `{"token":"t","expires_in":5}`,
			wantMethod: "GET", wantQuery: url.Values{"service": {"reg"}, "scope": pull},
			wantToken: "t", wantExpiry: now.Add(60 * time.Second)},
		{name: "issued_at honoured", service: "reg", scopes: pull, status: 200,
			body:       `{"token":"t","expires_in":300,"issued_at":"2026-01-02T03:00:00.5Z"}`,
			wantMethod: "GET", wantQuery: url.Values{"service": {"reg"}, "scope": pull},
			wantToken: "t", wantExpiry: time.Date(2026, 1, 2, 3, 5, 0, 5e8, time.UTC)},
		{name: "unparseable issued_at: now", service: "reg", scopes: pull, status: 200,
			body:       `{"token":"t","expires_in":300,"issued_at":"yesterday"}`,
			wantMethod: "GET", wantQuery: url.Values{"service": {"reg"}, "scope": pull},
			wantToken: "t", wantExpiry: now.Add(300 * time.Second)},
		{name: "identity token: OAuth2 form POST", service: "reg", scopes: []string{"repository:a:pull", "repository:b:pull"},
			cred: credential{identityToken: "refresh-me"}, status: 200, body: `{"access_token":"a-oauth","expires_in":900}`,
			wantMethod: "POST", wantQuery: url.Values{},
			wantForm: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"refresh-me"}, "service": {"reg"},
				"scope": {"repository:a:pull repository:b:pull"}, "client_id": {"outpost"}},
			wantToken: "a-oauth", wantExpiry: now.Add(900 * time.Second)},
		{name: "several scopes as separate parameters", service: "reg", scopes: []string{"repository:a:pull", "repository:b:pull,push"},
			status: 200, body: `{"token":"t"}`,
			wantMethod: "GET", wantQuery: url.Values{"service": {"reg"}, "scope": {"repository:a:pull", "repository:b:pull,push"}},
			wantToken: "t", wantExpiry: now.Add(60 * time.Second)},
		{name: "no service: none sent", scopes: pull, status: 200, body: `{"token":"t"}`,
			wantMethod: "GET", wantQuery: url.Values{"scope": pull},
			wantToken: "t", wantExpiry: now.Add(60 * time.Second)},
		{name: "realm's own query kept", service: "reg", realmPath: "/token?account=x", scopes: pull, status: 200, body: `{"token":"t"}`,
			wantMethod: "GET", wantQuery: url.Values{"account": {"x"}, "service": {"reg"}, "scope": pull},
			wantToken: "t", wantExpiry: now.Add(60 * time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, seen := tokenServer(t, tt.status, tt.body)
			path := tt.realmPath
			if path == "" {
				path = "/token"
			}
			ch := challenge{scheme: "Bearer", params: map[string]string{"realm": srv.URL + path}}
			if tt.service != "" {
				ch.params["service"] = tt.service
			}
			tok, exp, err := fetchToken(context.Background(), srv.Client(), ch, tt.scopes, tt.cred, clock)
			if err != nil {
				t.Fatalf("fetchToken: %v", err)
			}
			if tok != tt.wantToken || !exp.Equal(tt.wantExpiry) {
				t.Errorf("fetchToken = %q, %v; want %q, %v", tok, exp, tt.wantToken, tt.wantExpiry)
			}
			if seen.method != tt.wantMethod || seen.auth != tt.wantAuth {
				t.Errorf("server saw %s with Authorization %q; want %s with %q", seen.method, seen.auth, tt.wantMethod, tt.wantAuth)
			}
			if !reflect.DeepEqual(seen.query, tt.wantQuery) {
				t.Errorf("server saw query %v; want %v", seen.query, tt.wantQuery)
			}
			if tt.wantForm != nil {
				if !reflect.DeepEqual(seen.form, tt.wantForm) || seen.contentType != "application/x-www-form-urlencoded" {
					t.Errorf("server saw form %v (%s); want %v", seen.form, seen.contentType, tt.wantForm)
				}
			} else if len(seen.form) != 0 {
				t.Errorf("server saw a form %v; want none", seen.form)
			}
		})
	}
}

func TestFetchTokenErrors(t *testing.T) {
	cred := credential{username: "alice", password: "s3cret"}
	tests := []struct {
		name   string
		status int
		body   string
		want   []string // all in the error
	}{
		{"registry error list", 401, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`,
			[]string{"401 Unauthorized", "UNAUTHORIZED: authentication required"}},
		{"docker hub details", 401, `{"details":"incorrect username or password"}`,
			[]string{"401 Unauthorized", "incorrect username or password"}},
		{"oauth2 error", 400, `{"error":"invalid_grant","error_description":"refresh token has expired"}`,
			[]string{"400 Bad Request", "invalid_grant: refresh token has expired"}},
		{"plain text: first line", 503, "upstream is down\nstack trace follows",
			[]string{"503 Service Unavailable", "upstream is down"}},
		{"long body cut", 500, strings.Repeat("x", 500),
			[]string{"500 Internal Server Error", strings.Repeat("x", excerptLength) + "…"}},
		{"empty body", 502, "", []string{"502 Bad Gateway"}},
		{"2xx without a token", 200, `{"expires_in":300}`, []string{"without a token"}},
		{"2xx not JSON", 200, `<html>hello</html>`, []string{"answer is not a token"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := tokenServer(t, tt.status, tt.body)
			ch := challenge{scheme: "Bearer", params: map[string]string{"realm": srv.URL + "/token", "service": "reg"}}
			_, _, err := fetchToken(context.Background(), srv.Client(), ch, []string{"repository:app:pull"}, cred, nil)
			if err == nil {
				t.Fatal("fetchToken succeeded; want an error")
			}
			host := strings.TrimPrefix(srv.URL, "http://")
			for _, w := range append(tt.want, host) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if tt.name == "plain text: first line" && strings.Contains(err.Error(), "stack trace") {
				t.Errorf("error %q carries more than the first line", err)
			}
			for _, secret := range []string{"s3cret", base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q carries the credentials", err)
				}
			}
		})
	}
}

// noDialClient is an HTTP client that records dial attempts and never connects.
func noDialClient(dialed *atomic.Int32) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(context.Context, string, string) (net.Conn, error) {
			dialed.Add(1)
			return nil, errors.New("test transport does not connect")
		},
	}}
}

func TestFetchTokenRefusesPlainHTTPCredentials(t *testing.T) {
	const realm = "http://registry.invalid/token"
	ch := challenge{scheme: "Bearer", params: map[string]string{"realm": realm, "service": "reg"}}
	for name, cred := range map[string]credential{
		"basic":          {username: "alice", password: "s3cret"},
		"identity token": {identityToken: "refresh-me"},
		"password only":  {password: "only"},
	} {
		var dialed atomic.Int32
		_, _, err := fetchToken(context.Background(), noDialClient(&dialed), ch, []string{"repository:app:pull"}, cred, nil)
		if err == nil || !strings.Contains(err.Error(), "refusing to send credentials over plain HTTP") || !strings.Contains(err.Error(), "registry.invalid") {
			t.Errorf("%s: error %v; want a refusal naming the host", name, err)
		}
		if n := dialed.Load(); n != 0 {
			t.Errorf("%s: %d connection attempts; want none", name, n)
		}
		for _, secret := range []string{"s3cret", "refresh-me", "only"} {
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("error %q carries the credentials", err)
			}
		}
	}
	// Anonymous requests may use plain HTTP: the refusal is about credentials only.
	var dialed atomic.Int32
	if _, _, err := fetchToken(context.Background(), noDialClient(&dialed), ch, nil, credential{}, nil); err == nil || dialed.Load() == 0 {
		t.Errorf("anonymous: error %v after %d dials; want a dial attempt that fails", err, dialed.Load())
	}
}

func TestFetchTokenBadRealm(t *testing.T) {
	for _, realm := range []string{"", "/token", "ftp://a.example/token", "https://", "://x"} {
		var dialed atomic.Int32
		ch := challenge{scheme: "Bearer", params: map[string]string{"realm": realm}}
		_, _, err := fetchToken(context.Background(), noDialClient(&dialed), ch, nil, credential{}, nil)
		if err == nil || !strings.Contains(err.Error(), "not an http(s) URL") || dialed.Load() != 0 {
			t.Errorf("realm %q: error %v after %d dials; want a realm error and no dial", realm, err, dialed.Load())
		}
	}
}

func TestFetchTokenRedirects(t *testing.T) {
	plain, seen := tokenServer(t, 200, `{"token":"t-after-redirect"}`)
	redirectTo := ""
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, redirectTo, http.StatusTemporaryRedirect)
	}))
	defer tlsSrv.Close()
	tlsAddr := strings.TrimPrefix(tlsSrv.URL, "https://")
	plainAddr := strings.TrimPrefix(plain.URL, "http://")

	// The client reaches only the two test servers; any other dial is recorded and refused.
	var stray atomic.Int32
	tr := tlsSrv.Client().Transport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr != tlsAddr && addr != plainAddr {
			stray.Add(1)
			return nil, errors.New("test transport: not a test server")
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	hc := &http.Client{Transport: tr}
	ch := challenge{scheme: "Bearer", params: map[string]string{"realm": tlsSrv.URL + "/token", "service": "reg"}}
	cred := credential{identityToken: "refresh-me"}

	redirectTo = "http://registry.invalid/token"
	_, _, err := fetchToken(context.Background(), hc, ch, nil, cred, nil)
	if err == nil || !strings.Contains(err.Error(), "refusing to follow a redirect to registry.invalid") || stray.Load() != 0 {
		t.Errorf("redirect to plain HTTP elsewhere: error %v after %d stray dials; want a refusal before any dial", err, stray.Load())
	}

	redirectTo = plain.URL + "/token"
	tok, _, err := fetchToken(context.Background(), hc, ch, nil, cred, nil)
	if err != nil || tok != "t-after-redirect" || seen.form.Get("refresh_token") != "refresh-me" {
		t.Errorf("redirect to loopback: %q, %v (form %v); want the token", tok, err, seen.form)
	}
}

// testClock is a clock that tests move by hand; safe for concurrent use.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func TestTokenCache(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	k := tokenKey{realm: "https://auth.example/token", service: "reg", scope: "repository:app:pull"}
	other := tokenKey{realm: k.realm, service: k.service, scope: "repository:other:pull"}
	tests := []struct {
		name    string
		life    time.Duration // expiry minus the time of put
		at      time.Duration // time of get after put
		dropped bool
		key     tokenKey
		wantHit bool
	}{
		{name: "fresh hit", life: 300 * time.Second, at: 0, key: k, wantHit: true},
		{name: "other scope misses", life: 300 * time.Second, at: 0, key: other},
		{name: "hit just before the margin", life: 300 * time.Second, at: 300*time.Second - tokenMargin - time.Nanosecond, key: k, wantHit: true},
		{name: "miss at expiry minus margin", life: 300 * time.Second, at: 300*time.Second - tokenMargin, key: k},
		{name: "miss after expiry", life: 300 * time.Second, at: 301 * time.Second, key: k},
		{name: "60 s token: half its life", life: 60 * time.Second, at: 29 * time.Second, key: k, wantHit: true},
		{name: "60 s token: stale at half", life: 60 * time.Second, at: 30 * time.Second, key: k},
		{name: "40 s token: hit before 20 s", life: 40 * time.Second, at: 19 * time.Second, key: k, wantHit: true},
		{name: "40 s token: stale at 20 s", life: 40 * time.Second, at: 20 * time.Second, key: k},
		{name: "already expired when put", life: -time.Second, at: 0, key: k},
		{name: "dropped", life: 300 * time.Second, at: 0, dropped: true, key: k},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &testClock{t: start}
			c := newTokenCache(clock.now)
			c.put(k, "tok", start.Add(tt.life))
			if tt.dropped {
				c.drop(k)
			}
			clock.set(start.Add(tt.at))
			tok, ok := c.get(tt.key)
			if ok != tt.wantHit || (ok && tok != "tok") || (!ok && tok != "") {
				t.Errorf("get = %q, %v; want hit %v", tok, ok, tt.wantHit)
			}
		})
	}
}

func TestTokenCacheReplacesAndPrunes(t *testing.T) {
	clock := &testClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	c := newTokenCache(clock.now)
	a, b := tokenKey{realm: "r", scope: "a"}, tokenKey{realm: "r", scope: "b"}
	c.put(a, "a1", clock.now().Add(time.Minute))
	c.put(a, "a2", clock.now().Add(time.Hour))
	if tok, ok := c.get(a); !ok || tok != "a2" {
		t.Errorf("after a second put: %q, %v; want a2", tok, ok)
	}
	c.put(b, "b1", clock.now().Add(time.Minute))
	clock.set(clock.now().Add(2 * time.Minute))
	c.put(tokenKey{realm: "r", scope: "c"}, "c1", clock.now().Add(time.Hour))
	if _, held := c.entries[b]; held || len(c.entries) != 2 {
		t.Errorf("after a put, the cache holds %d entries (stale b held: %v); want the stale one pruned", len(c.entries), held)
	}
}

func TestTokenCacheRealClock(t *testing.T) {
	c := newTokenCache(nil)
	k := tokenKey{realm: "r"}
	c.put(k, "tok", time.Now().Add(time.Hour))
	if tok, ok := c.get(k); !ok || tok != "tok" {
		t.Errorf("get = %q, %v; want a hit on the real clock", tok, ok)
	}
	c.put(k, "old", time.Now().Add(-time.Hour))
	if _, ok := c.get(k); ok {
		t.Error("an expired token was handed out on the real clock")
	}
}

func TestTokenCacheConcurrent(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := &testClock{t: start}
	c := newTokenCache(clock.now)
	const keys, workers, rounds = 8, 16, 500
	key := func(i int) tokenKey { return tokenKey{realm: "r", scope: string(rune('a' + i%keys))} }
	tokenFor := func(k tokenKey) string { return "tok-" + k.scope }
	expiry := start.Add(5 * time.Minute)
	for i := range keys {
		c.put(key(i), tokenFor(key(i)), expiry)
	}

	expired := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(workers + 1)
	go func() {
		defer wg.Done()
		time.Sleep(time.Millisecond)
		clock.set(expiry) // past expiry minus the margin
		close(expired)
	}()
	errs := make(chan string, workers)
	for w := range workers {
		go func() {
			defer wg.Done()
			for i := range rounds {
				k := key(w + i)
				if w%4 == 0 {
					c.put(k, tokenFor(k), expiry)
					continue
				}
				if w%8 == 1 && i%50 == 0 {
					c.drop(k)
				}
				select {
				case <-expired:
					if tok, ok := c.get(k); ok {
						errs <- "after the clock passed the expiry, get handed out " + tok
						return
					}
				default:
					if tok, ok := c.get(k); ok && tok != tokenFor(k) {
						errs <- "get(" + k.scope + ") handed out " + tok
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	<-expired
	for i := range keys {
		if tok, ok := c.get(key(i)); ok {
			t.Errorf("after expiry, key %d handed out %q", i, tok)
		}
	}
}

func TestTokenRefresh(t *testing.T) {
	tests := []struct {
		name   string
		status int
		values []string
		want   bool
	}{
		{"invalid_token", 401, []string{`Bearer realm="https://a/t",service="reg",error="invalid_token"`}, true},
		{"insufficient_scope", 401, []string{`Bearer realm="https://a/t",scope="repository:app:pull",error="insufficient_scope"`}, true},
		{"scheme case ignored", 401, []string{`BEARER error="invalid_token"`}, true},
		{"in a second header value", 401, []string{`Basic realm="x"`, `Bearer realm="y",error="invalid_token"`}, true},
		{"bearer without error", 401, []string{`Bearer realm="https://a/t",service="reg"`}, false},
		{"other error", 401, []string{`Bearer realm="https://a/t",error="invalid_request"`}, false},
		{"basic with the error", 401, []string{`Basic realm="x",error="invalid_token"`}, false},
		{"no challenge", 401, nil, false},
		{"garbage challenge", 401, []string{`"error=invalid_token"`}, false},
		{"403 is not a 401", 403, []string{`Bearer error="insufficient_scope"`}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: tt.status, Header: http.Header{}}
			for _, v := range tt.values {
				resp.Header.Add("WWW-Authenticate", v)
			}
			if got := tokenRefresh(resp); got != tt.want {
				t.Errorf("tokenRefresh(%d %q) = %v, want %v", tt.status, tt.values, got, tt.want)
			}
		})
	}
}

func TestCredentialEmpty(t *testing.T) {
	for c, want := range map[credential]bool{
		{}:                         true,
		{username: "u"}:            false,
		{password: "p"}:            false,
		{identityToken: "refresh"}: false,
	} {
		if got := c.empty(); got != want {
			t.Errorf("credential{%q, pass set %v, token set %v}.empty() = %v", c.username, c.password != "", c.identityToken != "", got)
		}
	}
}
