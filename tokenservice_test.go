// tokenservice_test.go owns a Bearer token service for tests against distribution 2.8's token
// authentication: an httptest TLS server issuing compact JWS ES256 tokens that the registry
// verifies with the signing certificate, and that records every request for assertions.
package main

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The only account of the token service. Anonymous requests are refused with 401 rather than
// given pull access: a test then fails loudly when a client forgets to send its credentials.
const (
	tokenServiceUser     = "outpost-bearer"
	tokenServicePassword = "bearer-pw-Vx4Kq9Tn"
	tokenServiceLifetime = 300 // seconds
)

// tokenService is a running token service.
type tokenService struct {
	Realm   string // https://127.0.0.1:PORT/token, the registry's auth.token.realm
	Service string // auth.token.service, the tokens' audience
	Issuer  string // auth.token.issuer
	Bundle  string // PEM file of the signing certificate, auth.token.rootcertbundle

	key  *ecdsa.PrivateKey
	cert *x509.Certificate
	kid  string

	mu       sync.Mutex
	requests []tokenServiceRequest
	issued   []string
}

// tokenServiceRequest is what the service saw of one request.
type tokenServiceRequest struct {
	status    int
	user      string // the Basic user, "" when there was none
	basic     bool   // Basic credentials were sent
	scopes    []string
	userAgent string
}

// newTokenService starts a token service whose TLS certificate ca issues for 127.0.0.1.
func newTokenService(t testing.TB, ca *testCA) *tokenService {
	t.Helper()
	key := newTestKey(t)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: newSerial(t),
		Subject:      pkix.Name{CommonName: "outpost test token signer"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("token signing certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("token signing certificate: %v", err)
	}
	kid, err := libtrustKeyID(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ts := &tokenService{Service: "outpost-test-registry", Issuer: "outpost-test-issuer", key: key, cert: cert, kid: kid}
	ts.Bundle = filepath.Join(t.TempDir(), "token-signer.pem")
	writeTestFile(t, ts.Bundle, pemBlock("CERTIFICATE", der))

	srv := httptest.NewUnstartedServer(http.HandlerFunc(ts.serve))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.serverCertificate(t, "127.0.0.1")}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ts.Realm = srv.URL + "/token"
	return ts
}

// libtrustKeyID is the key ID distribution looks a token's "kid" up by: SHA-256 of the PKIX DER
// public key, the first 30 bytes in base32 without padding, in groups of 4 joined by ':'.
func libtrustKeyID(pub *ecdsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("key ID: %w", err)
	}
	sum := sha256.Sum256(der)
	enc := strings.TrimRight(base32.StdEncoding.EncodeToString(sum[:30]), "=")
	var groups []string
	for i := 0; i < len(enc); i += 4 {
		groups = append(groups, enc[i:min(i+4, len(enc))])
	}
	return strings.Join(groups, ":"), nil
}

// testTokenAccess is one entry of a token's "access" claim.
type testTokenAccess struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// testTokenClaims is the claim set distribution 2.8 checks; aud is a single string there.
type testTokenClaims struct {
	Issuer    string            `json:"iss"`
	Subject   string            `json:"sub"`
	Audience  string            `json:"aud"`
	Expiry    int64             `json:"exp"`
	NotBefore int64             `json:"nbf"`
	IssuedAt  int64             `json:"iat"`
	ID        string            `json:"jti"`
	Access    []testTokenAccess `json:"access"`
}

func (ts *tokenService) serve(w http.ResponseWriter, r *http.Request) {
	rec := tokenServiceRequest{userAgent: r.UserAgent()}
	for _, s := range r.URL.Query()["scope"] {
		rec.scopes = append(rec.scopes, strings.Fields(s)...)
	}
	user, pass, basic := r.BasicAuth()
	rec.basic, rec.user = basic, user
	status, body := ts.answer(r, user, pass, basic, rec.scopes)
	rec.status = status

	ts.mu.Lock()
	ts.requests = append(ts.requests, rec)
	ts.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="outpost test token service"`)
	}
	w.WriteHeader(status)
	w.Write(body)
}

// answer checks the request and issues a token for it.
func (ts *tokenService) answer(r *http.Request, user, pass string, basic bool, scopes []string) (int, []byte) {
	fail := func(status int, msg string) (int, []byte) {
		b, _ := json.Marshal(map[string]any{"errors": []map[string]string{{"code": "DENIED", "message": msg}}})
		return status, b
	}
	switch {
	case r.Method != http.MethodGet || r.URL.Path != "/token":
		return fail(http.StatusNotFound, "only GET /token is served")
	case r.URL.Query().Get("service") != ts.Service:
		return fail(http.StatusBadRequest, "unknown service")
	case !basic:
		return fail(http.StatusUnauthorized, "authentication required")
	case user != tokenServiceUser || pass != tokenServicePassword:
		return fail(http.StatusUnauthorized, "wrong user or password")
	}
	access, err := tokenServiceGrant(scopes)
	if err != nil {
		return fail(http.StatusBadRequest, err.Error())
	}
	now := time.Now()
	token, err := ts.sign(testTokenClaims{
		Issuer: ts.Issuer, Subject: user, Audience: ts.Service,
		Expiry: now.Add(tokenServiceLifetime * time.Second).Unix(), NotBefore: now.Add(-time.Minute).Unix(), IssuedAt: now.Unix(),
		ID: rand.Text(), Access: access,
	})
	if err != nil {
		return fail(http.StatusInternalServerError, err.Error())
	}
	ts.mu.Lock()
	ts.issued = append(ts.issued, token)
	ts.mu.Unlock()
	b, _ := json.Marshal(map[string]any{"token": token, "access_token": token, "expires_in": tokenServiceLifetime, "issued_at": now.UTC().Format(time.RFC3339)})
	return http.StatusOK, b
}

// tokenServiceGrant gives the account every pull and push it asks for on repositories; other
// resource types (registry:catalog:*) and actions get nothing: a token service grants only what
// it knows.
func tokenServiceGrant(scopes []string) ([]testTokenAccess, error) {
	access := []testTokenAccess{}
	for _, s := range scopes {
		typ, rest, ok1 := strings.Cut(s, ":")
		i := strings.LastIndex(rest, ":")
		if !ok1 || i <= 0 {
			return nil, fmt.Errorf("malformed scope %q", s)
		}
		if typ != "repository" {
			continue
		}
		var actions []string
		for _, a := range strings.Split(rest[i+1:], ",") {
			if (a == "pull" || a == "push") && !slices.Contains(actions, a) {
				actions = append(actions, a)
			}
		}
		access = append(access, testTokenAccess{Type: typ, Name: rest[:i], Actions: actions})
	}
	return access, nil
}

// sign makes a compact JWS: ES256 over "header.claims", the signature raw r||s of 32 bytes each.
func (ts *tokenService) sign(claims testTokenClaims) (string, error) {
	header, err := json.Marshal(map[string]string{"alg": "ES256", "typ": "JWT", "kid": ts.kid})
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	b64 := base64.RawURLEncoding.EncodeToString
	input := b64(header) + "." + b64(payload)
	digest := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, ts.key, digest[:])
	if err != nil {
		return "", fmt.Errorf("signing token: %w", err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + b64(sig), nil
}

// log returns the requests seen so far, oldest first.
func (ts *tokenService) log() []tokenServiceRequest {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return slices.Clone(ts.requests)
}

// tokens returns every token issued so far.
func (ts *tokenService) tokens() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return slices.Clone(ts.issued)
}

// tokenServiceCounts sums requests: all of them, by status, and by scope.
type tokenServiceCounts struct {
	total, ok, basic int
	byScope          map[string]int
}

func countTokenRequests(reqs []tokenServiceRequest) tokenServiceCounts {
	c := tokenServiceCounts{byScope: map[string]int{}}
	for _, r := range reqs {
		c.total++
		if r.status == http.StatusOK {
			c.ok++
		}
		if r.basic {
			c.basic++
		}
		for _, s := range r.scopes {
			c.byScope[s]++
		}
	}
	return c
}

// parseTestToken splits a compact JWS, checks its ES256 signature with pub, and decodes it.
func parseTestToken(token string, pub *ecdsa.PublicKey) (header map[string]string, claims testTokenClaims, err error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, claims, fmt.Errorf("token has %d parts, want 3", len(parts))
	}
	dec := base64.RawURLEncoding.DecodeString
	rawHeader, err := dec(parts[0])
	if err != nil {
		return nil, claims, fmt.Errorf("header: %w", err)
	}
	rawClaims, err := dec(parts[1])
	if err != nil {
		return nil, claims, fmt.Errorf("claims: %w", err)
	}
	sig, err := dec(parts[2])
	if err != nil {
		return nil, claims, fmt.Errorf("signature: %w", err)
	}
	if len(sig) != 64 {
		return nil, claims, fmt.Errorf("signature is %d bytes, want 64 (raw r||s)", len(sig))
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return nil, claims, fmt.Errorf("ES256 signature does not verify")
	}
	if err := json.Unmarshal(rawHeader, &header); err != nil {
		return nil, claims, fmt.Errorf("header: %w", err)
	}
	// The audience must be a JSON string: distribution 2.8 rejects an array.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(rawClaims, &raw); err != nil {
		return nil, claims, fmt.Errorf("claims: %w", err)
	}
	if aud := raw["aud"]; len(aud) == 0 || aud[0] != '"' {
		return nil, claims, fmt.Errorf("aud is %s, want a JSON string", aud)
	}
	if err := json.Unmarshal(rawClaims, &claims); err != nil {
		return nil, claims, fmt.Errorf("claims: %w", err)
	}
	return header, claims, nil
}

func TestTokenServiceIssuesVerifiableTokens(t *testing.T) {
	ca := newTestCA(t)
	ts := newTokenService(t, ca)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}}}
	get := func(user, pass string, scopes ...string) (int, map[string]any) {
		t.Helper()
		q := url.Values{"service": {ts.Service}, "scope": scopes}
		req, err := http.NewRequest(http.MethodGet, ts.Realm+"?"+q.Encode(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var ans map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
			t.Fatalf("answer is not JSON: %v", err)
		}
		return resp.StatusCode, ans
	}

	status, ans := get(tokenServiceUser, tokenServicePassword, "repository:ns/app:pull,push", "repository:ns/other:pull", "registry:catalog:*")
	if status != http.StatusOK {
		t.Fatalf("status %d: %v", status, ans)
	}
	token, _ := ans["token"].(string)
	if token == "" || ans["access_token"] != token || ans["expires_in"] != float64(tokenServiceLifetime) {
		t.Fatalf("answer %v: want token = access_token and expires_in %d", ans, tokenServiceLifetime)
	}
	if _, err := time.Parse(time.RFC3339, fmt.Sprint(ans["issued_at"])); err != nil {
		t.Errorf("issued_at: %v", err)
	}
	header, claims, err := parseTestToken(token, &ts.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if header["alg"] != "ES256" || header["typ"] != "JWT" || header["kid"] != ts.kid {
		t.Errorf("header %v", header)
	}
	// The kid must name the key of the certificate in the bundle, as the registry derives it.
	bundleCerts, err := readCertificates(ts.Bundle)
	if err != nil || len(bundleCerts) != 1 {
		t.Fatalf("bundle: %v, %d certificates", err, len(bundleCerts))
	}
	bundleKey, ok := bundleCerts[0].PublicKey.(*ecdsa.PublicKey)
	if !ok {
		t.Fatalf("bundle key is %T", bundleCerts[0].PublicKey)
	}
	if kid, err := libtrustKeyID(bundleKey); err != nil || kid != ts.kid {
		t.Errorf("kid of the bundle key %q (%v), token says %q", kid, err, ts.kid)
	}
	if groups := strings.Split(ts.kid, ":"); len(groups) != 12 || len(ts.kid) != 12*4+11 {
		t.Errorf("kid %q is not 12 groups of 4", ts.kid)
	}
	now := time.Now().Unix()
	if claims.Issuer != ts.Issuer || claims.Audience != ts.Service || claims.Subject != tokenServiceUser || claims.ID == "" {
		t.Errorf("claims %+v", claims)
	}
	if claims.NotBefore > now || claims.IssuedAt > now+1 || claims.Expiry < now+tokenServiceLifetime-5 || claims.Expiry > now+tokenServiceLifetime+5 {
		t.Errorf("times nbf %d iat %d exp %d around now %d", claims.NotBefore, claims.IssuedAt, claims.Expiry, now)
	}
	wantAccess := []testTokenAccess{
		{Type: "repository", Name: "ns/app", Actions: []string{"pull", "push"}},
		{Type: "repository", Name: "ns/other", Actions: []string{"pull"}},
	}
	if fmt.Sprint(claims.Access) != fmt.Sprint(wantAccess) {
		t.Errorf("access %+v, want %+v", claims.Access, wantAccess)
	}
	tampered := token[:strings.LastIndex(token, ".")-2] + "AA" + token[strings.LastIndex(token, "."):]
	if _, _, err := parseTestToken(tampered, &ts.key.PublicKey); err == nil {
		t.Error("a token with altered claims verified")
	}

	if status, _ := get("", "", "repository:ns/app:pull"); status != http.StatusUnauthorized {
		t.Errorf("anonymous: status %d, want 401", status)
	}
	if status, _ := get(tokenServiceUser, "wrong", "repository:ns/app:pull"); status != http.StatusUnauthorized {
		t.Errorf("wrong password: status %d, want 401", status)
	}
	c := countTokenRequests(ts.log())
	if c.total != 3 || c.ok != 1 || c.basic != 2 || c.byScope["repository:ns/app:pull"] != 2 || c.byScope["repository:ns/app:pull,push"] != 1 {
		t.Errorf("counts %+v", c)
	}
	if n := len(ts.tokens()); n != 1 {
		t.Errorf("%d tokens issued, want 1", n)
	}
}
