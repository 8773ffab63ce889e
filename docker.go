// docker.go owns the Docker Engine API client: the unix-socket or tcp(+TLS) transport, API version
// negotiation and the typed calls outpost makes. It only speaks the API; decisions live in update.go.
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
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
)

// maxAPIVersion is the newest Engine API outpost is written against; older engines are spoken to
// in their own version, newer ones in this one.
const maxAPIVersion = "1.48"

// engine is a client of one Docker engine.
type engine struct {
	addr    string // as the user gave it, for messages
	base    string // URL prefix for requests
	hc      *http.Client
	version string // the API version used as the path prefix
	info    engineVersion
}

// engineVersion is the part of GET /version outpost uses.
type engineVersion struct {
	Version       string
	APIVersion    string `json:"ApiVersion"`
	MinAPIVersion string `json:"MinAPIVersion"`
	Os            string
	Arch          string
}

type engineOptions struct {
	host       string // unix:///var/run/docker.sock or tcp://host:port
	tlsVerify  bool
	certPath   string // ca.pem, cert.pem, key.pem for tlsVerify; default ~/.docker
	apiVersion string // pinned version, "" = negotiate
}

// engineError is an answer of the engine with an error status; message is the engine's own.
type engineError struct {
	status  int
	message string
}

func (e *engineError) Error() string { return e.message }

// dialEngine connects to the engine and settles the API version.
func dialEngine(ctx context.Context, o engineOptions) (*engine, error) {
	e := &engine{addr: o.host}
	tr := &http.Transport{
		MaxIdleConnsPerHost: engineConcurrency,
		IdleConnTimeout:     30 * time.Second,
	}
	switch {
	case strings.HasPrefix(o.host, "unix://"):
		path := strings.TrimPrefix(o.host, "unix://")
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}
		e.base = "http://docker"
	case strings.HasPrefix(o.host, "tcp://"):
		hostport := strings.TrimPrefix(o.host, "tcp://")
		e.base = "http://" + hostport
		if o.tlsVerify {
			cfg, err := engineTLS(o.certPath)
			if err != nil {
				return nil, err
			}
			tr.TLSClientConfig = cfg
			e.base = "https://" + hostport
		}
	default:
		return nil, fmt.Errorf("engine address %q: want unix:///path or tcp://host:port in --host or DOCKER_HOST", o.host)
	}
	e.hc = &http.Client{Transport: tr}

	ours, err := e.ping(ctx)
	if err != nil {
		return nil, err
	}
	e.version = negotiate(ours, o.apiVersion)
	// A first versioned call surfaces a refused version with the engine's own words, and tells
	// the platform that registry indexes are compared for.
	if err := e.do(ctx, http.MethodGet, "/version", nil, nil, &e.info); err != nil {
		return nil, fmt.Errorf("engine at %s, API %s: %w", o.host, e.version, err)
	}
	return e, nil
}

// negotiate picks the version to speak: the pinned one, else the lower of ours and the engine's.
func negotiate(engineMax, pinned string) string {
	if pinned != "" {
		return pinned
	}
	if engineMax == "" {
		// Engines before API 1.25 did not send the header; speak their oldest dialect we know.
		return "1.24"
	}
	if versionLess(engineMax, maxAPIVersion) {
		return engineMax
	}
	return maxAPIVersion
}

// engineTLS loads ca.pem, cert.pem and key.pem the way the docker CLI does.
func engineTLS(dir string) (*tls.Config, error) {
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".docker")
	}
	pem, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		return nil, fmt.Errorf("engine TLS: %w (set DOCKER_CERT_PATH to the directory with ca.pem, cert.pem and key.pem)", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("engine TLS: %s holds no PEM certificate", filepath.Join(dir, "ca.pem"))
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		return nil, fmt.Errorf("engine TLS: client certificate in %s: %w", dir, err)
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// ping asks the unversioned /_ping for the engine's newest API version.
func (e *engine) ping(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.base+"/_ping", nil)
	if err != nil {
		return "", err
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		return "", e.unreachable(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("engine at %s answered /_ping with %s", e.addr, resp.Status)
	}
	return resp.Header.Get("Api-Version"), nil
}

// unreachable explains a failed connection with the likely fix.
func (e *engine) unreachable(err error) error {
	hint := "is the engine running and listening there? set --host or DOCKER_HOST"
	if path, ok := strings.CutPrefix(e.addr, "unix://"); ok {
		if st, serr := os.Stat(path); serr == nil && st.Mode()&os.ModeSocket == 0 {
			return fmt.Errorf("cannot reach the Docker engine at %s: %s is not a socket; set --host or DOCKER_HOST to the engine's socket", e.addr, path)
		}
	}
	switch {
	case errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EACCES):
		hint = "permission denied: run outpost as root or as a member of the docker group"
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOENT):
		hint = "no socket at that path: is dockerd running? set --host or DOCKER_HOST to the right address"
	case errors.Is(err, syscall.ECONNREFUSED):
		hint = "connection refused: is dockerd running? set --host or DOCKER_HOST to the right address"
	}
	return fmt.Errorf("cannot reach the Docker engine at %s: %s", e.addr, hint)
}

// do sends one versioned API call. body, when not nil, is sent as JSON; out, when not nil,
// receives the decoded JSON answer.
func (e *engine) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	u := e.base + "/v" + e.version + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return e.unreachable(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return readEngineError(resp)
	}
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("engine answer to %s %s: %w", method, path, err)
	}
	return nil
}

// readEngineError turns {"message": "..."} into an error carrying the engine's words.
func readEngineError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var m struct {
		Message string `json:"message"`
	}
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &m) == nil && m.Message != "" {
		msg = m.Message
	}
	if msg == "" {
		msg = resp.Status
	}
	return &engineError{status: resp.StatusCode, message: msg}
}

// listContainers lists containers whose status is one of statuses (all when none is given).
func (e *engine) listContainers(ctx context.Context, statuses []string) ([]container.Summary, error) {
	q := url.Values{"all": {"1"}}
	if len(statuses) > 0 {
		f, _ := json.Marshal(map[string][]string{"status": statuses})
		q.Set("filters", string(f))
	}
	var out []container.Summary
	if err := e.do(ctx, http.MethodGet, "/containers/json", q, nil, &out); err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	return out, nil
}

func (e *engine) inspectContainer(ctx context.Context, id string) (container.InspectResponse, error) {
	var out container.InspectResponse
	if err := e.do(ctx, http.MethodGet, "/containers/"+url.PathEscape(id)+"/json", nil, nil, &out); err != nil {
		return out, fmt.Errorf("inspect container %s: %w", id, err)
	}
	return out, nil
}

func (e *engine) inspectImage(ctx context.Context, id string) (image.InspectResponse, error) {
	var out image.InspectResponse
	if err := e.do(ctx, http.MethodGet, "/images/"+url.PathEscape(id)+"/json", nil, nil, &out); err != nil {
		return out, fmt.Errorf("inspect image %s: %w", id, err)
	}
	return out, nil
}

// splitVersion parses "1.41" into 1 and 41.
func splitVersion(v string) (int, int, bool) {
	a, b, ok := strings.Cut(v, ".")
	if !ok {
		return 0, 0, false
	}
	maj, err1 := strconv.Atoi(a)
	mnr, err2 := strconv.Atoi(b)
	return maj, mnr, err1 == nil && err2 == nil && maj >= 1 && mnr >= 0
}

func versionLess(a, b string) bool {
	am, an, _ := splitVersion(a)
	bm, bn, _ := splitVersion(b)
	return am < bm || (am == bm && an < bn)
}

// pullImage pulls ref through the engine, reading the whole progress stream: an error that
// arrives after the stream has started comes as a line with "error", under HTTP 200.
func (e *engine) pullImage(ctx context.Context, ref reference, registryAuth string) error {
	q := url.Values{"fromImage": {ref.repository()}, "tag": {ref.tag}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.base+"/v"+e.version+"/images/create?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	if registryAuth != "" {
		req.Header.Set("X-Registry-Auth", registryAuth)
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return e.unreachable(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return fmt.Errorf("pull %s: %w", ref, readEngineError(resp))
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var line struct {
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&line); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("pull %s: reading the engine's progress: %w", ref, err)
		}
		if line.ErrorDetail.Message != "" {
			return fmt.Errorf("pull %s: %s", ref, line.ErrorDetail.Message)
		}
		if line.Error != "" {
			return fmt.Errorf("pull %s: %s", ref, line.Error)
		}
	}
}

// stopContainer stops a container, giving it timeout to exit after its stop signal.
func (e *engine) stopContainer(ctx context.Context, id string, timeout time.Duration) error {
	q := url.Values{"t": {strconv.Itoa(int(timeout.Round(time.Second) / time.Second))}}
	// The engine answers only when the container is gone, up to timeout plus the kill.
	ctx, cancel := context.WithTimeout(ctx, timeout+30*time.Second)
	defer cancel()
	if err := e.containerPost(ctx, id, "stop", q, nil); err != nil && !notModified(err) { // 304: already stopped
		return fmt.Errorf("stop %s: %w", id, err)
	}
	return nil
}

// containerPost sends POST /containers/{id}/{action}.
func (e *engine) containerPost(ctx context.Context, id, action string, q url.Values, out any) error {
	return e.do(ctx, http.MethodPost, "/containers/"+url.PathEscape(id)+"/"+action, q, nil, out)
}

// notModified tells whether the engine answered 304: the container is already in that state.
func notModified(err error) bool {
	var ee *engineError
	return errors.As(err, &ee) && ee.status == http.StatusNotModified
}

// killContainer sends a signal to a container.
func (e *engine) killContainer(ctx context.Context, id, signal string) error {
	if err := e.containerPost(ctx, id, "kill", url.Values{"signal": {signal}}, nil); err != nil {
		return fmt.Errorf("signal %s to %s: %w", signal, id, err)
	}
	return nil
}

// waitContainer waits until a container is no longer running.
func (e *engine) waitContainer(ctx context.Context, id string) error {
	var out struct{ StatusCode int }
	if err := e.containerPost(ctx, id, "wait", url.Values{"condition": {"not-running"}}, &out); err != nil {
		return fmt.Errorf("wait for %s: %w", id, err)
	}
	return nil
}

func (e *engine) renameContainer(ctx context.Context, id, name string) error {
	if err := e.containerPost(ctx, id, "rename", url.Values{"name": {name}}, nil); err != nil {
		return fmt.Errorf("rename %s to %s: %w", id, name, err)
	}
	return nil
}

// removeContainer removes a container by force; volumes removes its anonymous volumes.
func (e *engine) removeContainer(ctx context.Context, id string, volumes bool) error {
	q := url.Values{"force": {"1"}}
	if volumes {
		q.Set("v", "1")
	}
	if err := e.do(ctx, http.MethodDelete, "/containers/"+url.PathEscape(id), q, nil, nil); err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	return nil
}

// createContainer creates a container and returns its ID.
func (e *engine) createContainer(ctx context.Context, name string, body container.CreateRequest) (string, error) {
	var out container.CreateResponse
	if err := e.do(ctx, http.MethodPost, "/containers/create", url.Values{"name": {name}}, body, &out); err != nil {
		return "", fmt.Errorf("create %s: %w", name, err)
	}
	return out.ID, nil
}

func (e *engine) startContainer(ctx context.Context, id string) error {
	if err := e.containerPost(ctx, id, "start", nil, nil); err != nil && !notModified(err) { // 304: already running
		return fmt.Errorf("start %s: %w", id, err)
	}
	return nil
}

// connectNetwork attaches a container to a network with its endpoint settings.
func (e *engine) connectNetwork(ctx context.Context, networkName, id string, settings *network.EndpointSettings) error {
	body := network.ConnectOptions{Container: id, EndpointConfig: settings}
	if err := e.do(ctx, http.MethodPost, "/networks/"+url.PathEscape(networkName)+"/connect", nil, body, nil); err != nil {
		return fmt.Errorf("connect %s to network %s: %w", id, networkName, err)
	}
	return nil
}

// removeImage removes an image with all its tags and digests; the caller has made sure that no
// container uses it (force also untags an image named in several repositories).
func (e *engine) removeImage(ctx context.Context, id string) error {
	if err := e.do(ctx, http.MethodDelete, "/images/"+url.PathEscape(id), url.Values{"force": {"1"}}, nil, nil); err != nil {
		return fmt.Errorf("remove image %s: %w", id, err)
	}
	return nil
}

// execResult is the outcome of a command run inside a container.
type execResult struct {
	exitCode int
	output   string
}

// exec runs argv inside a container and returns its exit code and (bounded) output.
func (e *engine) exec(ctx context.Context, id string, argv []string) (execResult, error) {
	var created struct {
		ID string `json:"Id"`
	}
	body := map[string]any{"Cmd": argv, "AttachStdout": true, "AttachStderr": true}
	if err := e.do(ctx, http.MethodPost, "/containers/"+url.PathEscape(id)+"/exec", nil, body, &created); err != nil {
		return execResult{}, fmt.Errorf("exec in %s: %w", id, err)
	}
	b, _ := json.Marshal(map[string]bool{"Detach": false, "Tty": false})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.base+"/v"+e.version+"/exec/"+created.ID+"/start", bytes.NewReader(b))
	if err != nil {
		return execResult{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.hc.Do(req)
	if err != nil {
		return execResult{}, fmt.Errorf("exec in %s: %w", id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return execResult{}, fmt.Errorf("exec in %s: %w", id, readEngineError(resp))
	}
	out := demux(resp.Body, 16<<10)
	var info struct {
		ExitCode int
		Running  bool
	}
	if err := e.do(ctx, http.MethodGet, "/exec/"+created.ID+"/json", nil, nil, &info); err != nil {
		return execResult{}, fmt.Errorf("exec in %s: %w", id, err)
	}
	return execResult{exitCode: info.ExitCode, output: out}, nil
}

// demux reads the engine's multiplexed stdout/stderr stream (8-byte frame headers) into one
// string of at most limit bytes, reading to the end.
func demux(r io.Reader, limit int) string {
	var out bytes.Buffer
	hdr := make([]byte, 8)
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			break
		}
		n := int64(hdr[4])<<24 | int64(hdr[5])<<16 | int64(hdr[6])<<8 | int64(hdr[7])
		room := int64(limit - out.Len())
		if room > 0 {
			io.CopyN(&out, r, min(n, room))
		}
		if rest := n - min(n, max(room, 0)); rest > 0 {
			io.CopyN(io.Discard, r, rest)
		}
	}
	return out.String()
}
