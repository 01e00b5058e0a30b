package router_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/router"
	"github.com/strata-paas/strata/router/registry"
)

// holdHarness is a harness whose proxy the test can ask how many requests it
// holds, and how often it looked each host up.
type holdHarness struct {
	*harness
	proxy   *router.Proxy
	lookups *countingLookup
}

// countingLookup counts the lookups of each host.
type countingLookup struct {
	*registry.Registry
	mu sync.Mutex
	n  map[string]int
}

func (c *countingLookup) Lookup(host, path string) *registry.Pool {
	c.mu.Lock()
	c.n[host]++
	c.mu.Unlock()
	return c.Registry.Lookup(host, path)
}

func (c *countingLookup) count(host string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[host]
}

func newHoldHarness(t *testing.T, cfg router.Config) *holdHarness {
	log := testLogger(t)
	h := &harness{t: t, reg: registry.New(registry.Config{Logger: log})}
	lookups := &countingLookup{Registry: h.reg, n: map[string]int{}}
	p := router.New(cfg, lookups, log)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- router.NewServer(cfg, p, log).Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
		p.Close()
	})
	h.url = "http://" + ln.Addr().String()
	h.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	t.Cleanup(h.client.CloseIdleConnections)
	return &holdHarness{h, p, lookups}
}

// newRestarting returns a hold harness where app.localhost is known and has
// no endpoint, as while its one instance (b1, "i1") restarts.
func newRestarting(t *testing.T, cfg router.Config) (*holdHarness, *httptest.Server) {
	h := newHoldHarness(t, cfg)
	b1 := backend(t, "one")
	h.register("app.localhost", b1.URL, "i1", "app")
	h.unregister("app.localhost", b1.URL, "i1")
	return h, b1
}

func holdConfig(timeout time.Duration, max int) router.Config {
	cfg := router.DefaultConfig()
	cfg.HoldTimeout, cfg.HoldMaxPerRoute, cfg.HoldMaxBody = timeout, max, 1<<10
	return cfg
}

// unregister removes the backend at rawURL from host, leaving the route known and empty.
func (h *harness) unregister(host, rawURL, id string) { h.withdraw(host, rawURL, id, false) }

// unmap removes the backend at rawURL from host as an unmap does: the route
// is forgotten once it has no endpoint.
func (h *harness) unmap(host, rawURL, id string) { h.withdraw(host, rawURL, id, true) }

func (h *harness) withdraw(host, rawURL, id string, forget bool) {
	h.t.Helper()
	ip, port, _ := net.SplitHostPort(strings.TrimPrefix(rawURL, "http://"))
	n, _ := strconv.Atoi(port)
	if err := h.reg.Unregister(api.RouterRegistration{Host: ip, Port: n, URIs: []string{host}, PrivateInstanceID: id, Forget: forget}); err != nil {
		h.t.Fatal(err)
	}
}

// waitHeld waits until n requests are held for host.
func (h *holdHarness) waitHeld(host string, n int64) {
	for h.proxy.Held(host, "") < n {
		time.Sleep(5 * time.Millisecond)
	}
}

// getAsync sends GET / for host and delivers its status (0 on a client error).
func (h *holdHarness) getAsync(host string) <-chan int {
	got := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("GET", h.url+"/", nil)
		req.Host = host
		resp, err := h.client.Do(req)
		if err != nil {
			h.t.Log(err)
			got <- 0
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	return got
}

func TestHeldRequestServedWhenEndpointRegisters(t *testing.T) {
	h, _ := newRestarting(t, holdConfig(time.Minute, 100))
	const n = 5
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", h.url+"/", nil)
			req.Host = "app.localhost"
			resp, err := h.client.Do(req)
			if err != nil {
				errs <- err.Error()
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("X-Backend") != "two" {
				errs <- resp.Status
			}
		}()
	}
	// Wait until all are held, then register the new instance.
	h.waitHeld("app.localhost", n)
	b2 := backend(t, "two")
	h.register("app.localhost", b2.URL, "i2", "app")
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("client error: %s", e)
	}
}

func TestHeldRequestTimesOut(t *testing.T) {
	h, _ := newRestarting(t, holdConfig(50*time.Millisecond, 100))
	resp, body := h.do("GET", "app.localhost", "/", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "became ready") || !strings.Contains(body, "app app") {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
}

func TestHoldFloodRefusedPastCap(t *testing.T) {
	h, _ := newRestarting(t, holdConfig(time.Minute, 2))
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.do("GET", "app.localhost", "/", nil)
		}()
	}
	h.waitHeld("app.localhost", 2)
	resp, body := h.do("GET", "app.localhost", "/", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "already waiting") {
		t.Fatalf("past the cap: got %d %q", resp.StatusCode, body)
	}
	h.register("app.localhost", backend(t, "two").URL, "i2", "app")
	wg.Wait()
}

func TestHoldNotForUnknownHost(t *testing.T) {
	h := newHoldHarness(t, holdConfig(time.Minute, 100))
	resp, _ := h.do("GET", "nothing.localhost", "/", nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("got %d", resp.StatusCode)
	}
}

func TestUnmappedRouteNotFoundAtOnce(t *testing.T) {
	// A hold bound far longer than the test: a held request would fail it.
	h := newHoldHarness(t, holdConfig(10*time.Minute, 100))
	b1 := backend(t, "one")
	h.register("app.localhost", b1.URL, "i1", "app")
	h.register("other.localhost", b1.URL, "i1", "app")
	h.unmap("app.localhost", b1.URL, "i1")
	resp, body := h.do("GET", "app.localhost", "/", nil)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "no app is mapped") {
		t.Fatalf("unmapped route: got %d %q", resp.StatusCode, body)
	}
	if resp, _ := h.do("GET", "other.localhost", "/", nil); resp.StatusCode != 200 {
		t.Fatalf("the instance's other route: got %d", resp.StatusCode)
	}
}

func TestHeldRequestNotFoundWhenUnmapped(t *testing.T) {
	h, b1 := newRestarting(t, holdConfig(10*time.Minute, 100))
	got := h.getAsync("app.localhost")
	h.waitHeld("app.localhost", 1)
	h.unmap("app.localhost", b1.URL, "i1") // then unmapped: forgotten
	if code := <-got; code != http.StatusNotFound {
		t.Fatalf("held request of a route unmapped meanwhile: got %d, want 404", code)
	}
}

// A held request is woken by the registry, not by polling: it looks its host
// up once on arrival, once when held and once per change of the host's
// routes, however long it waits; changes of other hosts do not wake it.
func TestHeldRequestWokenByRegistry(t *testing.T) {
	h, b1 := newRestarting(t, holdConfig(10*time.Minute, 100))
	got := h.getAsync("app.localhost")
	h.waitHeld("app.localhost", 1)
	for h.lookups.count("app.localhost") < 2 { // counted as held just before its lookup
		time.Sleep(time.Millisecond)
	}
	for i := 0; i < 20; i++ {
		h.register("other.localhost", b1.URL, "i1", "app")
		h.unregister("other.localhost", b1.URL, "i1")
	}
	h.register("app.localhost", backend(t, "two").URL, "i2", "app")
	if code := <-got; code != 200 {
		t.Fatalf("held request: got %d", code)
	}
	if n := h.lookups.count("app.localhost"); n != 3 {
		t.Fatalf("%d lookups for the held request, want 3", n)
	}
	h.nothingLeft()
}

// nothingLeft fails the test if a hold count or a watch is left behind.
func (h *holdHarness) nothingLeft() {
	h.t.Helper()
	if n := h.proxy.HeldRoutes(); n != 0 {
		h.t.Errorf("%d routes left in the hold counts", n)
	}
	if n := h.reg.Watched(); n != 0 {
		h.t.Errorf("%d hosts left watched", n)
	}
}

// Hold counts and watches are dropped when the last held request of a route
// ends, however it ends: many routes held and timed out leave nothing behind.
func TestHoldStateDroppedWhenEmpty(t *testing.T) {
	h := newHoldHarness(t, holdConfig(time.Millisecond, 100))
	b1 := backend(t, "one")
	for i := 0; i < 50; i++ {
		host := "app" + strconv.Itoa(i) + ".localhost"
		h.register(host, b1.URL, "i1", "app")
		h.unregister(host, b1.URL, "i1")
		if resp, _ := h.do("GET", host, "/", nil); resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("%s: got %d, want 503 after the hold", host, resp.StatusCode)
		}
	}
	h.nothingLeft()
}

// An instance that died before its executor withdrew it refuses
// connections: its requests are held like those of a route without
// endpoints, and sent when a new instance registers (bodies too, unread).
func TestHeldAfterConnectionsRefused(t *testing.T) {
	h := newHoldHarness(t, holdConfig(10*time.Minute, 100))
	dead := deadURL(t)
	h.register("app.localhost", dead, "i1", "app")

	get := h.getAsync("app.localhost")
	type answer struct {
		code       int
		seen, from string
	}
	post := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest("POST", h.url+"/", strings.NewReader("the body"))
		req.Host = "app.localhost"
		resp, err := h.client.Do(req)
		if err != nil {
			t.Log(err)
			post <- answer{}
			return
		}
		resp.Body.Close()
		post <- answer{resp.StatusCode, resp.Header.Get("X-Seen-Body"), resp.Header.Get("X-Backend")}
	}()
	h.waitHeld("app.localhost", 2)
	h.unregister("app.localhost", dead, "i1") // the executor notices: still held
	h.register("app.localhost", backend(t, "two").URL, "i2", "app")
	if code := <-get; code != 200 {
		t.Fatalf("held GET: got %d", code)
	}
	if a := <-post; a.code != 200 || a.seen != "the body" || a.from != "two" {
		t.Fatalf("held POST: got %+v", a)
	}
	h.nothingLeft()
}

// Refused connections and no new instance within the bound: 503 after it.
func TestHeldAfterConnectionsRefusedTimesOut(t *testing.T) {
	h := newHoldHarness(t, holdConfig(50*time.Millisecond, 100))
	h.register("app.localhost", deadURL(t), "i1", "app")
	resp, body := h.do("GET", "app.localhost", "/", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "became ready") {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	h.nothingLeft()
}

// An endpoint that refused a connection is tried again once its failure
// mark expires (FailedEndpointTTL), with no change in the registry.
func TestHeldAfterRefusedRetriedWhenMarkExpires(t *testing.T) {
	cfg := holdConfig(10*time.Minute, 100)
	cfg.FailedEndpointTTL = 20 * time.Millisecond
	h := newHoldHarness(t, cfg)
	dead := deadURL(t)
	h.register("app.localhost", dead, "i1", "app")
	got := h.getAsync("app.localhost")
	h.waitHeld("app.localhost", 1)
	ln, err := net.Listen("tcp", strings.TrimPrefix(dead, "http://"))
	if err != nil {
		t.Fatalf("cannot listen on the freed port again: %v", err)
	}
	srv := httptest.NewUnstartedServer(backend(t, "back").Config.Handler)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	if code := <-got; code != 200 {
		t.Fatalf("held request: got %d", code)
	}
}

// closingBackend closes the connection of its first `drops` requests without
// answering and counts every request it sees.
func closingBackend(t *testing.T, drops int64) (*httptest.Server, *atomic.Int64) {
	var seen atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if seen.Add(1) <= drops {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		_, _ = io.WriteString(w, "answered")
	}))
	t.Cleanup(s.Close)
	return s, &seen
}

// A GET whose connection the backend closes unanswered (a server shutting
// down with it in its listen queue) is sent once more where requests are
// held — and only once, so that a request that kills its instance does not
// kill the next one too.
func TestUnansweredRequestSentOnceMore(t *testing.T) {
	for _, c := range []struct {
		name  string
		hold  bool
		drops int64
		code  int
		seen  int64
	}{
		{"held, closed once", true, 1, 200, 2},
		{"held, closed always", true, 100, http.StatusBadGateway, 2},
		{"not held", false, 1, http.StatusBadGateway, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := router.DefaultConfig()
			if c.hold {
				cfg = holdConfig(10*time.Minute, 100)
			}
			h := newHoldHarness(t, cfg)
			be, seen := closingBackend(t, c.drops)
			h.register("app.localhost", be.URL, "i1", "app")
			resp, body := h.do("GET", "app.localhost", "/", nil)
			if resp.StatusCode != c.code || seen.Load() != c.seen {
				t.Fatalf("got %d %q after the backend saw %d requests; want %d after %d", resp.StatusCode, body, seen.Load(), c.code, c.seen)
			}
		})
	}
}
