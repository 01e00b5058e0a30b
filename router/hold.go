package router

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/router/registry"
)

// Holding: a request for a known route that has no endpoint (its instances
// are restarting) waits up to Config.HoldTimeout for an endpoint to register
// instead of being answered 503 at once. At most Config.HoldMaxPerRoute
// requests wait per route; past that they are refused at once. Only requests
// without a body, or whose declared Content-Length is within
// Config.HoldMaxBody, are held (the body is not read while waiting, so it
// stays in the client's socket and the kernel's buffers). A held request
// does not poll: it sleeps on the registry's Watch channel for its host and
// looks again when the host's routes change, so it is sent as soon as an
// endpoint registers, and answered 404 as soon as the route is unmapped. None
// of this runs for routes that have endpoints.

// holds counts the requests being held, per route. An entry lives while
// requests are held for its route.
type holds struct {
	mu sync.Mutex
	n  map[string]*holdCount // host + "\x00" + path → requests held
}

type holdCount struct {
	held atomic.Int64 // requests being held (what Held reports)
	refs int          // requests using the entry, under holds.mu
}

func holdKey(host, path string) string { return host + "\x00" + path }

// acquire returns the count of pool's route, creating it; release it.
func (h *holds) acquire(pool *registry.Pool) *holdCount {
	k := holdKey(pool.Host(), pool.Path())
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == nil {
		h.n = map[string]*holdCount{}
	}
	c := h.n[k]
	if c == nil {
		c = new(holdCount)
		h.n[k] = c
	}
	c.refs++
	return c
}

// release undoes acquire, dropping the entry when nothing uses it.
func (h *holds) release(pool *registry.Pool, c *holdCount) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c.refs--; c.refs == 0 {
		delete(h.n, holdKey(pool.Host(), pool.Path()))
	}
}

// Held returns the number of requests being held for host and path.
func (p *Proxy) Held(host, path string) int64 {
	p.holds.mu.Lock()
	defer p.holds.mu.Unlock()
	if c := p.holds.n[holdKey(registry.NormalizeHost(host), path)]; c != nil {
		return c.held.Load()
	}
	return 0
}

// holdable reports whether r may wait for an endpoint.
func (p *Proxy) holdable(r *http.Request) bool {
	if p.cfg.HoldTimeout <= 0 || p.cfg.HoldMaxPerRoute <= 0 {
		return false
	}
	if r.Body == nil || r.Body == http.NoBody {
		return true
	}
	// A body of unknown length (chunked) cannot be bounded in advance.
	return r.ContentLength >= 0 && r.ContentLength <= p.cfg.HoldMaxBody
}

// holdError is the answer to a request that was held after its route's
// endpoints refused connections and got none.
type holdError struct {
	status int
	msg    string
}

func (e *holdError) Error() string { return e.msg }

// hasEndpoint reports whether pool has any endpoint.
func hasEndpoint(pool *registry.Pool, _ time.Time) bool { return pool.Len() > 0 }

// woken reports whether pool has an endpoint; while it sleeps it asks for a
// wake-up (Config.Wake), at most once a second per route.
func (p *Proxy) woken(pool *registry.Pool, now time.Time) bool {
	if pool.Len() > 0 {
		return true
	}
	if pool.Sleeping() && p.cfg.Wake != nil && pool.WakeDue(now) {
		p.cfg.Wake(api.RouterWake{Version: api.MessageVersion, App: pool.AppID(), Host: pool.Host(), Path: pool.Path(), Time: now})
	}
	return false
}

// hasHealthy reports whether pool has an endpoint that has not refused a
// connection lately.
func hasHealthy(pool *registry.Pool, now time.Time) bool {
	for i := range pool.Len() {
		if !pool.At(i).Failed(now) {
			return true
		}
	}
	return false
}

// holdAfterRefused is how roundTrip waits when every endpoint of st.pool
// refused a connection (nothing of the request was sent): an instance that
// died before its executor withdrew it. The request is held, as for a route
// without endpoints, until the pool has an endpoint that has not refused
// one (a restarted instance registers, or FailedEndpointTTL passes).
func (p *Proxy) holdAfterRefused(st *reqState, r *http.Request) error {
	np, status, msg := p.hold(st, r, st.pool, hasHealthy, p.cfg.FailedEndpointTTL)
	if np == nil {
		return &holdError{status, msg}
	}
	st.pool = np
	return nil
}

// hold waits until the route of r has a pool that ready accepts: it sleeps
// until the registry publishes a change of the host (Lookup.Watch), or
// recheck passes (when not 0), then looks again. A request's holds share
// one bound, HoldTimeout from its first. It returns the new pool, or nil
// with the status and message to answer.
func (p *Proxy) hold(st *reqState, r *http.Request, pool *registry.Pool, ready func(*registry.Pool, time.Time) bool, recheck time.Duration) (*registry.Pool, int, string) {
	c := p.holds.acquire(pool)
	defer p.holds.release(pool, c)
	if c.held.Add(1) > int64(p.cfg.HoldMaxPerRoute) {
		c.held.Add(-1)
		return nil, http.StatusServiceUnavailable, "no instance of " + appLabel(pool) + " is running for host " + hostLabel(r.Host) +
			" and " + strconv.Itoa(p.cfg.HoldMaxPerRoute) + " requests are already waiting for one — try again shortly; check it with `strata app " + appOr(pool, "NAME") + "`"
	}
	defer c.held.Add(-1)
	if st.holdUntil.IsZero() {
		st.holdUntil = p.cfg.Now().Add(p.cfg.HoldTimeout)
	}
	deadline := time.NewTimer(st.holdUntil.Sub(p.cfg.Now()))
	defer deadline.Stop()
	watchClient(r) // so that a client going away ends its hold on the serving loop too
	var again <-chan time.Time
	if recheck > 0 {
		t := time.NewTicker(recheck)
		defer t.Stop()
		again = t.C
	}
	for {
		changed, release := p.lookup.Watch(pool.Host())
		// Looked up after Watch, so that no change falls in between.
		np := p.lookup.Lookup(r.Host, r.URL.Path)
		switch {
		case np == nil:
			release()
			return nil, http.StatusNotFound, p.notFoundMessage(r.Host)
		case ready(np, p.cfg.Now()):
			release()
			return np, 0, ""
		}
		select {
		case <-changed:
			release()
		case <-again:
			release()
		case <-r.Context().Done():
			release()
			return nil, 499, ""
		case <-deadline.C:
			release()
			return nil, http.StatusServiceUnavailable, "no instance of " + appLabel(pool) + " became ready for host " + hostLabel(r.Host) +
				" within " + p.cfg.HoldTimeout.String() + " (the request was held while its instances restarted) — check it with `strata app " +
				appOr(pool, "NAME") + "` and `strata logs " + appOr(pool, "NAME") + "`"
		}
	}
}
