package controller

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/deploy/scheduler"
)

// Placement owns placement policies of orgs, spaces and apps and node drains
// (api.PlacementService), and reads the effective policy for the converger.
type Placement struct {
	cfg         Config
	log         *slog.Logger
	store       placementStore
	find        appFinder
	audit       *audit
	sig         *signals
	nodes       *Nodes
	unplaceable *unplaceable
}

// placementStore is what Placement reads and writes.
type placementStore interface {
	PlacementStore
	ListOrgs(ctx context.Context) ([]*api.Org, error)
	OrgByName(ctx context.Context, name string) (*api.Org, error)
	SpaceByName(ctx context.Context, orgID, name string) (*api.Space, error)
}

var _ api.PlacementService = (*Placement)(nil)

// Placement policies come from three scopes: the org, the space and the
// app. The effective policy of an app is org.Over(space).Over(app): each
// narrower scope overrides the wider one field by field (labels key by key),
// and "any" lifts a wider constraint. An app with no policy anywhere runs on
// any node.

// policies indexes the stored placement policies by scope and owner.
type policies map[api.PlacementScope]map[string]api.PlacementPolicy

func indexPolicies(pls []api.Placement) policies {
	out := policies{}
	for _, pl := range pls {
		if out[pl.Scope] == nil {
			out[pl.Scope] = map[string]api.PlacementPolicy{}
		}
		out[pl.Scope][pl.OwnerID] = pl.Policy
	}
	return out
}

// effective returns the policy of an app in a space of an org.
func (ps policies) effective(orgID, spaceID, appID string) api.PlacementPolicy {
	return ps[api.PlacementOrg][orgID].Over(ps[api.PlacementSpace][spaceID]).Over(ps[api.PlacementApp][appID])
}

// readPlacement loads the drained nodes into the registry (so the views the
// pass takes next show them draining) and sets each formation's policy.
func (s *Placement) readPlacement(ctx context.Context, p *pass, forms []scheduler.Formation) error {
	drained, err := s.store.DrainingNodes(ctx)
	if err != nil {
		return err
	}
	s.nodes.setDrained(drained)
	pls, err := s.store.Placements(ctx)
	if err != nil {
		return err
	}
	if len(pls) == 0 {
		return nil
	}
	ps := indexPolicies(pls)
	orgOf := map[string]string{}
	if len(ps[api.PlacementOrg]) > 0 {
		if orgOf, err = s.spaceOrgs(ctx); err != nil {
			return err
		}
	}
	for i := range forms {
		a := p.apps[forms[i].AppID]
		if a == nil {
			continue
		}
		forms[i].Policy = ps.effective(orgOf[a.SpaceID], a.SpaceID, a.ID)
	}
	return nil
}

// spaceOrgs maps every space to its org.
func (s *Placement) spaceOrgs(ctx context.Context) (map[string]string, error) {
	orgs, err := s.store.ListOrgs(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, org := range orgs {
		spaces, err := s.store.ListSpaces(ctx, org.ID)
		if err != nil {
			return nil, err
		}
		for _, sp := range spaces {
			out[sp.ID] = org.ID
		}
	}
	return out, nil
}

// describePlacement adds to an app's detail its effective policy, why
// instances cannot be placed, and each instance's node substrate and
// isolation from the node's latest heartbeat.
func (s *Placement) describePlacement(ctx context.Context, d *api.AppDetail) error {
	pls, err := s.store.Placements(ctx)
	if err != nil {
		return err
	}
	ps := indexPolicies(pls)
	orgID := ""
	if len(ps[api.PlacementOrg]) > 0 {
		orgs, err := s.spaceOrgs(ctx)
		if err != nil {
			return err
		}
		orgID = orgs[d.SpaceID]
	}
	d.Placement = ps.effective(orgID, d.SpaceID, d.ID)
	d.Unplaceable = s.unplaceable.reason(d.ID)
	views := s.nodes.views(s.cfg.Now(), s.cfg.NodeTTL)
	for _, in := range d.Instances {
		v := views[in.NodeID]
		if v == nil {
			continue
		}
		in.Substrate = v.node.Substrate
		switch {
		case in.Isolation != "": // the scheduler's choice, stored with the row
		case d.Placement.Isolation != "" && d.Placement.Isolation != api.PlacementAny:
			in.Isolation = d.Placement.Isolation
		case len(v.node.Isolations) > 0:
			in.Isolation = v.node.Isolations[0]
		}
		if in.Isolation == api.IsolationMicroVM {
			in.Accel = v.node.Accel
		}
	}
	return nil
}

// Spaces lists the spaces of the target org with their default policies.
func (s *Placement) Spaces(ctx context.Context) ([]*api.SpaceInfo, error) {
	org, err := s.find.tenancy.org(ctx, TargetOf(ctx).Org, actReadOrg)
	if err != nil {
		return nil, err
	}
	spaces, err := s.store.ListSpaces(ctx, org.ID)
	if err != nil {
		return nil, fmt.Errorf("list spaces: %w", err)
	}
	pls, err := s.store.Placements(ctx)
	if err != nil {
		return nil, fmt.Errorf("list placements: %w", err)
	}
	ps := indexPolicies(pls)
	out := make([]*api.SpaceInfo, 0, len(spaces))
	for _, sp := range spaces {
		out = append(out, &api.SpaceInfo{
			Space: *sp, Org: org.Name,
			Placement: ps[api.PlacementSpace][sp.ID], OrgPlacement: ps[api.PlacementOrg][org.ID],
		})
	}
	return out, nil
}

// SetSpacePlacement replaces the default policy of a space of the target
// org (admin only). A zero policy clears it.
func (s *Placement) SetSpacePlacement(ctx context.Context, space string, p api.PlacementPolicy) (*api.SpaceInfo, error) {
	if err := requireAdmin(ctx, "setting a space's placement"); err != nil {
		return nil, err
	}
	if err := api.ValidateName("space", space); err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	org, err := s.find.tenancy.org(ctx, TargetOf(ctx).Org, actReadOrg)
	if err != nil {
		return nil, err
	}
	sp, err := s.store.SpaceByName(ctx, org.ID, space)
	if api.ErrorCode(err) == api.ENotFound {
		return nil, api.Errorf(api.ENotFound, "space %q not found — see `strata spaces`", space)
	}
	if err != nil {
		return nil, err
	}
	if err := s.store.SetPlacement(ctx, api.Placement{Scope: api.PlacementSpace, OwnerID: sp.ID, Policy: p}); err != nil {
		return nil, fmt.Errorf("set space placement: %w", err)
	}
	s.log.Info("placement.space_set", "space", space, "policy", p.String(), "actor", api.ActorName(ctx))
	s.sig.Kick()
	info := &api.SpaceInfo{Space: *sp, Org: org.Name, Placement: p}
	if info.Placement.IsZero() {
		info.Placement = api.PlacementPolicy{}
	}
	return info, nil
}

// SetOrgPlacement replaces the target org's policy (admin only).
func (s *Placement) SetOrgPlacement(ctx context.Context, p api.PlacementPolicy) error {
	if err := requireAdmin(ctx, "setting the org's placement"); err != nil {
		return err
	}
	if err := p.Validate(); err != nil {
		return err
	}
	org, err := s.find.tenancy.org(ctx, TargetOf(ctx).Org, actReadOrg)
	if err != nil {
		return err
	}
	if err := s.store.SetPlacement(ctx, api.Placement{Scope: api.PlacementOrg, OwnerID: org.ID, Policy: p}); err != nil {
		return fmt.Errorf("set org placement: %w", err)
	}
	s.log.Info("placement.org_set", "policy", p.String(), "actor", api.ActorName(ctx))
	s.sig.Kick()
	return nil
}

// AppPlacement returns an app's own policy.
func (s *Placement) AppPlacement(ctx context.Context, app string) (api.PlacementPolicy, error) {
	a, err := s.find.appByName(ctx, app, actRead)
	if err != nil {
		return api.PlacementPolicy{}, err
	}
	pls, err := s.store.Placements(ctx)
	if err != nil {
		return api.PlacementPolicy{}, err
	}
	return indexPolicies(pls)[api.PlacementApp][a.ID], nil
}

// SetAppPlacement replaces an app's own policy and records an event.
func (s *Placement) SetAppPlacement(ctx context.Context, app string, p api.PlacementPolicy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	a, err := s.find.appByName(ctx, app, actDevelop)
	if err != nil {
		return err
	}
	old, err := s.AppPlacement(ctx, app)
	if err != nil {
		return err
	}
	if old.String() == p.String() && old.Substrate == p.Substrate && old.Isolation == p.Isolation {
		return nil // unchanged: no event
	}
	if err := s.store.SetPlacement(ctx, api.Placement{Scope: api.PlacementApp, OwnerID: a.ID, Policy: p}); err != nil {
		return fmt.Errorf("set app placement: %w", err)
	}
	s.audit.record(ctx, a, "placement", "placement set to %s", p.String())
	s.sig.Kick()
	return nil
}

// DrainNode marks a node draining (admin only). The node must have
// heartbeated since the controller started, so a typo is refused.
func (s *Placement) DrainNode(ctx context.Context, id string) (*api.Node, error) {
	return s.setDrain(ctx, id, true)
}

// UndrainNode ends a node's drain (admin only).
func (s *Placement) UndrainNode(ctx context.Context, id string) (*api.Node, error) {
	return s.setDrain(ctx, id, false)
}

func (s *Placement) setDrain(ctx context.Context, id string, draining bool) (*api.Node, error) {
	verb := "draining"
	if !draining {
		verb = "undraining"
	}
	if err := requireAdmin(ctx, verb+" a node"); err != nil {
		return nil, err
	}
	node, ok := s.node(id)
	if !ok {
		return nil, api.Errorf(api.ENotFound, "node %q has not reported — see `strata nodes`", id)
	}
	if err := s.store.SetNodeDrain(ctx, id, draining); err != nil {
		return nil, fmt.Errorf("%s node: %w", verb, err)
	}
	drained, err := s.store.DrainingNodes(ctx)
	if err != nil {
		return nil, err
	}
	s.nodes.setDrained(drained)
	s.log.Info("node."+verb, "node", id, "actor", api.ActorName(ctx))
	s.sig.Kick()
	node, _ = s.node(id)
	return &node, nil
}

func (s *Placement) node(id string) (api.Node, bool) {
	nodes := s.nodes.List()
	i, ok := slices.BinarySearchFunc(nodes, id, func(n api.Node, id string) int { return cmp.Compare(n.ID, id) })
	if !ok {
		return api.Node{}, false
	}
	return nodes[i], true
}

// setDrained replaces the set of draining nodes.
func (r *nodeRegistry) setDrained(ids []string) {
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	r.mu.Lock()
	r.drained = m
	r.mu.Unlock()
}

// live reports whether the node is heartbeating (ready or draining): its
// reports count and it takes commands, though a draining node takes no new
// placements.
func (v *nodeView) live() bool { return v.node.State != scheduler.NodeLost }
