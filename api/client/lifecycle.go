package client

import (
	"context"
	"net/http"

	"github.com/google/uuid"

	"github.com/strata-paas/strata/api"
)

// mutate POSTs/PATCHes body (nil: none) to an app sub-path with a fresh
// Idempotency-Key, so the client's own retries never apply a change twice,
// and decodes the answer into out.
func (c *Client) mutate(ctx context.Context, method, name, rest string, body any, out any) error {
	r := request{method: method, path: appPath(name, rest), headers: map[string]string{"Idempotency-Key": uuid.NewString()}}
	if body != nil {
		r.body, r.size = jsonBody(body)
		r.ctype = "application/json"
	}
	return c.call(ctx, r, out)
}

// Releases lists an app's releases, newest first.
func (c *Client) Releases(ctx context.Context, name string) ([]*api.Release, error) {
	return list[*api.Release](ctx, c, appPath(name, "/releases"))
}

// Rollback makes a copy of release version (0 = the previous different
// release) the app's current release.
func (c *Client) Rollback(ctx context.Context, name string, version int) (*api.Release, error) {
	var rel api.Release
	if err := c.mutate(ctx, http.MethodPost, name, "/rollback", map[string]int{"version": version}, &rel); err != nil {
		return nil, err
	}
	return &rel, nil
}

// Env returns the config vars of an app's current release.
func (c *Client) Env(ctx context.Context, name string) (map[string]string, error) {
	var out struct {
		Env map[string]string `json:"env"`
	}
	if err := c.getJSON(ctx, appPath(name, "/env"), &out); err != nil {
		return nil, err
	}
	if out.Env == nil {
		out.Env = map[string]string{}
	}
	return out.Env, nil
}

// ChangeEnv sets and unsets config vars in one new release.
func (c *Client) ChangeEnv(ctx context.Context, name string, ch api.EnvChange) (*api.Release, error) {
	var rel api.Release
	if err := c.mutate(ctx, http.MethodPatch, name, "/env", ch, &rel); err != nil {
		return nil, err
	}
	return &rel, nil
}

// Scale changes the formation of one process type.
func (c *Client) Scale(ctx context.Context, name string, req api.ScaleRequest) (*api.ScaleResult, error) {
	var res api.ScaleResult
	if err := c.mutate(ctx, http.MethodPost, name, "/scale", req, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// SetState starts or stops an app.
func (c *Client) SetState(ctx context.Context, name string, state api.AppState) (*api.App, error) {
	rest := "/start"
	if state == api.AppStopped {
		rest = "/stop"
	}
	var app api.App
	if err := c.mutate(ctx, http.MethodPost, name, rest, nil, &app); err != nil {
		return nil, err
	}
	return &app, nil
}

// Restart replaces an app's instances one by one.
func (c *Client) Restart(ctx context.Context, name string) (*api.Release, error) {
	var rel api.Release
	if err := c.mutate(ctx, http.MethodPost, name, "/restart", nil, &rel); err != nil {
		return nil, err
	}
	return &rel, nil
}

// Events returns an app's audit trail, newest first.
func (c *Client) Events(ctx context.Context, name string) ([]*api.Event, error) {
	return list[*api.Event](ctx, c, appPath(name, "/events"))
}
