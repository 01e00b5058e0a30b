package controllertest

import (
	"cmp"
	"context"
	"maps"
	"slices"

	"github.com/strata-paas/strata/api"
)

// placementData is the Store's placement policies and drained nodes.
type placementData struct {
	policies map[api.PlacementScope]map[string]api.PlacementPolicy
	drains   map[string]bool
}

// SetPlacement implements controller.Store.
func (s *Store) SetPlacement(_ context.Context, pl api.Placement) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	switch pl.Scope {
	case api.PlacementOrg, api.PlacementSpace, api.PlacementApp:
	default:
		return api.Errorf(api.EInvalid, "placement scope %q is not org, space or app", pl.Scope)
	}
	if pl.OwnerID == "" {
		return api.Errorf(api.EInvalid, "placement owner id is empty")
	}
	d := &s.placement
	if d.policies == nil {
		d.policies = map[api.PlacementScope]map[string]api.PlacementPolicy{}
	}
	if d.policies[pl.Scope] == nil {
		d.policies[pl.Scope] = map[string]api.PlacementPolicy{}
	}
	if pl.Policy.IsZero() {
		delete(d.policies[pl.Scope], pl.OwnerID)
		return nil
	}
	p := pl.Policy
	p.Labels = maps.Clone(p.Labels)
	d.policies[pl.Scope][pl.OwnerID] = p
	return nil
}

// Placements implements controller.Store.
func (s *Store) Placements(context.Context) ([]api.Placement, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var out []api.Placement
	for scope, m := range s.placement.policies {
		for owner, p := range m {
			p.Labels = maps.Clone(p.Labels)
			out = append(out, api.Placement{Scope: scope, OwnerID: owner, Policy: p})
		}
	}
	slices.SortFunc(out, func(a, b api.Placement) int {
		return cmp.Or(cmp.Compare(a.Scope, b.Scope), cmp.Compare(a.OwnerID, b.OwnerID))
	})
	return out, nil
}

// ListSpaces implements controller.Store.
func (s *Store) ListSpaces(_ context.Context, orgID string) ([]*api.Space, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var out []*api.Space
	for _, sp := range s.spaces {
		if sp.OrgID == orgID {
			out = append(out, clone(sp))
		}
	}
	slices.SortFunc(out, func(a, b *api.Space) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// SetNodeDrain implements controller.Store.
func (s *Store) SetNodeDrain(_ context.Context, nodeID string, draining bool) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if nodeID == "" {
		return api.Errorf(api.EInvalid, "node id is empty")
	}
	if s.placement.drains == nil {
		s.placement.drains = map[string]bool{}
	}
	if draining {
		s.placement.drains[nodeID] = true
	} else {
		delete(s.placement.drains, nodeID)
	}
	return nil
}

// DrainingNodes implements controller.Store.
func (s *Store) DrainingNodes(context.Context) ([]string, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.placement.drains)), nil
}
