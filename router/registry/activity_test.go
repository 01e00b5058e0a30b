package registry_test

import (
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/router/registry"
)

func sleepReg(app string, uris ...string) api.RouterRegistration {
	return api.RouterRegistration{URIs: uris, App: app, Sleeping: true, StaleThresholdInSec: 6, Tags: map[string]string{"app_name": "sleepy"}}
}

// A sleeping registration keeps its routes known, without endpoints, for its
// lease; renewed it stays; an instance registering wakes it; unrenewed it
// ends and the route is kept only as an empty one; a forget drops it.
func TestSleepingRouteLease(t *testing.T) {
	c := newClock()
	r := newRegistry(t, c)
	mustRegister(t, r, sleepReg("web", "app.localhost", "bad uri!"))
	p := r.Lookup("app.localhost", "/")
	if p == nil || !p.Sleeping() || p.Len() != 0 || p.AppID() != "web" || p.AppName() != "sleepy" {
		t.Fatalf("sleeping route = %+v", p)
	}
	// Renewed within its lease, it outlives the empty-route retention.
	for range 100 {
		r.Prune(c.Advance(5 * time.Second))
		mustRegister(t, r, sleepReg("web", "app.localhost"))
	}
	if p := r.Lookup("app.localhost", "/"); p == nil || !p.Sleeping() {
		t.Fatalf("renewed sleeping route after 500 s = %+v", p)
	}
	// Woken: an instance registers.
	mustRegister(t, r, appReg(1001, "a1", "app.localhost"))
	if p := r.Lookup("app.localhost", "/"); p.Sleeping() || p.Len() != 1 {
		t.Fatalf("woken route = %+v", p)
	}
	// The instance stops again, and the sleeping lease is not renewed: it
	// ends, and the route is an empty one (held, then dropped).
	mustUnregister(t, r, appReg(1001, "a1", "app.localhost"))
	r.Prune(c.Advance(7 * time.Second))
	if p := r.Lookup("app.localhost", "/"); p == nil || p.Sleeping() {
		t.Fatalf("route after its sleeping lease ended = %+v, want known, not sleeping", p)
	}
	r.Prune(c.Advance(registry.DefaultEmptyRouteRetention + time.Second))
	if p := r.Lookup("app.localhost", "/"); p != nil {
		t.Fatalf("route after the retention = %+v, want nil", p)
	}
	// Sleeping and unmapped: forgotten at once.
	mustRegister(t, r, sleepReg("web", "app.localhost"))
	mustUnregister(t, r, api.RouterRegistration{URIs: []string{"app.localhost"}, App: "web", Forget: true})
	if p := r.Lookup("app.localhost", "/"); p != nil {
		t.Fatalf("sleeping route after a forget = %+v, want nil", p)
	}
}

func TestWakeDueOncePerSecond(t *testing.T) {
	c := newClock()
	r := newRegistry(t, c)
	mustRegister(t, r, sleepReg("web", "app.localhost"))
	p := r.Lookup("app.localhost", "/")
	t0 := c.Now()
	if !p.WakeDue(t0) || p.WakeDue(t0) || p.WakeDue(t0.Add(500*time.Millisecond)) {
		t.Fatal("WakeDue: want true once within a second")
	}
	// A later snapshot of the same route shares the state.
	mustRegister(t, r, sleepReg("other", "app.localhost"))
	p2 := r.Lookup("app.localhost", "/")
	if p2 == p || p2.WakeDue(t0) || !p2.WakeDue(t0.Add(time.Second)) {
		t.Fatal("WakeDue across snapshots: want the state shared")
	}
}

func TestTouchAndActivity(t *testing.T) {
	c := newClock()
	r := newRegistry(t, c)
	mustRegister(t, r, reg(1001, "a1", "one.localhost"))
	mustRegister(t, r, reg(1002, "b1", "two.localhost"))
	t0 := c.Now()
	r.Lookup("one.localhost", "/").Touch(t0)
	if got := r.Lookup("one.localhost", "/").LastRequest(); !got.Equal(t0.Truncate(time.Second)) {
		t.Fatalf("LastRequest = %v, want %v", got, t0)
	}
	if got := r.Lookup("two.localhost", "/").LastRequest(); !got.IsZero() {
		t.Fatalf("LastRequest of an unused route = %v", got)
	}
	// Renewals publish new pools; the activity stays.
	mustRegister(t, r, reg(1003, "a2", "one.localhost"))
	act := r.Table().Activity(t0)
	if len(act) != 1 || act[0].Host != "one.localhost" || act[0].AppID != "app-a2" || !act[0].LastRequest.Equal(t0) {
		t.Fatalf("activity = %+v", act)
	}
	if act := r.Table().Activity(t0.Add(time.Second)); len(act) != 0 {
		t.Fatalf("activity since later = %+v", act)
	}
}

func TestTouchDoesNotAllocate(t *testing.T) {
	c := newClock()
	r := newRegistry(t, c)
	mustRegister(t, r, reg(1001, "a1", "one.localhost"))
	p := r.Lookup("one.localhost", "/")
	now := c.Now()
	if n := testing.AllocsPerRun(100, func() { p.Touch(now) }); n != 0 {
		t.Fatalf("Touch allocates %v times", n)
	}
}
