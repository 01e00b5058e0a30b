package registry_test

import (
	"testing"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/router/registry"
)

// appReg is a registration of instance of app "web" at port.
func appReg(port int, instance string, uris ...string) api.RouterRegistration {
	m := reg(port, instance, uris...)
	m.App = "web"
	return m
}

func forget(m api.RouterRegistration) api.RouterRegistration {
	m.Forget = true
	return m
}

func mustUnregister(t *testing.T, r *registry.Registry, m api.RouterRegistration) {
	t.Helper()
	if err := r.Unregister(m); err != nil {
		t.Fatalf("unregister %+v: %v", m, err)
	}
}

func TestUnregisterKeepsRouteForgetDropsIt(t *testing.T) {
	r := newRegistry(t, newClock())
	mustRegister(t, r, appReg(1001, "a1", "app.localhost", "extra.localhost"))
	mustRegister(t, r, appReg(1002, "a2", "app.localhost", "extra.localhost"))

	// An instance stopping (an old-style unregister): the route stays known.
	mustUnregister(t, r, appReg(1001, "a1", "app.localhost", "extra.localhost"))
	mustUnregister(t, r, appReg(1002, "a2", "app.localhost"))
	if p := r.Lookup("app.localhost", "/"); p == nil || p.Len() != 0 {
		t.Fatalf("app.localhost after its instances stopped = %v, want a known empty route", p)
	}

	// Unmapped from one instance of two: still served by the other.
	mustUnregister(t, r, forget(appReg(1001, "a1", "extra.localhost")))
	if got := addrs(r, "extra.localhost", "/"); !eq(got, []string{"127.0.0.1:1002"}) {
		t.Fatalf("extra.localhost after a first forget = %v", got)
	}
	// Unmapped from the last: forgotten, 404.
	mustUnregister(t, r, forget(appReg(1002, "a2", "extra.localhost")))
	if p := r.Lookup("extra.localhost", "/"); p != nil {
		t.Fatalf("extra.localhost after its last forget = %+v, want nil", p.Endpoints())
	}
	// A forget drops a route already emptied by a stop, even from an
	// instance that no longer has an endpoint there (or any address).
	mustUnregister(t, r, api.RouterRegistration{URIs: []string{"app.localhost"}, App: "web", PrivateInstanceID: "a1", Forget: true})
	if p := r.Lookup("app.localhost", "/"); p != nil {
		t.Fatalf("app.localhost after a forget = %+v, want nil", p.Endpoints())
	}
	if n := r.Table().Routes(); n != 0 {
		t.Fatalf("%d routes left, want 0", n)
	}
	// Without Forget an address is still required.
	if err := r.Unregister(api.RouterRegistration{URIs: []string{"app.localhost"}}); err == nil {
		t.Fatal("an unregister without an address was accepted")
	}
}

func TestForgetSparesOtherAppsAndPaths(t *testing.T) {
	r := newRegistry(t, newClock())
	mustRegister(t, r, appReg(1001, "a1", "app.localhost", "app.localhost/api"))
	other := reg(2001, "b1", "shared.localhost")
	mustRegister(t, r, other)
	mustUnregister(t, r, other) // b1 stopping: shared.localhost is b1's app's, empty

	// Another app's forget of shared.localhost leaves it alone.
	mustUnregister(t, r, api.RouterRegistration{URIs: []string{"shared.localhost"}, App: "web", Forget: true})
	if p := r.Lookup("shared.localhost", "/"); p == nil || p.AppName() != "name-b1" {
		t.Fatalf("shared.localhost after another app's forget = %v", p)
	}
	// Unmapping the path route leaves the host's other route serving it.
	mustUnregister(t, r, forget(appReg(1001, "a1", "app.localhost/api")))
	if got := addrs(r, "app.localhost", "/api/x"); !eq(got, []string{"127.0.0.1:1001"}) {
		t.Fatalf("app.localhost/api/x after unmapping /api = %v", got)
	}
	if n := r.Table().Routes(); n != 2 {
		t.Fatalf("%d routes, want 2 (app.localhost, shared.localhost)", n)
	}
	// A forget of a route that still has another instance's endpoint (the
	// route moved to another app, whose instance registered first) keeps it.
	mustRegister(t, r, reg(2002, "b2", "shared.localhost"))
	mustUnregister(t, r, forget(reg(2001, "b1", "shared.localhost")))
	if got := addrs(r, "shared.localhost", "/"); !eq(got, []string{"127.0.0.1:2002"}) {
		t.Fatalf("shared.localhost = %v", got)
	}
}

func TestWatchClosedOnChange(t *testing.T) {
	r := newRegistry(t, newClock())
	mustRegister(t, r, appReg(1001, "a1", "app.localhost"))
	mustUnregister(t, r, appReg(1001, "a1", "app.localhost"))

	ch, release := r.Watch("app.localhost")
	ch2, release2 := r.Watch("app.localhost")
	other, releaseOther := r.Watch("other.localhost")
	if r.Watched() != 2 {
		t.Fatalf("Watched = %d, want 2", r.Watched())
	}
	select {
	case <-ch:
		t.Fatal("closed before any change")
	default:
	}
	mustRegister(t, r, appReg(1001, "a1", "app.localhost"))
	<-ch
	<-ch2
	if p := r.Lookup("app.localhost", "/"); p == nil || p.Len() != 1 {
		t.Fatalf("after the wake-up the table lacks the endpoint: %v", p)
	}
	select {
	case <-other:
		t.Fatal("a change of app.localhost woke other.localhost")
	default:
	}
	// The closed channel is forgotten at once; a renewal changes nothing.
	if r.Watched() != 1 {
		t.Fatalf("Watched = %d after the wake-up, want 1", r.Watched())
	}
	release()
	release2()
	ch, release = r.Watch("app.localhost")
	mustRegister(t, r, appReg(1001, "a1", "app.localhost"))
	select {
	case <-ch:
		t.Fatal("a renewal woke the watchers")
	default:
	}
	// A forget is a change too.
	mustUnregister(t, r, forget(appReg(1001, "a1", "app.localhost")))
	<-ch
	release()
	// Released without a change: gone as well.
	releaseOther()
	if r.Watched() != 0 {
		t.Fatalf("Watched = %d after every release, want 0", r.Watched())
	}
}
