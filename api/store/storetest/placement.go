package storetest

import (
	"context"
	"reflect"
	"testing"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/controller"
)

func testPlacements(t *testing.T, s controller.Store) {
	ctx := context.Background()
	f := newFixture(t, s)
	got, err := s.Placements(ctx)
	must(t, "Placements empty", err)
	if len(got) != 0 {
		t.Fatalf("Placements on an empty store = %+v", got)
	}
	space := api.Placement{Scope: api.PlacementSpace, OwnerID: f.space.ID, Policy: api.PlacementPolicy{
		Substrate: api.SubstrateMetal, Labels: map[string]string{"zone": "a", "disk": "ssd"},
	}}
	app := api.Placement{Scope: api.PlacementApp, OwnerID: f.app.ID, Policy: api.PlacementPolicy{Isolation: api.IsolationProcess}}
	must(t, "SetPlacement space", s.SetPlacement(ctx, space))
	must(t, "SetPlacement app", s.SetPlacement(ctx, app))
	got, err = s.Placements(ctx)
	must(t, "Placements", err)
	if want := []api.Placement{app, space}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Placements = %+v, want %+v", got, want)
	}

	// Replacing keeps one row per owner; a zero policy deletes it.
	space.Policy = api.PlacementPolicy{Substrate: api.SubstrateVM}
	must(t, "SetPlacement replace", s.SetPlacement(ctx, space))
	must(t, "SetPlacement clear", s.SetPlacement(ctx, api.Placement{Scope: api.PlacementApp, OwnerID: f.app.ID}))
	must(t, "SetPlacement clear again", s.SetPlacement(ctx, api.Placement{Scope: api.PlacementApp, OwnerID: f.app.ID}))
	got, err = s.Placements(ctx)
	must(t, "Placements after replace", err)
	if want := []api.Placement{space}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Placements after replace = %+v, want %+v", got, want)
	}

	wantCode(t, "bad scope", s.SetPlacement(ctx, api.Placement{Scope: "node", OwnerID: "x", Policy: space.Policy}), api.EInvalid)
	wantCode(t, "empty owner", s.SetPlacement(ctx, api.Placement{Scope: api.PlacementOrg, Policy: space.Policy}), api.EInvalid)

	sp2 := &api.Space{ID: id(), OrgID: f.org.ID, Name: "alpha"}
	must(t, "CreateSpace", s.CreateSpace(ctx, sp2))
	spaces, err := s.ListSpaces(ctx, f.org.ID)
	must(t, "ListSpaces", err)
	if len(spaces) != 2 || spaces[0].Name != "alpha" || spaces[1].Name != "dev" || spaces[1].ID != f.space.ID {
		t.Fatalf("ListSpaces = %+v, want alpha, dev", spaces)
	}
	spaces, err = s.ListSpaces(ctx, id())
	must(t, "ListSpaces other org", err)
	if len(spaces) != 0 {
		t.Fatalf("ListSpaces of an unknown org = %+v", spaces)
	}
}

func testNodeDrains(t *testing.T, s controller.Store) {
	ctx := context.Background()
	must(t, "drain n2", s.SetNodeDrain(ctx, "n2", true))
	must(t, "drain n1", s.SetNodeDrain(ctx, "n1", true))
	must(t, "drain n1 again", s.SetNodeDrain(ctx, "n1", true))
	got, err := s.DrainingNodes(ctx)
	must(t, "DrainingNodes", err)
	if !reflect.DeepEqual(got, []string{"n1", "n2"}) {
		t.Fatalf("DrainingNodes = %v, want [n1 n2]", got)
	}
	must(t, "undrain n2", s.SetNodeDrain(ctx, "n2", false))
	must(t, "undrain unknown", s.SetNodeDrain(ctx, "n9", false))
	got, err = s.DrainingNodes(ctx)
	must(t, "DrainingNodes after undrain", err)
	if !reflect.DeepEqual(got, []string{"n1"}) {
		t.Fatalf("DrainingNodes after undrain = %v, want [n1]", got)
	}
	wantCode(t, "empty node", s.SetNodeDrain(ctx, "", true), api.EInvalid)
}
