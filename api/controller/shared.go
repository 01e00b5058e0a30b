package controller

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/strata-paas/strata/api"
)

// The small parts below are shared by the services (docs/architecture.md,
// "Controller services"); each service holds only those it uses.

// appLocks serialises read-modify-write changes of one app (env, scale,
// rollback, restart, routes, releases) across every controller of the
// database, so concurrent `env set`s do not lose each other's vars.
type appLocks struct{ db AppLocker }

// lock waits for app id's lock (or ctx's end) and returns its release.
func (l *appLocks) lock(ctx context.Context, appID string) (func(), error) {
	unlock, err := l.db.LockApp(ctx, appID)
	if err != nil {
		return nil, fmt.Errorf("lock the app: %w", err)
	}
	return unlock, nil
}

// signals carries the two wake-ups between services: kick asks the converger
// for a pass now, changed wakes deploys waiting on instance or build state.
type signals struct {
	kick chan struct{}

	mu      sync.Mutex
	changed chan struct{}
}

func newSignals() *signals {
	return &signals{kick: make(chan struct{}, 1), changed: make(chan struct{})}
}

// Kick asks the converger to run now (it coalesces repeated kicks).
func (s *signals) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// notifyChanged wakes everyone waiting on changedCh.
func (s *signals) notifyChanged() {
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

func (s *signals) changedCh() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// publisher is the part of the bus that only sends.
type publisher interface {
	Publish(subject string, v any) error
}

// audit writes the audit trail and the platform's own log lines of an app.
// Every event records the org and space it happened in.
type audit struct {
	store  EventStore
	spaces interface {
		SpaceByID(ctx context.Context, id string) (*api.Space, error)
	}
	conn publisher
	logs *logStore // keeps a line the bus did not take
	now  func() time.Time
	log  *slog.Logger
}

// record adds an audit event and mirrors it as a "strata" log line of the app.
func (a *audit) record(ctx context.Context, app *api.App, typ, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	e := &api.Event{ID: uuid.NewString(), AppID: app.ID, SpaceID: app.SpaceID, Type: typ, Actor: api.ActorName(ctx), Message: msg, Time: a.now()}
	if sp, err := a.spaces.SpaceByID(ctx, app.SpaceID); err == nil {
		e.OrgID = sp.OrgID
	}
	if err := a.store.AddEvent(ctx, e); err != nil {
		a.log.Warn("controller.event_failed", "app", app.Name, "type", typ, "err", err)
	}
	a.strataLine(app, typ+": "+msg)
}

// recordOrg adds an org-level audit event (roles, quotas, spaces): one of no
// app, listed by strata events --org.
func (a *audit) recordOrg(ctx context.Context, orgID, typ, format string, args ...any) {
	e := &api.Event{ID: uuid.NewString(), OrgID: orgID, Type: typ, Actor: api.ActorName(ctx), Message: fmt.Sprintf(format, args...), Time: a.now()}
	if err := a.store.AddEvent(ctx, e); err != nil {
		a.log.Warn("controller.event_failed", "org", orgID, "type", typ, "err", err)
	}
}

// recordPlatform adds an event of no org (users, certificates), listed by
// strata events --platform.
func (a *audit) recordPlatform(ctx context.Context, typ, format string, args ...any) {
	a.recordOrg(ctx, "", typ, format, args...)
}

// strataLine publishes a platform log line for an app.
func (a *audit) strataLine(app *api.App, line string) {
	env := api.LogEnvelope{Time: a.now(), AppID: app.ID, App: app.Name, Source: api.LogSourceStrata, Line: line}
	if err := a.conn.Publish(api.SubjectLogs(app.ID), env); err != nil {
		a.logs.add(env)
	}
}

// appFinder finds apps by name in the caller's target space, once the
// caller may do act there (authorize).
type appFinder struct {
	tenancy *Tenancy
	apps    interface {
		AppByName(ctx context.Context, spaceID, name string) (*api.App, error)
		ListApps(ctx context.Context, spaceID string) ([]*api.App, error)
	}
}

func (f appFinder) appByName(ctx context.Context, name string, act action) (*api.App, error) {
	spaceID, err := f.tenancy.space(ctx, act)
	if err != nil {
		return nil, err
	}
	app, err := f.apps.AppByName(ctx, spaceID, name)
	if api.ErrorCode(err) == api.ENotFound {
		return nil, api.Errorf(api.ENotFound, "app %q not found — see `strata apps`", name)
	}
	return app, err
}

// appsInSpace returns the apps of the caller's space.
func (f appFinder) appsInSpace(ctx context.Context, act action) ([]*api.App, error) {
	spaceID, err := f.tenancy.space(ctx, act)
	if err != nil {
		return nil, err
	}
	apps, err := f.apps.ListApps(ctx, spaceID)
	if err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	return apps, nil
}

// requester is the part of the bus that asks and waits for an answer.
type requester interface {
	Request(ctx context.Context, subject string, req, resp any) error
}

// nodeCommands sends commands to executors, each bounded by CommandTimeout.
type nodeCommands struct {
	conn    requester
	timeout time.Duration
}

// stop asks an instance's executor to stop it. An executor that does not
// know the instance counts as confirmation.
func (n nodeCommands) stop(ctx context.Context, in *api.Instance) error {
	return n.send(ctx, in.NodeID, &api.NodeCommand{Version: api.MessageVersion, Kind: api.CmdStop, InstanceID: in.ID})
}

func (n nodeCommands) send(ctx context.Context, nodeID string, cmd *api.NodeCommand) error {
	if err := checkLeading(ctx); err != nil {
		return err
	}
	cmd.Term = commandTerm(ctx)
	ctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	var reply api.NodeCommandReply
	err := n.conn.Request(ctx, api.SubjectNodeCommand(nodeID), cmd, &reply)
	if err == nil && reply.Error != nil {
		err = reply.Error
	}
	if cmd.Kind == api.CmdStop && api.ErrorCode(err) == api.ENotFound {
		return nil
	}
	return err
}

// routeURLs returns the URLs of routes as users type them.
func routeURLs(routes []*api.Route, routerPort string) []string {
	out := make([]string, 0, len(routes))
	for _, r := range routes {
		out = append(out, r.URL(routerPort))
	}
	return out
}
