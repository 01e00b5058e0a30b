package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/google/uuid"

	"github.com/strata-paas/strata/api"
)

// send sends body as JSON with a fresh Idempotency-Key to path and decodes
// the answer into out.
func (c *Client) send(ctx context.Context, method, path string, body, out any) error {
	r := request{method: method, path: path, headers: map[string]string{"Idempotency-Key": uuid.NewString()}}
	if body != nil {
		r.body, r.size = jsonBody(body)
		r.ctype = "application/json"
	}
	return c.call(ctx, r, out)
}

// Spaces lists the spaces of the default org with their default placement.
func (c *Client) Spaces(ctx context.Context) ([]*api.SpaceInfo, error) {
	return list[*api.SpaceInfo](ctx, c, "/v1/spaces")
}

// SetSpacePlacement replaces a space's default placement policy (admin).
func (c *Client) SetSpacePlacement(ctx context.Context, space string, p api.PlacementPolicy) (*api.SpaceInfo, error) {
	var out api.SpaceInfo
	if err := c.send(ctx, http.MethodPut, "/v1/spaces/"+url.PathEscape(space)+"/placement", p, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SetOrgPlacement replaces the default org's placement policy (admin).
func (c *Client) SetOrgPlacement(ctx context.Context, p api.PlacementPolicy) error {
	return c.send(ctx, http.MethodPut, "/v1/org/placement", p, nil)
}

// AppPlacement returns an app's own placement policy.
func (c *Client) AppPlacement(ctx context.Context, name string) (api.PlacementPolicy, error) {
	var out api.PlacementPolicy
	err := c.getJSON(ctx, appPath(name, "/placement"), &out)
	return out, err
}

// SetAppPlacement replaces an app's own placement policy.
func (c *Client) SetAppPlacement(ctx context.Context, name string, p api.PlacementPolicy) error {
	return c.mutate(ctx, http.MethodPut, name, "/placement", p, nil)
}

// DrainNode marks a node draining (admin).
func (c *Client) DrainNode(ctx context.Context, id string) (*api.Node, error) {
	return c.nodeAction(ctx, id, "/drain")
}

// UndrainNode ends a node's drain (admin).
func (c *Client) UndrainNode(ctx context.Context, id string) (*api.Node, error) {
	return c.nodeAction(ctx, id, "/undrain")
}

func (c *Client) nodeAction(ctx context.Context, id, action string) (*api.Node, error) {
	var n api.Node
	if err := c.send(ctx, http.MethodPost, "/v1/nodes/"+url.PathEscape(id)+action, nil, &n); err != nil {
		return nil, err
	}
	return &n, nil
}
