package registry

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-paas/strata/api"
)

// Defaults of the gorouter protocol as Strata speaks it.
const (
	// DefaultRegisterInterval is how often executors re-register their routes
	// (announced as minimumRegisterIntervalInSeconds).
	DefaultRegisterInterval = 2 * time.Second
	// DefaultPruneThreshold is how long a lease lives without renewal
	// (announced as pruneThresholdInSeconds).
	DefaultPruneThreshold = 10 * time.Second
	// DefaultPruneInterval is how often Run prunes.
	DefaultPruneInterval = 3 * time.Second
	// DefaultEmptyRouteRetention is how long a route whose last endpoint left
	// is kept (answering 503, not 404).
	DefaultEmptyRouteRetention = 5 * time.Minute
)

// Load-balancing algorithms, chosen per route by the registration tag
// TagLBAlgo. Anything else means round-robin.
const (
	TagLBAlgo    = "lb_algo"
	LBRoundRobin = "round-robin"
	LBLeastConn  = "least-conn"
)

// Config configures a Registry. Zero fields take the defaults.
type Config struct {
	// PruneThreshold is the lease of a registration without
	// stale_threshold_in_seconds, and the cap of those that have one.
	PruneThreshold time.Duration
	// PruneInterval is how often Run prunes.
	PruneInterval time.Duration
	// EmptyRouteRetention is how long a route without endpoints stays known.
	EmptyRouteRetention time.Duration
	// Now is the clock; defaults to time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// DefaultConfig returns the default configuration.
func DefaultConfig() Config {
	return Config{
		PruneThreshold:      DefaultPruneThreshold,
		PruneInterval:       DefaultPruneInterval,
		EmptyRouteRetention: DefaultEmptyRouteRetention,
		Now:                 time.Now,
		Logger:              slog.Default(),
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.PruneThreshold <= 0 {
		c.PruneThreshold = d.PruneThreshold
	}
	if c.PruneInterval <= 0 {
		c.PruneInterval = d.PruneInterval
	}
	if c.EmptyRouteRetention <= 0 {
		c.EmptyRouteRetention = d.EmptyRouteRetention
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	return c
}

type routeKey struct{ host, path string }

// lease is one endpoint on one route.
type lease struct {
	ep      *Endpoint
	updated time.Time
	stale   time.Duration
}

type route struct {
	key        routeKey
	leases     map[string]*lease // addr → lease
	cursor     *atomic.Uint32
	activity   *activity // shared by the route's pools
	sleepUntil time.Time // the sleeping lease's end (zero: not sleeping)
	appID      string
	appName    string
	leastConn  bool      // balanced by least connections; set by the latest registration
	emptySince time.Time // zero while the route has endpoints
}

// instance is what is registered at one ip:port.
type instance struct {
	ep     *Endpoint
	routes map[routeKey]struct{}
}

// Registry holds the routes registered over NATS and publishes them as
// immutable Tables. All methods are safe for concurrent use; Lookup takes no
// lock.
type Registry struct {
	cfg Config
	log *slog.Logger

	table atomic.Pointer[Table]

	mu        sync.Mutex
	hosts     map[string]map[string]*route // host → path → route
	instances map[string]*instance         // addr → instance
	dirty     map[string]struct{}          // hosts changed since the last publish
	watches   map[string]*watch            // host → its watchers, while any wait
	suspended bool

	pruned atomic.Uint64 // leases dropped by Prune since New
}

// Pruned returns the number of leases Prune has dropped since New.
func (r *Registry) Pruned() uint64 { return r.pruned.Load() }

// New returns an empty Registry.
func New(cfg Config) *Registry {
	cfg = cfg.withDefaults()
	r := &Registry{
		cfg:       cfg,
		log:       cfg.Logger,
		hosts:     map[string]map[string]*route{},
		instances: map[string]*instance{},
		dirty:     map[string]struct{}{},
		watches:   map[string]*watch{},
	}
	r.table.Store(emptyTable)
	return r
}

// Lookup returns the pool serving host and path in the current table, or nil
// (see Table.Lookup). Lock-free.
func (r *Registry) Lookup(host, path string) *Pool { return r.table.Load().Lookup(host, path) }

// Table returns the current snapshot.
func (r *Registry) Table() *Table { return r.table.Load() }

// Start returns the router.start message announcing this registry's timing.
func (r *Registry) Start(routerID string, hosts []string) api.RouterStart {
	return api.RouterStart{
		ID:                               routerID,
		Hosts:                            hosts,
		MinimumRegisterIntervalInSeconds: int(DefaultRegisterInterval / time.Second),
		PruneThresholdInSeconds:          int(r.cfg.PruneThreshold / time.Second),
	}
}

func endpointAddr(reg *api.RouterRegistration) (string, error) {
	if reg.Host == "" || reg.Port <= 0 || reg.Port > 65535 {
		return "", api.Errorf(api.EInvalid, "registration needs a host and a port in 1-65535, got host %q port %d", reg.Host, reg.Port)
	}
	return net.JoinHostPort(reg.Host, strconv.Itoa(reg.Port)), nil
}

// Register adds or renews the endpoint reg.Host:reg.Port on every uri of reg.
// If that address was registered with another private_instance_id, the old
// endpoint is first removed from all its routes. It returns an EInvalid
// error (and changes nothing) when the address is invalid; uris that do not
// parse are skipped.
func (r *Registry) Register(reg api.RouterRegistration) error {
	if reg.Sleeping {
		r.registerSleeping(reg)
		return nil
	}
	addr, err := endpointAddr(&reg)
	if err != nil {
		return err
	}
	ep := &Endpoint{
		Addr:                 addr,
		PrivateInstanceID:    reg.PrivateInstanceID,
		PrivateInstanceIndex: reg.PrivateInstanceIdx,
		AppID:                reg.App,
		AppName:              reg.Tags["app_name"],
		Tags:                 reg.Tags,
	}
	stale := r.lease(&reg)

	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.cfg.Now()
	inst := r.instances[addr]
	if inst != nil && inst.ep.PrivateInstanceID != ep.PrivateInstanceID {
		r.log.Info("endpoint.replaced", "addr", addr, "old_instance", inst.ep.PrivateInstanceID, "new_instance", ep.PrivateInstanceID)
		r.removeInstance(addr, inst, now)
		inst = nil
	}
	if inst == nil {
		inst = &instance{ep: ep, routes: map[routeKey]struct{}{}}
		r.instances[addr] = inst
	} else if inst.ep.sameIdentity(ep) {
		ep = inst.ep // keep the endpoint (and its failure mark) across renewals
	} else {
		inst.ep = ep
	}
	for _, uri := range reg.URIs {
		host, p, ok := ParseURI(uri)
		if !ok {
			r.log.Warn("route.bad_uri", "uri", uri, "addr", addr)
			continue
		}
		k := routeKey{host, p}
		rt := r.route(k)
		l := rt.leases[addr]
		if l == nil {
			l = &lease{}
			rt.leases[addr] = l
			r.log.Info("route.registered", "uri", uri, "addr", addr, "instance", ep.PrivateInstanceID)
		}
		leastConn := reg.Tags[TagLBAlgo] == LBLeastConn
		if l.ep != ep || rt.appName != ep.AppName && ep.AppName != "" || rt.appID != ep.AppID && ep.AppID != "" || !rt.emptySince.IsZero() || rt.leastConn != leastConn {
			l.ep = ep
			rt.leastConn = leastConn
			if ep.AppName != "" {
				rt.appName = ep.AppName
			}
			if ep.AppID != "" {
				rt.appID = ep.AppID
			}
			rt.emptySince = time.Time{}
			r.dirty[host] = struct{}{}
		}
		l.updated, l.stale = now, stale
		inst.routes[k] = struct{}{}
	}
	if len(inst.routes) == 0 {
		delete(r.instances, addr)
	}
	r.publish()
	return nil
}

// lease returns how long reg's registration lives without renewal: its
// stale threshold, capped by PruneThreshold.
func (r *Registry) lease(reg *api.RouterRegistration) time.Duration {
	if s := time.Duration(reg.StaleThresholdInSec) * time.Second; s > 0 && s < r.cfg.PruneThreshold {
		return s
	}
	return r.cfg.PruneThreshold
}

// registerSleeping keeps every uri of reg known as sleeping, for the app
// reg.App, until the lease ends (see api.RouterRegistration.Sleeping).
func (r *Registry) registerSleeping(reg api.RouterRegistration) {
	stale := r.lease(&reg)
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.cfg.Now()
	for _, uri := range reg.URIs {
		host, p, ok := ParseURI(uri)
		if !ok {
			r.log.Warn("route.bad_uri", "uri", uri, "sleeping", true)
			continue
		}
		rt := r.route(routeKey{host, p})
		if rt.sleepUntil.IsZero() || reg.App != "" && rt.appID != reg.App || rt.appName != reg.Tags["app_name"] && reg.Tags["app_name"] != "" {
			if reg.App != "" {
				rt.appID = reg.App
			}
			if n := reg.Tags["app_name"]; n != "" {
				rt.appName = n
			}
			r.dirty[host] = struct{}{}
			r.log.Info("route.sleeping", "uri", uri, "app", rt.appName)
		}
		rt.sleepUntil = now.Add(stale)
		if len(rt.leases) == 0 && rt.emptySince.IsZero() {
			rt.emptySince = now
		}
	}
	r.publish()
}

// Unregister removes the endpoint reg.Host:reg.Port from every uri of reg.
// The endpoint is left alone when reg names a private_instance_id other than
// the one registered at that address. A route left without endpoints stays
// known (for EmptyRouteRetention) unless reg.Forget is set: then every uri of
// reg that has no endpoint left and belongs to reg.App (or to no known app)
// is dropped at once, so that it answers 404. It returns an EInvalid error
// when the address is invalid, except with Forget (an instance that never
// got an address may still forget its routes).
func (r *Registry) Unregister(reg api.RouterRegistration) error {
	addr, err := endpointAddr(&reg)
	if err != nil && !reg.Forget {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	inst := r.instances[addr]
	if inst != nil && reg.PrivateInstanceID != "" && reg.PrivateInstanceID != inst.ep.PrivateInstanceID {
		r.log.Info("route.unregister_ignored", "addr", addr, "instance", reg.PrivateInstanceID, "registered_instance", inst.ep.PrivateInstanceID)
		inst = nil
	}
	now := r.cfg.Now()
	for _, uri := range reg.URIs {
		host, p, ok := ParseURI(uri)
		if !ok {
			continue
		}
		k := routeKey{host, p}
		if inst.serves(k) {
			r.removeLease(k, addr, now)
			delete(inst.routes, k)
			r.log.Info("route.unregistered", "uri", uri, "addr", addr, "instance", inst.ep.PrivateInstanceID)
		}
		if reg.Forget {
			r.forget(k, reg.App)
		}
	}
	if inst != nil && len(inst.routes) == 0 {
		delete(r.instances, addr)
	}
	r.publish()
	return nil
}

// serves reports whether the instance (which may be nil) serves k.
func (in *instance) serves(k routeKey) bool {
	if in == nil {
		return false
	}
	_, ok := in.routes[k]
	return ok
}

// forget drops route k if it has no endpoint and belongs to app (or to no
// known app). Caller holds mu.
func (r *Registry) forget(k routeKey, app string) {
	paths := r.hosts[k.host]
	rt := paths[k.path]
	if rt == nil || len(rt.leases) > 0 || rt.appID != "" && rt.appID != app {
		return
	}
	delete(paths, k.path)
	if len(paths) == 0 {
		delete(r.hosts, k.host)
	}
	r.dirty[k.host] = struct{}{}
	r.log.Info("route.forgotten", "host", k.host, "path", k.path, "app", rt.appName)
}

// watch is the waiters for a change of one host's routes.
type watch struct {
	ch chan struct{} // closed by the publish that changes the host
	n  int           // Watch calls not yet released
}

// Watch returns a channel that is closed when the routes of host (as
// NormalizeHost gives it) next change in the published table: an endpoint
// registers or leaves, a route is added or dropped. Call release when done
// waiting; the registry forgets a host's channel once it is closed or every
// watcher has released it. Look the host up after Watch, not before, so that
// no change falls between the two. It costs nothing to hosts nobody watches.
func (r *Registry) Watch(host string) (changed <-chan struct{}, release func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.watches[host]
	if w == nil {
		w = &watch{ch: make(chan struct{})}
		r.watches[host] = w
	}
	w.n++
	return w.ch, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if w.n--; w.n == 0 && r.watches[host] == w {
			delete(r.watches, host)
		}
	}
}

// Watched returns the number of hosts being watched.
func (r *Registry) Watched() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.watches)
}

// Prune drops every lease not renewed within its stale threshold at now, and
// routes that have had no endpoint for longer than EmptyRouteRetention. It
// does nothing while pruning is suspended. It returns the number of leases
// dropped.
func (r *Registry) Prune(now time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.suspended {
		return 0
	}
	n := 0
	for host, paths := range r.hosts {
		for p, rt := range paths {
			for addr, l := range rt.leases {
				if now.Sub(l.updated) <= l.stale {
					continue
				}
				n++
				r.log.Info("route.pruned", "host", host, "path", p, "addr", addr, "instance", l.ep.PrivateInstanceID, "age", now.Sub(l.updated))
				k := routeKey{host, p}
				r.removeLease(k, addr, now)
				if inst := r.instances[addr]; inst != nil {
					delete(inst.routes, k)
					if len(inst.routes) == 0 {
						delete(r.instances, addr)
					}
				}
			}
			if !rt.sleepUntil.IsZero() && now.After(rt.sleepUntil) {
				r.log.Info("route.sleep_expired", "host", host, "path", p, "app", rt.appName)
				rt.sleepUntil = time.Time{}
				if len(rt.leases) == 0 {
					rt.emptySince = now
				}
				r.dirty[host] = struct{}{}
			}
			if len(rt.leases) == 0 && rt.sleepUntil.IsZero() && now.Sub(rt.emptySince) > r.cfg.EmptyRouteRetention {
				delete(paths, p)
				r.dirty[host] = struct{}{}
			}
		}
		if len(paths) == 0 {
			delete(r.hosts, host)
		}
	}
	r.pruned.Add(uint64(n))
	r.publish()
	return n
}

// SuspendPruning stops Prune from dropping anything until ResumePruning. Call
// it when the connection to NATS is lost: registrations cannot arrive.
func (r *Registry) SuspendPruning() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.suspended {
		r.log.Warn("prune.suspended")
	}
	r.suspended = true
}

// PruningSuspended reports whether pruning is suspended.
func (r *Registry) PruningSuspended() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.suspended
}

// ResumePruning undoes SuspendPruning and renews every lease to now, so that
// nothing is mass-pruned for the time the bus was away.
func (r *Registry) ResumePruning() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.suspended {
		return
	}
	r.suspended = false
	now := r.cfg.Now()
	n := 0
	for _, paths := range r.hosts {
		for _, rt := range paths {
			for _, l := range rt.leases {
				l.updated = now
				n++
			}
		}
	}
	r.log.Info("prune.resumed", "leases_renewed", n)
}

// Run prunes every PruneInterval until ctx ends.
func (r *Registry) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.PruneInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.Prune(r.cfg.Now())
		}
	}
}

// route returns the route for k, creating it. Caller holds mu.
func (r *Registry) route(k routeKey) *route {
	paths := r.hosts[k.host]
	if paths == nil {
		paths = map[string]*route{}
		r.hosts[k.host] = paths
	}
	rt := paths[k.path]
	if rt == nil {
		rt = &route{key: k, leases: map[string]*lease{}, cursor: new(atomic.Uint32), activity: new(activity)}
		paths[k.path] = rt
		r.dirty[k.host] = struct{}{}
	}
	return rt
}

// removeLease drops addr from route k. Caller holds mu.
func (r *Registry) removeLease(k routeKey, addr string, now time.Time) {
	rt := r.hosts[k.host][k.path]
	if rt == nil {
		return
	}
	if _, ok := rt.leases[addr]; !ok {
		return
	}
	delete(rt.leases, addr)
	if len(rt.leases) == 0 {
		rt.emptySince = now
	}
	r.dirty[k.host] = struct{}{}
}

// removeInstance drops the endpoint at addr from every route. Caller holds mu.
func (r *Registry) removeInstance(addr string, inst *instance, now time.Time) {
	for k := range inst.routes {
		r.removeLease(k, addr, now)
	}
	delete(r.instances, addr)
}

// publish builds a new Table from the old one, rebuilding only dirty hosts,
// and swaps it in. Caller holds mu.
func (r *Registry) publish() {
	if len(r.dirty) == 0 {
		return
	}
	old := r.table.Load()
	hosts := make(map[string]*hostEntry, len(old.hosts)+len(r.dirty))
	for h, e := range old.hosts {
		hosts[h] = e
	}
	var wake []*watch
	for h := range r.dirty {
		delete(r.dirty, h)
		if w := r.watches[h]; w != nil {
			delete(r.watches, h)
			wake = append(wake, w)
		}
		paths := r.hosts[h]
		if len(paths) == 0 {
			delete(hosts, h)
			continue
		}
		e := &hostEntry{pools: make([]*Pool, 0, len(paths))}
		for _, rt := range paths {
			p := &Pool{host: h, path: rt.key.path, appID: rt.appID, appName: rt.appName, leastConn: rt.leastConn, cursor: rt.cursor,
				sleeping: !rt.sleepUntil.IsZero(), activity: rt.activity, endpoints: make([]*Endpoint, 0, len(rt.leases))}
			for _, l := range rt.leases {
				p.endpoints = append(p.endpoints, l.ep)
			}
			// A stable order keeps round-robin fair across snapshots.
			slices.SortFunc(p.endpoints, func(a, b *Endpoint) int { return strings.Compare(a.Addr, b.Addr) })
			e.pools = append(e.pools, p)
		}
		slices.SortFunc(e.pools, func(a, b *Pool) int {
			if d := len(b.path) - len(a.path); d != 0 {
				return d
			}
			return strings.Compare(a.path, b.path)
		})
		hosts[h] = e
	}
	t := &Table{hosts: hosts}
	for _, e := range hosts {
		t.routes += len(e.pools)
		for _, p := range e.pools {
			t.endpoints += len(p.endpoints)
		}
	}
	r.table.Store(t)
	for _, w := range wake { // after the Store: a woken waiter sees the change
		close(w.ch)
	}
}
