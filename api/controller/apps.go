package controller

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/google/uuid"

	"github.com/strata-paas/strata/api"
)

// Apps owns apps, their releases, config vars, formation and health
// checks: the app and lifecycle commands (api.AppService,
// api.LifecycleService) and the health-check half of api.OperateService.
type Apps struct {
	cfg       Config
	log       *slog.Logger
	store     appsStore
	find      appFinder
	audit     *audit
	sig       *signals
	locks     *appLocks
	nodeCmds  nodeCommands
	nodes     *Nodes
	placement *Placement
	quotas    *Quotas
	bus       publisher // build cache purges
	metrics   *Metrics
	sleep     *Sleeper // scale to zero: last request times
}

// appsStore is what Apps reads and writes.
type appsStore interface {
	AppStore
	ReleaseStore
	FormationStore
	RouteStore
	EventStore
	Instances(ctx context.Context, appID string) ([]*api.Instance, error)
	LatestBuild(ctx context.Context, appID string) (*api.Build, error)
}

var _ api.AppService = (*Apps)(nil)

// CreateApp creates an app in the caller's space with the default formation
// (web=1) and the default route <name>.<Domain> — unless another app holds
// that host (an app of the same name in another space), in which case the
// app has no route yet and its event says so. EInvalid for a bad name,
// EConflict when the app exists.
func (s *Apps) CreateApp(ctx context.Context, name string) (*api.App, error) {
	if err := api.ValidateAppName(name); err != nil {
		return nil, err
	}
	spaceID, err := s.find.tenancy.space(ctx, actDevelop)
	if err != nil {
		return nil, err
	}
	// The app, its default route and formation (web=1) count at once.
	if err := s.quotas.check(ctx, spaceID, api.Quota{Apps: 1, Routes: 1, Instances: 1, MemoryMB: api.DefaultMemoryMB}); err != nil {
		return nil, err
	}
	app := &api.App{ID: uuid.NewString(), SpaceID: spaceID, Name: name, State: api.AppStarted}
	if err := s.store.CreateApp(ctx, app); err != nil {
		if api.ErrorCode(err) == api.EConflict {
			return nil, api.Errorf(api.EConflict, "app %q already exists — choose another name or push to it", name)
		}
		return nil, fmt.Errorf("create app: %w", err)
	}
	undo := func() { _ = s.store.DeleteApp(context.WithoutCancel(ctx), app.ID) }
	if err := s.store.SetProcess(ctx, api.Process{AppID: app.ID, Type: api.ProcessWeb, Instances: 1, MemoryMB: api.DefaultMemoryMB, DiskMB: api.DefaultDiskMB}); err != nil {
		undo()
		return nil, fmt.Errorf("create app formation: %w", err)
	}
	host := name + "." + s.cfg.Domain
	routed := true
	if err := s.store.CreateRoute(ctx, &api.Route{ID: uuid.NewString(), AppID: app.ID, Host: host}); err != nil {
		if api.ErrorCode(err) != api.EConflict {
			undo()
			return nil, fmt.Errorf("create app route: %w", err)
		}
		// Another space's app of the same name holds the host: this app
		// starts without a route (its manifest or strata routes map gives
		// it one).
		routed = false
	}
	if routed {
		s.audit.record(ctx, app, "app.create", "created app %s", name)
	} else {
		s.audit.record(ctx, app, "app.create", "created app %s without a route: %s is taken by another app — map one with strata routes map %s HOST", name, host, name)
	}
	return app, nil
}

// ListApps lists the apps of the caller's space with running/desired counts
// and their first URL.
func (s *Apps) ListApps(ctx context.Context) ([]*api.AppSummary, error) {
	apps, err := s.find.appsInSpace(ctx, actRead)
	if err != nil {
		return nil, err
	}
	out := make([]*api.AppSummary, 0, len(apps))
	for _, a := range apps {
		sum := &api.AppSummary{App: *a}
		procs, err := s.store.Processes(ctx, a.ID)
		if err != nil {
			return nil, err
		}
		ins, err := s.store.Instances(ctx, a.ID)
		if err != nil {
			return nil, err
		}
		routes, err := s.store.Routes(ctx, a.ID)
		if err != nil {
			return nil, err
		}
		sum.Running, sum.Desired = counts(a, procs, ins)
		if a.CurrentRelease > 0 {
			if rel, err := s.store.Release(ctx, a.ID, a.CurrentRelease); err == nil {
				sum.ReleasedAt = rel.CreatedAt
			}
		}
		if urls := routeURLs(routes, s.cfg.RouterPort); len(urls) > 0 {
			sum.URL = urls[0]
		}
		out = append(out, sum)
	}
	return out, nil
}

// counts returns running instances of the current release and desired
// instances of a started, released app.
func counts(a *api.App, procs []api.Process, ins []*api.Instance) (running, desired int) {
	if a.State != api.AppStarted || a.CurrentRelease == 0 {
		return 0, 0
	}
	for _, p := range procs {
		desired += p.Instances
	}
	for _, in := range ins {
		if in.State == api.InstanceRunning && in.Release == a.CurrentRelease {
			running++
		}
	}
	return running, desired
}

// AppDetail returns an app with its URLs, formation, instances, current
// release and last build. ENotFound for an unknown app.
func (s *Apps) AppDetail(ctx context.Context, name string) (*api.AppDetail, error) {
	app, err := s.find.appByName(ctx, name, actRead)
	if err != nil {
		return nil, err
	}
	d := &api.AppDetail{App: *app}
	routes, err := s.store.Routes(ctx, app.ID)
	if err != nil {
		return nil, err
	}
	d.URLs = routeURLs(routes, s.cfg.RouterPort)
	if d.Processes, err = s.store.Processes(ctx, app.ID); err != nil {
		return nil, err
	}
	for _, p := range d.Processes {
		if p.Type == api.ProcessWeb && p.Sleeping {
			d.Sleeping = true
		}
	}
	if s.sleep != nil {
		d.LastRequest = s.sleep.LastRequest(app.ID)
	}
	if d.Instances, err = s.store.Instances(ctx, app.ID); err != nil {
		return nil, err
	}
	s.liveUsage(d.Instances)
	if err := s.placement.describePlacement(ctx, d); err != nil {
		return nil, err
	}
	if app.CurrentRelease > 0 {
		if d.Release, err = s.store.Release(ctx, app.ID, app.CurrentRelease); err != nil {
			return nil, err
		}
	}
	b, err := s.store.LatestBuild(ctx, app.ID)
	switch api.ErrorCode(err) {
	case "":
		d.LastBuild = b
	case api.ENotFound:
	default:
		return nil, err
	}
	return d, nil
}

// DeleteApp stops the app's instances (best effort: executors that do not
// answer will find them orphaned later), then deletes the app with its
// formation, instances, routes, builds and releases. ENotFound for an
// unknown app.
func (s *Apps) DeleteApp(ctx context.Context, name string) error {
	app, err := s.find.appByName(ctx, name, actDevelop)
	if err != nil {
		return err
	}
	return s.deleteApp(ctx, app)
}

// deleteApp is DeleteApp once the caller is authorized.
func (s *Apps) deleteApp(ctx context.Context, app *api.App) error {
	name := app.Name
	ins, err := s.store.Instances(ctx, app.ID)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	for _, in := range ins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.nodeCmds.stop(ctx, in); err != nil {
				s.log.Info("delete_app.stop_failed", "app", name, "instance", in.ID, "err", err)
			}
		}()
	}
	wg.Wait()
	if err := s.store.DeleteApp(ctx, app.ID); err != nil {
		return fmt.Errorf("delete app: %w", err)
	}
	s.audit.record(ctx, app, "app.delete", "deleted app %s", name)
	s.sig.Kick()
	return nil
}

// PurgeCache asks every builder to delete the app's build cache; the next
// build starts from an empty one. A builder that is building the app right
// then keeps its cache (and logs so).
func (s *Apps) PurgeCache(ctx context.Context, name string) error {
	app, err := s.find.appByName(ctx, name, actDevelop)
	if err != nil {
		return err
	}
	if err := s.bus.Publish(api.SubjectBuildCachePurge, api.BuildCachePurge{Version: api.MessageVersion, AppID: app.ID}); err != nil {
		return api.Errorf(api.EUnavailable, "cannot reach the builders: %v — try again", err)
	}
	s.audit.record(ctx, app, "cache.purge", "asked the builders to purge the build cache")
	return nil
}
