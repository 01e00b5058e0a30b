package controller

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/strata-paas/strata/api"
)

var _ api.DomainService = (*Domains)(nil)

// Domains owns the domains routes may use besides the platform's
// (api.DomainService): shared ones admins register, and private ones an org
// manager registers for the org's spaces. Routes asks it which domains a
// space may use; a host under another org's private domain is refused.
type Domains struct {
	cfg     Config
	log     *slog.Logger
	store   domainsStore
	tenancy *Tenancy
	audit   *audit
}

// domainsStore is what Domains reads and writes.
type domainsStore interface {
	DomainStore
	ListOrgs(ctx context.Context) ([]*api.Org, error)
	SpaceByID(ctx context.Context, id string) (*api.Space, error)
}

// ListDomains lists the platform's domain, the shared domains and the
// private domains of the orgs the caller may see, by name.
func (s *Domains) ListDomains(ctx context.Context) ([]api.DomainInfo, error) {
	if api.PrincipalFrom(ctx) == nil {
		return nil, api.Errorf(api.EUnauthorized, "not logged in")
	}
	all, err := s.store.Domains(ctx)
	if err != nil {
		return nil, err
	}
	orgs, err := s.store.ListOrgs(ctx)
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	for _, o := range orgs {
		names[o.ID] = o.Name
	}
	out := []api.DomainInfo{{Name: s.cfg.Domain}}
	for _, name := range slices.Sorted(maps.Keys(all)) {
		orgID := all[name]
		if orgID != "" && authorize(api.PrincipalFrom(ctx), actReadOrg, orgID, "") != allow {
			continue
		}
		out = append(out, api.DomainInfo{Name: name, Org: names[orgID]})
	}
	return out, nil
}

// CreateDomain registers a shared domain (admin) or one private to d.Org
// (its org managers).
func (s *Domains) CreateDomain(ctx context.Context, d api.DomainInfo) (*api.DomainInfo, error) {
	d.Name = strings.ToLower(strings.TrimSuffix(d.Name, "."))
	if err := api.ValidateDomain(d.Name); err != nil {
		return nil, err
	}
	platform := strings.ToLower(s.cfg.Domain)
	if d.Name == platform || strings.HasSuffix(d.Name, "."+platform) {
		return nil, api.Errorf(api.EInvalid, "%s is under the platform's domain %s, which every space may use already", d.Name, platform)
	}
	orgID := ""
	if d.Org == "" {
		if err := requireAdmin(ctx, "registering a shared domain"); err != nil {
			return nil, err
		}
	} else {
		o, err := s.tenancy.org(ctx, d.Org, actManageOrg)
		if err != nil {
			return nil, err
		}
		orgID = o.ID
	}
	if err := s.store.CreateDomain(ctx, d.Name, orgID); err != nil {
		return nil, err
	}
	if orgID != "" {
		s.audit.recordOrg(ctx, orgID, "domain.create", "registered the private domain %s", d.Name)
	}
	s.log.Info("domain.created", "domain", d.Name, "org", d.Org, "actor", api.ActorName(ctx))
	return &d, nil
}

// DeleteDomain removes a domain: a shared one (admin) or a private one (its
// org's managers). Routes already under it stay mapped.
func (s *Domains) DeleteDomain(ctx context.Context, name string) error {
	all, err := s.store.Domains(ctx)
	if err != nil {
		return err
	}
	orgID, ok := all[name]
	notFound := api.Errorf(api.ENotFound, "domain %q not found — see strata domains", name)
	switch {
	case !ok:
		return notFound
	case orgID == "":
		if err := requireAdmin(ctx, "deleting a shared domain"); err != nil {
			return err
		}
	default:
		switch authorize(api.PrincipalFrom(ctx), actManageOrg, orgID, "") {
		case hidden:
			return notFound
		case forbid:
			return forbidden(actManageOrg, "the domain's org")
		}
	}
	if err := s.store.DeleteDomain(ctx, name); err != nil {
		return err
	}
	if orgID != "" {
		s.audit.recordOrg(ctx, orgID, "domain.delete", "deleted the private domain %s", name)
	}
	s.log.Info("domain.deleted", "domain", name, "actor", api.ActorName(ctx))
	return nil
}

// normalize checks a route of an app in spaceID: its host is under the
// platform's domain, a shared domain or a private domain of the space's
// org — never under another org's private domain.
func (s *Domains) normalize(ctx context.Context, spaceID string, req api.RouteRequest) (api.RouteRequest, error) {
	all, err := s.store.Domains(ctx)
	if err != nil {
		return req, err
	}
	if len(all) == 0 {
		return api.NormalizeRoute(req, s.cfg.Domain)
	}
	sp, err := s.store.SpaceByID(ctx, spaceID)
	if err != nil {
		return req, err
	}
	every := []string{s.cfg.Domain}
	mine := []string{s.cfg.Domain}
	for name, orgID := range all {
		every = append(every, name)
		if orgID == "" || orgID == sp.OrgID {
			mine = append(mine, name)
		}
	}
	if d := api.DomainOf(req.Host, every); all[d] != "" && all[d] != sp.OrgID {
		// Said without naming the domain or its org: that it is someone's
		// is all a stranger learns.
		return req, api.Errorf(api.EForbidden, "route host %s is not under a domain this space may use — see strata domains", strings.ToLower(req.Host))
	}
	return api.NormalizeRouteIn(req, mine)
}

// names returns the platform's domain and every registered one, for
// checking routes before the space is known (manifests).
func (s *Domains) names(ctx context.Context) ([]string, error) {
	all, err := s.store.Domains(ctx)
	if err != nil {
		return nil, err
	}
	out := []string{s.cfg.Domain}
	for name := range all {
		out = append(out, name)
	}
	return out, nil
}
