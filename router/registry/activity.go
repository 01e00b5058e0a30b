package registry

import (
	"sync/atomic"
	"time"
)

// Scale to zero, the router's part: a route of an app whose web instances
// are stopped while idle is registered as sleeping (api.RouterRegistration
// Sleeping) and stays known with no endpoint; the proxy holds its requests
// and asks, at most once a second per route, for a wake-up. Every request
// records its second in the route's activity, which Table.Activity reads
// when it is sampled: the hot path pays one atomic load per request, and a
// store once a second per busy route.

// activity is a route's request times, shared by its pools in every snapshot.
type activity struct {
	last atomic.Int64 // unix second of the latest request; 0: none
	wake atomic.Int64 // unix second of the latest wake-up asked for
}

// Touch records a request at now. Safe for concurrent use.
func (p *Pool) Touch(now time.Time) {
	if s := now.Unix(); p.activity.last.Load() != s {
		p.activity.last.Store(s)
	}
}

// LastRequest returns the second of the route's latest Touch, or the zero
// time if it has had none since the router started.
func (p *Pool) LastRequest() time.Time {
	if s := p.activity.last.Load(); s != 0 {
		return time.Unix(s, 0)
	}
	return time.Time{}
}

// Sleeping reports whether the route's app sleeps: registered as sleeping and
// without endpoints.
func (p *Pool) Sleeping() bool { return p.sleeping && len(p.endpoints) == 0 }

// WakeDue reports whether a wake-up should be asked for the route at now: true
// for one caller per second. Safe for concurrent use.
func (p *Pool) WakeDue(now time.Time) bool {
	s := now.Unix()
	old := p.activity.wake.Load()
	return old != s && p.activity.wake.CompareAndSwap(old, s)
}

// RouteActivity is when one route last served a request through this router.
type RouteActivity struct {
	Host, Path     string
	AppID, AppName string
	LastRequest    time.Time
}

// Activity returns the routes of the table that had a request at or after
// since, for a report of idle times.
func (t *Table) Activity(since time.Time) []RouteActivity {
	var out []RouteActivity
	for _, e := range t.hosts {
		for _, p := range e.pools {
			if last := p.activity.last.Load(); last != 0 && last >= since.Unix() {
				out = append(out, RouteActivity{Host: p.host, Path: p.path, AppID: p.appID, AppName: p.appName, LastRequest: time.Unix(last, 0)})
			}
		}
	}
	return out
}
