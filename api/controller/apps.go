package controller

import (
	"context"
	"fmt"
	"sync"

	"github.com/google/uuid"

	"github.com/strata-paas/strata/api"
)

// CreateApp creates an app in the caller's space with the default formation
// (web=1) and the default route <name>.<Domain>. EInvalid for a bad name,
// EConflict when the app or its route exists.
func (c *Controller) CreateApp(ctx context.Context, name string) (*api.App, error) {
	if err := api.ValidateAppName(name); err != nil {
		return nil, err
	}
	spaceID, err := c.space(ctx)
	if err != nil {
		return nil, err
	}
	app := &api.App{ID: uuid.NewString(), SpaceID: spaceID, Name: name, State: api.AppStarted}
	if err := c.store.CreateApp(ctx, app); err != nil {
		if api.ErrorCode(err) == api.EConflict {
			return nil, api.Errorf(api.EConflict, "app %q already exists — choose another name or push to it", name)
		}
		return nil, fmt.Errorf("create app: %w", err)
	}
	undo := func() { _ = c.store.DeleteApp(context.WithoutCancel(ctx), app.ID) }
	if err := c.store.SetProcess(ctx, api.Process{AppID: app.ID, Type: api.ProcessWeb, Instances: 1, MemoryMB: api.DefaultMemoryMB, DiskMB: api.DefaultDiskMB}); err != nil {
		undo()
		return nil, fmt.Errorf("create app formation: %w", err)
	}
	host := name + "." + c.cfg.Domain
	if err := c.store.CreateRoute(ctx, &api.Route{ID: uuid.NewString(), AppID: app.ID, Host: host}); err != nil {
		undo()
		if api.ErrorCode(err) == api.EConflict {
			return nil, api.Errorf(api.EConflict, "route %s is already taken — choose another app name", host)
		}
		return nil, fmt.Errorf("create app route: %w", err)
	}
	c.record(ctx, app, "app.create", "created app %s", name)
	return app, nil
}

func (c *Controller) appByName(ctx context.Context, name string) (*api.App, error) {
	spaceID, err := c.space(ctx)
	if err != nil {
		return nil, err
	}
	app, err := c.store.AppByName(ctx, spaceID, name)
	if api.ErrorCode(err) == api.ENotFound {
		return nil, api.Errorf(api.ENotFound, "app %q not found — see `strata apps`", name)
	}
	return app, err
}

// appsInSpace returns the apps of the caller's space.
func (c *Controller) appsInSpace(ctx context.Context) ([]*api.App, error) {
	spaceID, err := c.space(ctx)
	if err != nil {
		return nil, err
	}
	apps, err := c.store.ListApps(ctx, spaceID)
	if err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	return apps, nil
}

// ListApps lists the apps of the caller's space with running/desired counts
// and their first URL.
func (c *Controller) ListApps(ctx context.Context) ([]*api.AppSummary, error) {
	apps, err := c.appsInSpace(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*api.AppSummary, 0, len(apps))
	for _, a := range apps {
		s := &api.AppSummary{App: *a}
		procs, err := c.store.Processes(ctx, a.ID)
		if err != nil {
			return nil, err
		}
		ins, err := c.store.Instances(ctx, a.ID)
		if err != nil {
			return nil, err
		}
		routes, err := c.store.Routes(ctx, a.ID)
		if err != nil {
			return nil, err
		}
		s.Running, s.Desired = counts(a, procs, ins)
		if urls := c.urls(routes); len(urls) > 0 {
			s.URL = urls[0]
		}
		out = append(out, s)
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
func (c *Controller) AppDetail(ctx context.Context, name string) (*api.AppDetail, error) {
	app, err := c.appByName(ctx, name)
	if err != nil {
		return nil, err
	}
	d := &api.AppDetail{App: *app}
	routes, err := c.store.Routes(ctx, app.ID)
	if err != nil {
		return nil, err
	}
	d.URLs = c.urls(routes)
	if d.Processes, err = c.store.Processes(ctx, app.ID); err != nil {
		return nil, err
	}
	if d.Instances, err = c.store.Instances(ctx, app.ID); err != nil {
		return nil, err
	}
	c.liveUsage(d.Instances)
	if err := c.describePlacement(ctx, d); err != nil {
		return nil, err
	}
	if app.CurrentRelease > 0 {
		if d.Release, err = c.store.Release(ctx, app.ID, app.CurrentRelease); err != nil {
			return nil, err
		}
	}
	b, err := c.store.LatestBuild(ctx, app.ID)
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
func (c *Controller) DeleteApp(ctx context.Context, name string) error {
	app, err := c.appByName(ctx, name)
	if err != nil {
		return err
	}
	ins, err := c.store.Instances(ctx, app.ID)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	for _, in := range ins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.sendStop(ctx, in); err != nil {
				c.log.Info("delete_app.stop_failed", "app", name, "instance", in.ID, "err", err)
			}
		}()
	}
	wg.Wait()
	if err := c.store.DeleteApp(ctx, app.ID); err != nil {
		return fmt.Errorf("delete app: %w", err)
	}
	c.record(ctx, app, "app.delete", "deleted app %s", name)
	c.Kick()
	return nil
}
