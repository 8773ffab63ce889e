// tls.go owns how outpost trusts registries: the --registry-ca bundle and its checks, the engine's
// per-registry certs.d directories, --insecure-registry, the shared HTTP transports built from
// them, and the advice given when a registry's certificate is not trusted.
package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// tlsSettings is the user's TLS configuration for registries.
type tlsSettings struct {
	caFile   string           // --registry-ca: PEM bundle added to the system roots
	validate bool             // --registry-ca-validate: a bad bundle is fatal at start-up
	insecure bool             // --insecure-registry: skip verification (warned at start)
	certsDir string           // the engine's per-registry dir, "/etc/docker/certs.d" by default
	now      func() time.Time // nil => time.Now
}

// loadCABundle reads and checks a PEM CA bundle; the error names the file and the reason.
func loadCABundle(path string, now time.Time) ([]*x509.Certificate, error) {
	certs, err := readCertificates(path)
	if err != nil {
		return nil, err
	}
	for i, c := range certs {
		if now.After(c.NotAfter) {
			return nil, fmt.Errorf("CA bundle %s: certificate %d (%s) expired at %s", path, i+1, c.Subject, c.NotAfter.UTC().Format(time.RFC3339))
		}
		if now.Before(c.NotBefore) {
			return nil, fmt.Errorf("CA bundle %s: certificate %d (%s) is not valid yet: valid from %s", path, i+1, c.Subject, c.NotBefore.UTC().Format(time.RFC3339))
		}
	}
	return certs, nil
}

// readCertificates reads a PEM file of certificates.
func readCertificates(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("CA bundle %s: file does not exist", path)
	case err != nil:
		return nil, fmt.Errorf("CA bundle %s: cannot be read: %w", path, err)
	}
	return parseCertificates(path, data)
}

// parseCertificates parses every CERTIFICATE block of the PEM file read from path. Text between
// blocks is allowed, as distributions' bundles carry comments there.
func parseCertificates(path string, data []byte) ([]*x509.Certificate, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("CA bundle %s: file is empty", path)
	}
	var certs []*x509.Certificate
	var others []string
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			others = append(others, block.Type)
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("CA bundle %s: certificate %d cannot be parsed: %w", path, len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	switch {
	case len(certs) > 0:
		return certs, nil
	case len(others) > 0:
		return nil, fmt.Errorf("CA bundle %s: no CERTIFICATE block (found %s)", path, strings.Join(others, ", "))
	}
	return nil, fmt.Errorf("CA bundle %s: not PEM (no -----BEGIN block)", path)
}

// registryTransports builds one *http.Transport per distinct TLS configuration and reuses it, so
// connections are pooled across checks; it is safe for concurrent use.
type registryTransports struct {
	base     *tls.Config // roots and verification shared by every registry
	certsDir string

	mu       sync.Mutex
	byConfig map[string]*http.Transport // key: digest of the certs.d files ("" for none)
}

// newRegistryTransports checks the bundle once at start-up. Without validate, a bad bundle must
// not stop outpost, but it must not go unnoticed either: it is logged at error level.
func newRegistryTransports(s tlsSettings, log *slog.Logger) (*registryTransports, error) {
	now := time.Now
	if s.now != nil {
		now = s.now
	}
	// nil roots mean the system's, which Go loads only when a handshake first needs them: a host
	// whose registries are all on loopback never pays the memory for parsing them.
	var roots *x509.CertPool
	if s.caFile != "" {
		certs, err := loadCABundle(s.caFile, now())
		switch {
		case err != nil && s.validate:
			return nil, fmt.Errorf("--registry-ca: %w", err)
		case err != nil:
			log.Error("--registry-ca ignored; only the system CA certificates are trusted", "file", s.caFile, "err", err)
		default:
			roots = systemRoots(log)
			for _, c := range certs {
				roots.AddCert(c)
			}
		}
	}
	if s.insecure {
		log.Warn("--insecure-registry: registry certificates are not verified; anyone on the path can impersonate a registry")
	}
	base := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots, InsecureSkipVerify: s.insecure}
	return &registryTransports{
		base:     base,
		certsDir: s.certsDir,
		byConfig: map[string]*http.Transport{"": newTransport(base)},
	}, nil
}

// systemRoots is a copy of the system's CA pool to add to, or an empty pool when it cannot be read.
func systemRoots(log *slog.Logger) *x509.CertPool {
	roots, err := x509.SystemCertPool()
	if err != nil {
		if log != nil {
			log.Warn("system CA certificates not loaded; only --registry-ca and certs.d are trusted", "err", err)
		}
		return x509.NewCertPool()
	}
	return roots
}

// forHost returns the round tripper for a registry "host" or "host:port". The certs.d directory is
// read on every call (a ping), so certificates renewed on disk are picked up without a restart.
func (t *registryTransports) forHost(host string) (http.RoundTripper, error) {
	files, err := t.hostFiles(host)
	if err != nil {
		return nil, err
	}
	key := ""
	if len(files) > 0 {
		h := sha256.New()
		for _, f := range files {
			fmt.Fprintf(h, "%s\x00%d\x00", filepath.Base(f.path), len(f.data))
			h.Write(f.data)
		}
		key = hex.EncodeToString(h.Sum(nil))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if tr, ok := t.byConfig[key]; ok {
		return tr, nil
	}
	cfg, err := t.hostConfig(files)
	if err != nil {
		return nil, err
	}
	tr := newTransport(cfg)
	t.byConfig[key] = tr
	return tr, nil
}

// certsFile is one file of a certs.d directory that matters for TLS.
type certsFile struct {
	path string
	data []byte
}

// hostFiles reads the *.crt, *.cert and *.key files of certsDir/<host:port>/, or of
// certsDir/<host>/ when the first does not exist, in name order.
func (t *registryTransports) hostFiles(host string) ([]certsFile, error) {
	if t.certsDir == "" {
		return nil, nil
	}
	if host == "" || host == "." || host == ".." || strings.ContainsAny(host, `/\`) {
		return nil, fmt.Errorf("registry host %q cannot name a certs.d directory", host)
	}
	dirs := []string{host}
	if h, _, err := net.SplitHostPort(host); err == nil {
		dirs = append(dirs, h)
	}
	for _, name := range dirs {
		dir := filepath.Join(t.certsDir, name)
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("certs.d directory %s: %w", dir, err)
		}
		var files []certsFile
		for _, e := range entries {
			ext := filepath.Ext(e.Name())
			if ext != ".crt" && ext != ".cert" && ext != ".key" {
				continue
			}
			path := filepath.Join(dir, e.Name())
			data, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("certs.d file %s: %w", path, err)
			}
			files = append(files, certsFile{path, data})
		}
		return files, nil
	}
	return nil, nil
}

// hostConfig adds a certs.d directory to the base configuration the way the engine reads it:
// *.crt are CAs, and each *.cert goes with the *.key of the same base name as a client certificate.
func (t *registryTransports) hostConfig(files []certsFile) (*tls.Config, error) {
	cfg := t.base.Clone()
	byPath := map[string][]byte{}
	for _, f := range files {
		byPath[f.path] = f.data
	}
	for _, f := range files {
		base := strings.TrimSuffix(f.path, filepath.Ext(f.path))
		switch filepath.Ext(f.path) {
		case ".crt":
			certs, err := parseCertificates(f.path, f.data)
			if err != nil {
				return nil, fmt.Errorf("certs.d: %w", err)
			}
			switch {
			case t.base.RootCAs == nil && cfg.RootCAs == nil:
				cfg.RootCAs = systemRoots(nil)
			case cfg.RootCAs == t.base.RootCAs:
				cfg.RootCAs = t.base.RootCAs.Clone()
			}
			for _, c := range certs {
				cfg.RootCAs.AddCert(c)
			}
		case ".cert":
			key, ok := byPath[base+".key"]
			if !ok {
				return nil, fmt.Errorf("certs.d file %s: client certificate without its key %s.key (CA certificates must end in .crt)", f.path, filepath.Base(base))
			}
			pair, err := tls.X509KeyPair(f.data, key)
			if err != nil {
				return nil, fmt.Errorf("certs.d file %s with %s.key: %w", f.path, filepath.Base(base), err)
			}
			cfg.Certificates = append(cfg.Certificates, pair)
		case ".key":
			if _, ok := byPath[base+".cert"]; !ok {
				return nil, fmt.Errorf("certs.d file %s: key without its client certificate %s.cert", f.path, filepath.Base(base))
			}
		}
	}
	return cfg, nil
}

// newTransport is the one place transport limits are set. A custom TLSClientConfig turns HTTP/2
// off unless forced; parallel checks of one registry need more than two idle connections.
func newTransport(cfg *tls.Config) *http.Transport {
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		TLSClientConfig:       cfg,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   16,
	}
}

// certificateHelp turns a certificate verification failure talking to registry into an error that
// says what would fix it; other errors are returned unchanged.
func certificateHelp(registry string, err error) error {
	var unknown x509.UnknownAuthorityError
	var name x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &unknown):
		return fmt.Errorf("%w; registry %s presents a certificate from an authority outpost does not trust: add that CA with --registry-ca FILE, or as /etc/docker/certs.d/%s/ca.crt", err, registry, registry)
	case errors.As(err, &name):
		return fmt.Errorf("%w; the certificate of registry %s does not name that host: reissue it with %s among its names, or use --insecure-registry", err, registry, hostOnly(registry))
	case errors.As(err, &invalid):
		return fmt.Errorf("%w; the certificate of registry %s is not valid: renew it, or if its CA is missing, add the CA with --registry-ca FILE", err, registry)
	}
	return err
}

// hostOnly drops the port from "host:port".
func hostOnly(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return host
}
