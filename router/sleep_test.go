package router_test

import (
	"sync"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
)

// wakes records the wake-ups a proxy asks for.
type wakes struct {
	mu  sync.Mutex
	got []api.RouterWake
}

func (w *wakes) add(m api.RouterWake) { w.mu.Lock(); w.got = append(w.got, m); w.mu.Unlock() }

func (w *wakes) list() []api.RouterWake {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]api.RouterWake(nil), w.got...)
}

func sleeping(app string, uris ...string) api.RouterRegistration {
	return api.RouterRegistration{URIs: uris, App: app, Sleeping: true, Tags: map[string]string{"app_name": "sleepy"}}
}

// A request for a sleeping route is held while the proxy asks for a wake-up
// (once a second per route, however many requests wait: see
// TestWakeDueOncePerSecond), and served when an instance registers; the
// route's activity records the request.
func TestSleepingRouteWakesAndServes(t *testing.T) {
	start := time.Now()
	cfg := holdConfig(10*time.Minute, 100)
	w := &wakes{}
	cfg.Wake = w.add
	h := newHoldHarness(t, cfg)
	if err := h.reg.Register(sleeping("app-id", "app.localhost")); err != nil {
		t.Fatal(err)
	}
	if p := h.reg.Lookup("app.localhost", "/"); p == nil || !p.Sleeping() || p.AppID() != "app-id" {
		t.Fatalf("sleeping route = %+v", p)
	}
	var got []<-chan int
	for range 3 {
		got = append(got, h.getAsync("app.localhost"))
	}
	h.waitHeld("app.localhost", 3)
	ws := w.list()
	if len(ws) == 0 || len(ws) > 1+int(time.Since(start)/time.Second) {
		t.Fatalf("%d wake-ups for 3 requests held %s, want one a second", len(ws), time.Since(start))
	}
	if ws[0].App != "app-id" || ws[0].Host != "app.localhost" || ws[0].Version != api.MessageVersion {
		t.Fatalf("wake-up = %+v", ws[0])
	}
	h.register("app.localhost", backend(t, "woken").URL, "i1", "sleepy")
	for _, g := range got {
		if code := <-g; code != 200 {
			t.Fatalf("held request of a sleeping route: got %d", code)
		}
	}
	if p := h.reg.Lookup("app.localhost", "/"); p.Sleeping() {
		t.Error("a route with an endpoint still reports sleeping")
	}
	act := h.reg.Table().Activity(start.Truncate(time.Second))
	if len(act) != 1 || act[0].Host != "app.localhost" || act[0].AppID != "app-id" || act[0].LastRequest.Before(start.Truncate(time.Second)) {
		t.Fatalf("activity = %+v", act)
	}
	if act := h.reg.Table().Activity(time.Now().Add(2 * time.Second)); len(act) != 0 {
		t.Fatalf("activity since a later second = %+v, want none", act)
	}
}

// Without a wake hook, or for a route that only restarts, nothing is asked.
func TestNoWakeForRestartingRoute(t *testing.T) {
	cfg := holdConfig(50*time.Millisecond, 100)
	w := &wakes{}
	cfg.Wake = w.add
	h, _ := newRestarting(t, cfg)
	if resp, _ := h.do("GET", "app.localhost", "/", nil); resp.StatusCode != 503 {
		t.Fatalf("got %d", resp.StatusCode)
	}
	if ws := w.list(); len(ws) != 0 {
		t.Fatalf("wake-ups for a restarting route: %+v", ws)
	}
}
