// e2e_registry_test.go owns the end-to-end tests of registries behind TLS: docker-registry with
// a certificate from a test CA and token authentication (the token service of
// tokenservice_test.go) or htpasswd, checked by the real binary with --registry-ca, without it,
// with an unrelated CA, with --insecure-registry, and with --registry-ca-validate on bad bundles.
// They run only with OUTPOST_E2E=1, like the tests of e2e_test.go whose harness they use.
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// e2eTokenRemoteDigest asks the registry what digest repo:tag has, with a pull token minted
// directly, so that the token service's request log holds only the engine's and outpost's requests.
func e2eTokenRemoteDigest(t *testing.T, reg e2eReg, ts *tokenService, repo string) string {
	t.Helper()
	now := time.Now()
	token, err := ts.sign(testTokenClaims{
		Issuer: ts.Issuer, Subject: tokenServiceUser, Audience: ts.Service, ID: "e2e-test-check",
		Expiry: now.Add(time.Minute).Unix(), NotBefore: now.Add(-time.Minute).Unix(), IssuedAt: now.Unix(),
		Access: []testTokenAccess{{Type: "repository", Name: repo, Actions: []string{"pull"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodHead, reg.URL+"/v2/"+repo+"/manifests/latest", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", strings.Join(e2eManifestTypes, ", "))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := reg.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	dg := resp.Header.Get("Docker-Content-Digest")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(dg, "sha256:") {
		t.Fatalf("HEAD %s:latest with a minted token: %s, digest %q", repo, resp.Status, dg)
	}
	return dg
}

// e2eDockerConfig is a DOCKER_CONFIG directory whose config.json holds user:pass for host.
func e2eDockerConfig(t *testing.T, host, user, pass string) string {
	t.Helper()
	dir := t.TempDir()
	basic := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	cfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, host, basic)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return "DOCKER_CONFIG=" + dir
}

// e2eAllFailed is want with every container "failed".
func e2eAllFailed(want map[string]e2eWant) map[string]e2eWant {
	failed := map[string]e2eWant{}
	for name, w := range want {
		failed[name] = e2eWant{image: w.image, state: "failed"}
	}
	return failed
}

// e2eCheckTrustFailure asserts that every container failed because the registry's certificate
// is not trusted, with a reason naming the registry and the flag that fixes it.
func e2eCheckTrustFailure(t *testing.T, res e2eResult, want map[string]e2eWant, host string) {
	t.Helper()
	if res.exit != 1 {
		t.Errorf("exit %d, want 1", res.exit)
	}
	e2eCheck(t, res, e2eAllFailed(want))
	for name, rec := range res.containers {
		if reason := rec.str("reason"); !strings.Contains(reason, host) || !strings.Contains(reason, "--registry-ca") {
			t.Errorf("%s: reason %q does not name the registry %s and --registry-ca", name, reason, host)
		}
	}
}

// e2eCheckNoSecrets asserts that none of secrets appears in the binary's output.
func e2eCheckNoSecrets(t *testing.T, res e2eResult, secrets ...string) {
	t.Helper()
	out := res.stdout + res.stderr
	for _, s := range secrets {
		if s != "" && strings.Contains(out, s) {
			t.Errorf("the output contains the secret %.24q…", s)
		}
	}
}

// e2eOutpostStartup runs the binary for a start-up refusal: no session, so no summary to parse.
func e2eOutpostStartup(t *testing.T, bin string, e *e2eEngine, args ...string) (exit int, stderr string, wall time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "DOCKER_HOST=unix://" + e.socket, e2eEmptyConfig(t)}
	var errBuf bytes.Buffer
	cmd.Stderr = &errBuf
	start := time.Now()
	err := cmd.Run()
	wall = time.Since(start)
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		exit = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("running outpost: %v", err)
	}
	return exit, errBuf.String(), wall
}

func TestE2ETokenAuthTLS(t *testing.T) {
	e := e2eSetup(t)
	t.Parallel()
	bin := e2eOutpost(t)
	ca := newTestCA(t)
	ts := newTokenService(t, ca)
	cert, key := ca.issueServer(t, "127.0.0.1")
	reg := e2eRegistry(t, e2eRegistryOpts{TLSCert: cert, TLSKey: key,
		TokenRealm: ts.Realm, TokenService: ts.Service, TokenIssuer: ts.Issuer, TokenRootCertBundle: ts.Bundle})
	if !strings.HasPrefix(reg.URL, "https://") {
		t.Fatalf("registry at %s, want https", reg.URL)
	}
	auth := e2eAuth{Username: tokenServiceUser, Password: tokenServicePassword, ServerAddress: reg.Host}
	prefix, ns := e2eNames(t)
	repos := map[string]*e2eRepo{}
	for _, n := range []string{"a", "b", "c"} {
		repos[n] = e2ePushV1(t, e, reg, ns+"/"+n, auth)
	}
	runs := []struct{ name, repo string }{{"a1", "a"}, {"a2", "a"}, {"b1", "b"}, {"c1", "c"}}
	for _, r := range runs {
		e2eRun(t, e, prefix+r.name, repos[r.repo].ref, nil)
	}
	e2ePushV2(t, e, repos["b"], auth)
	pushed := countTokenRequests(ts.log())
	t.Logf("token service during the engine's pushes: %d requests, %d with Basic credentials, %d answered 200; by scope %v",
		pushed.total, pushed.basic, pushed.ok, pushed.byScope)
	if pushed.ok == 0 {
		t.Fatal("the engine pushed without the token service: the registry is not behind token auth")
	}

	want := map[string]e2eWant{}
	for _, r := range runs {
		repo := repos[r.repo]
		w := e2eWant{image: repo.ref, state: "fresh", current: repo.v1, remote: e2eTokenRemoteDigest(t, reg, ts, repo.path)}
		if repo.stale {
			w.state = "stale"
			if w.remote != repo.v2 {
				t.Fatalf("registry has %s for %s, pushed %s", w.remote, repo.ref, repo.v2)
			}
		}
		want[prefix+r.name] = w
	}
	caBundle := ca.writeBundle(t)
	creds := e2eDockerConfig(t, reg.Host, tokenServiceUser, tokenServicePassword)
	selectArgs := []string{"--run-once", "--monitor-only", "--log-format", "json", prefix + ".*"}
	secrets := func() []string {
		basic := base64.StdEncoding.EncodeToString([]byte(tokenServiceUser + ":" + tokenServicePassword))
		return append([]string{tokenServicePassword, basic}, ts.tokens()...)
	}
	// run runs the binary and returns what the token service saw meanwhile; subtests run one
	// at a time, so those requests are the binary's.
	run := func(t *testing.T, env []string, args ...string) (e2eResult, []tokenServiceRequest) {
		t.Helper()
		before := len(ts.log())
		res := e2eOutpostRun(t, bin, e, append([]string{creds}, env...), append(args, selectArgs...)...)
		return res, ts.log()[before:]
	}
	checkTokens := func(t *testing.T, res e2eResult, reqs []tokenServiceRequest) {
		t.Helper()
		c := countTokenRequests(reqs)
		if c.total != len(repos) || c.ok != c.total || c.basic != c.total {
			t.Errorf("token service saw %d requests (%d answered 200, %d with Basic credentials), want %d, all authenticated", c.total, c.ok, c.basic, len(repos))
		}
		for _, repo := range repos {
			if scope := "repository:" + repo.path + ":pull"; c.byScope[scope] != 1 {
				t.Errorf("token requests for %s: %d, want 1 (all scopes: %v)", scope, c.byScope[scope], c.byScope)
			}
		}
		for _, r := range reqs {
			if r.user != tokenServiceUser {
				t.Errorf("token request as user %q, want %q", r.user, tokenServiceUser)
			}
		}
		if got := res.summary.num("registry_tokens"); got != len(repos) {
			t.Errorf("registry_tokens = %d, want %d", got, len(repos))
		}
		e2eCheckCounters(t, res, len(repos))
		t.Logf("outpost: exit %d in %v; registry pings %d, heads %d, gets %d, tokens %d; token service: %d requests %v (user agent %q)",
			res.exit, res.wall.Round(time.Millisecond), res.summary.num("registry_pings"), res.summary.num("registry_heads"),
			res.summary.num("registry_gets"), res.summary.num("registry_tokens"), c.total, c.byScope, firstUserAgent(reqs))
	}

	t.Run("registry-ca", func(t *testing.T) {
		res, reqs := run(t, nil, "--registry-ca", caBundle)
		if res.exit != 0 {
			t.Errorf("exit %d, want 0", res.exit)
		}
		e2eCheck(t, res, want)
		checkTokens(t, res, reqs)
		e2eCheckNoSecrets(t, res, secrets()...)
	})
	t.Run("registry-ca trace", func(t *testing.T) {
		res, reqs := run(t, nil, "--log-level", "trace", "--registry-ca", caBundle)
		if res.exit != 0 {
			t.Errorf("exit %d, want 0", res.exit)
		}
		e2eCheck(t, res, want)
		checkTokens(t, res, reqs)
		e2eCheckNoSecrets(t, res, secrets()...)
	})
	t.Run("registry-ca-validate with a good bundle", func(t *testing.T) {
		res, reqs := run(t, nil, "--registry-ca-validate", "--registry-ca", caBundle)
		if res.exit != 0 {
			t.Errorf("exit %d, want 0", res.exit)
		}
		e2eCheck(t, res, want)
		checkTokens(t, res, reqs)
	})
	t.Run("REPO_USER", func(t *testing.T) {
		res, reqs := run(t, []string{e2eEmptyConfig(t), "REPO_USER=" + tokenServiceUser, "REPO_PASS=" + tokenServicePassword}, "--registry-ca", caBundle)
		if res.exit != 0 {
			t.Errorf("exit %d, want 0", res.exit)
		}
		e2eCheck(t, res, want)
		checkTokens(t, res, reqs)
	})
	t.Run("wrong password", func(t *testing.T) {
		wrong := "wrong-" + tokenServicePassword
		res, reqs := run(t, []string{e2eEmptyConfig(t), "REPO_USER=" + tokenServiceUser, "REPO_PASS=" + wrong},
			"--log-level", "trace", "--registry-ca", caBundle)
		if res.exit != 1 {
			t.Errorf("exit %d, want 1", res.exit)
		}
		e2eCheck(t, res, e2eAllFailed(want))
		c := countTokenRequests(reqs)
		if c.total == 0 || c.ok != 0 || c.basic != c.total {
			t.Errorf("token service saw %d requests, %d answered 200, %d with Basic credentials; want some, all refused, all with credentials", c.total, c.ok, c.basic)
		}
		for name, rec := range res.containers {
			if reason := rec.str("reason"); !strings.Contains(reason, "401") {
				t.Errorf("%s: reason %q does not carry the token service's 401", name, reason)
			}
		}
		e2eCheckNoSecrets(t, res, append(secrets(), wrong, base64.StdEncoding.EncodeToString([]byte(tokenServiceUser+":"+wrong)))...)
		t.Logf("wrong password: %d token requests for %d repositories; reason %q", c.total, len(repos), res.containers[prefix+"a1"].str("reason"))
	})
	t.Run("foreign token", func(t *testing.T) {
		// The registry must check signatures against its bundle: a token from another signer with
		// the same issuer and audience is refused, so the other subtests' successes mean something.
		foreign := newTokenService(t, ca)
		now := time.Now()
		token, err := foreign.sign(testTokenClaims{
			Issuer: ts.Issuer, Subject: tokenServiceUser, Audience: ts.Service, ID: "e2e-foreign",
			Expiry: now.Add(time.Minute).Unix(), NotBefore: now.Add(-time.Minute).Unix(), IssuedAt: now.Unix(),
			Access: []testTokenAccess{{Type: "repository", Name: repos["a"].path, Actions: []string{"pull"}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequest(http.MethodHead, reg.URL+"/v2/"+repos["a"].path+"/manifests/latest", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := reg.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("HEAD with a token of another signer: %s, want 401", resp.Status)
		}
	})
	t.Run("no CA", func(t *testing.T) {
		res, reqs := run(t, nil)
		e2eCheckTrustFailure(t, res, want, reg.Host)
		if len(reqs) != 0 {
			t.Errorf("credentials went to the token service %d times although the registry is not trusted", len(reqs))
		}
	})
	t.Run("unrelated CA", func(t *testing.T) {
		res, reqs := run(t, nil, "--registry-ca", newTestCA(t).writeBundle(t))
		e2eCheckTrustFailure(t, res, want, reg.Host)
		if len(reqs) != 0 {
			t.Errorf("credentials went to the token service %d times although the registry is not trusted", len(reqs))
		}
	})
	t.Run("insecure-registry", func(t *testing.T) {
		res, reqs := run(t, nil, "--insecure-registry")
		if res.exit != 0 {
			t.Errorf("exit %d, want 0", res.exit)
		}
		e2eCheck(t, res, want)
		checkTokens(t, res, reqs)
		e2eCheckNoSecrets(t, res, secrets()...)
		warned := false
		for _, line := range strings.Split(res.stderr, "\n") {
			if strings.Contains(line, `"msg":"container"`) {
				break
			}
			warned = warned || strings.Contains(line, `"level":"WARN"`) && strings.Contains(line, "--insecure-registry")
		}
		if !warned {
			t.Errorf("no warning about --insecure-registry before the first container record:\n%s", e2eTail(res.stderr, 20))
		}
	})
	t.Run("registry-ca-validate with a bad bundle", func(t *testing.T) {
		dir := t.TempDir()
		expired := newTestCAValidity(t, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)).writeBundle(t)
		garbage := filepath.Join(dir, "garbage.pem")
		writeTestFile(t, garbage, []byte("this is not a certificate\n"))
		missing := filepath.Join(dir, "missing.pem")
		for _, c := range []struct{ name, file, reason string }{
			{"expired", expired, "expired"},
			{"garbage", garbage, "not PEM"},
			{"missing", missing, "does not exist"},
		} {
			t.Run(c.name, func(t *testing.T) {
				exit, stderr, wall := e2eOutpostStartup(t, bin, e, append([]string{"--registry-ca-validate", "--registry-ca", c.file}, selectArgs...)...)
				if exit != 2 {
					t.Errorf("exit %d, want 2", exit)
				}
				if wall >= time.Second {
					t.Errorf("took %v, want under 1 s", wall)
				}
				if !strings.Contains(stderr, c.file) || !strings.Contains(stderr, c.reason) {
					t.Errorf("stderr does not name %s and %q:\n%s", c.file, c.reason, stderr)
				}
				t.Logf("refused in %v", wall.Round(time.Millisecond))
			})
		}
	})
}

// firstUserAgent is the User-Agent of the first request, to show who asked the token service.
func firstUserAgent(reqs []tokenServiceRequest) string {
	if len(reqs) == 0 {
		return ""
	}
	return reqs[0].userAgent
}

func TestE2EHtpasswdTLS(t *testing.T) {
	e := e2eSetup(t)
	t.Parallel()
	bin := e2eOutpost(t)
	ca := newTestCA(t)
	cert, key := ca.issueServer(t, "127.0.0.1")
	reg := e2eRegistry(t, e2eRegistryOpts{Htpasswd: true, TLSCert: cert, TLSKey: key})
	auth := e2eAuth{Username: e2eUser, Password: e2ePassword, ServerAddress: reg.Host}
	prefix, want := e2eTwoRepos(t, e, reg, auth)
	env := []string{e2eEmptyConfig(t), "REPO_USER=" + e2eUser, "REPO_PASS=" + e2ePassword}
	args := []string{"--run-once", "--monitor-only", "--log-format", "json", "--log-level", "trace", prefix + ".*"}
	basic := base64.StdEncoding.EncodeToString([]byte(e2eUser + ":" + e2ePassword))

	t.Run("registry-ca", func(t *testing.T) {
		res := e2eOutpostRun(t, bin, e, env, append([]string{"--registry-ca", ca.writeBundle(t)}, args...)...)
		if res.exit != 0 {
			t.Errorf("exit %d, want 0", res.exit)
		}
		e2eCheck(t, res, want)
		e2eCheckCounters(t, res, 2)
		if got := res.summary.num("registry_tokens"); got != 0 {
			t.Errorf("registry_tokens = %d, want 0 for Basic authentication", got)
		}
		e2eCheckNoSecrets(t, res, e2ePassword, basic)
	})
	t.Run("no CA", func(t *testing.T) {
		res := e2eOutpostRun(t, bin, e, env, args...)
		e2eCheckTrustFailure(t, res, want, reg.Host)
		e2eCheckNoSecrets(t, res, e2ePassword, basic)
	})
}
