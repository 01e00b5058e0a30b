package client

import (
	"context"
	"net/http"

	"github.com/strata-paas/strata/api"
)

// Info returns the installation's description; it needs no token.
func (c *Client) Info(ctx context.Context) (*api.Info, error) {
	var info api.Info
	if err := c.getJSON(ctx, "/v1/info", &info); err != nil {
		return nil, err
	}
	return &info, nil
}

// Whoami returns the principal owning the client's token, or EUnauthorized.
func (c *Client) Whoami(ctx context.Context) (*api.Principal, error) {
	var p api.Principal
	if err := c.getJSON(ctx, "/v1/whoami", &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Apps lists every app of the caller's space, sorted by name.
func (c *Client) Apps(ctx context.Context) ([]*api.AppSummary, error) {
	return list[*api.AppSummary](ctx, c, "/v1/apps")
}

// CreateApp creates an app; EConflict if it exists.
func (c *Client) CreateApp(ctx context.Context, name string) (*api.App, error) {
	return c.CreateAppIdempotent(ctx, name, "")
}

// CreateAppIdempotent is CreateApp with an Idempotency-Key ("" for none): a
// retry with the same key returns the first answer instead of EConflict.
func (c *Client) CreateAppIdempotent(ctx context.Context, name, key string) (*api.App, error) {
	body, size := jsonBody(map[string]string{"name": name})
	r := request{method: http.MethodPost, path: "/v1/apps", body: body, size: size, ctype: "application/json"}
	if key != "" {
		r.headers = map[string]string{"Idempotency-Key": key}
	}
	var app api.App
	if err := c.call(ctx, r, &app); err != nil {
		return nil, err
	}
	return &app, nil
}

// App returns an app's details; ENotFound if there is no such app.
func (c *Client) App(ctx context.Context, name string) (*api.AppDetail, error) {
	var d api.AppDetail
	if err := c.getJSON(ctx, appPath(name, ""), &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// DeleteApp deletes an app, stopping its instances and unmapping its routes.
func (c *Client) DeleteApp(ctx context.Context, name string) error {
	return c.call(ctx, request{method: http.MethodDelete, path: appPath(name, "")}, nil)
}

// Nodes lists the executors (admin only).
func (c *Client) Nodes(ctx context.Context) ([]api.Node, error) {
	return list[api.Node](ctx, c, "/v1/nodes")
}
