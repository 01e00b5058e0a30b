package controller

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/google/uuid"

	"github.com/strata-paas/strata/api"
)

var _ api.OrgService = (*Orgs)(nil)

// Orgs owns orgs, spaces and role bindings (api.OrgService).
type Orgs struct {
	log     *slog.Logger
	store   orgsStore
	tenancy *Tenancy
	apps    *Apps
	audit   *audit
}

// orgsStore is what Orgs reads and writes.
type orgsStore interface {
	TenancyStore
	ListSpaces(ctx context.Context, orgID string) ([]*api.Space, error)
	ListApps(ctx context.Context, spaceID string) ([]*api.App, error)
	OrgEvents(ctx context.Context, orgID string, limit int) ([]*api.Event, error)
}

// ListOrgs lists the orgs the caller may see (admins: all) with the spaces
// of each the caller may see.
func (s *Orgs) ListOrgs(ctx context.Context) ([]api.OrgInfo, error) {
	orgs, err := s.store.ListOrgs(ctx)
	if err != nil {
		return nil, err
	}
	p := api.PrincipalFrom(ctx)
	out := []api.OrgInfo{}
	for _, o := range orgs {
		if authorize(p, actReadOrg, o.ID, "") != allow {
			continue
		}
		spaces, err := s.visibleSpaces(ctx, o)
		if err != nil {
			return nil, err
		}
		info := api.OrgInfo{Name: o.Name, CreatedAt: o.CreatedAt, Spaces: []string{}}
		for _, sp := range spaces {
			info.Spaces = append(info.Spaces, sp.Name)
		}
		out = append(out, info)
	}
	return out, nil
}

// visibleSpaces returns the spaces of o the caller may see: all of them for
// admins and org roles, else those the caller has a role in.
func (s *Orgs) visibleSpaces(ctx context.Context, o *api.Org) ([]*api.Space, error) {
	spaces, err := s.store.ListSpaces(ctx, o.ID)
	if err != nil {
		return nil, err
	}
	p := api.PrincipalFrom(ctx)
	out := spaces[:0:0]
	for _, sp := range spaces {
		if authorize(p, actRead, o.ID, sp.ID) == allow || hasOrgRole(p, o.ID) {
			out = append(out, sp)
		}
	}
	return out, nil
}

func hasOrgRole(p *api.Principal, orgID string) bool {
	if p == nil {
		return false
	}
	if p.Admin {
		return true
	}
	for _, b := range p.Roles {
		if b.OrgID == orgID && b.SpaceID == "" {
			return true
		}
	}
	return false
}

// CreateOrg creates an org (admin only).
func (s *Orgs) CreateOrg(ctx context.Context, name string) (*api.OrgInfo, error) {
	if err := requireAdmin(ctx, "creating orgs"); err != nil {
		return nil, err
	}
	if err := api.ValidateName("org", name); err != nil {
		return nil, err
	}
	o := &api.Org{ID: uuid.NewString(), Name: name}
	if err := s.store.CreateOrg(ctx, o); err != nil {
		return nil, err
	}
	s.log.Info("org.created", "org", name, "actor", api.ActorName(ctx))
	return &api.OrgInfo{Name: o.Name, CreatedAt: o.CreatedAt, Spaces: []string{}}, nil
}

// DeleteOrg deletes an org (admin only); with recursive also its spaces and
// their apps, otherwise an org with spaces is refused.
func (s *Orgs) DeleteOrg(ctx context.Context, name string, recursive bool) error {
	if err := requireAdmin(ctx, "deleting orgs"); err != nil {
		return err
	}
	o, err := s.tenancy.org(ctx, name, actAdmin)
	if err != nil {
		return err
	}
	if recursive {
		spaces, err := s.store.ListSpaces(ctx, o.ID)
		if err != nil {
			return err
		}
		for _, sp := range spaces {
			if err := s.DeleteSpace(ctx, o.Name, sp.Name, true); err != nil {
				return err
			}
		}
	}
	if err := s.store.DeleteOrg(ctx, o.ID); err != nil {
		if api.ErrorCode(err) == api.EConflict {
			return api.Errorf(api.EConflict, "org %s still has spaces — delete them first, or use --recursive", name)
		}
		return err
	}
	s.log.Info("org.deleted", "org", name, "actor", api.ActorName(ctx))
	return nil
}

// ListSpaces lists the spaces of an org the caller may see.
func (s *Orgs) ListSpaces(ctx context.Context, org string) ([]*api.Space, error) {
	o, err := s.tenancy.org(ctx, org, actReadOrg)
	if err != nil {
		return nil, err
	}
	return s.visibleSpaces(ctx, o)
}

// CreateSpace creates a space in an org (org manager or admin).
func (s *Orgs) CreateSpace(ctx context.Context, org, name string) (*api.Space, error) {
	o, err := s.tenancy.org(ctx, org, actManageOrg)
	if err != nil {
		return nil, err
	}
	if err := api.ValidateName("space", name); err != nil {
		return nil, err
	}
	sp := &api.Space{ID: uuid.NewString(), OrgID: o.ID, Name: name}
	if err := s.store.CreateSpace(ctx, sp); err != nil {
		return nil, err
	}
	s.log.Info("space.created", "org", o.Name, "space", name, "actor", api.ActorName(ctx))
	s.audit.recordOrg(ctx, o.ID, "space.create", "created space %s", name)
	return sp, nil
}

// DeleteSpace deletes a space (org manager or admin); with recursive also
// its apps (their instances are stopped), otherwise a space with apps is
// refused.
func (s *Orgs) DeleteSpace(ctx context.Context, org, name string, recursive bool) error {
	o, err := s.tenancy.org(ctx, org, actManageOrg)
	if err != nil {
		return err
	}
	sp, err := s.store.SpaceByName(ctx, o.ID, name)
	if api.ErrorCode(err) == api.ENotFound {
		return api.Errorf(api.ENotFound, "space %s/%s not found — see strata spaces --org %s", o.Name, name, o.Name)
	}
	if err != nil {
		return err
	}
	if recursive {
		apps, err := s.store.ListApps(ctx, sp.ID)
		if err != nil {
			return err
		}
		for _, a := range apps {
			if err := s.apps.deleteApp(ctx, a); err != nil {
				return fmt.Errorf("delete app %s: %w", a.Name, err)
			}
		}
	}
	if err := s.store.DeleteSpace(ctx, sp.ID); err != nil {
		if api.ErrorCode(err) == api.EConflict {
			return api.Errorf(api.EConflict, "space %s/%s still has apps — delete them first, or use --recursive", o.Name, name)
		}
		return err
	}
	s.log.Info("space.deleted", "org", o.Name, "space", name, "actor", api.ActorName(ctx))
	s.audit.recordOrg(ctx, o.ID, "space.delete", "deleted space %s", name)
	return nil
}

// binding resolves a role request and authorizes changing it: org roles
// need the org-manager role, space roles a space or org manager.
func (s *Orgs) binding(ctx context.Context, req api.RoleRequest) (api.RoleBinding, error) {
	role, err := api.ParseRole(string(req.Role))
	if err != nil {
		return api.RoleBinding{}, err
	}
	if role.IsSpaceRole() != (req.Space != "") {
		if role.IsSpaceRole() {
			return api.RoleBinding{}, api.Errorf(api.EInvalid, "%s is a space role — give --space", role)
		}
		return api.RoleBinding{}, api.Errorf(api.EInvalid, "%s is an org role — drop --space", role)
	}
	o, err := s.tenancy.org(ctx, req.Org, actReadOrg)
	if err != nil {
		return api.RoleBinding{}, err
	}
	b := api.RoleBinding{OrgID: o.ID, Role: role}
	act, where := actManageOrg, "org "+o.Name
	if req.Space != "" {
		sp, err := s.store.SpaceByName(ctx, o.ID, req.Space)
		if api.ErrorCode(err) == api.ENotFound {
			return api.RoleBinding{}, api.Errorf(api.ENotFound, "space %s/%s not found — see strata spaces --org %s", o.Name, req.Space, o.Name)
		}
		if err != nil {
			return api.RoleBinding{}, err
		}
		b.SpaceID, act, where = sp.ID, actManageSpace, o.Name+"/"+sp.Name
	}
	switch authorize(api.PrincipalFrom(ctx), act, b.OrgID, b.SpaceID) {
	case hidden:
		return api.RoleBinding{}, api.Errorf(api.ENotFound, "space %s/%s not found — see strata spaces --org %s", o.Name, req.Space, o.Name)
	case forbid:
		return api.RoleBinding{}, forbidden(act, where)
	}
	u, err := s.store.UserByName(ctx, req.User)
	if api.ErrorCode(err) == api.ENotFound {
		return api.RoleBinding{}, api.Errorf(api.ENotFound, "user %q not found — an admin creates users with strata users create", req.User)
	}
	if err != nil {
		return api.RoleBinding{}, err
	}
	b.UserID = u.ID
	return b, nil
}

// SetRole gives a user a role in an org or one of its spaces.
func (s *Orgs) SetRole(ctx context.Context, req api.RoleRequest) error {
	b, err := s.binding(ctx, req)
	if err != nil {
		return err
	}
	if err := s.store.SetRole(ctx, b); err != nil {
		return err
	}
	s.log.Info("role.set", "user", req.User, "role", b.Role, "org", req.Org, "space", req.Space, "actor", api.ActorName(ctx))
	s.audit.recordOrg(ctx, b.OrgID, "role.set", "%s is %s%s", req.User, b.Role, inSpace(req.Space))
	return nil
}

// UnsetRole takes a role away.
func (s *Orgs) UnsetRole(ctx context.Context, req api.RoleRequest) error {
	b, err := s.binding(ctx, req)
	if err != nil {
		return err
	}
	if err := s.store.DeleteRole(ctx, b); err != nil {
		return err
	}
	s.log.Info("role.unset", "user", req.User, "role", b.Role, "org", req.Org, "space", req.Space, "actor", api.ActorName(ctx))
	s.audit.recordOrg(ctx, b.OrgID, "role.unset", "%s is no longer %s%s", req.User, b.Role, inSpace(req.Space))
	return nil
}

// Members lists the role bindings of an org and its spaces.
func (s *Orgs) Members(ctx context.Context, org string) ([]api.Member, error) {
	o, err := s.tenancy.org(ctx, org, actReadOrg)
	if err != nil {
		return nil, err
	}
	bs, err := s.store.RolesInOrg(ctx, o.ID)
	if err != nil {
		return nil, err
	}
	users, err := s.store.ListUsers(ctx)
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	for _, u := range users {
		names[u.ID] = u.Name
	}
	spaces, err := s.store.ListSpaces(ctx, o.ID)
	if err != nil {
		return nil, err
	}
	spaceNames := map[string]string{}
	for _, sp := range spaces {
		spaceNames[sp.ID] = sp.Name
	}
	out := []api.Member{}
	for _, b := range bs {
		out = append(out, api.Member{User: names[b.UserID], Org: o.Name, Space: spaceNames[b.SpaceID], Role: b.Role})
	}
	return out, nil
}

func inSpace(space string) string {
	if space == "" {
		return ""
	}
	return " in space " + space
}

// OrgEvents lists the org-level events of an org (roles, quotas, spaces),
// newest first; who may see the org may read them.
func (s *Orgs) OrgEvents(ctx context.Context, org string, limit int) ([]*api.Event, error) {
	o, err := s.tenancy.org(ctx, org, actReadOrg)
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = DefaultEventLimit
	}
	return s.store.OrgEvents(ctx, o.ID, min(limit, MaxEventLimit))
}

// PlatformEvents lists the events of no org (users, certificates), newest
// first; admins only.
func (s *Orgs) PlatformEvents(ctx context.Context, limit int) ([]*api.Event, error) {
	if err := requireAdmin(ctx, "reading the platform's events"); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = DefaultEventLimit
	}
	return s.store.OrgEvents(ctx, "", min(limit, MaxEventLimit))
}
