package router_test

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/router"
	"github.com/strata-paas/strata/router/registry"
)

// holdHarness is a harness whose proxy the test can ask how many requests it holds.
type holdHarness struct {
	*harness
	proxy *router.Proxy
}

func newHoldHarness(t *testing.T, cfg router.Config) *holdHarness {
	log := testLogger(t)
	h := &harness{t: t, reg: registry.New(registry.Config{Logger: log})}
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
		<-done
		p.Close()
	})
	h.url = "http://" + ln.Addr().String()
	h.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	t.Cleanup(h.client.CloseIdleConnections)
	return &holdHarness{h, p}
}

func holdConfig(timeout time.Duration, max int) router.Config {
	cfg := router.DefaultConfig()
	cfg.HoldTimeout, cfg.HoldMaxPerRoute, cfg.HoldMaxBody = timeout, max, 1<<10
	return cfg
}

// unregister removes the backend at rawURL from host, leaving the route known and empty.
func (h *harness) unregister(host, rawURL, id string) {
	h.t.Helper()
	ip, port, _ := net.SplitHostPort(strings.TrimPrefix(rawURL, "http://"))
	n, _ := strconv.Atoi(port)
	if err := h.reg.Unregister(api.RouterRegistration{Host: ip, Port: n, URIs: []string{host}, PrivateInstanceID: id}); err != nil {
		h.t.Fatal(err)
	}
}

func TestHeldRequestServedWhenEndpointRegisters(t *testing.T) {
	h := newHoldHarness(t, holdConfig(time.Minute, 100))
	b1 := backend(t, "one")
	h.register("app.localhost", b1.URL, "i1", "app")
	h.unregister("app.localhost", b1.URL, "i1") // restarting

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
	for h.proxy.Held("app.localhost", "") < n {
		time.Sleep(5 * time.Millisecond)
	}
	b2 := backend(t, "two")
	h.register("app.localhost", b2.URL, "i2", "app")
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("client error: %s", e)
	}
}

func TestHeldRequestTimesOut(t *testing.T) {
	h := newHoldHarness(t, holdConfig(50*time.Millisecond, 100))
	b1 := backend(t, "one")
	h.register("app.localhost", b1.URL, "i1", "app")
	h.unregister("app.localhost", b1.URL, "i1")
	resp, body := h.do("GET", "app.localhost", "/", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "became ready") || !strings.Contains(body, "app app") {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
}

func TestHoldFloodRefusedPastCap(t *testing.T) {
	h := newHoldHarness(t, holdConfig(time.Minute, 2))
	b1 := backend(t, "one")
	h.register("app.localhost", b1.URL, "i1", "app")
	h.unregister("app.localhost", b1.URL, "i1")
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.do("GET", "app.localhost", "/", nil)
		}()
	}
	for h.proxy.Held("app.localhost", "") < 2 {
		time.Sleep(5 * time.Millisecond)
	}
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
