package store

import (
	"context"

	"github.com/strata-paas/strata/api"
)

// CreateRoute stores r. EConflict if (Host, Path) is already routed to any
// app, ENotFound if the app does not exist, EInvalid for an empty host.
func (s *Store) CreateRoute(ctx context.Context, r *api.Route) error {
	if err := needID("route", r.ID); err != nil {
		return err
	}
	if r.Host == "" {
		return api.Errorf(api.EInvalid, "route host is empty — give a host such as hello.localhost")
	}
	row := routeRow{ID: r.ID, AppID: r.AppID, Host: r.Host, Path: r.Path}
	return s.create(ctx, "create route", &row, msgs{
		conflict: "route " + q(r.Host+r.Path) + " is already taken — choose another host or path",
		missing:  "app " + q(r.AppID) + " not found",
	})
}

// Routes returns an app's routes ordered by host and path.
func (s *Store) Routes(ctx context.Context, appID string) ([]*api.Route, error) {
	var rows []routeRow
	if err := s.read.WithContext(ctx).Where("app_id = ?", appID).Order("host, path").Find(&rows).Error; err != nil {
		return nil, s.fail("list routes", err, msgs{})
	}
	return convert(rows, routeRow.api), nil
}

// DeleteRoute deletes the route with id. ENotFound if it does not exist.
func (s *Store) DeleteRoute(ctx context.Context, id string) error {
	return s.deleteByID(ctx, "delete route", &routeRow{}, id, msgs{notFound: "route " + q(id) + " not found"})
}
