package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/strata-paas/strata/api"
)

// Routes lists the routes of the caller's space with their apps.
func (c *Client) Routes(ctx context.Context) ([]*api.RouteInfo, error) {
	return list[*api.RouteInfo](ctx, c, "/v1/routes")
}

// MapRoute maps a route to an app.
func (c *Client) MapRoute(ctx context.Context, app string, req api.RouteRequest) (*api.RouteInfo, error) {
	var r api.RouteInfo
	if err := c.mutate(ctx, http.MethodPost, app, "/routes", req, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// UnmapRoute removes a route from an app.
func (c *Client) UnmapRoute(ctx context.Context, app string, req api.RouteRequest) error {
	q := url.Values{"host": {req.Host}}
	if req.Path != "" {
		q.Set("path", req.Path)
	}
	return c.mutate(ctx, http.MethodDelete, app, "/routes?"+q.Encode(), nil, nil)
}
