package controller

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/strata-paas/strata/api"
)

var _ api.QuotaService = (*Quotas)(nil)

// Quotas owns the quotas of orgs and spaces (api.QuotaService) and checks
// changes against them: Apps asks before it creates an app or scales, Routes
// before it maps a route.
type Quotas struct {
	log     *slog.Logger
	store   quotasStore
	tenancy *Tenancy
	audit   *audit
}

// quotasStore is what Quotas reads and writes.
type quotasStore interface {
	QuotaStore
	OrgByName(ctx context.Context, name string) (*api.Org, error)
	SpaceByName(ctx context.Context, orgID, name string) (*api.Space, error)
	SpaceByID(ctx context.Context, id string) (*api.Space, error)
	ListSpaces(ctx context.Context, orgID string) ([]*api.Space, error)
	ListApps(ctx context.Context, spaceID string) ([]*api.App, error)
	Processes(ctx context.Context, appID string) ([]api.Process, error)
	Routes(ctx context.Context, appID string) ([]*api.Route, error)
}

// usage of a space: what its apps' formations and routes take.
func (s *Quotas) usage(ctx context.Context, spaceID string) (api.Quota, error) {
	var u api.Quota
	apps, err := s.store.ListApps(ctx, spaceID)
	if err != nil {
		return u, err
	}
	for _, a := range apps {
		u.Apps++
		procs, err := s.store.Processes(ctx, a.ID)
		if err != nil {
			return u, err
		}
		for _, p := range procs {
			mem := p.MemoryMB
			if mem == 0 {
				mem = api.DefaultMemoryMB
			}
			u.Instances += p.Instances
			u.MemoryMB += p.Instances * mem
		}
		routes, err := s.store.Routes(ctx, a.ID)
		if err != nil {
			return u, err
		}
		u.Routes += len(routes)
	}
	return u, nil
}

func add(a, b api.Quota) api.Quota {
	return api.Quota{MemoryMB: a.MemoryMB + b.MemoryMB, Instances: a.Instances + b.Instances, Apps: a.Apps + b.Apps, Routes: a.Routes + b.Routes}
}

// check refuses a change of a space's usage by delta (negative parts free
// room) that would exceed the space's quota or its org's: EQuota naming
// what is used, what is asked and what is allowed.
func (s *Quotas) check(ctx context.Context, spaceID string, delta api.Quota) error {
	if delta.MemoryMB <= 0 && delta.Instances <= 0 && delta.Apps <= 0 && delta.Routes <= 0 {
		return nil // nothing grows
	}
	quotas, err := s.store.Quotas(ctx)
	if err != nil || len(quotas) == 0 {
		return err
	}
	sp, err := s.store.SpaceByID(ctx, spaceID)
	if err != nil {
		return err
	}
	var spaceQ, orgQ api.Quota
	for _, q := range quotas {
		switch {
		case q.Scope == api.QuotaSpace && q.OwnerID == sp.ID:
			spaceQ = q.Quota
		case q.Scope == api.QuotaOrg && q.OwnerID == sp.OrgID:
			orgQ = q.Quota
		}
	}
	if !spaceQ.IsZero() {
		used, err := s.usage(ctx, sp.ID)
		if err != nil {
			return err
		}
		if err := exceeds("the space "+sp.Name, used, delta, spaceQ); err != nil {
			return err
		}
	}
	if !orgQ.IsZero() {
		spaces, err := s.store.ListSpaces(ctx, sp.OrgID)
		if err != nil {
			return err
		}
		var used api.Quota
		for _, other := range spaces {
			u, err := s.usage(ctx, other.ID)
			if err != nil {
				return err
			}
			used = add(used, u)
		}
		if err := exceeds("the org", used, delta, orgQ); err != nil {
			return err
		}
	}
	return nil
}

// exceeds says which limit of q the change delta on used goes over.
func exceeds(who string, used, delta, q api.Quota) error {
	for _, l := range []struct {
		what             string
		used, asked, max int
		unit             func(int) string
	}{
		{"memory", used.MemoryMB, delta.MemoryMB, q.MemoryMB, mb},
		{"instances", used.Instances, delta.Instances, q.Instances, itoa},
		{"apps", used.Apps, delta.Apps, q.Apps, itoa},
		{"routes", used.Routes, delta.Routes, q.Routes, itoa},
	} {
		if l.max > 0 && l.asked > 0 && l.used+l.asked > l.max {
			return api.Errorf(api.EQuota, "%s may use %s %s; it uses %s and this asks %s more — scale something down, or ask an admin to raise the quota (strata quotas)",
				who, l.unit(l.max), l.what, l.unit(l.used), l.unit(l.asked))
		}
	}
	return nil
}

func itoa(n int) string { return fmt.Sprint(n) }

// Quotas lists the quota of an org and of each of its spaces, with use.
func (s *Quotas) Quotas(ctx context.Context, org string) ([]api.QuotaInfo, error) {
	o, err := s.tenancy.org(ctx, org, actReadOrg)
	if err != nil {
		return nil, err
	}
	stored, err := s.store.Quotas(ctx)
	if err != nil {
		return nil, err
	}
	of := map[api.QuotaScope]map[string]api.Quota{api.QuotaOrg: {}, api.QuotaSpace: {}}
	for _, q := range stored {
		of[q.Scope][q.OwnerID] = q.Quota
	}
	spaces, err := s.store.ListSpaces(ctx, o.ID)
	if err != nil {
		return nil, err
	}
	orgInfo := api.QuotaInfo{Org: o.Name, Quota: of[api.QuotaOrg][o.ID]}
	out := []api.QuotaInfo{}
	for _, sp := range spaces {
		u, err := s.usage(ctx, sp.ID)
		if err != nil {
			return nil, err
		}
		orgInfo.Used = add(orgInfo.Used, u)
		out = append(out, api.QuotaInfo{Org: o.Name, Space: sp.Name, Quota: of[api.QuotaSpace][sp.ID], Used: u})
	}
	return append([]api.QuotaInfo{orgInfo}, out...), nil
}

// SetQuota sets the quota of an org or a space (admin); zero removes it.
func (s *Quotas) SetQuota(ctx context.Context, req api.QuotaRequest) (*api.QuotaInfo, error) {
	if err := requireAdmin(ctx, "setting quotas"); err != nil {
		return nil, err
	}
	q := req.Quota
	if q.MemoryMB < 0 || q.Instances < 0 || q.Apps < 0 || q.Routes < 0 {
		return nil, api.Errorf(api.EInvalid, "a quota is not negative — give 0 for unlimited")
	}
	o, err := s.tenancy.org(ctx, req.Org, actReadOrg)
	if err != nil {
		return nil, err
	}
	stored := api.StoredQuota{Scope: api.QuotaOrg, OwnerID: o.ID, Quota: q}
	if req.Space != "" {
		sp, err := s.store.SpaceByName(ctx, o.ID, req.Space)
		if err != nil {
			return nil, noSpace(api.Target{Org: o.Name, Space: req.Space}, err)
		}
		stored = api.StoredQuota{Scope: api.QuotaSpace, OwnerID: sp.ID, Quota: q}
	}
	if err := s.store.SetQuota(ctx, stored); err != nil {
		return nil, err
	}
	s.log.Info("quota.set", "org", o.Name, "space", req.Space, "quota", fmt.Sprintf("%+v", q), "actor", api.ActorName(ctx))
	where := "org " + o.Name
	if req.Space != "" {
		where = "space " + req.Space
	}
	s.audit.recordOrg(ctx, o.ID, "quota.set", "quota of the %s: memory %s, instances %d, apps %d, routes %d (0 = unlimited)", where, mb(q.MemoryMB), q.Instances, q.Apps, q.Routes)
	return &api.QuotaInfo{Org: o.Name, Space: req.Space, Quota: q}, nil
}
