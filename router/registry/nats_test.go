package registry_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/bus"
	"github.com/strata-paas/strata/router/registry"
)

func TestSubscribeOverNATS(t *testing.T) {
	srv, err := bus.StartServer(bus.ServerConfig{Port: 0, StoreDir: ""})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	routerConn, err := bus.Connect(ctx, srv.ClientURL(), bus.Options{Name: "router", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(routerConn.Close)
	execConn, err := bus.Connect(ctx, srv.ClientURL(), bus.Options{Name: "executor", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(execConn.Close)

	// The executor listens for router.start before the router subscribes.
	starts := make(chan api.RouterStart, 4)
	if _, err := bus.SubscribeJSON(execConn, api.SubjectRouterStart, "", func(_ string, s *api.RouterStart) { starts <- *s }); err != nil {
		t.Fatal(err)
	}
	if err := execConn.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	r := registry.New(registry.Config{Logger: testLogger(t)})
	start := r.Start("router-1", []string{"127.0.0.1"})
	stop, err := registry.Subscribe(ctx, routerConn, r, start)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	select {
	case s := <-starts:
		if s.ID != "router-1" || s.MinimumRegisterIntervalInSeconds != 2 || s.PruneThresholdInSeconds != 10 {
			t.Fatalf("router.start: got %+v", s)
		}
	case <-ctx.Done():
		t.Fatal("no router.start published")
	}

	got, err := bus.Request[struct{}, api.RouterStart](ctx, execConn, api.SubjectRouterGreet, &struct{}{})
	if err != nil {
		t.Fatalf("greet: %v", err)
	}
	if got.ID != "router-1" || got.PruneThresholdInSeconds != 10 {
		t.Fatalf("greet reply: got %+v", got)
	}

	m := reg(4321, "inst-1", "hello.localhost")
	if err := execConn.Publish(api.SubjectRouterRegister, m); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "route registered", func() bool {
		p := r.Lookup("hello.localhost", "/")
		return p != nil && p.Len() == 1 && p.At(0).PrivateInstanceID == "inst-1"
	})
	// Register then unregister, back to back: applied in order.
	m2 := reg(4322, "inst-2", "hello.localhost")
	_ = execConn.Publish(api.SubjectRouterRegister, m2)
	_ = execConn.Publish(api.SubjectRouterUnregister, m2)
	_ = execConn.Publish(api.SubjectRouterUnregister, m)
	waitFor(t, ctx, "routes unregistered", func() bool {
		p := r.Lookup("hello.localhost", "/")
		return p != nil && p.Len() == 0
	})
	// An unmap (forget, from the app that last had the route) drops it; a
	// sleeping registration, without an address, keeps a route known.
	_ = execConn.Publish(api.SubjectRouterUnregister, forget(m2))
	_ = execConn.Publish(api.SubjectRouterRegister, sleepReg("web", "sleepy.localhost"))
	waitFor(t, ctx, "route forgotten, sleeping route known", func() bool {
		p := r.Lookup("sleepy.localhost", "/")
		return r.Lookup("hello.localhost", "/") == nil && p != nil && p.Sleeping()
	})

	// After stop, messages are no longer applied.
	stop()
	_ = execConn.Publish(api.SubjectRouterRegister, reg(4323, "inst-3", "late.localhost"))
	_ = execConn.Flush(ctx)
	if _, err := bus.Request[struct{}, api.RouterStart](ctx, execConn, api.SubjectRouterGreet, &struct{}{}); api.ErrorCode(err) != api.EUnavailable {
		t.Fatalf("greet after stop: got %v, want unavailable (no responders)", err)
	}
	if p := r.Lookup("late.localhost", "/"); p != nil {
		t.Fatalf("registration applied after stop: %+v", p)
	}
}

func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestPruningSuspendedWhileDisconnected: a NATS outage never empties the
// table (docs/reliability.md rule 6).
func TestPruningSuspendedWhileDisconnected(t *testing.T) {
	srv, err := bus.StartServer(bus.ServerConfig{Port: 0})
	if err != nil {
		t.Fatal(err)
	}
	url := srv.ClientURL()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := bus.Connect(ctx, url, bus.Options{Name: "router", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)

	c := newClock()
	r := registry.New(registry.Config{Now: c.Now, Logger: testLogger(t)})
	stop, err := registry.Subscribe(ctx, conn, r, r.Start("router-1", nil))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	mustRegister(t, r, reg(1, "a", "a.localhost"))

	srv.Shutdown()
	waitFor(t, ctx, "pruning suspended", r.PruningSuspended)
	if n := r.Prune(c.Advance(time.Hour)); n != 0 {
		t.Fatalf("pruned %d while disconnected, want 0", n)
	}

	// The server comes back on the same address; the connection reconnects.
	port := url[strings.LastIndexByte(url, ':')+1:]
	p, _ := strconv.Atoi(port)
	srv2, err := bus.StartServer(bus.ServerConfig{Port: p})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv2.Shutdown)
	waitFor(t, ctx, "pruning resumed", func() bool { return !r.PruningSuspended() })
	if n := r.Prune(c.Advance(time.Second)); n != 0 {
		t.Fatalf("pruned %d right after reconnect, want 0 (leases renewed)", n)
	}
	if p := r.Lookup("a.localhost", "/"); p == nil || p.Len() != 1 {
		t.Fatalf("route lost across the outage: %+v", p)
	}
}
