package registry_test

import (
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/router/registry"
)

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, nil))
}

// clock is an injected, manually advanced time.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

func newRegistry(t testing.TB, c *clock) *registry.Registry {
	return registry.New(registry.Config{Now: c.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

func reg(port int, instance string, uris ...string) api.RouterRegistration {
	return api.RouterRegistration{
		Host: "127.0.0.1", Port: port, URIs: uris, App: "app-" + instance,
		PrivateInstanceID: instance, Tags: map[string]string{"app_name": "name-" + instance},
	}
}

// addrs returns the sorted endpoint addresses that Lookup finds, or nil.
func addrs(r *registry.Registry, host, path string) []string {
	p := r.Lookup(host, path)
	if p == nil {
		return nil
	}
	out := []string{}
	for _, e := range p.Endpoints() {
		out = append(out, e.Addr)
	}
	sort.Strings(out)
	return out
}

func mustRegister(t *testing.T, r *registry.Registry, m api.RouterRegistration) {
	t.Helper()
	if err := r.Register(m); err != nil {
		t.Fatalf("register %+v: %v", m, err)
	}
}

func eq(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

func TestRegisterUnregisterLookup(t *testing.T) {
	c := newClock()
	r := newRegistry(t, c)
	mustRegister(t, r, reg(1001, "a1", "hello.localhost"))
	mustRegister(t, r, reg(1002, "a2", "hello.localhost"))
	mustRegister(t, r, reg(2001, "b1", "other.localhost"))

	if got, want := addrs(r, "hello.localhost", "/"), []string{"127.0.0.1:1001", "127.0.0.1:1002"}; !eq(got, want) {
		t.Fatalf("hello: got %v, want %v", got, want)
	}
	if got := r.Lookup("nope.localhost", "/"); got != nil {
		t.Fatalf("unknown host: got pool %v, want nil", got.Host())
	}
	p := r.Lookup("other.localhost", "/x")
	if p == nil || p.Len() != 1 || p.At(0).PrivateInstanceID != "b1" || p.At(0).AppName != "name-b1" || p.At(0).AppID != "app-b1" {
		t.Fatalf("other: got %+v", p)
	}

	if err := r.Unregister(reg(1001, "a1", "hello.localhost")); err != nil {
		t.Fatal(err)
	}
	if got, want := addrs(r, "hello.localhost", "/"), []string{"127.0.0.1:1002"}; !eq(got, want) {
		t.Fatalf("after unregister: got %v, want %v", got, want)
	}
	// The last endpoint leaving keeps the host known, with no endpoints (503).
	if err := r.Unregister(reg(1002, "a2", "hello.localhost")); err != nil {
		t.Fatal(err)
	}
	p = r.Lookup("hello.localhost", "/")
	if p == nil || p.Len() != 0 || p.AppName() != "name-a2" {
		t.Fatalf("emptied route: got %+v, want known pool without endpoints", p)
	}
}

func TestRegisterRejectsBadAddress(t *testing.T) {
	r := newRegistry(t, newClock())
	for _, m := range []api.RouterRegistration{
		{Host: "", Port: 80, URIs: []string{"a.localhost"}},
		{Host: "127.0.0.1", Port: 0, URIs: []string{"a.localhost"}},
		{Host: "127.0.0.1", Port: 70000, URIs: []string{"a.localhost"}},
	} {
		err := r.Register(m)
		if api.ErrorCode(err) != api.EInvalid {
			t.Errorf("register %+v: got %v, want invalid", m, err)
		}
	}
	if r.Table().Hosts() != 0 {
		t.Fatalf("got %d hosts after invalid registrations, want 0", r.Table().Hosts())
	}
}

func TestLongestPrefix(t *testing.T) {
	r := newRegistry(t, newClock())
	mustRegister(t, r, reg(1, "root", "h.localhost"))
	mustRegister(t, r, reg(2, "api", "h.localhost/api"))
	mustRegister(t, r, reg(3, "v2", "h.localhost/api/v2/"))
	tests := []struct{ path, want string }{
		{"/", "root"},
		{"", "root"},
		{"/apix", "root"},
		{"/api", "api"},
		{"/api/", "api"},
		{"/api/v1/x", "api"},
		{"/api/v2", "v2"},
		{"/api/v2/users", "v2"},
		{"/api/v20", "api"},
	}
	for _, tt := range tests {
		p := r.Lookup("h.localhost", tt.path)
		if p == nil || p.Len() != 1 || p.At(0).PrivateInstanceID != tt.want {
			t.Errorf("path %q: got %+v, want instance %s", tt.path, p, tt.want)
		}
	}
	// An emptied longer prefix falls back to a shorter route that has endpoints.
	if err := r.Unregister(reg(3, "v2", "h.localhost/api/v2")); err != nil {
		t.Fatal(err)
	}
	if p := r.Lookup("h.localhost", "/api/v2/users"); p == nil || p.Len() != 1 || p.At(0).PrivateInstanceID != "api" {
		t.Errorf("after emptying /api/v2: got %+v, want api", p)
	}
	// A host with only a path route does not serve other paths.
	mustRegister(t, r, reg(4, "only", "p.localhost/only"))
	if p := r.Lookup("p.localhost", "/other"); p != nil {
		t.Errorf("unmatched path: got %+v, want nil", p)
	}
	// ...but the host is known (ACME may get it a certificate).
	if !r.Table().HasHost("P.localhost") || r.Table().HasHost("q.localhost") {
		t.Errorf("HasHost: p.localhost %v, q.localhost %v; want true, false", r.Table().HasHost("p.localhost"), r.Table().HasHost("q.localhost"))
	}
}

func TestHostNormalisation(t *testing.T) {
	r := newRegistry(t, newClock())
	mustRegister(t, r, reg(1, "a", "Hello.LocalHost.:8080"))
	for _, host := range []string{"hello.localhost", "HELLO.localhost", "hello.localhost:8080", "hello.localhost.", "hello.localhost.:80"} {
		if p := r.Lookup(host, "/"); p == nil || p.Len() != 1 {
			t.Errorf("Lookup(%q): got %+v, want the route", host, p)
		}
	}
	tests := []struct{ in, want string }{
		{"a.b", "a.b"},
		{"A.B:80", "a.b"},
		{"a.b.", "a.b"},
		{"[::1]:8080", "::1"},
		{"::1", "::1"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := registry.NormalizeHost(tt.in); got != tt.want {
			t.Errorf("NormalizeHost(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestPruneWithInjectedTime(t *testing.T) {
	c := newClock()
	r := newRegistry(t, c)
	mustRegister(t, r, reg(1, "a", "a.localhost"))
	short := reg(2, "b", "a.localhost")
	short.StaleThresholdInSec = 3
	mustRegister(t, r, short)
	if tb := r.Table(); tb.Routes() != 1 || tb.Endpoints() != 2 {
		t.Fatalf("table has %d routes, %d endpoints; want 1, 2", tb.Routes(), tb.Endpoints())
	}

	if n := r.Prune(c.Advance(2 * time.Second)); n != 0 {
		t.Fatalf("pruned %d at 2s, want 0", n)
	}
	if n := r.Prune(c.Advance(2 * time.Second)); n != 1 {
		t.Fatalf("pruned %d at 4s, want 1 (the 3s lease)", n)
	}
	if got, want := addrs(r, "a.localhost", "/"), []string{"127.0.0.1:1"}; !eq(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if r.Pruned() != 1 || r.Table().Endpoints() != 1 {
		t.Fatalf("pruned counter %d, endpoints %d; want 1, 1", r.Pruned(), r.Table().Endpoints())
	}
	// Renewal keeps the lease alive.
	c.Advance(5 * time.Second)
	mustRegister(t, r, reg(1, "a", "a.localhost"))
	if n := r.Prune(c.Advance(9 * time.Second)); n != 0 {
		t.Fatalf("pruned %d after renewal, want 0", n)
	}
	if n := r.Prune(c.Advance(2 * time.Second)); n != 1 {
		t.Fatalf("pruned %d at 11s after renewal, want 1", n)
	}
	if p := r.Lookup("a.localhost", "/"); p == nil || p.Len() != 0 {
		t.Fatalf("got %+v, want known route without endpoints", p)
	}
	// After the retention the route is forgotten (404).
	r.Prune(c.Advance(registry.DefaultEmptyRouteRetention + time.Second))
	if p := r.Lookup("a.localhost", "/"); p != nil {
		t.Fatalf("got %+v after retention, want nil", p)
	}
}

func TestSuspendedPruning(t *testing.T) {
	c := newClock()
	r := newRegistry(t, c)
	mustRegister(t, r, reg(1, "a", "a.localhost"))
	r.SuspendPruning()
	if n := r.Prune(c.Advance(time.Hour)); n != 0 {
		t.Fatalf("pruned %d while suspended, want 0", n)
	}
	r.ResumePruning()
	// Leases were renewed at resume: not pruned right after, pruned one
	// threshold later.
	if n := r.Prune(c.Advance(time.Second)); n != 0 {
		t.Fatalf("pruned %d just after resume, want 0", n)
	}
	if got := addrs(r, "a.localhost", "/"); len(got) != 1 {
		t.Fatalf("got %v after resume, want one endpoint", got)
	}
	if n := r.Prune(c.Advance(registry.DefaultPruneThreshold)); n != 1 {
		t.Fatalf("pruned %d one threshold after resume, want 1", n)
	}
}

func TestReusedAddressNewInstance(t *testing.T) {
	c := newClock()
	r := newRegistry(t, c)
	mustRegister(t, r, reg(5000, "old", "old.localhost", "shared.localhost"))
	mustRegister(t, r, reg(5000, "new", "new.localhost"))

	if p := r.Lookup("old.localhost", "/"); p == nil || p.Len() != 0 {
		t.Fatalf("old host: got %+v, want no endpoints (the reused port serves another app)", p)
	}
	if p := r.Lookup("shared.localhost", "/"); p == nil || p.Len() != 0 {
		t.Fatalf("shared host: got %+v, want no endpoints", p)
	}
	if p := r.Lookup("new.localhost", "/"); p == nil || p.Len() != 1 || p.At(0).PrivateInstanceID != "new" {
		t.Fatalf("new host: got %+v, want instance new", p)
	}
	// A late unregister of the old instance does not remove the new one.
	if err := r.Unregister(reg(5000, "old", "new.localhost")); err != nil {
		t.Fatal(err)
	}
	if p := r.Lookup("new.localhost", "/"); p == nil || p.Len() != 1 {
		t.Fatalf("after late unregister: got %+v, want instance new", p)
	}
	// A late register of the old instance is a new replacement again: it
	// never leaves both apps behind the same address.
	mustRegister(t, r, reg(5000, "old", "old.localhost"))
	if p := r.Lookup("new.localhost", "/"); p == nil || p.Len() != 0 {
		t.Fatalf("new host after old re-register: got %+v, want no endpoints", p)
	}
}

func TestEndpointKeptAcrossRenewals(t *testing.T) {
	c := newClock()
	r := newRegistry(t, c)
	mustRegister(t, r, reg(1, "a", "a.localhost"))
	before := r.Lookup("a.localhost", "/").At(0)
	before.MarkFailed(c.Now().Add(time.Minute))
	mustRegister(t, r, reg(1, "a", "a.localhost"))
	after := r.Lookup("a.localhost", "/").At(0)
	if after != before || !after.Failed(c.Now()) {
		t.Fatalf("renewal replaced the endpoint or lost its failure mark")
	}
	if after.Failed(c.Now().Add(2 * time.Minute)) {
		t.Fatalf("failure mark did not expire")
	}
}

func TestRoundRobin(t *testing.T) {
	r := newRegistry(t, newClock())
	for i := 1; i <= 3; i++ {
		mustRegister(t, r, reg(i, fmt.Sprint(i), "rr.localhost"))
	}
	seen := map[string]int{}
	for range 30 {
		p := r.Lookup("rr.localhost", "/")
		seen[p.At(p.Next()).Addr]++
	}
	for addr, n := range seen {
		if n != 10 {
			t.Errorf("%s picked %d times of 30, want 10", addr, n)
		}
	}
	if len(seen) != 3 {
		t.Errorf("picked %d endpoints, want 3", len(seen))
	}
}

func TestConcurrentRegisterLookupPrune(t *testing.T) {
	c := newClock()
	r := newRegistry(t, c)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				m := reg(1000+w*1000+i%20, fmt.Sprintf("i%d-%d", w, i%20), fmt.Sprintf("h%d.localhost", i%5))
				_ = r.Register(m)
				if i%3 == 0 {
					_ = r.Unregister(m)
				}
			}
		}()
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range 2000 {
			if p := r.Lookup("h1.localhost", "/x"); p != nil && p.Len() > 0 {
				_ = p.At(p.Next()).Addr
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := range 100 {
			if i%10 == 0 {
				r.SuspendPruning()
				r.ResumePruning()
			}
			r.Prune(c.Advance(100 * time.Millisecond))
		}
	}()
	wg.Wait()
}

// TestLookupDoesNotAllocate: the proxy's hot path (Lookup, Next, At) is
// allocation-free, including host normalisation of an already-normal host.
func TestLookupDoesNotAllocate(t *testing.T) {
	r := newRegistry(t, newClock())
	mustRegister(t, r, reg(1, "a", "a.localhost"))
	mustRegister(t, r, reg(2, "b", "a.localhost/api"))
	allocs := testing.AllocsPerRun(1000, func() {
		p := r.Lookup("a.localhost:8080", "/api/x")
		if p == nil || p.At(p.Next()).Addr == "" {
			t.Fatal("no route")
		}
	})
	if allocs != 0 {
		t.Fatalf("Lookup allocates %.1f times per call, want 0", allocs)
	}
}

func TestLeastConnTag(t *testing.T) {
	c := newClock()
	r := newRegistry(t, c)
	lc := func(port int, id string) api.RouterRegistration {
		g := reg(port, id, "lc.example")
		g.Tags[registry.TagLBAlgo] = registry.LBLeastConn
		return g
	}
	for _, g := range []api.RouterRegistration{lc(1001, "a"), lc(1002, "b"), lc(1003, "c")} {
		if err := r.Register(g); err != nil {
			t.Fatal(err)
		}
	}
	p := r.Lookup("lc.example", "/")
	if !p.LeastConn() {
		t.Fatal("route registered with lb_algo=least-conn is not least-conn")
	}
	eps := p.Endpoints() // sorted by address: 1001, 1002, 1003
	eps[0].Acquire()
	eps[0].Acquire()
	eps[1].Acquire()
	if got := p.At(p.LeastLoaded(0, c.Now())); got != eps[2] {
		t.Errorf("least loaded: got %s, want %s", got.Addr, eps[2].Addr)
	}
	eps[2].MarkFailed(c.Now().Add(time.Minute))
	if got := p.At(p.LeastLoaded(0, c.Now())); got != eps[1] {
		t.Errorf("least loaded skipping a failed endpoint: got %s, want %s", got.Addr, eps[1].Addr)
	}
	eps[1].Release()
	if got := p.At(p.LeastLoaded(2, c.Now())); got != eps[1] {
		t.Errorf("least loaded after release: got %s, want %s", got.Addr, eps[1].Addr)
	}
	// The latest registration decides: a renewal without the tag switches the
	// route back to round-robin.
	if err := r.Register(reg(1001, "a", "lc.example")); err != nil {
		t.Fatal(err)
	}
	if p := r.Lookup("lc.example", "/"); p.LeastConn() {
		t.Error("route is still least-conn after a registration without the tag")
	}
}
