package httpapitest

import (
	"cmp"
	"context"
	"slices"

	"github.com/strata-paas/strata/api"
)

var _ api.RouteService = (*Fake)(nil)

// ListRoutes implements api.RouteService over the routes mapped with
// MapRoute (default routes are not listed by the fake).
func (f *Fake) ListRoutes(context.Context) ([]*api.RouteInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*api.RouteInfo
	for _, r := range f.routes {
		cp := *r
		out = append(out, &cp)
	}
	slices.SortFunc(out, func(a, b *api.RouteInfo) int {
		return cmp.Or(cmp.Compare(a.Host, b.Host), cmp.Compare(a.Path, b.Path))
	})
	return out, nil
}

// MapRoute implements api.RouteService on the domain localhost.
func (f *Fake) MapRoute(_ context.Context, name string, req api.RouteRequest) (*api.RouteInfo, error) {
	req, err := api.NormalizeRoute(req, "localhost")
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.appLocked(name)
	if err != nil {
		return nil, err
	}
	if r, ok := f.routes[req.String()]; ok {
		if r.App != name {
			return nil, api.Errorf(api.EConflict, "route %s is already mapped to another app", req)
		}
		cp := *r
		return &cp, nil
	}
	if f.routes == nil {
		f.routes = map[string]*api.RouteInfo{}
	}
	r := &api.RouteInfo{Route: api.Route{ID: "route-" + req.String(), AppID: d.ID, Host: req.Host, Path: req.Path}, App: name}
	r.URL = r.Route.URL("8080")
	f.routes[req.String()] = r
	d.URLs = append(d.URLs, r.URL)
	cp := *r
	return &cp, nil
}

// UnmapRoute implements api.RouteService.
func (f *Fake) UnmapRoute(_ context.Context, name string, req api.RouteRequest) error {
	req, err := api.NormalizeRoute(req, "localhost")
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.appLocked(name)
	if err != nil {
		return err
	}
	r, ok := f.routes[req.String()]
	if !ok || r.App != name {
		return api.Errorf(api.ENotFound, "app %s has no route %s", name, req)
	}
	delete(f.routes, req.String())
	d.URLs = slices.DeleteFunc(d.URLs, func(u string) bool { return u == r.URL })
	return nil
}
