package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testCA is a certificate authority for tests: TLS registries, certs.d directories and bundles.
type testCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
	pool    *x509.CertPool
}

// newTestCA is a CA valid from an hour ago for a day.
func newTestCA(t testing.TB) *testCA {
	now := time.Now()
	return newTestCAValidity(t, now.Add(-time.Hour), now.Add(24*time.Hour))
}

// newTestCAValidity is a CA valid between notBefore and notAfter: expired or not yet valid ones
// for the bundle checks.
func newTestCAValidity(t testing.TB, notBefore, notAfter time.Time) *testCA {
	t.Helper()
	key := newTestKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          newSerial(t),
		Subject:               pkix.Name{CommonName: "outpost test CA", Organization: []string{"outpost tests"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("create CA certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parse CA certificate: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, certPEM: pemBlock("CERTIFICATE", der), pool: pool}
}

// writeBundle writes the CA certificate as a PEM file and returns its path.
func (ca *testCA) writeBundle(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	writeTestFile(t, path, ca.certPEM)
	return path
}

// issueServer writes a server certificate for hosts (IP SANs for IPs, DNS otherwise) and its key.
func (ca *testCA) issueServer(t testing.TB, hosts ...string) (certFile, keyFile string) {
	t.Helper()
	certPEM, keyPEM := ca.issue(t, serverTemplate(t, hosts))
	return writePair(t, certPEM, keyPEM)
}

// serverCertificate is issueServer for an in-process server such as httptest's.
func (ca *testCA) serverCertificate(t testing.TB, hosts ...string) tls.Certificate {
	t.Helper()
	pair, err := tls.X509KeyPair(ca.issue(t, serverTemplate(t, hosts)))
	if err != nil {
		t.Fatalf("server key pair: %v", err)
	}
	return pair
}

// issueClient writes a client certificate (CN "outpost-test-client") and its key.
func (ca *testCA) issueClient(t testing.TB) (certFile, keyFile string) {
	t.Helper()
	certPEM, keyPEM := ca.issue(t, &x509.Certificate{
		SerialNumber: newSerial(t),
		Subject:      pkix.Name{CommonName: "outpost-test-client"},
		NotBefore:    ca.cert.NotBefore,
		NotAfter:     ca.cert.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	return writePair(t, certPEM, keyPEM)
}

func (ca *testCA) issue(t testing.TB, tmpl *x509.Certificate) (certPEM, keyPEM []byte) {
	t.Helper()
	key := newTestKey(t)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("issue certificate: %v", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("marshal key: %v", err)
	}
	return pemBlock("CERTIFICATE", der), pemBlock("PRIVATE KEY", keyDER)
}

func serverTemplate(t testing.TB, hosts []string) *x509.Certificate {
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: newSerial(t),
		Subject:      pkix.Name{CommonName: hosts[0]},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return tmpl
}

func newTestKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	return key
}

func newSerial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatalf("serial: %v", err)
	}
	return n
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func writePair(t testing.TB, certPEM, keyPEM []byte) (certFile, keyFile string) {
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeTestFile(t, certFile, certPEM)
	writeTestFile(t, keyFile, keyPEM)
	return certFile, keyFile
}

func writeTestFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func readTestFile(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestLoadCABundle(t *testing.T) {
	now := time.Now()
	good, other := newTestCA(t), newTestCA(t)
	expired := newTestCAValidity(t, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	future := newTestCAValidity(t, now.Add(24*time.Hour), now.Add(48*time.Hour))
	keyDER, err := x509.MarshalPKCS8PrivateKey(good.key)
	if err != nil {
		t.Fatal(err)
	}
	stamp := func(at time.Time) string { return at.UTC().Format(time.RFC3339) }

	tests := []struct {
		name       string
		write      func(path string) // nil: the file is not created
		unreadable bool
		want       []string // in the error; nil: success
		certs      int
	}{
		{name: "missing", want: []string{"does not exist"}},
		{name: "unreadable", write: func(p string) { writeTestFile(t, p, good.certPEM) }, unreadable: true, want: []string{"cannot be read", "permission denied"}},
		{name: "directory", write: func(p string) { os.Mkdir(p, 0o755) }, want: []string{"cannot be read", "is a directory"}},
		{name: "empty", write: func(p string) { writeTestFile(t, p, []byte("\n  \n")) }, want: []string{"file is empty"}},
		{name: "garbage", write: func(p string) { writeTestFile(t, p, []byte("this is not a certificate\n")) }, want: []string{"not PEM"}},
		{name: "key only", write: func(p string) { writeTestFile(t, p, pemBlock("PRIVATE KEY", keyDER)) }, want: []string{"no CERTIFICATE block", "PRIVATE KEY"}},
		{name: "unparsable certificate", write: func(p string) {
			writeTestFile(t, p, append(append([]byte{}, good.certPEM...), pemBlock("CERTIFICATE", []byte("not DER"))...))
		}, want: []string{"certificate 2 cannot be parsed"}},
		{name: "expired", write: func(p string) { writeTestFile(t, p, expired.certPEM) },
			want: []string{"certificate 1", "expired at " + stamp(expired.cert.NotAfter)}},
		{name: "not yet valid", write: func(p string) { writeTestFile(t, p, future.certPEM) },
			want: []string{"not valid yet", "valid from " + stamp(future.cert.NotBefore)}},
		{name: "good with comments", write: func(p string) {
			writeTestFile(t, p, []byte("# first CA\n"+string(good.certPEM)+"# second CA\n"+string(other.certPEM)))
		}, certs: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.unreadable && os.Geteuid() == 0 {
				t.Skip("running as root: root reads a file whatever its mode, so it cannot be made unreadable")
			}
			path := filepath.Join(t.TempDir(), "bundle.pem")
			if tt.write != nil {
				tt.write(path)
			}
			if tt.unreadable {
				if err := os.Chmod(path, 0); err != nil {
					t.Fatal(err)
				}
			}
			certs, err := loadCABundle(path, now)
			if tt.want == nil {
				if err != nil || len(certs) != tt.certs {
					t.Fatalf("got %d certificates, err %v; want %d", len(certs), err, tt.certs)
				}
				return
			}
			if err == nil {
				t.Fatalf("got %d certificates, want an error", len(certs))
			}
			for _, w := range append(tt.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// startTLSServer is an httptest server on 127.0.0.1 with a certificate from ca, answering "ok"
// and the client certificate's common name when one was presented.
func startTLSServer(t *testing.T, ca *testCA, configure func(*httptest.Server)) (srv *httptest.Server, host string) {
	t.Helper()
	srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok")
		if len(r.TLS.PeerCertificates) > 0 {
			fmt.Fprint(w, " ", r.TLS.PeerCertificates[0].Subject.CommonName)
		}
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.serverCertificate(t, "127.0.0.1")}}
	if configure != nil {
		configure(srv)
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, strings.TrimPrefix(srv.URL, "https://")
}

// getVia sends GET url through rt and returns the response, its body read.
func getVia(t *testing.T, rt http.RoundTripper, url string) (*http.Response, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, string(body), err
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestRegistryTrust(t *testing.T) {
	ca, unrelated := newTestCA(t), newTestCA(t)
	srv, host := startTLSServer(t, ca, nil)
	hostOnlyName, _, _ := net.SplitHostPort(host)

	tests := []struct {
		name     string
		settings func(certsDir string) tlsSettings
		ok       bool
	}{
		{name: "trusted with --registry-ca", ok: true, settings: func(d string) tlsSettings {
			return tlsSettings{caFile: ca.writeBundle(t), validate: true, certsDir: d}
		}},
		{name: "refused without a CA", settings: func(d string) tlsSettings { return tlsSettings{certsDir: d} }},
		{name: "refused with an unrelated CA", settings: func(d string) tlsSettings {
			return tlsSettings{caFile: unrelated.writeBundle(t), validate: true, certsDir: d}
		}},
		{name: "accepted with --insecure-registry", ok: true, settings: func(d string) tlsSettings {
			return tlsSettings{insecure: true, certsDir: d}
		}},
		{name: "certs.d host:port ca.crt", ok: true, settings: func(d string) tlsSettings {
			writeTestFile(t, filepath.Join(d, host, "ca.crt"), ca.certPEM)
			return tlsSettings{certsDir: d}
		}},
		{name: "certs.d host ca.crt", ok: true, settings: func(d string) tlsSettings {
			writeTestFile(t, filepath.Join(d, hostOnlyName, "ca.crt"), ca.certPEM)
			return tlsSettings{certsDir: d}
		}},
		{name: "certs.d of another port ignored", settings: func(d string) tlsSettings {
			writeTestFile(t, filepath.Join(d, hostOnlyName+":1", "ca.crt"), ca.certPEM)
			return tlsSettings{certsDir: d}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			trs, err := newRegistryTransports(tt.settings(t.TempDir()), discardLog())
			if err != nil {
				t.Fatal(err)
			}
			rt, err := trs.forHost(host)
			if err != nil {
				t.Fatal(err)
			}
			resp, body, err := getVia(t, rt, srv.URL+"/v2/")
			if tt.ok {
				if err != nil || resp.StatusCode != http.StatusOK || body != "ok" {
					t.Fatalf("got %v %q, err %v; want 200 ok", resp, body, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("request succeeded (%d), want a certificate error", resp.StatusCode)
			}
			helped := certificateHelp(host, err)
			for _, w := range []string{host, "--registry-ca", "unknown authority"} {
				if !strings.Contains(helped.Error(), w) {
					t.Errorf("certificateHelp: %q does not say %q", helped, w)
				}
			}
			if !errors.Is(helped, err) {
				t.Errorf("certificateHelp lost the original error")
			}
		})
	}
}

func TestCertificateHelpLeavesOtherErrors(t *testing.T) {
	for _, err := range []error{errors.New("connection refused"), context.DeadlineExceeded} {
		if got := certificateHelp("r.example", err); got != err {
			t.Errorf("certificateHelp(%v) = %v, want it unchanged", err, got)
		}
	}
	name := certificateHelp("r.example:5000", x509.HostnameError{Certificate: &x509.Certificate{}, Host: "r.example"})
	if !strings.Contains(name.Error(), "r.example:5000") || !strings.Contains(name.Error(), "does not name that host") {
		t.Errorf("hostname mismatch: %v", name)
	}
}

func TestClientCertificateFromCertsDir(t *testing.T) {
	ca := newTestCA(t)
	srv, host := startTLSServer(t, ca, func(s *httptest.Server) {
		s.TLS.ClientAuth = tls.RequireAndVerifyClientCert
		s.TLS.ClientCAs = ca.pool
	})
	certFile, keyFile := ca.issueClient(t)

	for _, withClient := range []bool{true, false} {
		t.Run(fmt.Sprintf("client certificate %v", withClient), func(t *testing.T) {
			dir := t.TempDir()
			writeTestFile(t, filepath.Join(dir, host, "ca.crt"), ca.certPEM)
			if withClient {
				writeTestFile(t, filepath.Join(dir, host, "client.cert"), readTestFile(t, certFile))
				writeTestFile(t, filepath.Join(dir, host, "client.key"), readTestFile(t, keyFile))
			}
			trs, err := newRegistryTransports(tlsSettings{certsDir: dir}, discardLog())
			if err != nil {
				t.Fatal(err)
			}
			rt, err := trs.forHost(host)
			if err != nil {
				t.Fatal(err)
			}
			_, body, err := getVia(t, rt, srv.URL+"/v2/")
			if withClient && (err != nil || body != "ok outpost-test-client") {
				t.Fatalf("got %q, err %v; want the server to see the client certificate", body, err)
			}
			if !withClient && err == nil {
				t.Fatalf("got %q without a client certificate, want the handshake refused", body)
			}
		})
	}
}

func TestCertsDirErrors(t *testing.T) {
	ca := newTestCA(t)
	certFile, keyFile := ca.issueClient(t)
	otherCert, _ := ca.issueClient(t)
	const host = "registry.example:5000"

	tests := []struct {
		name       string
		files      map[string][]byte // under certsDir/<host>/
		unreadable string
		want       string // the file named in the error
		reason     string
	}{
		{name: "broken ca.crt", files: map[string][]byte{"ca.crt": []byte("garbage")}, want: "ca.crt", reason: "not PEM"},
		{name: "cert without key", files: map[string][]byte{"client.cert": readTestFile(t, certFile)}, want: "client.cert", reason: "without its key client.key"},
		{name: "key without cert", files: map[string][]byte{"client.key": readTestFile(t, keyFile)}, want: "client.key", reason: "without its client certificate client.cert"},
		{name: "mismatched pair", files: map[string][]byte{"client.cert": readTestFile(t, otherCert), "client.key": readTestFile(t, keyFile)}, want: "client.cert", reason: "private key does not match"},
		{name: "unreadable ca.crt", files: map[string][]byte{"ca.crt": ca.certPEM}, unreadable: "ca.crt", want: "ca.crt", reason: "permission denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.unreadable != "" && os.Geteuid() == 0 {
				t.Skip("running as root: root reads a file whatever its mode, so it cannot be made unreadable")
			}
			dir := t.TempDir()
			for name, data := range tt.files {
				writeTestFile(t, filepath.Join(dir, host, name), data)
			}
			if tt.unreadable != "" {
				if err := os.Chmod(filepath.Join(dir, host, tt.unreadable), 0); err != nil {
					t.Fatal(err)
				}
			}
			trs, err := newRegistryTransports(tlsSettings{certsDir: dir}, discardLog())
			if err != nil {
				t.Fatal(err)
			}
			_, err = trs.forHost(host)
			if err == nil {
				t.Fatal("forHost succeeded, want an error")
			}
			for _, w := range []string{filepath.Join(dir, host, tt.want), tt.reason} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}

	t.Run("host that would leave certs.d", func(t *testing.T) {
		trs, err := newRegistryTransports(tlsSettings{certsDir: t.TempDir()}, discardLog())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := trs.forHost(".."); err == nil {
			t.Fatal(`forHost("..") succeeded, want an error`)
		}
	})
}

func TestBadBundleWithValidateFailsFast(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.pem")
	start := time.Now()
	trs, err := newRegistryTransports(tlsSettings{caFile: missing, validate: true}, discardLog())
	elapsed := time.Since(start)
	if err == nil || trs != nil {
		t.Fatalf("got %v, %v; want an error", trs, err)
	}
	for _, w := range []string{"--registry-ca", missing, "does not exist"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	if elapsed >= time.Second {
		t.Errorf("took %v, want under 1 s", elapsed)
	}
	t.Logf("start-up refusal took %v", elapsed)
}

func TestBadBundleWithoutValidateIsLogged(t *testing.T) {
	ca := newTestCA(t)
	srv, host := startTLSServer(t, ca, nil)
	bundle := filepath.Join(t.TempDir(), "broken.pem")
	writeTestFile(t, bundle, []byte("not a certificate"))

	var logs bytes.Buffer
	trs, err := newRegistryTransports(tlsSettings{caFile: bundle}, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatalf("without validate a bad bundle must not stop start-up: %v", err)
	}
	if !strings.Contains(logs.String(), `"level":"ERROR"`) || !strings.Contains(logs.String(), bundle) || !strings.Contains(logs.String(), "not PEM") {
		t.Errorf("log %s does not carry an error naming %s and the reason", logs.String(), bundle)
	}
	rt, err := trs.forHost(host)
	if err != nil {
		t.Fatal(err)
	}
	if roots := rt.(*http.Transport).TLSClientConfig.RootCAs; roots != nil {
		t.Error("roots are not the system roots (nil, loaded by Go when first needed)")
	}
	if _, _, err := getVia(t, rt, srv.URL+"/v2/"); err == nil {
		t.Error("a server from a test CA was trusted with system roots only")
	}
}

func TestInsecureWarnsOnce(t *testing.T) {
	var logs bytes.Buffer
	if _, err := newRegistryTransports(tlsSettings{insecure: true}, slog.New(slog.NewJSONHandler(&logs, nil))); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), `"level":"WARN"`); n != 1 || !strings.Contains(logs.String(), "--insecure-registry") {
		t.Errorf("got %d warnings in %s, want one about --insecure-registry", n, logs.String())
	}
}

func TestTransportsAreShared(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	writeTestFile(t, filepath.Join(dir, "a.example", "ca.crt"), ca.certPEM)
	writeTestFile(t, filepath.Join(dir, "b.example:5000", "ca.crt"), ca.certPEM)
	writeTestFile(t, filepath.Join(dir, "c.example", "ca.crt"), newTestCA(t).certPEM)
	trs, err := newRegistryTransports(tlsSettings{certsDir: dir}, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	get := func(host string) http.RoundTripper {
		t.Helper()
		rt, err := trs.forHost(host)
		if err != nil {
			t.Fatal(err)
		}
		return rt
	}
	if get("ghcr.io") != get("quay.io:443") {
		t.Error("two hosts without certs.d got different transports")
	}
	if get("a.example") != get("b.example:5000") {
		t.Error("two hosts with the same certs.d files got different transports")
	}
	if get("a.example") == get("ghcr.io") || get("a.example") == get("c.example") {
		t.Error("different TLS configurations share a transport")
	}

	before := get("c.example")
	writeTestFile(t, filepath.Join(dir, "c.example", "ca.crt"), newTestCA(t).certPEM)
	if get("c.example") == before {
		t.Error("a renewed ca.crt did not give a new transport")
	}

	var wg sync.WaitGroup
	got := make([]http.RoundTripper, 32)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			host := "a.example"
			if i%2 == 1 {
				host = "b.example:5000"
			}
			got[i], _ = trs.forHost(host)
		}()
	}
	wg.Wait()
	for i, rt := range got {
		if rt != got[0] {
			t.Fatalf("concurrent forHost %d got another transport", i)
		}
	}
}

func TestTransportSettings(t *testing.T) {
	trs, err := newRegistryTransports(tlsSettings{}, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	rt, err := trs.forHost("registry.example")
	if err != nil {
		t.Fatal(err)
	}
	tr := rt.(*http.Transport)
	switch {
	case tr.Proxy == nil:
		t.Error("no proxy from the environment")
	case !tr.ForceAttemptHTTP2:
		t.Error("HTTP/2 not forced")
	case tr.MaxIdleConnsPerHost < 16:
		t.Errorf("MaxIdleConnsPerHost %d, want at least 16", tr.MaxIdleConnsPerHost)
	case tr.ResponseHeaderTimeout <= 0 || tr.TLSHandshakeTimeout <= 0 || tr.IdleConnTimeout <= 0:
		t.Error("a timeout is unset")
	case tr.TLSClientConfig.MinVersion != tls.VersionTLS12:
		t.Errorf("minimum TLS version %x, want 1.2", tr.TLSClientConfig.MinVersion)
	}
}

func TestHTTP2Negotiated(t *testing.T) {
	ca := newTestCA(t)
	srv, host := startTLSServer(t, ca, func(s *httptest.Server) { s.EnableHTTP2 = true })
	trs, err := newRegistryTransports(tlsSettings{caFile: ca.writeBundle(t), validate: true}, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	rt, err := trs.forHost(host)
	if err != nil {
		t.Fatal(err)
	}
	resp, body, err := getVia(t, rt, srv.URL+"/v2/")
	if err != nil || body != "ok" {
		t.Fatalf("got %q, err %v", body, err)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("protocol %s, want HTTP/2", resp.Proto)
	}
}

// TestParallelChecksReuseConnections holds 16 requests at once in the handler, three rounds over
// HTTP/1.1: with enough idle connections kept, the later rounds open none.
func TestParallelChecksReuseConnections(t *testing.T) {
	const parallel, rounds = 16, 3
	ca := newTestCA(t)
	var opened atomic.Int32
	var barrier atomic.Pointer[sync.WaitGroup]
	srv, host := startTLSServer(t, ca, func(s *httptest.Server) {
		s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				opened.Add(1)
			}
		}
		s.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			wg := barrier.Load()
			wg.Done()
			wg.Wait()
		})
	})
	trs, err := newRegistryTransports(tlsSettings{caFile: ca.writeBundle(t), validate: true}, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	rt, err := trs.forHost(host)
	if err != nil {
		t.Fatal(err)
	}
	for range rounds {
		var inHandler, clients sync.WaitGroup
		inHandler.Add(parallel)
		barrier.Store(&inHandler)
		errs := make([]error, parallel)
		for i := range parallel {
			clients.Add(1)
			go func() {
				defer clients.Done()
				_, _, errs[i] = getVia(t, rt, srv.URL+"/v2/")
			}()
		}
		clients.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
	}
	if n := opened.Load(); n != parallel {
		t.Errorf("%d connections opened for %d rounds of %d parallel requests, want %d", n, rounds, parallel, parallel)
	}
}

// TestProxyFromEnvironment runs itself again in a child process with HTTP_PROXY, HTTPS_PROXY and
// NO_PROXY set from the start: http.ProxyFromEnvironment reads the environment once per process,
// so t.Setenv here could come after another test had fixed it. The child proves the real transport
// honours the variables; the parent runs the proxy, a loopback server that answers plain requests
// itself and tunnels CONNECT to a TLS server, so nothing leaves the machine. The proxied names are
// not loopback ones because the standard library never proxies loopback addresses.
func TestProxyFromEnvironment(t *testing.T) {
	if bundle := os.Getenv("OUTPOST_TEST_PROXY_CHILD"); bundle != "" {
		proxyChild(t, bundle)
		return
	}
	ca := newTestCA(t)
	target, _ := startTLSServer(t, ca, func(s *httptest.Server) {
		s.TLS.Certificates = []tls.Certificate{ca.serverCertificate(t, "registry.example.test")}
	})
	var plain, tunnelled atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			plain.Add(1)
			fmt.Fprintf(w, "via proxy %s", r.URL)
			return
		}
		if r.Host != "registry.example.test:443" {
			http.Error(w, "unexpected CONNECT "+r.Host, http.StatusForbidden)
			return
		}
		tunnelled.Add(1)
		tunnel(t, w, target.Listener.Addr().String())
	}))
	t.Cleanup(proxy.Close)

	cmd := exec.Command(os.Args[0], "-test.run=^TestProxyFromEnvironment$", "-test.v")
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasSuffix(strings.ToUpper(name), "_PROXY") && name != "REQUEST_METHOD" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "HTTP_PROXY="+proxy.URL, "HTTPS_PROXY="+proxy.URL, "NO_PROXY=direct.example.test",
		"OUTPOST_TEST_PROXY_CHILD="+ca.writeBundle(t))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestProxyFromEnvironment") {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if plain.Load() != 1 || tunnelled.Load() != 1 {
		t.Errorf("proxy saw %d plain requests and %d tunnels, want 1 and 1", plain.Load(), tunnelled.Load())
	}
}

// proxyChild is the child's side of TestProxyFromEnvironment.
func proxyChild(t *testing.T, bundle string) {
	trs, err := newRegistryTransports(tlsSettings{caFile: bundle, validate: true}, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	rt, err := trs.forHost("registry.example.test")
	if err != nil {
		t.Fatal(err)
	}
	_, body, err := getVia(t, rt, "http://registry.example.test/v2/")
	if err != nil || body != "via proxy http://registry.example.test/v2/" {
		t.Errorf("plain HTTP through HTTP_PROXY: got %q, err %v", body, err)
	}
	_, body, err = getVia(t, rt, "https://registry.example.test/v2/")
	if err != nil || body != "ok" {
		t.Errorf("HTTPS through HTTPS_PROXY: got %q, err %v", body, err)
	}
	direct, err := rt.(*http.Transport).Proxy(&http.Request{URL: &url.URL{Scheme: "https", Host: "direct.example.test"}})
	if err != nil || direct != nil {
		t.Errorf("NO_PROXY host: proxy %v, err %v; want none", direct, err)
	}
}

// tunnel answers a CONNECT and copies bytes between the client and addr until either side closes.
func tunnel(t *testing.T, w http.ResponseWriter, addr string) {
	backend, err := net.Dial("tcp", addr)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer backend.Close()
	client, rw, err := w.(http.Hijacker).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	defer client.Close()
	if _, err := rw.WriteString("HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	if err := rw.Flush(); err != nil {
		return
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		io.Copy(backend, rw.Reader)
		backend.(*net.TCPConn).CloseWrite()
	}()
	io.Copy(client, backend)
	client.Close()
	wg.Wait()
}
