package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/google/uuid"

	"github.com/strata-paas/strata/api"
)

// Login exchanges a user name and password for a token (no token needed).
func (c *Client) Login(ctx context.Context, req api.LoginRequest) (*api.LoginResult, error) {
	var res api.LoginResult
	r := request{method: http.MethodPost, path: "/v1/login", ctype: "application/json"}
	r.body, r.size = jsonBody(req)
	if err := c.call(ctx, r, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// Logout revokes the client's token.
func (c *Client) Logout(ctx context.Context) error {
	return c.call(ctx, request{method: http.MethodPost, path: "/v1/logout"}, nil)
}

// ChangePassword changes the caller's password.
func (c *Client) ChangePassword(ctx context.Context, ch api.PasswordChange) error {
	r := request{method: http.MethodPut, path: "/v1/password", ctype: "application/json"}
	r.body, r.size = jsonBody(ch)
	return c.call(ctx, r, nil)
}

// Tokens lists the caller's tokens.
func (c *Client) Tokens(ctx context.Context) ([]api.TokenInfo, error) {
	var out []api.TokenInfo
	return out, c.getJSON(ctx, "/v1/tokens", &out)
}

// RevokeToken revokes one of the caller's tokens by ID.
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	return c.send(ctx, http.MethodDelete, "/v1/tokens/"+url.PathEscape(id), nil, nil)
}

// Users lists every user (admin).
func (c *Client) Users(ctx context.Context) ([]api.UserInfo, error) {
	var out []api.UserInfo
	return out, c.getJSON(ctx, "/v1/users", &out)
}

// CreateUser creates a user (admin).
func (c *Client) CreateUser(ctx context.Context, req api.UserRequest) (*api.CreatedUser, error) {
	var out api.CreatedUser
	if err := c.send(ctx, http.MethodPost, "/v1/users", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteUser deletes a user (admin).
func (c *Client) DeleteUser(ctx context.Context, name string) error {
	return c.send(ctx, http.MethodDelete, "/v1/users/"+url.PathEscape(name), nil, nil)
}

// Orgs lists the orgs the caller may see.
func (c *Client) Orgs(ctx context.Context) ([]api.OrgInfo, error) {
	var out []api.OrgInfo
	return out, c.getJSON(ctx, "/v1/orgs", &out)
}

// CreateOrg creates an org (admin).
func (c *Client) CreateOrg(ctx context.Context, name string) (*api.OrgInfo, error) {
	var out api.OrgInfo
	if err := c.send(ctx, http.MethodPost, "/v1/orgs", map[string]string{"name": name}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func recursiveQuery(recursive bool) string {
	if recursive {
		return "?recursive=true"
	}
	return ""
}

// DeleteOrg deletes an org (admin); recursive also deletes its spaces.
func (c *Client) DeleteOrg(ctx context.Context, name string, recursive bool) error {
	return c.send(ctx, http.MethodDelete, "/v1/orgs/"+url.PathEscape(name)+recursiveQuery(recursive), nil, nil)
}

// OrgSpaces lists the spaces of an org the caller may see.
func (c *Client) OrgSpaces(ctx context.Context, org string) ([]*api.Space, error) {
	var out []*api.Space
	return out, c.getJSON(ctx, "/v1/orgs/"+url.PathEscape(org)+"/spaces", &out)
}

// CreateSpace creates a space in an org.
func (c *Client) CreateSpace(ctx context.Context, org, name string) (*api.Space, error) {
	var out api.Space
	if err := c.send(ctx, http.MethodPost, "/v1/orgs/"+url.PathEscape(org)+"/spaces", map[string]string{"name": name}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteSpace deletes a space; recursive also deletes its apps.
func (c *Client) DeleteSpace(ctx context.Context, org, name string, recursive bool) error {
	return c.send(ctx, http.MethodDelete, "/v1/orgs/"+url.PathEscape(org)+"/spaces/"+url.PathEscape(name)+recursiveQuery(recursive), nil, nil)
}

// Members lists the role bindings of an org and its spaces.
func (c *Client) Members(ctx context.Context, org string) ([]api.Member, error) {
	var out []api.Member
	return out, c.getJSON(ctx, "/v1/orgs/"+url.PathEscape(org)+"/members", &out)
}

// SetRole gives a user a role.
func (c *Client) SetRole(ctx context.Context, req api.RoleRequest) error {
	return c.send(ctx, http.MethodPut, "/v1/orgs/"+url.PathEscape(req.Org)+"/roles", req, nil)
}

// UnsetRole takes a role away.
func (c *Client) UnsetRole(ctx context.Context, req api.RoleRequest) error {
	q := url.Values{"user": {req.User}, "role": {string(req.Role)}}
	if req.Space != "" {
		q.Set("space", req.Space)
	}
	return c.send(ctx, http.MethodDelete, "/v1/orgs/"+url.PathEscape(req.Org)+"/roles?"+q.Encode(), nil, nil)
}

// Quotas lists the quotas of an org and its spaces with their use.
func (c *Client) Quotas(ctx context.Context, org string) ([]api.QuotaInfo, error) {
	var out []api.QuotaInfo
	return out, c.getJSON(ctx, "/v1/orgs/"+url.PathEscape(org)+"/quotas", &out)
}

// SetQuota sets the quota of an org, or of a space when req.Space is set.
func (c *Client) SetQuota(ctx context.Context, req api.QuotaRequest) (*api.QuotaInfo, error) {
	path := "/v1/orgs/" + url.PathEscape(req.Org) + "/quota"
	if req.Space != "" {
		path = "/v1/orgs/" + url.PathEscape(req.Org) + "/spaces/" + url.PathEscape(req.Space) + "/quota"
	}
	var out api.QuotaInfo
	if err := c.send(ctx, http.MethodPut, path, req.Quota, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Buildpacks lists the registered buildpacks in detection order.
func (c *Client) Buildpacks(ctx context.Context) ([]api.BuildpackInfo, error) {
	var out []api.BuildpackInfo
	return out, c.getJSON(ctx, "/v1/buildpacks", &out)
}

// PutBuildpack registers (create) or replaces a buildpack from the gzip tar
// of its directory; position 0 keeps it last, or where it was.
func (c *Client) PutBuildpack(ctx context.Context, name string, position int, archive io.Reader, size int64, create bool) (*api.BuildpackInfo, error) {
	q := url.Values{}
	if position > 0 {
		q.Set("position", fmt.Sprint(position))
	}
	r := request{method: http.MethodPut, path: "/v1/buildpacks/" + url.PathEscape(name), body: archive, size: size, ctype: "application/gzip",
		headers: map[string]string{"Idempotency-Key": uuid.NewString()}}
	if create {
		q.Set("name", name)
		r.method, r.path = http.MethodPost, "/v1/buildpacks"
	}
	if len(q) > 0 {
		r.path += "?" + q.Encode()
	}
	var out api.BuildpackInfo
	if err := c.call(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteBuildpack deletes a registered buildpack.
func (c *Client) DeleteBuildpack(ctx context.Context, name string) error {
	return c.send(ctx, http.MethodDelete, "/v1/buildpacks/"+url.PathEscape(name), nil, nil)
}

// PurgeCache asks the builders to delete an app's build cache.
func (c *Client) PurgeCache(ctx context.Context, app string) error {
	return c.mutate(ctx, http.MethodPost, app, "/purge-cache", nil, nil)
}

// OrgEvents lists the org-level events of an org, newest first.
func (c *Client) OrgEvents(ctx context.Context, org string) ([]*api.Event, error) {
	var out []*api.Event
	return out, c.getJSON(ctx, "/v1/orgs/"+url.PathEscape(org)+"/events", &out)
}

// PlatformEvents lists the events of no org (users, certificates), newest
// first (admins only).
func (c *Client) PlatformEvents(ctx context.Context) ([]*api.Event, error) {
	var out []*api.Event
	return out, c.getJSON(ctx, "/v1/events", &out)
}

// Domains lists the domains routes may use.
func (c *Client) Domains(ctx context.Context) ([]api.DomainInfo, error) {
	var out []api.DomainInfo
	return out, c.getJSON(ctx, "/v1/domains", &out)
}

// CreateDomain registers a shared domain (Org "") or an org's private one.
func (c *Client) CreateDomain(ctx context.Context, d api.DomainInfo) (*api.DomainInfo, error) {
	var out api.DomainInfo
	if err := c.send(ctx, http.MethodPost, "/v1/domains", d, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteDomain deletes a domain.
func (c *Client) DeleteDomain(ctx context.Context, name string) error {
	return c.send(ctx, http.MethodDelete, "/v1/domains/"+url.PathEscape(name), nil, nil)
}
