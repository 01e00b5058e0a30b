package controller

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/strata-paas/strata/api"
)

// Sleeper is scale to zero's controller side (docs/architecture.md, "Scale
// to zero"). Every controller records the request times routers report
// (api.SubjectRouterActivity) and the wake-ups they ask for
// (api.SubjectRouterWake); the leader, before each converger pass, marks an
// app with a scale-to-zero idle time sleeping once it has had no request for
// that long (the converger then runs no web instance of it), wakes a
// sleeping app a router asked for, and keeps the routes of sleeping apps
// known to the routers as sleeping.
//
// The request times are kept in memory: a controller that becomes leader
// counts an app's idle time from when it first sees the app, so a failover
// delays sleeping by up to one idle time, and never makes an app sleep early.
type Sleeper struct {
	log   *slog.Logger
	store sleepStore
	audit *audit
	sig   *signals
	conn  Bus
	uris  func(ctx context.Context, appID string) ([]string, error)

	mu       sync.Mutex
	last     map[string]time.Time // app id → latest request a router reported
	seen     map[string]time.Time // app id → when the leader first checked it
	wakes    map[string]time.Time // app id → latest wake-up asked for, not yet handled
	lastSent time.Time            // when sleeping registrations were last published
	resend   bool                 // a router started: publish them at the next pass
}

// sleepStore is what the Sleeper reads and writes.
type sleepStore interface {
	ListAllApps(ctx context.Context) ([]*api.App, error)
	Processes(ctx context.Context, appID string) ([]api.Process, error)
	SetSleeping(ctx context.Context, appID, typ string, sleeping bool) error
}

// Sleeping registrations are published every sleepRegisterEvery and leased
// for sleepLease, so that routers keep a sleeping route across a few lost
// messages but forget it soon after no controller leads.
const (
	sleepRegisterEvery = 10 * time.Second
	sleepLease         = 60 * time.Second
	// wakeTTL: a wake-up not handled by then (no controller led) is dropped;
	// the router asks again every second while it holds a request.
	wakeTTL = 30 * time.Second
)

func newSleeper(log *slog.Logger, store sleepStore, aud *audit, sig *signals, conn Bus, uris func(context.Context, string) ([]string, error)) *Sleeper {
	return &Sleeper{log: log, store: store, audit: aud, sig: sig, conn: conn, uris: uris,
		last: map[string]time.Time{}, seen: map[string]time.Time{}, wakes: map[string]time.Time{}}
}

// activity records a router's report.
func (s *Sleeper) activity(m *api.RouterActivity) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range m.Routes {
		if r.App != "" && r.LastRequest.After(s.last[r.App]) {
			s.last[r.App] = r.LastRequest
		}
	}
}

// wake records a router's wake-up request and kicks the leader's pass.
func (s *Sleeper) wake(w *api.RouterWake, now time.Time) {
	if w.App == "" {
		return
	}
	s.mu.Lock()
	s.wakes[w.App] = now
	if now.After(s.last[w.App]) {
		s.last[w.App] = now // the held request counts as one
	}
	s.mu.Unlock()
	s.sig.Kick()
}

// routerStarted asks for the sleeping registrations at the next pass.
func (s *Sleeper) routerStarted() {
	s.mu.Lock()
	s.resend = true
	s.mu.Unlock()
	s.sig.Kick()
}

// LastRequest returns when a router last reported a request for the app,
// or the zero time if none has since this controller started.
func (s *Sleeper) LastRequest(appID string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last[appID]
}

// idle reports whether an app awake since at least seen, last requested at
// last (zero: never reported), has gone idleFor without requests at now.
func idle(now, seen, last time.Time, idleFor time.Duration) bool {
	since := seen
	if last.After(since) {
		since = last
	}
	return !now.Before(since.Add(idleFor))
}

// pass is the leader's work before a converger pass: wake the apps routers
// asked for, put idle ones to sleep, and publish the sleeping registrations
// when due. It reports whether any app changed state. ctx carries the
// leader's fence; nothing is written once leadership has ended.
func (s *Sleeper) pass(ctx context.Context, now time.Time) bool {
	apps, err := s.store.ListAllApps(ctx)
	if err != nil {
		s.log.Warn("sleep.read_failed", "err", err)
		return false
	}
	s.mu.Lock()
	wakes := s.wakes
	s.wakes = map[string]time.Time{}
	publish := s.resend || now.Sub(s.lastSent) >= sleepRegisterEvery
	s.mu.Unlock()

	changed := false
	var sleeping []*api.App
	for _, a := range apps {
		if a.State != api.AppStarted || a.CurrentRelease == 0 {
			continue
		}
		procs, err := s.store.Processes(ctx, a.ID)
		if err != nil {
			s.log.Warn("sleep.read_failed", "app", a.ID, "err", err)
			continue
		}
		var web *api.Process
		for i := range procs {
			if procs[i].Type == api.ProcessWeb {
				web = &procs[i]
			}
		}
		if web == nil || !web.Sleeping && (web.ScaleToZero == 0 || web.Instances == 0) {
			s.forget(a.ID)
			continue
		}
		if web.Sleeping {
			if t, ok := wakes[a.ID]; ok && now.Sub(t) < wakeTTL {
				if s.setSleeping(ctx, a, false, now) {
					changed = true
					s.audit.record(ctx, a, "app.wake", "woke: a request arrived for a sleeping route")
				}
				continue
			}
			sleeping = append(sleeping, a)
			continue
		}
		s.mu.Lock()
		seen, ok := s.seen[a.ID]
		if !ok {
			s.seen[a.ID], seen = now, now
		}
		last := s.last[a.ID]
		s.mu.Unlock()
		if idle(now, seen, last, time.Duration(web.ScaleToZero)*time.Second) {
			if s.setSleeping(ctx, a, true, now) {
				changed = true
				publish = true
				s.audit.record(ctx, a, "app.sleep", "sleeping: no request for %s (scale-to-zero)", api.IdleTime(web.ScaleToZero))
				sleeping = append(sleeping, a)
			}
		}
	}
	if publish && checkLeading(ctx) == nil {
		s.mu.Lock()
		s.lastSent, s.resend = now, false
		s.mu.Unlock()
		for _, a := range sleeping {
			s.register(ctx, a)
		}
	}
	return changed
}

// setSleeping writes the mark if this controller still leads; waking counts
// as a request, so that the app is not put back to sleep at once.
func (s *Sleeper) setSleeping(ctx context.Context, a *api.App, sleeping bool, now time.Time) bool {
	if checkLeading(ctx) != nil {
		return false
	}
	if err := s.store.SetSleeping(ctx, a.ID, api.ProcessWeb, sleeping); err != nil {
		s.log.Warn("sleep.write_failed", "app", a.ID, "err", err)
		return false
	}
	s.mu.Lock()
	if sleeping {
		delete(s.seen, a.ID)
	} else {
		s.seen[a.ID] = now
	}
	s.mu.Unlock()
	s.log.Info("sleep.changed", "app", a.ID, "sleeping", sleeping)
	return true
}

// forget drops the idle baseline of an app that does not scale to zero.
func (s *Sleeper) forget(appID string) {
	s.mu.Lock()
	delete(s.seen, appID)
	s.mu.Unlock()
}

// register publishes the sleeping registration of a sleeping app's routes.
func (s *Sleeper) register(ctx context.Context, a *api.App) {
	uris, err := s.uris(ctx, a.ID)
	if err != nil || len(uris) == 0 {
		return
	}
	m := api.RouterRegistration{URIs: uris, App: a.ID, Sleeping: true, StaleThresholdInSec: int(sleepLease / time.Second),
		Tags: map[string]string{"app_name": a.Name}}
	if err := s.conn.Publish(api.SubjectRouterRegister, m); err != nil {
		s.log.Warn("sleep.register_failed", "app", a.ID, "err", err)
	}
}
