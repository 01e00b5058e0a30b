package controller

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/google/uuid"

	"github.com/strata-paas/strata/api"
)

// Routes maps and unmaps the hosts and paths of apps (api.RouteService).
type Routes struct {
	cfg     Config
	store   RouteStore
	find    appFinder
	audit   *audit
	sig     *signals
	locks   *appLocks
	quotas  *Quotas
	domains *Domains
}

var _ api.RouteService = (*Routes)(nil)

// ListRoutes returns every route of the caller's space with its app, by host
// and path.
func (s *Routes) ListRoutes(ctx context.Context) ([]*api.RouteInfo, error) {
	apps, err := s.find.appsInSpace(ctx, actRead)
	if err != nil {
		return nil, err
	}
	var out []*api.RouteInfo
	for _, a := range apps {
		routes, err := s.store.Routes(ctx, a.ID)
		if err != nil {
			return nil, err
		}
		for _, r := range routes {
			out = append(out, s.routeInfo(a, r))
		}
	}
	slices.SortFunc(out, func(a, b *api.RouteInfo) int {
		return cmp.Or(cmp.Compare(a.Host, b.Host), cmp.Compare(a.Path, b.Path))
	})
	return out, nil
}

func (s *Routes) routeInfo(a *api.App, r *api.Route) *api.RouteInfo {
	return &api.RouteInfo{Route: *r, App: a.Name, URL: r.URL(s.cfg.RouterPort)}
}

// MapRoute maps a route on the platform's domain to an app. The converger
// hands it to the app's running web instances, which register it with the
// routers without a restart.
func (s *Routes) MapRoute(ctx context.Context, name string, req api.RouteRequest) (*api.RouteInfo, error) {
	app, err := s.find.appByName(ctx, name, actDevelop)
	if err != nil {
		return nil, err
	}
	if req, err = s.domains.normalize(ctx, app.SpaceID, req); err != nil {
		return nil, err
	}
	unlock, err := s.locks.lock(ctx, app.ID)
	if err != nil {
		return nil, err
	}
	defer unlock()
	routes, err := s.store.Routes(ctx, app.ID)
	if err != nil {
		return nil, err
	}
	if i := slices.IndexFunc(routes, func(r *api.Route) bool { return r.Host == req.Host && r.Path == req.Path }); i >= 0 {
		return s.routeInfo(app, routes[i]), nil
	}
	if len(routes) >= api.MaxRoutesPerApp {
		return nil, api.Errorf(api.EInvalid, "app %s already has %d routes, the most an app may have — unmap one first", name, len(routes))
	}
	if err := s.quotas.check(ctx, app.SpaceID, api.Quota{Routes: 1}); err != nil {
		return nil, err
	}
	r := &api.Route{ID: uuid.NewString(), AppID: app.ID, Host: req.Host, Path: req.Path}
	if err := s.store.CreateRoute(ctx, r); err != nil {
		if api.ErrorCode(err) == api.EConflict {
			return nil, api.Errorf(api.EConflict, "route %s is already mapped to another app — choose another host or path (see `strata routes`)", req)
		}
		return nil, fmt.Errorf("map route: %w", err)
	}
	s.audit.record(ctx, app, "route.map", "mapped route %s", req)
	s.sig.Kick()
	return s.routeInfo(app, r), nil
}

// UnmapRoute removes a route from an app. ENotFound if the app does not have
// it.
func (s *Routes) UnmapRoute(ctx context.Context, name string, req api.RouteRequest) error {
	app, err := s.find.appByName(ctx, name, actDevelop)
	if err != nil {
		return err
	}
	if req, err = s.domains.normalize(ctx, app.SpaceID, req); err != nil {
		return err
	}
	unlock, err := s.locks.lock(ctx, app.ID)
	if err != nil {
		return err
	}
	defer unlock()
	routes, err := s.store.Routes(ctx, app.ID)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(routes, func(r *api.Route) bool { return r.Host == req.Host && r.Path == req.Path })
	if i < 0 {
		return api.Errorf(api.ENotFound, "app %s has no route %s — see `strata app %s` for its routes", name, req, name)
	}
	if err := s.store.DeleteRoute(ctx, routes[i].ID); err != nil {
		return fmt.Errorf("unmap route: %w", err)
	}
	s.audit.record(ctx, app, "route.unmap", "unmapped route %s", req)
	s.sig.Kick()
	return nil
}
