package router_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/router"
	"github.com/strata-paas/strata/router/registry"
)

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger { return slog.New(slog.NewTextHandler(testWriter{t}, nil)) }

// harness is a registry, a proxy served on 127.0.0.1:0 and a client.
type harness struct {
	t      testing.TB
	reg    *registry.Registry
	url    string
	client *http.Client

	mu   sync.Mutex
	logs []api.LogEnvelope
}

func newHarness(t testing.TB, cfg router.Config) *harness {
	return newHarnessLogger(t, cfg, testLogger(t))
}

func newHarnessLogger(t testing.TB, cfg router.Config, log *slog.Logger) *harness {
	return newHarnessFull(t, cfg, log, nil)
}

// newHarnessWith lets the test build the Config from the harness's registry.
func newHarnessWith(t testing.TB, cfg router.Config, with func(router.TableSource) router.Config) *harness {
	return newHarnessFull(t, cfg, testLogger(t), with)
}

func newHarnessFull(t testing.TB, cfg router.Config, log *slog.Logger, with func(router.TableSource) router.Config) *harness {
	h := &harness{t: t, reg: registry.New(registry.Config{Logger: log})}
	if with != nil {
		cfg = with(h.reg)
	}
	if cfg.AccessLog == nil {
		cfg.AccessLog = func(e api.LogEnvelope) { h.mu.Lock(); h.logs = append(h.logs, e); h.mu.Unlock() }
	}
	p := router.New(cfg, h.reg, log)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- router.NewServer(cfg, p, log).Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		p.Close()
	})
	h.url = "http://" + ln.Addr().String()
	h.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	t.Cleanup(h.client.CloseIdleConnections)
	return h
}

// register maps host to the backend at rawURL as instance id of app.
func (h *harness) register(host, rawURL, id, app string) {
	h.t.Helper()
	hostPort := strings.TrimPrefix(rawURL, "http://")
	ip, port, _ := net.SplitHostPort(hostPort)
	n, _ := strconv.Atoi(port)
	err := h.reg.Register(api.RouterRegistration{Host: ip, Port: n, URIs: []string{host}, PrivateInstanceID: id,
		Tags: map[string]string{"app_name": app}})
	if err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) do(method, host, path string, hdr http.Header) (*http.Response, string) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.url+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Host = host
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp, string(b)
}

// backend answers "name" and echoes what the proxy sent in headers.
func backend(t testing.TB, name string) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", name)
		w.Header().Set("X-Seen-Host", r.Host)
		w.Header().Set("X-Seen-XFF", r.Header.Get("X-Forwarded-For"))
		w.Header().Set("X-Seen-XFP", r.Header.Get("X-Forwarded-Proto"))
		w.Header().Set("X-Seen-XFH", r.Header.Get("X-Forwarded-Host"))
		w.Header().Set("X-Seen-Request-Id", r.Header.Get("X-Request-Id"))
		w.Header().Set("X-Seen-Connection", r.Header.Get("X-Hop"))
		if r.Body != nil {
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("X-Seen-Body", string(b))
		}
		_, _ = io.WriteString(w, name)
	}))
	t.Cleanup(s.Close)
	return s
}

// deadURL returns a 127.0.0.1 address that refuses connections.
func deadURL(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func TestRoutingByHost(t *testing.T) {
	h := newHarness(t, router.Config{})
	a, b := backend(t, "a"), backend(t, "b")
	h.register("a.localhost", a.URL, "a-0", "app-a")
	h.register("b.localhost", b.URL, "b-0", "app-b")

	tests := []struct{ host, want string }{
		{"a.localhost", "a"},
		{"b.localhost", "b"},
		{"A.LOCALHOST:8080", "a"},
		{"b.localhost.", "b"},
	}
	for _, tt := range tests {
		resp, body := h.do("GET", tt.host, "/x", nil)
		if resp.StatusCode != 200 || body != tt.want {
			t.Errorf("host %s: got %d %q, want 200 %q", tt.host, resp.StatusCode, body, tt.want)
		}
	}
}

func TestErrorPages(t *testing.T) {
	h := newHarness(t, router.Config{Domain: "localhost"})
	// A known host whose instances all left: 503.
	h.register("gone.localhost", backend(t, "g").URL, "g-0", "gone")
	ip, port, _ := net.SplitHostPort(h.reg.Lookup("gone.localhost", "/").At(0).Addr)
	n, _ := strconv.Atoi(port)
	if err := h.reg.Unregister(api.RouterRegistration{Host: ip, Port: n, URIs: []string{"gone.localhost"}}); err != nil {
		t.Fatal(err)
	}
	// A host whose only endpoint refuses connections: 502.
	h.register("dead.localhost", deadURL(t), "d-0", "dead")

	tests := []struct {
		host     string
		status   int
		contains []string
	}{
		{"nope.localhost", 404, []string{"no app is mapped to host nope.localhost", "strata push"}},
		{"example.com", 404, []string{"no app is mapped to host example.com", "<app>.localhost"}},
		{"gone.localhost", 503, []string{"no instance of app gone is running"}},
		{"dead.localhost", 502, []string{"app dead", "strata logs dead"}},
	}
	for _, tt := range tests {
		resp, body := h.do("GET", tt.host, "/", http.Header{"X-Request-Id": {"req-" + tt.host}})
		if resp.StatusCode != tt.status {
			t.Errorf("%s: got status %d, want %d (body %q)", tt.host, resp.StatusCode, tt.status, body)
		}
		for _, c := range append(tt.contains, "request id: req-"+tt.host) {
			if !strings.Contains(body, c) {
				t.Errorf("%s: body %q does not contain %q", tt.host, body, c)
			}
		}
		if got := resp.Header.Get("X-Request-Id"); got != "req-"+tt.host {
			t.Errorf("%s: X-Request-Id %q, want %q", tt.host, got, "req-"+tt.host)
		}
	}
}

func TestRetryOnDeadEndpoint(t *testing.T) {
	h := newHarness(t, router.Config{})
	live := backend(t, "live")
	h.register("app.localhost", deadURL(t), "dead-0", "app")
	h.register("app.localhost", deadURL(t), "dead-1", "app")
	h.register("app.localhost", live.URL, "live-0", "app")
	for i := range 200 {
		resp, body := h.do("GET", "app.localhost", "/", nil)
		if resp.StatusCode != 200 || body != "live" {
			t.Fatalf("request %d: got %d %q, want 200 live", i, resp.StatusCode, body)
		}
	}
	// A request with a body is retried too: nothing was sent to the dead one.
	for i := range 20 {
		req, _ := http.NewRequest("POST", h.url+"/", strings.NewReader("payload"))
		req.Host = "app.localhost"
		resp, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Seen-Body") != "payload" {
			t.Fatalf("POST %d: got %d body %q", i, resp.StatusCode, resp.Header.Get("X-Seen-Body"))
		}
	}
}

func TestRoundRobinAcrossBackends(t *testing.T) {
	h := newHarness(t, router.Config{})
	for _, n := range []string{"a", "b", "c"} {
		h.register("rr.localhost", backend(t, n).URL, n, "rr")
	}
	seen := map[string]int{}
	for range 30 {
		_, body := h.do("GET", "rr.localhost", "/", nil)
		seen[body]++
	}
	for _, n := range []string{"a", "b", "c"} {
		if seen[n] != 10 {
			t.Errorf("backend %s got %d of 30 requests, want 10 (%v)", n, seen[n], seen)
		}
	}
}

func TestForwardedHeadersAndRequestID(t *testing.T) {
	h := newHarness(t, router.Config{})
	h.register("hdr.localhost", backend(t, "h").URL, "h-0", "hdr")

	resp, _ := h.do("GET", "hdr.localhost:8080", "/", http.Header{
		"X-Forwarded-For": {"203.0.113.7"},
		"Connection":      {"X-Hop"},
		"X-Hop":           {"secret"},
	})
	checks := map[string]string{
		"X-Seen-Host":       "hdr.localhost:8080",
		"X-Seen-XFF":        "203.0.113.7, 127.0.0.1",
		"X-Seen-XFP":        "http",
		"X-Seen-XFH":        "hdr.localhost:8080",
		"X-Seen-Connection": "", // hop-by-hop header named in Connection is removed
	}
	for k, want := range checks {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: got %q, want %q", k, got, want)
		}
	}
	id := resp.Header.Get("X-Request-Id")
	if id == "" || resp.Header.Get("X-Seen-Request-Id") != id {
		t.Errorf("generated request id: response %q, backend saw %q", id, resp.Header.Get("X-Seen-Request-Id"))
	}
	resp2, _ := h.do("GET", "hdr.localhost", "/", nil)
	if resp2.Header.Get("X-Request-Id") == id {
		t.Errorf("two requests got the same generated id %q", id)
	}

	for _, tt := range []struct {
		in   string
		keep bool
	}{
		{"abc-123", true},
		{"bad id with spaces", false},
		{strings.Repeat("x", 200), false},
	} {
		resp, _ := h.do("GET", "hdr.localhost", "/", http.Header{"X-Request-Id": {tt.in}})
		got := resp.Header.Get("X-Seen-Request-Id")
		if (got == tt.in) != tt.keep || got == "" {
			t.Errorf("inbound X-Request-Id %q: backend saw %q, keep=%v", tt.in, got, tt.keep)
		}
	}
}

func TestAccessLog(t *testing.T) {
	h := newHarness(t, router.Config{})
	h.register("log.localhost", backend(t, "hello").URL, "inst-7", "logapp")
	h.do("GET", "log.localhost", "/some/path?token=secret", http.Header{"X-Request-Id": {"rid-1"}})
	h.do("GET", "unknown.localhost", "/", nil)

	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.logs) != 1 {
		t.Fatalf("got %d access log lines, want 1 (unknown hosts have no app): %+v", len(h.logs), h.logs)
	}
	e := h.logs[0]
	if e.App != "logapp" || e.Source != api.LogSourceRouter || e.Time.IsZero() {
		t.Errorf("envelope: got %+v", e)
	}
	for _, want := range []string{"GET /some/path 200 5B ", "ms upstream=inst-7 request_id=rid-1"} {
		if !strings.Contains(e.Line, want) {
			t.Errorf("line %q does not contain %q", e.Line, want)
		}
	}
	// The latency travels as a number too (the controller's metrics read it).
	if ms := strconv.FormatFloat(e.LatencyMs, 'f', 1, 64) + "ms upstream="; e.LatencyMs <= 0 || !strings.Contains(e.Line, " "+ms) {
		t.Errorf("envelope latency %v does not match line %q", e.LatencyMs, e.Line)
	}
	if strings.Contains(e.Line, "secret") {
		t.Errorf("line %q leaks the query string", e.Line)
	}
}

func TestUpgradePassthrough(t *testing.T) {
	// A backend that accepts an Upgrade and then echoes raw bytes.
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "want upgrade", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		_ = brw.Flush()
		line, _ := brw.ReadString('\n')
		_, _ = brw.WriteString("echo: " + line)
		_ = brw.Flush()
	}))
	t.Cleanup(be.Close)
	h := newHarness(t, router.Config{})
	h.register("ws.localhost", be.URL, "ws-0", "ws")

	conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: ws.localhost\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("got status %d, want 101", resp.StatusCode)
	}
	fmt.Fprintf(conn, "ping\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "echo: ping\n" {
		t.Fatalf("got %q, %v; want echo of ping", line, err)
	}
}

func TestServerLimits(t *testing.T) {
	h := newHarness(t, router.Config{MaxHeaderBytes: 4 << 10})
	h.register("big.localhost", backend(t, "b").URL, "b-0", "big")
	resp, _ := h.do("GET", "big.localhost", "/", http.Header{"X-Big": {strings.Repeat("x", 64<<10)}})
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("huge header: got %d, want 431", resp.StatusCode)
	}
}

func TestBackendTimeout(t *testing.T) {
	release := make(chan struct{})
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(be.Close)
	t.Cleanup(func() { close(release) })
	h := newHarness(t, router.Config{ResponseHeaderTimeout: 50 * time.Millisecond})
	h.register("slow.localhost", be.URL, "s-0", "slow")
	resp, body := h.do("GET", "slow.localhost", "/", nil)
	if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(body, "app slow did not answer") {
		t.Fatalf("got %d %q, want 504", resp.StatusCode, body)
	}
}

func TestSlowHeadersAreCut(t *testing.T) {
	h := newHarness(t, router.Config{ReadHeaderTimeout: 100 * time.Millisecond})
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Half a request, then nothing: the server must close the connection.
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x.localhost\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.ReadAll(conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("server kept a connection with unfinished headers open")
	}
}
