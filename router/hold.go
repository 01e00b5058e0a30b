package router

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-paas/strata/router/registry"
)

// Holding: a request for a known route that has no endpoint (its instances
// are restarting) waits up to Config.HoldTimeout for an endpoint to register
// instead of being answered 503 at once. At most Config.HoldMaxPerRoute
// requests wait per route; past that they are refused at once. Only requests
// without a body, or whose declared Content-Length is within
// Config.HoldMaxBody, are held (the body is not read while waiting, so it
// stays in the client's socket and the kernel's buffers). None of this runs
// for routes that have endpoints.

// holdPoll is how often a held request looks the route up again.
const holdPoll = 10 * time.Millisecond

// holds counts the requests being held, per route.
type holds struct {
	mu sync.Mutex
	n  map[string]*atomic.Int64 // host + "\x00" + path → requests held
}

func (h *holds) counter(pool *registry.Pool) *atomic.Int64 {
	k := pool.Host() + "\x00" + pool.Path()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == nil {
		h.n = map[string]*atomic.Int64{}
	}
	c := h.n[k]
	if c == nil {
		c = new(atomic.Int64)
		h.n[k] = c
	}
	return c
}

// Held returns the number of requests being held for host and path.
func (p *Proxy) Held(host, path string) int64 {
	k := registry.NormalizeHost(host) + "\x00" + path
	p.holds.mu.Lock()
	defer p.holds.mu.Unlock()
	if c := p.holds.n[k]; c != nil {
		return c.Load()
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

// hold waits for pool's route to get an endpoint. It returns the new pool,
// or nil with the status and message to answer.
func (p *Proxy) hold(r *http.Request, pool *registry.Pool) (*registry.Pool, int, string) {
	c := p.holds.counter(pool)
	if c.Add(1) > int64(p.cfg.HoldMaxPerRoute) {
		c.Add(-1)
		return nil, http.StatusServiceUnavailable, "no instance of " + appLabel(pool) + " is running for host " + hostLabel(r.Host) +
			" and " + strconv.Itoa(p.cfg.HoldMaxPerRoute) + " requests are already waiting for one — try again shortly; check it with `strata app " + appOr(pool, "NAME") + "`"
	}
	defer c.Add(-1)
	deadline := time.NewTimer(p.cfg.HoldTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(holdPoll)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil, 499, ""
		case <-deadline.C:
			return nil, http.StatusServiceUnavailable, "no instance of " + appLabel(pool) + " became ready for host " + hostLabel(r.Host) +
				" within " + p.cfg.HoldTimeout.String() + " (the request was held while its instances restarted) — check it with `strata app " +
				appOr(pool, "NAME") + "` and `strata logs " + appOr(pool, "NAME") + "`"
		case <-tick.C:
			np := p.lookup.Lookup(r.Host, r.URL.Path)
			switch {
			case np == nil:
				return nil, http.StatusNotFound, p.notFoundMessage(r.Host)
			case np.Len() > 0:
				return np, 0, ""
			}
		}
	}
}
