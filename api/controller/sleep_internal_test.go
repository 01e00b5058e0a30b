package controller

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
)

func TestIdle(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	for _, tc := range []struct {
		name       string
		seen, last time.Time
		now        time.Time
		want       bool
	}{
		{"never served, not yet", t0, time.Time{}, t0.Add(59 * time.Second), false},
		{"never served, idle", t0, time.Time{}, t0.Add(60 * time.Second), true},
		{"served later", t0, t0.Add(30 * time.Second), t0.Add(80 * time.Second), false},
		{"served later, idle", t0, t0.Add(30 * time.Second), t0.Add(90 * time.Second), true},
		{"served before seen", t0, t0.Add(-time.Hour), t0.Add(30 * time.Second), false},
	} {
		if got := idle(tc.now, tc.seen, tc.last, time.Minute); got != tc.want {
			t.Errorf("%s: idle = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// msgBus is a memBus that keeps the router registrations it publishes.
type msgBus struct {
	memBus
	mu   sync.Mutex
	regs []api.RouterRegistration
}

func (b *msgBus) Publish(subject string, v any) error {
	if m, ok := v.(api.RouterRegistration); ok && subject == api.SubjectRouterRegister {
		b.mu.Lock()
		b.regs = append(b.regs, m)
		b.mu.Unlock()
	}
	return b.memBus.Publish(subject, v)
}

func (b *msgBus) takeRegs() []api.RouterRegistration {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.regs
	b.regs = nil
	return out
}

// An app with a scale-to-zero idle time sleeps once routers have reported no
// request for that long (fake clock): its web formation converges to zero,
// the worker keeps running, its routes are registered as sleeping; a wake-up
// from a router brings the web formation back.
func TestSleepAndWake(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_000_000, 0)}
	b := &msgBus{}
	ctx, st, c, app := passController(t, b, Config{NodeTTL: time.Hour, Now: clock.Now})
	if _, err := c.Routes.MapRoute(ctx, "hello", api.RouteRequest{Host: "hello.localhost"}); err != nil {
		t.Fatal(err)
	}
	droplet := api.BlobRef("sha256:" + strings.Repeat("ab", 32))
	if err := st.CreateRelease(ctx, &api.Release{ID: "rel-1", AppID: app.ID, DropletBlob: droplet,
		Processes: map[string]string{api.ProcessWeb: "./hello", "worker": "./work"}}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetProcess(ctx, api.Process{AppID: app.ID, Type: "worker", Instances: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Apps.Scale(ctx, "hello", api.ScaleRequest{ScaleToZero: new(60)}); err != nil {
		t.Fatal(err)
	}
	c.Nodes.start()
	c.Nodes.heartbeat(&api.NodeHeartbeat{
		Version: api.MessageVersion, NodeID: "n1", Substrate: api.SubstrateVM,
		Isolations: []api.Isolation{api.IsolationProcess}, Capacity: api.Capacity{MemoryMB: 4096, CPUs: 2},
		Time: clock.Now(), Interval: time.Second,
	}, clock.Now())
	c.Converger.converge(ctx)
	running := func() map[string]int {
		t.Helper()
		rows, err := st.Instances(ctx, app.ID)
		if err != nil {
			t.Fatal(err)
		}
		n := map[string]int{}
		for _, in := range rows {
			n[in.Process]++
		}
		return n
	}
	pass := func() bool { changed := c.Sleeper.pass(ctx, clock.Now()); c.Converger.converge(ctx); return changed }
	sleeping := func() bool {
		t.Helper()
		d, err := c.Apps.AppDetail(ctx, "hello")
		if err != nil {
			t.Fatal(err)
		}
		return d.Sleeping
	}

	if pass() || sleeping() || running()["web"] != 1 || running()["worker"] != 1 {
		t.Fatalf("at start: sleeping %v, instances %v; want awake, one web and one worker", sleeping(), running())
	}
	b.takeRegs()
	// A request 30 s in, reported by a router, restarts the idle time.
	clock.add(30 * time.Second)
	c.Sleeper.activity(&api.RouterActivity{Routes: []api.RouteActivity{{App: app.ID, Host: "hello.localhost", LastRequest: clock.Now()}}})
	clock.add(59 * time.Second)
	if pass() || sleeping() {
		t.Fatal("asleep 59 s after the last request, want awake until 60 s")
	}
	if d, _ := c.Apps.AppDetail(ctx, "hello"); !d.LastRequest.Equal(clock.Now().Add(-59 * time.Second)) {
		t.Errorf("AppDetail.LastRequest = %v, want the reported request", d.LastRequest)
	}
	clock.add(time.Second)
	if !pass() || !sleeping() {
		t.Fatal("awake 60 s after the last request, want sleeping")
	}
	if n := running(); n["web"] != 0 || n["worker"] != 1 {
		t.Fatalf("sleeping instances %v, want no web and the worker", n)
	}
	regs := b.takeRegs()
	if len(regs) != 1 || !regs[0].Sleeping || regs[0].App != app.ID || len(regs[0].URIs) != 1 || regs[0].URIs[0] != "hello.localhost" || regs[0].StaleThresholdInSec <= 0 {
		t.Fatalf("sleeping registrations %+v, want one for hello.localhost", regs)
	}
	// The registrations are renewed within their lease, and at once when a
	// router starts.
	clock.add(sleepRegisterEvery)
	if pass() || len(b.takeRegs()) != 1 {
		t.Fatal("sleeping registration not renewed")
	}
	c.Sleeper.routerStarted()
	if pass() || len(b.takeRegs()) != 1 {
		t.Fatal("sleeping registration not sent after a router start")
	}
	// A wake-up brings the web instance back, and counts as a request.
	c.Sleeper.wake(&api.RouterWake{App: app.ID, Host: "hello.localhost"}, clock.Now())
	if !pass() || sleeping() || running()["web"] != 1 {
		t.Fatalf("after a wake-up: sleeping %v, instances %v; want awake with one web", sleeping(), running())
	}
	if len(b.takeRegs()) != 0 {
		t.Error("sleeping registration sent for an awake app")
	}
	clock.add(59 * time.Second)
	if pass() || sleeping() {
		t.Fatal("asleep 59 s after the wake-up")
	}
	// Off: never sleeps.
	if _, err := c.Apps.Scale(ctx, "hello", api.ScaleRequest{ScaleToZero: new(0)}); err != nil {
		t.Fatal(err)
	}
	clock.add(time.Hour)
	if pass() || sleeping() {
		t.Fatal("asleep with scale-to-zero off")
	}
}
