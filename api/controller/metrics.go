package controller

import (
	"context"
	"sync"
	"time"

	"github.com/strata-paas/strata/api"
)

// metricMinutes is how many minutes of history each app keeps.
const metricMinutes = 60

// Metrics keeps the last hour of each app's use, minute by minute, from
// data the platform already has: the routers' access lines on the log
// stream (requests, latency) and the heartbeats (CPU, memory). It is
// memory only, per controller; Apps serves it (api.MetricsService).
type Metrics struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]*appSeries // app id → series
}

type appSeries struct {
	minutes [metricMinutes]minute
}

type minute struct {
	start    int64 // unix minute
	requests int
	latency  float64              // sum, ms
	usage    map[string]nodeUsage // node → its latest report in the minute
}

type nodeUsage struct {
	cpu float64
	mem int64
}

func newMetrics(now func() time.Time) *Metrics {
	return &Metrics{now: now, m: map[string]*appSeries{}}
}

// slot returns the minute of app at t, reset when it is an older minute's.
func (s *Metrics) slot(appID string, t time.Time) *minute {
	a := s.m[appID]
	if a == nil {
		a = &appSeries{}
		s.m[appID] = a
	}
	u := t.Unix() / 60
	mi := &a.minutes[u%metricMinutes]
	if mi.start != u {
		*mi = minute{start: u}
	}
	return mi
}

// routerLine counts one access line of a router, with its latency.
func (s *Metrics) routerLine(e api.LogEnvelope) {
	if e.Source != api.LogSourceRouter || e.AppID == "" || e.LatencyMs < 0 {
		return
	}
	ms := e.LatencyMs
	t := e.Time
	if t.IsZero() {
		t = s.now()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	mi := s.slot(e.AppID, t)
	mi.requests++
	mi.latency += ms
}

// heartbeat notes the usage a node reports for each app's instances.
func (s *Metrics) heartbeat(hb *api.NodeHeartbeat, now time.Time) {
	per := map[string]nodeUsage{}
	for _, in := range hb.Instances {
		u := per[in.AppID]
		u.cpu += in.CPUPercent
		u.mem += in.MemoryBytes
		per[in.AppID] = u
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for appID, u := range per {
		if appID == "" {
			continue
		}
		mi := s.slot(appID, now)
		if mi.usage == nil {
			mi.usage = map[string]nodeUsage{}
		}
		mi.usage[hb.NodeID] = u
	}
}

// series returns the last hour of appID, oldest minute first.
func (s *Metrics) series(appID string) []api.MetricPoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	nowMin := s.now().Unix() / 60
	out := make([]api.MetricPoint, 0, metricMinutes)
	a := s.m[appID]
	for u := nowMin - metricMinutes + 1; u <= nowMin; u++ {
		p := api.MetricPoint{Time: time.Unix(u*60, 0).UTC()}
		if a != nil {
			if mi := a.minutes[u%metricMinutes]; mi.start == u {
				p.Requests = mi.requests
				if mi.requests > 0 {
					p.LatencyMs = mi.latency / float64(mi.requests)
				}
				for _, nu := range mi.usage {
					p.CPUPercent += nu.cpu
					p.MemoryBytes += nu.mem
				}
			}
		}
		out = append(out, p)
	}
	return out
}

// Metrics returns the last hour of an app's use, minute by minute (who may
// read the app may read it).
func (s *Apps) Metrics(ctx context.Context, name string) ([]api.MetricPoint, error) {
	app, err := s.find.appByName(ctx, name, actRead)
	if err != nil {
		return nil, err
	}
	return s.metrics.series(app.ID), nil
}
