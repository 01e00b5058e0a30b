package router

import (
	"context"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/router/registry"
)

// DefaultActivityInterval is how often a router reports the routes that
// served requests (scale to zero's idle times, docs/architecture.md).
const DefaultActivityInterval = 10 * time.Second

// ActivityReporter sends, every Interval, the routes that served a request
// since its previous report to Publish. It reads the per-route times the
// proxy keeps (registry.Table.Activity), so it adds nothing to the path of
// a request.
type ActivityReporter struct {
	Registry *registry.Registry
	RouterID string
	Interval time.Duration
	Publish  func(api.RouterActivity)
	Now      func() time.Time // time.Now when nil

	since time.Time // the previous report's time; zero: every route
}

// Report publishes one report of the routes with requests since the
// previous one, if there are any, and reports whether it published.
func (a *ActivityReporter) Report() bool {
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	t := now()
	routes := a.Registry.Table().Activity(a.since)
	a.since = t
	var out []api.RouteActivity
	for _, r := range routes {
		if r.AppID == "" {
			continue // an endpoint of an executor too old to name its app
		}
		out = append(out, api.RouteActivity{App: r.AppID, Host: r.Host, Path: r.Path, LastRequest: r.LastRequest})
	}
	if len(out) == 0 {
		return false
	}
	a.Publish(api.RouterActivity{Version: api.MessageVersion, Router: a.RouterID, Routes: out, Time: t})
	return true
}

// Run reports every Interval until ctx ends.
func (a *ActivityReporter) Run(ctx context.Context) {
	every := a.Interval
	if every <= 0 {
		every = DefaultActivityInterval
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			a.Report()
		}
	}
}
